"""A case file's history as people read it: built from the service, written as JSON,
a printable HTML page or plain text (the HTTP route and ``akte history`` share these).

HTML is rendered on the server with every value escaped; it needs no script and prints
on A4 as it is. Personal data appears only in histories built ``with_personal_data``
(auditors); otherwise the entries name the fields withheld.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from uuid import UUID

import orjson

from domain.case_file import CaseFile
from domain.history import (
    HistoryEntry,
    HistoryFilter,
    StateChange,
    case_state,
    history_entry,
    state_changes,
)
from service import AkteService, CaseNotFound

DEFAULT_HISTORY_PAGE: Final = 500
_EVERYTHING: Final = HistoryFilter()
_MIN_CHUNK: Final = 500
"""Events read at a time: few round trips for long files, little waste for short pages."""
MAX_HISTORY_PAGE: Final = 10_000


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


def build_history(
    service: AkteService,
    case_id: UUID,
    *,
    criteria: HistoryFilter = _EVERYTHING,
    with_personal_data: bool,
    after_version: int = 0,
    limit: int = DEFAULT_HISTORY_PAGE,
) -> CaseHistory:
    """The entries after ``after_version`` that match ``criteria``, at most ``limit``.

    Events are read in chunks from ``after_version`` on, so a page costs about its own
    length however long the file is (a sparse filter reads on until it has a page and
    knows whether another match follows). Raises :class:`service.CaseNotFound`.
    """
    [opened] = service.case_events(case_id, limit=1)
    if not isinstance(opened, CaseFile.Opened):
        raise CaseNotFound(case_id)
    chunk = max(limit + 1, _MIN_CHUNK)
    selected: list[HistoryEntry] = []
    next_after: int | None = None
    cursor = after_version
    while next_after is None:
        events = service.case_events(case_id, after_version=cursor, limit=chunk)
        for event in events:
            if not criteria.matches(event):
                continue
            if len(selected) == limit:
                next_after = selected[-1].version
                break
            selected.append(history_entry(event, with_personal_data=with_personal_data))
        if len(events) < chunk:
            break
        cursor = events[-1].originator_version
    return CaseHistory(
        case_id=case_id,
        reference=opened.reference,
        office_id=opened.office_id,
        version=service.case_head_version(case_id),
        entries=selected,
        personal_data_shown=with_personal_data,
        criteria=criteria,
        next_after_version=next_after,
    )


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
    return {
        "case_id": str(history.case_id),
        "reference": history.reference,
        "office_id": history.office_id,
        "version": history.version,
        "personal_data_shown": history.personal_data_shown,
        "next_after_version": history.next_after_version,
        "entries": history.entries,
    }


def history_json(history: CaseHistory, *, indent: bool = False) -> bytes:
    # orjson writes the entries' dataclasses, dates and times itself: thousands of
    # entries cost milliseconds, not a model validation each.
    option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(history_document(history), option=option)


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

_STYLE: Final = """
body { font-family: system-ui, sans-serif; font-size: 11pt; margin: 1.5em; color: #111; }
h1 { font-size: 15pt; margin-bottom: 0.2em; }
p.meta { margin: 0.2em 0; color: #333; }
table { border-collapse: collapse; width: 100%; margin-top: 1em; }
th, td { border: 1px solid #999; padding: 0.25em 0.4em; vertical-align: top; text-align: left; }
th { background: #eee; }
td.num { text-align: right; white-space: nowrap; }
td.time { white-space: nowrap; }
dl { margin: 0; } dt { font-weight: 600; display: inline; } dd { display: inline; margin: 0; }
dd::after { content: ""; display: block; }
@media print { body { margin: 0; font-size: 9pt; } th { background: none; }
  tr { page-break-inside: avoid; } a.next { display: none; } }
"""


def history_html(history: CaseHistory, *, next_page_url: str | None = None) -> str:
    """A printable HTML page: every value escaped, no script."""
    e = html.escape
    title = f"Aktenhistorie {history.reference}"
    rows = []
    for entry in history.entries:
        details = "".join(
            f"<dt>{e(name)}:</dt> <dd>{e(value)}</dd>" for name, value in _details(entry)
        )
        rows.append(
            "<tr>"
            f'<td class="num">{entry.version}</td>'
            f'<td class="time">{e(_when(entry.at))}</td>'
            f'<td class="time">{e(_when(entry.recorded_at))}</td>'
            f"<td>{e(entry.by)}</td>"
            f"<td>{e(entry.description)}</td>"
            f"<td>{e(entry.legal_basis or '')}</td>"
            f"<td>{e(entry.reason or '')}</td>"
            f"<td><dl>{details}</dl></td>"
            "</tr>"
        )
    filters = _filter_summary(history.criteria)
    more = ""
    if history.next_after_version is not None:
        label = f"weitere Einträge nach Version {history.next_after_version}"
        more = (
            f'<p><a class="next" href="{e(next_page_url)}">{e(label)}</a></p>'
            if next_page_url
            else f"<p>{e(label)}</p>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="de">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{e(title)}</h1>\n"
        f'<p class="meta">Akte {e(str(history.case_id))}, Ausländerbehörde '
        f"{e(history.office_id)}, Stand Version {history.version}; "
        f"{len(history.entries)} Einträge{e(filters)}.</p>\n"
        f'<p class="meta">{e(_personal_note(history))} Zeiten: Geschäftszeit (wann es in '
        "der Behörde geschah) und Erfassung (wann das System es aufzeichnete).</p>\n"
        "<table>\n<thead><tr><th>Version</th><th>Geschäftszeit</th><th>Erfasst</th>"
        "<th>Durch</th><th>Vorgang</th><th>Rechtsgrundlage</th><th>Begründung</th>"
        "<th>Angaben</th></tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + f"\n</tbody>\n</table>\n{more}\n</body>\n</html>\n"
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
