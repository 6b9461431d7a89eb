"""CLI: python -m shared.devstack up|down|status."""

from __future__ import annotations

import argparse
import sys
import time

from shared.devstack import DevstackError, ensure_up, state_dir, status, stop


def _print_status() -> bool:
    """Print one line per component; True when all answer."""
    rows = status()
    for row in rows:
        pid = "external" if not row.managed else (str(row.pid) if row.pid else "-")
        print(f"{row.name:<9} {'up' if row.up else 'down':<5} pid={pid:<9} {row.address}")
    return all(row.up for row in rows)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m shared.devstack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            started = time.monotonic()
            info = ensure_up()
            # stdout is eval-able (eval "$(python -m shared.devstack up)"); chatter goes to stderr.
            for key, value in info.env().items():
                print(f"{key}={value}")
            print(
                f"devstack up in {time.monotonic() - started:.1f}s (state and logs in {state_dir()})",
                file=sys.stderr,
            )
            return 0
        if args.command == "down":
            stop()
            print("devstack down", file=sys.stderr)
            return 0
        return 0 if _print_status() else 3
    except DevstackError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
