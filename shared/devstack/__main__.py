"""CLI: python -m shared.devstack up [--services] [--replicas N] [--brokers 1|3] | down | status | kill/restart <proc>.

<proc> is `postgres`, a broker (`kafka`, or `kafka#1`..`kafka#3` in a cluster), a service replica (`visits#2`;
plain `visits` is replica 1) or `gateway` (nginx in front of every replica, started with the services).
The topology `up` chose is remembered in the state folder until `down`.
`department <name>` prints a department's Kafka client settings (SCRAM user, its topic, its group prefix).
"""

from __future__ import annotations

import argparse
import sys
import time

from shared.contracts.common import Department
from shared.devstack import ComponentStatus, DevstackError, Stack, state_dir


def _print_databases(stack: Stack, row: ComponentStatus) -> None:
    """Under a running PostgreSQL: the services' databases on it (one each, as deployed) and their sizes."""
    if row.name != "postgres" or not row.up:
        return
    found = ", ".join(f"{n} ({size or 'missing'})" for n, size in stack.databases().items())
    print(f"{'':<13} one database per service: {found}")


def _print_status(stack: Stack) -> bool:
    """Print every process, the relay-lock holders and the lag per consumer group; True when the infra answers."""
    topology = stack.topology
    print(f"topology: {topology.brokers} broker(s), {topology.replicas} replica(s) per service  ({stack.state})")
    rows = stack.status()
    for row in rows:
        pid = "external" if not row.managed else (str(row.pid) if row.pid else "-")
        print(f"{row.name:<13} {'up' if row.up else 'down':<5} pid={pid:<9} {row.address}")
        _print_databases(stack, row)
    procs = stack.services()
    running = False
    holders = {h.service: h for h in stack.relay_holders()}
    for proc in procs:
        service_pid = proc.pid()
        if service_pid is None:
            print(f"{proc.label:<13} {'-':<5} pid={'-':<9} {proc.address}  (not running)")
            continue
        running = True
        up = proc.answers()
        relay = "relay lock" if holders[proc.name].label == proc.label else "relay standby"
        print(
            f"{proc.label:<13} {'up' if up else 'down':<5} pid={service_pid:<9} {proc.address}  "
            f"{'ready' if up else 'not ready'}  {relay}  log={proc.log}"
        )
    gateway = stack.gateway()
    gateway_pid = gateway.pid()
    if gateway_pid is None:
        print(f"{'gateway':<13} {'-':<5} pid={'-':<9} {gateway.address}  (not running)")
    else:
        up = gateway.answers()
        print(
            f"{'gateway':<13} {'up' if up else 'down':<5} pid={gateway_pid:<9} {gateway.address}  "
            f"the one origin for frontends (/api/v1/..., /docs)  log={gateway.log}"
        )
    smtp = stack.smtp()
    smtp_pid = smtp.pid()
    if smtp_pid is not None:
        print(
            f"{'smtp':<13} {'up' if smtp.answers() else 'down':<5} pid={smtp_pid:<9} {smtp.address}  "
            f"notification mails: {len(smtp.messages())} in the Maildir {smtp.maildir}"
        )
    if running:
        for h in holders.values():
            if h.label is None:
                who = "nobody" if h.backend_pid is None else f"a process devstack did not start ({h.backend_pid})"
                print(f"relay lock of {h.service}: {who}")
        lag = stack.consumer_lag()
        print("consumer lag per group (end offsets - committed offsets, from the broker):")
        for group, value in lag.items():
            print(f"  {group:<30} {'?' if value is None else value}")
    return all(row.up for row in rows)


def _department(stack: Stack, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.process not in {d.value for d in Department}:
        parser.error(f"department needs one of: {', '.join(d.value for d in Department)}")
    print(stack.department_access(args.process).properties(), end="")
    return 0


def _up(stack: Stack, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    started = time.monotonic()
    info = stack.up(brokers=args.brokers)
    if args.services:
        for proc in stack.services_up(replicas=args.replicas):
            if proc.replica == 1:
                print(f"{proc.env_var}={proc.address}")
        gateway, smtp = stack.gateway(), stack.smtp()
        print(f"{gateway.env_var}={gateway.address}")
        print(f"{smtp.env_var}={smtp.address}\nSMTP_MAILDIR={smtp.maildir}")
    elif args.replicas:
        parser.error("--replicas needs --services")
    # stdout is eval-able (eval "$(python -m shared.devstack up)"); chatter goes to stderr.
    for key, value in info.env().items():
        print(f"{key}={value}")
    print(f"devstack up in {time.monotonic() - started:.1f}s (state and logs in {state_dir()})", file=sys.stderr)
    return 0


def _restart_or_kill(stack: Stack, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.process:
        parser.error(f"{args.command} needs a process: postgres, kafka[#k] or <service>[#k]")
    if args.command == "kill":
        stack.kill(args.process)
    else:
        stack.restart(args.process)
    print(f"{args.process} {args.command}ed", file=sys.stderr)
    return 0


def _down(stack: Stack, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    stack.down()
    print("devstack down", file=sys.stderr)
    return 0


def _status(stack: Stack, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    return 0 if _print_status(stack) else 3


COMMANDS = {
    "up": _up,
    "down": _down,
    "status": _status,
    "restart": _restart_or_kill,
    "kill": _restart_or_kill,
    "department": _department,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m shared.devstack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=list(COMMANDS))
    parser.add_argument(
        "process",
        nargs="?",
        help="for restart/kill: postgres, kafka[#k], <service>[#k], gateway; for department: its name",
    )
    parser.add_argument("--services", action="store_true", help="with up: also start the four services")
    parser.add_argument("--replicas", type=int, help="with up --services: processes per service (default 1)")
    parser.add_argument("--brokers", type=int, choices=[1, 3], help="with up: Kafka brokers (default 1)")
    args = parser.parse_args(argv)
    stack = Stack.from_env()
    try:
        return COMMANDS[args.command](stack, args, parser)
    except DevstackError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
