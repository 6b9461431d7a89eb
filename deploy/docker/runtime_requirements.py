"""Print the runtime subset of a uv-compiled, hash-pinned requirements.lock (drops dev-only packages)."""

# A package is kept when the project's runtime dependencies need it, directly ("via hss-platform
# (pyproject.toml)") or through another kept package; packages reached only from the dev group
# ("pyproject.toml:dev") or from dev-only packages (pytest, mypy, ruff, ...) are dropped.
# Standard library only: it runs in the image build before anything is installed.

import re
import sys
from pathlib import Path

PROJECT_RUNTIME = "hss-platform (pyproject.toml)"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Return {package: requirement with its --hash lines} and {package: the packages/roots it is pulled in via}."""
    lines: dict[str, str] = {}
    via: dict[str, set[str]] = {}
    current: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        match = _PIN.match(line)
        if match:
            current = _normalise(match.group(1))
            lines[current] = line
            via[current] = set()
            continue
        if current is not None and line.startswith("--hash="):
            lines[current] += "\n    " + line  # the requirement line before it ends with " \\"
            continue
        if current is None or not line.startswith("#"):
            continue
        comment = line.lstrip("#").strip()
        if comment.startswith("via"):
            comment = comment[len("via") :].strip()
        if comment:
            via[current].add(comment if "pyproject.toml" in comment else _normalise(comment))
    return lines, via


def runtime_packages(text: str) -> list[str]:
    """Requirements (with their hashes) needed at run time, in lock order."""
    lines, via = parse_lock(text)
    kept: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, parents in via.items():
            if name not in kept and (PROJECT_RUNTIME in parents or parents & kept):
                kept.add(name)
                changed = True
    return [line for name, line in lines.items() if name in kept]


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "requirements.lock")
    sys.stdout.write("".join(f"{line}\n" for line in runtime_packages(path.read_text())))


if __name__ == "__main__":
    main()
