"""A local SMTP server (aiosmtpd) keeping every mail it receives in a Maildir: where carers' notification mails go
in the demo and the tests (read them with any Maildir reader, e.g. Python's `mailbox.Maildir`, or `mutt -f`)."""

from __future__ import annotations

import mailbox
import sys
from email.message import Message
from pathlib import Path

from shared.devstack.component import (
    LocalProcess,
    port_open,
    require_free,
    start_and_wait,
)

DEFAULT_PORT = 8025
SERVER = [sys.executable, "-m", "aiosmtpd", "-n"]  # -n: no setuid to nobody (root runs it in CI)


class SmtpServer(LocalProcess):
    """`python -m aiosmtpd` with the Mailbox handler: mails land in <root>/mail/{new,cur} as files."""

    name = "smtp"
    env_var = "SMTP_ADDRESS"

    def __init__(self, root: Path, port: int) -> None:
        super().__init__(port, root, "smtp.log")
        self.maildir = root / "mail"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def marker(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        require_free(self.port, "smtp", "set SMTP_PORT")
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [*SERVER, "-l", self.address, "-c", "aiosmtpd.handlers.Mailbox", str(self.maildir)]
        start_and_wait(argv, self.log, self.pid_file, self.answers, 30, "smtp", self.log)

    def answers(self) -> bool:
        return port_open("127.0.0.1", self.port)

    def messages(self) -> list[Message]:
        """Every mail received so far (oldest first by delivery time)."""
        if not (self.maildir / "new").exists():
            return []
        box = mailbox.Maildir(self.maildir, create=False)
        return [m for _, m in sorted(box.items(), key=lambda kv: kv[1].get_date())]
