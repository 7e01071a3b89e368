"""A development mailbox: mails kept as files in a directory instead of being sent.

On a laptop or in a demo there is no mail server, yet a person who books must read the
confirmation code and follow the links of their mails. :class:`MailboxMailer` (the port
``service_ports.Mailer``) writes each mail as one JSON file, ``<number>.json``, into the
mailbox directory (``<data_dir>/mailbox`` by default); :class:`Mailbox` lists and reads
them for the development page ``/dev/mailbox`` and for tests. Never used in production
(:func:`adapters.bootstrap.mailer_for` decides).

Each file appears complete or not at all: it is written under a temporary name, synced
and then hard-linked to its number, which fails if another process (or thread) took the
number first; the writer then tries the next one. Numbers therefore count up without
gaps or doubles, however many servers share the directory.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from service_ports import MailUnavailable, OutgoingMail

_FILE: Final = re.compile(r"^(\d{1,9})\.json$")
_WIDTH: Final = 6
_LINK: Final = re.compile(r"https?://[^\s<>\"']+")
_MAX_ATTEMPTS: Final = 1000


@dataclass(frozen=True)
class StoredMail:
    """One mail as the mailbox keeps it."""

    number: int
    sent_at: datetime
    sender: str
    to: str
    subject: str
    body: str
    message_id: str

    def body_parts(self) -> list[tuple[str, bool]]:
        """The body as (text, is_link) pieces, so a page can make the links clickable
        without trusting the body as HTML."""
        parts: list[tuple[str, bool]] = []
        cursor = 0
        for match in _LINK.finditer(self.body):
            link = match.group(0).rstrip(".,;:)")
            if match.start() > cursor:
                parts.append((self.body[cursor : match.start()], False))
            parts.append((link, True))
            cursor = match.start() + len(link)
        if cursor < len(self.body):
            parts.append((self.body[cursor:], False))
        return parts

    @property
    def links(self) -> list[str]:
        return [text for text, is_link in self.body_parts() if is_link]


class Mailbox:
    """The mails in a mailbox directory, read back."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def numbers(self) -> list[int]:
        """The numbers of the mails kept, ascending."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(int(match.group(1)) for name in names if (match := _FILE.match(name)))

    def mails(self) -> list[StoredMail]:
        """Every mail, newest first."""
        return [self.get(number) for number in reversed(self.numbers())]

    def get(self, number: int) -> StoredMail:
        """One mail; :class:`KeyError` if there is none with this number."""
        path = self._path(number)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise KeyError(number) from None
        return StoredMail(
            number=number,
            sent_at=datetime.fromisoformat(data["sent_at"]),
            sender=data["sender"],
            to=data["to"],
            subject=data["subject"],
            body=data["body"],
            message_id=data["message_id"],
        )

    def latest_to(self, address: str) -> StoredMail | None:
        """The newest mail to ``address`` (what a test or a browser test reads next)."""
        return next((mail for mail in self.mails() if mail.to == address), None)

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:0{_WIDTH}d}.json"


class MailboxMailer(Mailbox):
    """Keeps each mail as a file instead of sending it (development only)."""

    def __init__(
        self,
        directory: Path,
        *,
        sender: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(directory)
        self.sender = sender
        self._clock = clock

    def send(self, mail: OutgoingMail) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._write(mail)
        except OSError:
            # Like a mail server that cannot be reached: recorded, and tried again later.
            raise MailUnavailable("the mailbox directory cannot be written") from None

    def _write(self, mail: OutgoingMail) -> StoredMail:
        temporary = self.directory / f".incoming-{secrets.token_hex(8)}.tmp"
        numbers = self.numbers()
        number = (numbers[-1] if numbers else 0) + 1
        stored = StoredMail(
            number=number,
            sent_at=self._clock(),
            sender=self.sender,
            to=mail.to,
            subject=mail.subject,
            body=mail.body,
            message_id=mail.message_id,
        )
        record = asdict(stored)
        del record["number"]  # the file's name says it
        record["sent_at"] = stored.sent_at.isoformat()
        try:
            with temporary.open("x", encoding="utf-8") as file:
                json.dump(record, file, ensure_ascii=False, indent=2)
                file.flush()
                os.fsync(file.fileno())
            for _attempt in range(_MAX_ATTEMPTS):
                try:
                    # A hard link never replaces an existing file: the number is ours
                    # only if nobody linked it first.
                    os.link(temporary, self._path(number))
                except FileExistsError:
                    number += 1
                    continue
                return replace(stored, number=number)
            msg = "no free number in the mailbox"
            raise OSError(msg)
        finally:
            temporary.unlink(missing_ok=True)
