"""The orphan sweep: remove stored documents that no event references.

Files are stored before the event that references them is recorded; if recording fails
(the store is down, the process dies), the files stay behind unreferenced. They are
harmless but hold personal data, so the sweep removes them once they are older than a
grace period (``older_than``, a day by default).

The order makes it safe while the service runs: first the store's documents are listed,
then the references read from the event log, and each unreferenced document is removed
only if it is still old at that moment (:meth:`DocumentStore.delete_unless_recent`).
A document stored again after the listing is recent, and one whose event was recorded
before the references were read is referenced: a referenced document is never removed.
What escapes is a document stored more than ``older_than`` ago whose event is recorded
only after the sweep read the references, so the grace period must be far longer than
any write takes. Run one sweep at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from service_ports import StoredEntry

DEFAULT_GRACE_PERIOD: Final = timedelta(days=1)


class SweptStore(Protocol):
    """What the sweep uses of a store: the encrypting store of the application, or a
    backend (addresses only)."""

    def entries(self) -> Iterator[StoredEntry]: ...

    def delete_unless_recent(self, sha256: str, older_than: timedelta) -> bool: ...

    def remove_abandoned_writes(self, older_than: timedelta) -> int: ...


@dataclass(frozen=True)
class SweepReport:
    stored: int
    """Documents in the store when the sweep began."""
    referenced: int
    recent: int
    """Unreferenced, but within the grace period (perhaps about to be referenced)."""
    removed: int
    removed_bytes: int
    abandoned_writes_removed: int
    dry_run: bool


def sweep_orphans(
    store: SweptStore,
    referenced_hashes: Callable[[], Collection[str]],
    *,
    older_than: timedelta = DEFAULT_GRACE_PERIOD,
    dry_run: bool = False,
    now: Callable[[], datetime] = lambda: datetime.now(tz=UTC),
) -> SweepReport:
    """Remove the documents no event references that are older than ``older_than``.

    ``referenced_hashes`` reads the stored addresses the events reference (the
    application's: ``Intake.referenced_addresses``; erased owners' documents are not
    among them); it is called after the store has been listed (see the module's
    docstring for why).
    """
    entries = list(store.entries())
    referenced = frozenset(referenced_hashes())
    cutoff = now() - older_than
    in_use = recent = removed = removed_bytes = 0
    for entry in entries:
        if entry.sha256 in referenced:
            in_use += 1
        elif entry.stored_at >= cutoff:
            recent += 1
        elif dry_run or store.delete_unless_recent(entry.sha256, older_than):
            removed += 1
            removed_bytes += entry.size_bytes
        else:
            recent += 1  # stored again while the sweep ran
    abandoned = 0 if dry_run else store.remove_abandoned_writes(older_than)
    return SweepReport(
        stored=len(entries),
        referenced=in_use,
        recent=recent,
        removed=removed,
        removed_bytes=removed_bytes,
        abandoned_writes_removed=abandoned,
        dry_run=dry_run,
    )
