"""Mails a development mailbox kept, deleted with the person they were sent to.

The development mailbox (:mod:`adapters.mail.mailbox`) keeps every mail as a JSON file,
with the person's address, name and appointment in it; erasure deletes the files of the
mails to the person's addresses (the port ``service_data_protection.SentMail``), each
overwritten with zeros before it is unlinked. A real mail server keeps no copy in Akte:
there is nothing to delete (see docs "Data protection").
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from adapters.mail.mailbox import Mailbox


class MailboxErasure:
    """Deletes the mailbox's mails to given addresses."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    def erase_to(self, addresses: Iterable[str]) -> int:
        wanted = {address.strip().casefold() for address in addresses if address.strip()}
        if not wanted:
            return 0
        deleted = 0
        for number in self.mailbox.numbers():
            try:
                mail = self.mailbox.get(number)
            except KeyError:  # deleted meanwhile
                continue
            if mail.to.strip().casefold() not in wanted:
                continue
            path = self.mailbox._path(number)
            _shred(path)
            deleted += 1
        return deleted


def _shred(path: os.PathLike[str]) -> None:
    """Overwrite the file's bytes, sync, unlink."""
    try:
        size = os.path.getsize(path)
        with open(path, "r+b") as file:
            file.write(b"\0" * size)
            file.flush()
            os.fsync(file.fileno())
        os.unlink(path)
    except FileNotFoundError:
        pass
