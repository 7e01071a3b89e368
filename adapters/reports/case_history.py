"""A case file's history as people read it: built from the service, written as JSON,
a printable HTML page or plain text (the HTTP route and ``akte history`` share these).

HTML is rendered on the server with every value escaped; it needs no script and prints
on A4 as it is. Personal data appears only in histories built ``with_personal_data``
(auditors); otherwise the entries name the fields withheld.

A history reads its case file's events with one query per chunk (not through the
library's per-aggregate read) and has every event decoded by the service's own mapper,
or, where the caller passes one (the HTTP route does), by a batch decoder that decodes
exactly as the mapper does (:mod:`adapters.personal_data.batch_decoding`), so per-person
keys and erasure apply exactly as everywhere else. The JSON the HTTP route
sends (:func:`build_history_json`) is written a batch of events at a time from plain
dicts; its bytes are those of ``history_json(build_history(...))``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Protocol, TypeVar, cast
from uuid import UUID

import orjson
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Mapper,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from eventsourcing.utils import resolve_topic, retry
from psycopg import sql
from psycopg.rows import tuple_row

from adapters.reports.kept_histories import KeptEntries, KeptHistories, KeptShelf
from adapters.reports.templates import render
from adapters.store.notification_reader import ids_are_uuids
from domain.case_file import CaseFile
from domain.history import (
    HistoryEntry,
    HistoryFilter,
    StateChange,
    case_state,
    history_entry,
    history_entry_fields,
    state_changes,
)
from service import AkteService
from service_common import CaseNotFound, StoreUnavailable
from service_data_protection import SEPARATE_PARTS

DEFAULT_HISTORY_PAGE: Final = 500
_EVERYTHING: Final = HistoryFilter()
_MIN_CHUNK: Final = 500
"""Events read at a time: few round trips for long files, little waste for short pages."""
MAX_HISTORY_PAGE: Final = 10_000

_JSON_OPTIONS: Final = orjson.OPT_NON_STR_KEYS
_SEPARATE_PART_CLASSES: Final = frozenset(resolve_topic(topic) for topic in SEPARATE_PARTS)
"""Events with a part about another person, sealed with that person's key: a history
holding one is never kept (:mod:`adapters.reports.kept_histories`)."""
_DECODE_BATCH: Final = 128
"""Events decoded, described and written at a time. Decoded all at once, a long history
keeps tens of thousands of objects alive, which the garbage collector walks again and
again while it is built (measured on 5,000 entries: 15-50 ms of collections per history
at once, 3-4 ms in batches; CPU 58 ms at once, 43-49 ms in batches of 64 to 512)."""


@dataclass(frozen=True)
class CaseHistory:
    """One page of a case file's history, filtered."""

    case_id: UUID
    reference: str
    office_id: str
    version: int
    """The file's current version (its last event)."""
    entries: list[HistoryEntry]
    personal_data_shown: bool
    criteria: HistoryFilter
    next_after_version: int | None
    """More entries match after this version (the next page's ``after_version``)."""


@dataclass(frozen=True)
class HistoryJson:
    """One page of a case file's history as the JSON body of the HTTP route (the bytes
    of :func:`history_json`), with what goes into the route's headers."""

    body: bytes
    version: int
    next_after_version: int | None


@dataclass(frozen=True)
class _Selection:
    reference: str
    office_id: str
    version: int
    next_after_version: int | None


def build_history(
    service: AkteService,
    case_id: UUID,
    *,
    criteria: HistoryFilter = _EVERYTHING,
    with_personal_data: bool,
    after_version: int = 0,
    limit: int = DEFAULT_HISTORY_PAGE,
    decode_batch: DecodeBatch | None = None,
    source: CaseEventSource[Any] | None = None,
) -> CaseHistory:
    """The entries after ``after_version`` that match ``criteria``, at most ``limit``.

    Events are read in chunks from ``after_version`` on, so a page costs about its own
    length however long the file is (a sparse filter reads on until it has a page and
    knows whether another match follows). ``decode_batch``: see
    :func:`case_event_source`; ``source``: where the events are read (omitted: the
    service's store). Raises :class:`service.CaseNotFound`.
    """
    entries: list[HistoryEntry] = []

    def take(events: list[CaseFile.Event]) -> None:
        entries.extend(history_entry(e, with_personal_data=with_personal_data) for e in events)

    if source is None:
        source = case_event_source(service, decode_batch=decode_batch)
    selection = _select(source, case_id, criteria, after_version, limit, take)
    return CaseHistory(
        case_id=case_id,
        reference=selection.reference,
        office_id=selection.office_id,
        version=selection.version,
        entries=entries,
        personal_data_shown=with_personal_data,
        criteria=criteria,
        next_after_version=selection.next_after_version,
    )


def build_history_json(
    service: AkteService,
    case_id: UUID,
    *,
    criteria: HistoryFilter = _EVERYTHING,
    with_personal_data: bool,
    after_version: int = 0,
    limit: int = DEFAULT_HISTORY_PAGE,
    decode_batch: DecodeBatch | None = None,
    source: CaseEventSource[Any] | None = None,
    kept: KeptHistories | None = None,
    shelf: KeptShelf | None = None,
) -> HistoryJson:
    """The bytes of ``history_json(build_history(...))``, written batch by batch from
    plain dicts (no entry object each), so that neither the decoded events nor their
    entries outlive their batch. ``decode_batch``: see :func:`case_event_source`;
    ``source``: as for :func:`build_history`. ``kept``: where the entries of long files'
    whole histories are kept sealed with the file's key (:mod:`adapters.reports.
    kept_histories`): a history from the first event without a filter then writes only
    the events after those kept, and keeps what it wrote; ``shelf``: where the file's
    store keeps them beyond this process (:mod:`adapters.store.kept_history_shelf`).
    Raises :class:`service.CaseNotFound`."""
    written: list[bytes] = []
    whole = criteria == _EVERYTHING and after_version == 0
    prefix = None
    if kept is not None and whole and limit >= kept.min_entries:
        # (A shorter page never uses what is kept: nothing shorter is kept.)
        prefix = kept.take(case_id, with_personal_data=with_personal_data, shelf=shelf)
    if prefix is not None and prefix.version > limit:
        prefix = None  # a page that ends within what is kept: written as without
    with_other_persons = False
    # The version of the last entry written (unfiltered: the entries are 1 to it, once each).
    written_up_to = prefix.version if prefix is not None else 0

    def take(events: list[CaseFile.Event]) -> None:
        nonlocal with_other_persons, written_up_to
        if whole and not with_other_persons:
            with_other_persons = any(type(e) in _SEPARATE_PART_CLASSES for e in events)
        written_up_to = events[-1].originator_version
        batch = [history_entry_fields(e, with_personal_data=with_personal_data) for e in events]
        written.append(orjson.dumps(batch, option=_JSON_OPTIONS)[1:-1])  # without [ ]

    if source is None:
        source = case_event_source(service, decode_batch=decode_batch)
    selection: _Selection | None = None
    if prefix is not None:
        written.append(prefix.entries)
        selection = _select(
            source,
            case_id,
            criteria,
            prefix.version,
            limit - prefix.version,
            take,
            known=(prefix.reference, prefix.office_id),
        )
        if selection.version < prefix.version:
            # A read replica behind the primary does not hold all kept versions yet:
            # written from its events, as without, so the page says what it holds.
            written.clear()
            prefix, selection, with_other_persons, written_up_to = None, None, False, 0
    if selection is None:
        selection = _select(source, case_id, criteria, after_version, limit, take)
    entries = b",".join(part for part in written if part)
    if (
        kept is not None
        and whole
        and not with_other_persons
        and written_up_to > (prefix.version if prefix is not None else 0)
    ):
        kept.keep(
            case_id,
            with_personal_data=with_personal_data,
            kept=KeptEntries(written_up_to, selection.reference, selection.office_id, entries),
            shelf=shelf,
        )
    document = _document(
        case_id,
        selection.reference,
        selection.office_id,
        selection.version,
        with_personal_data,
        selection.next_after_version,
        orjson.Fragment(b"[" + entries + b"]"),
    )
    return HistoryJson(
        body=orjson.dumps(document, option=_JSON_OPTIONS),
        version=selection.version,
        next_after_version=selection.next_after_version,
    )


def _select(
    source: CaseEventSource[Any],
    case_id: UUID,
    criteria: HistoryFilter,
    after_version: int,
    limit: int,
    take: Callable[[list[CaseFile.Event]], None],
    *,
    known: tuple[str, str] | None = None,
) -> _Selection:
    """Hands the matching events to ``take`` in order, a batch at a time. ``known``: the
    file's reference and office, where the caller knows them (the file exists)."""
    # A history from the start finds the opening at the head of its first chunk; a later
    # page reads it on its own, before taking events of what may be no case file.
    opened: tuple[str, str] | None = known
    if after_version and opened is None:
        opened = _opening(source.decode(case_id, source.read(case_id, 0, 1)), case_id)
    chunk = max(limit + 1, _MIN_CHUNK)
    matches = None if criteria == _EVERYTHING else criteria.matches
    taken = 0
    last_taken = after_version  # a page of 0 (all kept entries) ends where it starts
    next_after: int | None = None
    head: int | None = None
    cursor = after_version
    while next_after is None:
        read = source.read(case_id, cursor, chunk)
        if opened is None and not read:
            raise CaseNotFound(case_id)
        for start in range(0, len(read), _DECODE_BATCH):
            events = source.decode(case_id, read[start : start + _DECODE_BATCH])
            if opened is None:
                opened = _opening(events, case_id)
            selected = events if matches is None else [e for e in events if matches(e)]
            if len(selected) > limit - taken:
                # One match more than the page holds: there is a next page.
                selected = selected[: limit - taken]
                if selected:
                    take(selected)
                    last_taken = selected[-1].originator_version
                next_after = last_taken
                break
            if selected:
                take(selected)
                taken += len(selected)
                last_taken = selected[-1].originator_version
        if next_after is not None:
            break
        if len(read) < chunk:
            # Read to the end: the last event read is the head, no read of its own.
            if read:
                head = source.version_of(read[-1])
            elif cursor > after_version:
                head = cursor
            break
        cursor = source.version_of(read[-1])
    if opened is None:  # not reached: the first read finds the opening or raises
        raise CaseNotFound(case_id)
    return _Selection(
        reference=opened[0],
        office_id=opened[1],
        version=source.head_version(case_id) if head is None else head,
        next_after_version=next_after,
    )


def _opening(events: Sequence[CaseFile.Event], case_id: UUID) -> tuple[str, str]:
    """The file's reference and office, from its opening; raises :class:`CaseNotFound`."""
    if not events or not isinstance(events[0], CaseFile.Opened):
        raise CaseNotFound(case_id)
    return events[0].reference, events[0].office_id


# -------------------------------------------------------------------- reading

ReadT = TypeVar("ReadT")


class CaseEventSource(Protocol[ReadT]):
    """A case file's events in order, as :meth:`service.AkteService.case_events` has
    them: read a chunk, then decode it (a part at a time, if the caller likes)."""

    def read(self, case_id: UUID, after_version: int, limit: int) -> Sequence[ReadT]:
        """At most ``limit`` events after ``after_version``; an unknown id has none."""
        ...

    def version_of(self, read: ReadT) -> int: ...

    def decode(self, case_id: UUID, read: Sequence[ReadT]) -> list[CaseFile.Event]: ...

    def head_version(self, case_id: UUID) -> int:
        """The case file's current version. Raises :class:`service.CaseNotFound`."""
        ...


def case_event_source(
    service: AkteService, *, decode_batch: DecodeBatch | None = None
) -> CaseEventSource[Any]:
    """The fastest way to read the service's case files' events.

    ``decode_batch``: decodes a case file's rows a batch at a time, exactly as the
    service's mapper decodes them one by one
    (:func:`adapters.personal_data.batch_decoding.batch_decoder`, which the HTTP route
    passes); without it, the mapper decodes event by event."""
    recorder = service.recorder
    rows = _case_event_rows(recorder) if ids_are_uuids(recorder) else None
    if rows is None:
        return _ServiceEvents(service)
    return _StoredEvents(rows, service.mapper, decode_batch)


def stored_case_events(
    rows: _CaseEventRows, service: AkteService, *, decode_batch: DecodeBatch | None = None
) -> CaseEventSource[Any]:
    """Rows read from elsewhere (a streaming replica, :mod:`adapters.views.replica`),
    decoded by the service's own mapper as :func:`case_event_source` decodes them."""
    return _StoredEvents(rows, service.mapper, decode_batch)


class _ServiceEvents:
    """Through the service, for stores without a reader here."""

    def __init__(self, service: AkteService) -> None:
        self._service = service

    def read(self, case_id: UUID, after_version: int, limit: int) -> list[CaseFile.Event]:
        return self._service.case_events(case_id, after_version=after_version, limit=limit)

    def version_of(self, read: CaseFile.Event) -> int:
        return read.originator_version

    def decode(self, case_id: UUID, read: Sequence[CaseFile.Event]) -> list[CaseFile.Event]:
        return list(read)

    def head_version(self, case_id: UUID) -> int:
        return self._service.case_head_version(case_id)


class _StoredEvents:
    """Rows as plain tuples, one query per chunk, decoded by the service's own mapper.

    The library reads an aggregate's events as a dict and a ``StoredEvent`` per row and
    makes a ``UUID`` of each row's originator id; here every event gets the one ``UUID``
    asked for. Decoding is the mapper's own (per-person keys, redaction after erasure,
    upcasting), event by event, exactly as the library would call it; or ``decode_batch``'s,
    a batch at a time, which decodes as the mapper does.
    """

    def __init__(
        self, rows: _CaseEventRows, mapper: Mapper[UUID], decode_batch: DecodeBatch | None
    ) -> None:
        self._rows = rows
        self._to_domain_event = mapper.to_domain_event
        self._decode_batch = decode_batch

    def read(self, case_id: UUID, after_version: int, limit: int) -> list[RawCaseEvent]:
        with _store_errors():
            return self._rows.events(case_id, after_version, limit)

    def version_of(self, read: RawCaseEvent) -> int:
        return read[0]

    def decode(self, case_id: UUID, read: Sequence[RawCaseEvent]) -> list[CaseFile.Event]:
        if self._decode_batch is not None:
            with _store_errors():
                return cast(list[CaseFile.Event], self._decode_batch(case_id, read))
        to_domain_event = self._to_domain_event
        with _store_errors():
            events = [
                to_domain_event(StoredEvent(case_id, version, topic, state))
                for version, topic, state in read
            ]
        return cast(list[CaseFile.Event], events)

    def head_version(self, case_id: UUID) -> int:
        with _store_errors():
            head = self._rows.head_version(case_id)
        if head is None:
            raise CaseNotFound(case_id)
        return head


@contextmanager
def _store_errors() -> Iterator[None]:
    # As the service reports a failing store (503), naming the error's kind only.
    try:
        yield
    except IntegrityError:
        raise
    except PersistenceError as error:
        msg = f"the event store failed: {type(error).__name__}"
        raise StoreUnavailable(msg) from None


RawCaseEvent = tuple[int, str, bytes]
"""Originator version, topic, state."""

DecodeBatch = Callable[[UUID, Sequence[RawCaseEvent]], list[Any]]
"""Decodes rows of one case file as the service's mapper would, one by one."""


class _CaseEventRows(Protocol):
    def events(self, case_id: UUID, after_version: int, limit: int) -> list[RawCaseEvent]: ...

    def head_version(self, case_id: UUID) -> int | None: ...


def _case_event_rows(recorder: object) -> _CaseEventRows | None:
    if isinstance(recorder, PostgresAggregateRecorder):
        return _PostgresCaseEventRows(recorder)
    if isinstance(recorder, SQLiteAggregateRecorder):
        return _SqliteCaseEventRows(recorder)
    return None


class _PostgresCaseEventRows:
    def __init__(self, recorder: PostgresAggregateRecorder) -> None:
        self._datastore = recorder.datastore
        table = sql.SQL("{}.{}").format(
            sql.Identifier(recorder.datastore.schema), sql.Identifier(recorder.events_table_name)
        )
        self._events = sql.SQL(
            "SELECT originator_version, topic, state FROM {} WHERE originator_id = %s "
            "AND originator_version > %s ORDER BY originator_version LIMIT %s"
        ).format(table)
        self._head = sql.SQL(
            "SELECT max(originator_version) FROM {} WHERE originator_id = %s"
        ).format(table)

    # Retried as the library retries its own reads (a connection lost in the pool).
    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def events(self, case_id: UUID, after_version: int, limit: int) -> list[RawCaseEvent]:
        with (
            self._datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row, binary=True) as cursor,
        ):
            cursor.execute(self._events, (case_id, after_version, limit), prepare=True)
            return cursor.fetchall()

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def head_version(self, case_id: UUID) -> int | None:
        with (
            self._datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row) as cursor,
        ):
            cursor.execute(self._head, (case_id,), prepare=True)
            row = cursor.fetchone()
            return None if row is None else cast(int | None, row[0])


class _SqliteCaseEventRows:
    def __init__(self, recorder: SQLiteAggregateRecorder) -> None:
        self._datastore = recorder.datastore
        table = recorder.events_table_name
        # The library's SQLite recorder stores a UUID id as its 32 hex digits.
        self._events = (
            f"SELECT originator_version, topic, state FROM {table} WHERE originator_id = ? "
            "AND originator_version > ? ORDER BY originator_version LIMIT ?"
        )
        self._head = f"SELECT max(originator_version) FROM {table} WHERE originator_id = ?"

    def events(self, case_id: UUID, after_version: int, limit: int) -> list[RawCaseEvent]:
        with self._datastore.transaction(commit=False) as transaction:
            # Tuples, not the connection's sqlite3.Row (this cursor is ours alone).
            cursor = transaction.sqlite_cursor
            cursor.row_factory = None
            cursor.execute(self._events, (case_id.hex, after_version, limit))
            rows: list[RawCaseEvent] = cursor.fetchall()
            return rows

    def head_version(self, case_id: UUID) -> int | None:
        with self._datastore.transaction(commit=False) as transaction:
            cursor = transaction.sqlite_cursor
            cursor.row_factory = None
            cursor.execute(self._head, (case_id.hex,))
            row = cursor.fetchone()
            return None if row is None else cast(int | None, row[0])


@dataclass(frozen=True)
class CaseDiff:
    """What changed between two versions of a case file, and the events in between."""

    case_id: UUID
    from_version: int
    """0: before the file existed (everything in it is a change)."""
    to_version: int
    changes: list[StateChange]
    entries: list[HistoryEntry]
    """The events after ``from_version`` up to ``to_version``: exactly those that made
    the changes."""


def build_diff(
    service: AkteService,
    case_id: UUID,
    *,
    from_version: int,
    to_version: int,
    with_personal_data: bool,
) -> CaseDiff:
    """Both states from the nearest snapshots, the events in between in one read.

    The changes compare whole states, so they show personal data as the state does
    (to readers of case files); the entries withhold it as a history does. Raises
    :class:`service.CaseVersionNotFound` for versions the file never had."""
    if not 0 <= from_version <= to_version:
        msg = "from_version must lie between 0 and to_version"
        raise ValueError(msg)
    after = service.get_case_at_version(case_id, to_version)
    before = case_state(service.get_case_at_version(case_id, from_version)) if from_version else {}
    events = (
        service.case_events(case_id, after_version=from_version, limit=to_version - from_version)
        if to_version > from_version
        else []
    )
    return CaseDiff(
        case_id=case_id,
        from_version=from_version,
        to_version=to_version,
        changes=state_changes(before, case_state(after)),
        entries=[history_entry(e, with_personal_data=with_personal_data) for e in events],
    )


# ------------------------------------------------------------------------ JSON


def history_document(history: CaseHistory) -> dict[str, Any]:
    """The history as the JSON body of ``GET /cases/{id}/history`` (``CaseHistoryPublic``)."""
    return _document(
        history.case_id,
        history.reference,
        history.office_id,
        history.version,
        history.personal_data_shown,
        history.next_after_version,
        history.entries,
    )


def _document(
    case_id: UUID,
    reference: str,
    office_id: str,
    version: int,
    personal_data_shown: bool,
    next_after_version: int | None,
    entries: Sequence[object],
) -> dict[str, Any]:
    return {
        "case_id": str(case_id),
        "reference": reference,
        "office_id": office_id,
        "version": version,
        "personal_data_shown": personal_data_shown,
        "next_after_version": next_after_version,
        "entries": entries,
    }


def history_json(history: CaseHistory, *, indent: bool = False) -> bytes:
    return _dumps(history_document(history), indent=indent)


def _dumps(document: dict[str, Any], *, indent: bool) -> bytes:
    # orjson writes the entries (dataclasses or dicts), dates and times itself: thousands
    # of entries cost milliseconds, not a model validation each.
    return orjson.dumps(document, option=_JSON_OPTIONS | (orjson.OPT_INDENT_2 if indent else 0))


# ------------------------------------------------------------------------ text


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _value(value: Any) -> str:
    if isinstance(value, datetime):
        return _when(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return ", ".join(_value(item) for item in value)
    return "–" if value is None else str(value)


def _details(entry: HistoryEntry) -> list[tuple[str, str]]:
    details = [(name, _value(value)) for name, value in entry.data.items()]
    if entry.withheld:
        details.append(("ausgeblendet (personenbezogen)", ", ".join(entry.withheld)))
    return details


def history_text(history: CaseHistory) -> str:
    """Plain text: a heading, then one block per entry."""
    lines = [
        f"Aktenhistorie {history.reference} (Akte {history.case_id}, "
        f"Ausländerbehörde {history.office_id}, Stand Version {history.version})",
        _personal_note(history),
        "",
    ]
    for entry in history.entries:
        lines.append(
            f"v{entry.version}  {_when(entry.at)}  {entry.by}  {entry.description}"
            f"  [erfasst {_when(entry.recorded_at)}]"
        )
        for name, value in _details(entry):
            lines.append(f"      {name}: {value}")
    if history.next_after_version is not None:
        lines.append(f"… weitere Einträge nach Version {history.next_after_version}")
    return "\n".join(lines) + "\n"


def _personal_note(history: CaseHistory) -> str:
    if history.personal_data_shown:
        return "Personenbezogene Angaben: angezeigt."
    return "Personenbezogene Angaben: ausgeblendet (nur für die Prüfung sichtbar)."


# ------------------------------------------------------------------------ HTML


def history_html(history: CaseHistory, *, next_page_url: str | None = None) -> str:
    """A printable HTML page (templates/case_history.html.j2): every value escaped, no
    script."""
    return render(
        "adapters.reports",
        "case_history.html.j2",
        history=history,
        title=f"Aktenhistorie {history.reference}",
        filters=_filter_summary(history.criteria),
        personal_note=_personal_note(history),
        next_page_url=next_page_url,
        when=_when,
        details=_details,
    )


def _filter_summary(criteria: HistoryFilter) -> str:
    parts: list[str] = []
    if criteria.at_from is not None:
        parts.append(f"ab {_when(criteria.at_from)}")
    if criteria.at_until is not None:
        parts.append(f"vor {_when(criteria.at_until)}")
    if criteria.by is not None:
        parts.append(f"durch {criteria.by}")
    if criteria.kinds:
        parts.append(f"Art: {', '.join(sorted(criteria.kinds))}")
    return f" (gefiltert: {'; '.join(parts)})" if parts else ""


def check_kinds(kinds: Sequence[str], known: Sequence[str]) -> list[str]:
    """The names among ``kinds`` that are no event kind of a case file."""
    return [kind for kind in kinds if kind not in known]
