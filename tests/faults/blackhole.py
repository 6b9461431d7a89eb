"""A TCP connection on the loopback interface silently lost: every packet of it dropped, no FIN, no RST, no ACK.

What a peer sees when the other host vanishes (power loss, a cable pulled, a partition). A user-space proxy
cannot fake it: the proxy's own kernel would still acknowledge keepalive probes. Nor can a drop on the sending
side: the kernel sees a local transmit error and keeps probing instead of counting the probe as unanswered. So the
packets are dropped on arrival, by a classic-BPF classifier on the ingress of `lo` (tc, `clsact` qdisc,
direct-action) matching the connection's port as source or destination. Needs root (CAP_NET_ADMIN) and `tc`.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PREF = 4917  # this module's filter priority on lo's ingress


def program(port: int) -> str:
    """tc's `bytecode` text of a classic-BPF program: IPv4 TCP with `port` as source or destination port → drop
    (TC_ACT_SHOT = 2), anything else → pass (TC_ACT_OK = 0). Offsets from the Ethernet header lo carries."""
    ins = [
        (0x28, 0, 0, 12),  # ldh [12]             ethertype
        (0x15, 0, 7, 0x0800),  # jeq IPv4 ? next : pass
        (0x30, 0, 0, 23),  # ldb [23]             IP protocol
        (0x15, 0, 5, 6),  # jeq TCP ? next : pass
        (0xB1, 0, 0, 14),  # ldxb 4*([14]&0xf)    IP header length
        (0x48, 0, 0, 14),  # ldh [x+14]           TCP source port
        (0x15, 3, 0, port),  # jeq port ? drop : next
        (0x48, 0, 0, 16),  # ldh [x+16]           TCP destination port
        (0x15, 1, 0, port),  # jeq port ? drop : pass
        (0x06, 0, 0, 0),  # pass
        (0x06, 0, 0, 2),  # drop
    ]
    return f"{len(ins)}," + ",".join(" ".join(str(v) for v in i) for i in ins)


def _tc(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tc", *args], capture_output=True, text=True, check=check)


def require_tc() -> None:
    """Skip (with the reason) where loopback packets cannot be dropped: no `tc`, or not allowed to."""
    if shutil.which("tc") is None:
        pytest.skip("needs the `tc` command (iproute2) to drop a connection's packets")
    probe = _tc("qdisc", "show", "dev", "lo", check=False)
    if probe.returncode != 0:
        pytest.skip(f"tc cannot read lo's qdiscs: {probe.stderr.strip()}")


@contextmanager
def blackhole(port: int) -> Iterator[None]:
    """Drop every packet to or from local TCP port `port` until the block ends."""
    require_tc()
    added_qdisc = "clsact" not in _tc("qdisc", "show", "dev", "lo").stdout
    if added_qdisc:
        r = _tc("qdisc", "add", "dev", "lo", "clsact", check=False)
        if r.returncode != 0:
            pytest.skip(f"tc cannot add a clsact qdisc to lo (needs CAP_NET_ADMIN): {r.stderr.strip()}")
    try:
        r = _tc("filter", "add", "dev", "lo", "ingress", "pref", str(PREF), "bpf", "bytecode", program(port), "da",
                check=False)  # fmt: skip
        if r.returncode != 0:
            pytest.skip(f"tc cannot add a BPF classifier to lo: {r.stderr.strip()}")
        try:
            yield
        finally:
            _tc("filter", "del", "dev", "lo", "ingress", "pref", str(PREF), check=False)
    finally:
        if added_qdisc:
            _tc("qdisc", "del", "dev", "lo", "clsact", check=False)
