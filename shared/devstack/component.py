"""Component abstraction and process helpers shared by the devstack components."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[2]


class DevstackError(RuntimeError):
    """A devstack component could not be started or stopped."""


@dataclass(frozen=True)
class ComponentStatus:
    """What `status` reports for one component."""

    name: str
    address: str
    pid: int | None
    up: bool
    managed: bool  # False when the address came from the environment


class Component(ABC):
    """One piece of local infrastructure that devstack can start, probe and stop."""

    name: str
    env_var: str  # the variable `up` prints so shells and services can find it
    managed = True  # False for components given by the environment

    @property
    @abstractmethod
    def address(self) -> str:
        """The value for `env_var`, e.g. a URL or host:port."""

    @abstractmethod
    def pid(self) -> int | None:
        """Pid of the running process devstack started, if any."""

    @abstractmethod
    def start(self) -> None:
        """Start the component and return once a real client gets an answer."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the component if devstack started it."""

    @abstractmethod
    def answers(self) -> bool:
        """True when a real client can talk to the component right now."""

    def kill(self) -> None:
        """SIGKILL, as a crash or a lost machine would (fault drills); returns once the process is gone."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: self.pid() is None, 10, f"{self.name} exit", lambda: True)

    def is_alive(self) -> bool:
        """True when the process devstack started is still running."""
        return self.pid() is not None

    def ensure(self) -> None:
        """Start the component unless it already runs."""
        if not self.is_alive():
            self.start()

    def status(self) -> ComponentStatus:
        """Snapshot for `status`."""
        pid = self.pid()
        return ComponentStatus(self.name, self.address, pid, self.answers(), self.managed)


class LocalProcess(Component):
    """A component that is one local process devstack starts, found again through its pid file. `marker` is a
    piece of its command line (a recycled pid does not pass for it); `address` is `http://127.0.0.1:<port>`."""

    port: int
    root: Path
    pid_file: Path
    log: Path
    stop_seconds = 10  # how long it may take to exit on SIGTERM

    def __init__(self, port: int, root: Path, log: str) -> None:
        """Listening on `port`, its state in `root`: the pid file `<name>.pid` and the log `log`."""
        self.port, self.root = port, root
        self.pid_file = root / f"{self.name}.pid"
        self.log = root / log

    @property
    @abstractmethod
    def marker(self) -> str:
        """A piece of the process's command line."""

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pid(self) -> int | None:
        return live_pid(self.pid_file, self.marker)

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            terminate(pid, self.stop_seconds, self.marker)
        self.pid_file.unlink(missing_ok=True)


class External(Component):
    """A component given by an environment variable: used as is, never started or stopped."""

    managed = False

    def __init__(self, name: str, env_var: str, address: str, probe: Callable[[], bool]) -> None:
        self.name, self.env_var, self._address, self._probe = name, env_var, address, probe

    @property
    def address(self) -> str:
        return self._address

    def pid(self) -> int | None:
        return None

    def is_alive(self) -> bool:
        return True  # not ours to start; a dead external service is reported by `answers`

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def answers(self) -> bool:
        return self._probe()


def pid_alive(pid: int, needle: str | None = None) -> bool:
    """True if `pid` runs and is not a zombie; `needle` must appear in its command line."""
    # Reading /proc guards against zombies (our own dead children) and recycled pids.
    proc = Path(f"/proc/{pid}")
    try:
        stat = (proc / "stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
        if needle is not None:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            return needle in cmdline
        return True
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    except PermissionError:
        return True


def live_pid(pid_file: Path, needle: str) -> int | None:
    """The pid in `pid_file` while that process runs with `needle` in its command line (a path or address unique to
    the component's state, so a recycled pid never matches); else None."""
    pid = read_pid(pid_file)
    return pid if pid is not None and pid_alive(pid, needle) else None


def read_pid(path: Path) -> int | None:
    """First line of a pid file as an int, or None."""
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def terminate(pid: int, timeout: float, needle: str | None = None) -> None:
    """SIGTERM `pid`, wait up to `timeout` seconds, then SIGKILL."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid, needle):
            return
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while pid_alive(pid, needle) and time.monotonic() < deadline + 10:
        time.sleep(0.1)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port_block(size: int, *, low: int = 20000, high: int = 32000) -> int:
    """First of `size` consecutive free ports on 127.0.0.1, below the ephemeral range (clients never take them)."""
    rng = random.Random()
    for _ in range(200):
        start = rng.randrange(low, high - size)
        if all(_bindable(port) for port in range(start, start + size)):
            return start
    raise DevstackError(f"no {size} consecutive free ports between {low} and {high}")


def _bindable(port: int) -> bool:
    """True if a listener could bind 127.0.0.1:port now."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def require_free(port: int, what: str, hint: str) -> None:
    """Fail when something else already listens on `port`."""
    # Otherwise the readiness probe would happily accept the foreign server as ours.
    if port_open("127.0.0.1", port):
        raise DevstackError(f"{what}: port {port} on 127.0.0.1 is already in use by another process; {hint}")


def wait_until(check: Callable[[], bool], timeout: float, what: str, alive: Callable[[], bool]) -> None:
    """Poll `check` until true; fail early when `alive` turns false."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if not alive():
            raise DevstackError(f"{what} exited during start-up")
        time.sleep(0.25)
    raise DevstackError(f"{what} did not answer within {timeout:.0f}s")


def spawn(argv: list[str], output: Path, pid_file: Path, **popen: Any) -> subprocess.Popen[bytes]:
    """Start a process of the stack in a session of its own (it outlives the shell that ran `devstack up` and
    ignores its Ctrl-C), its output appended to `output`, its pid written to `pid_file`."""
    with open(output, "ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **popen
        )
    pid_file.write_text(f"{proc.pid}\n")
    return proc


def start_and_wait(
    argv: list[str],
    output: Path,
    pid_file: Path,
    ready: Callable[[], bool],
    timeout: float,
    what: str,
    log: Path,
    **popen: Any,
) -> None:
    """`spawn` and wait until `ready`; on failure the error ends with the last lines of `log`."""
    proc = spawn(argv, output, pid_file, **popen)
    try:
        wait_until(ready, timeout, what, lambda: proc.poll() is None)
    except DevstackError as exc:
        raise DevstackError(f"{exc}\n{tail(log)}") from None


def run_coro(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion, even when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    # Test fixtures call the sync API from async code; asyncio.run needs a loop-free thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def tail(path: Path, lines: int = 25) -> str:
    """Last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"


def npm_step(script: str, *args: str, what: str, keep: int = 2000) -> Path | None:
    """Run one of scripts/' npm steps (`frontend.sh build`, `gateway-docs.sh`: pinned packages, cached per lock or
    source digest), which prints the folder it made; None without npm. A failure is a DevstackError naming `what`,
    with the end of the step's stderr."""
    if shutil.which("npm") is None:
        return None
    out = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / script), *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise DevstackError(f"{what} failed:\n{out.stderr[-keep:]}")
    return Path(out.stdout.strip())


def http_get(url: str, timeout: float = 2.0) -> str | None:
    """The body of a GET on a local component when it answers 200, else None (not up, or not yet)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body: str = resp.read().decode()
            return body if resp.status == 200 else None
    except OSError:
        return None
