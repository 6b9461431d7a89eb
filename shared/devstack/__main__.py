"""CLI: python -m shared.devstack up [--services] | down | status | restart <service> | kill <service>."""

from __future__ import annotations

import argparse
import sys
import time

from shared.devstack import DevstackError, ensure_up, services, services_up, state_dir, status, stop
from shared.devstack.services import SERVICES


def _print_status() -> bool:
    """Print one line per component and per running service; True when the infrastructure answers."""
    rows = status()
    for row in rows:
        pid = "external" if not row.managed else (str(row.pid) if row.pid else "-")
        print(f"{row.name:<11} {'up' if row.up else 'down':<5} pid={pid:<9} {row.address}")
    for proc in services():
        service_pid = proc.pid()
        if service_pid is None:
            print(f"{proc.name:<11} {'-':<5} pid={'-':<9} {proc.address}  (not started)")
            continue
        up = proc.answers()
        lag = proc.consumer_lag()
        print(
            f"{proc.name:<11} {'up' if up else 'down':<5} pid={service_pid:<9} {proc.address}  "
            f"health={'ready' if up else 'not ready'} consumer_lag={'?' if lag is None else lag}  log={proc.log}"
        )
    return all(row.up for row in rows)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m shared.devstack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "restart", "kill"])
    parser.add_argument("service", nargs="?", choices=list(SERVICES), help="for restart/kill")
    parser.add_argument("--services", action="store_true", help="with up: also start the four services")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            started = time.monotonic()
            info = ensure_up()
            if args.services:
                for proc in services_up():
                    print(f"{proc.env_var}={proc.address}")
            # stdout is eval-able (eval "$(python -m shared.devstack up)"); chatter goes to stderr.
            for key, value in info.env().items():
                print(f"{key}={value}")
            print(
                f"devstack up in {time.monotonic() - started:.1f}s (state and logs in {state_dir()})",
                file=sys.stderr,
            )
            return 0
        if args.command in ("restart", "kill"):
            if not args.service:
                parser.error(f"{args.command} needs a service name")
            proc = next(p for p in services() if p.name == args.service)
            if args.command == "kill":
                proc.kill()
            else:
                proc.stop()
            if args.command == "restart":
                proc.start()
            print(f"{args.service} {args.command}ed", file=sys.stderr)
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
