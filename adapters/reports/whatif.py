"""A what-if result as JSON, CSV and a printable HTML page.

Pure functions of a :class:`~projections.whatif.WhatIfResult` (no I/O, no clock): the same
result always gives the same bytes. The assumptions are printed next to the figures in
every format. Results hold counts, file numbers and staff ids only.
"""

from __future__ import annotations

import csv
import io
from html import escape
from typing import Any, Final

from adapters.reports.yearly_report import MONTH_NAMES, german_number
from projections.statistics import OFFICE_TIME_ZONE
from projections.whatif import DEFINITIONS, SavedExtension, WhatIfResult

CSV_COLUMNS: Final = (
    "section",
    "month",
    "extensions",
    "extensions_saved",
    "visits_saved",
    "actions_saved",
    "reference",
    "event",
    "version",
    "at",
    "actor",
    "document",
    "visit",
    "text",
)
_FIGURES: Final = (
    ("extensions", "Verlängerungen (tatsächlich)"),
    ("extensions_saved", "Verlängerungen eingespart"),
    ("visits_saved", "Vorsprachen eingespart"),
    ("actions_saved", "Arbeitsschritte eingespart"),
)
_VISITS: Final = {
    "appointment": "Termin wahrgenommen",
    "assumed": "angenommen",
    "none": "keine erfasst",
}

JsonDict = dict[str, Any]


def _item_json(item: SavedExtension) -> JsonDict:
    return {
        "case_id": item.case_id,
        "reference": item.reference,
        "event": item.event,
        "version": item.version,
        "at": item.at.isoformat(),
        "actor": item.actor,
        "document": item.document,
        "document_number": item.document_number,
        "visit": item.visit,
        "appointment_id": item.appointment_id,
        "visit_at": None if item.visit_at is None else item.visit_at.isoformat(),
        "actions": item.actions,
    }


def whatif_json(result: WhatIfResult) -> JsonDict:
    """The result as a JSON-ready dict with stable keys."""
    return {
        "policy": result.policy,
        "label": result.label,
        "parameters": dict(result.parameters),
        "office_id": result.office_id,
        "from": result.period_from.isoformat(),
        "until": result.period_until.isoformat(),
        "position": result.position,
        "visits_basis": result.visits_basis,
        "totals": {
            "extensions": result.extensions,
            "extensions_saved": result.extensions_saved,
            "visits_saved": result.visits_saved,
            "actions_saved": result.actions_saved,
        },
        "months": [
            {
                "month": month.month,
                "extensions": month.extensions,
                "extensions_saved": month.extensions_saved,
                "visits_saved": month.visits_saved,
                "actions_saved": month.actions_saved,
            }
            for month in result.months
        ],
        "assumptions": list(result.assumptions),
        "definitions": dict(result.definitions),
        "saved": [_item_json(item) for item in result.saved],
    }


def whatif_csv(result: WhatIfResult) -> str:
    """RFC 4180 CSV: the totals, one row per month, one per saved extension (the
    drill-down), then the assumptions (``section`` says which)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n", restval="")
    writer.writeheader()
    writer.writerow(
        {
            "section": "total",
            "month": f"{result.period_from.isoformat()}/{result.period_until.isoformat()}",
            "extensions": result.extensions,
            "extensions_saved": result.extensions_saved,
            "visits_saved": result.visits_saved,
            "actions_saved": result.actions_saved,
            "text": result.label,
        }
    )
    for month in result.months:
        writer.writerow(
            {
                "section": "month",
                "month": month.month,
                "extensions": month.extensions,
                "extensions_saved": month.extensions_saved,
                "visits_saved": month.visits_saved,
                "actions_saved": month.actions_saved,
            }
        )
    for item in result.saved:
        writer.writerow(
            {
                "section": "saved",
                "month": item.at.astimezone(OFFICE_TIME_ZONE).strftime("%Y-%m"),
                "extensions_saved": 1,
                "visits_saved": 0 if item.visit == "none" else 1,
                "actions_saved": item.actions,
                "reference": item.reference,
                "event": item.event,
                "version": item.version,
                "at": item.at.isoformat(),
                "actor": item.actor,
                "document": item.document,
                "visit": item.visit,
            }
        )
    for assumption in result.assumptions:
        writer.writerow({"section": "assumption", "text": assumption})
    return out.getvalue()


_CSS: Final = """
body { font-family: "DejaVu Sans", Arial, sans-serif; color: #1a1a1a; margin: 0; }
main { max-width: 60rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 1.6rem; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { border-bottom: 1px solid #ccc; padding: .25rem .45rem; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.meta, .hint { color: #555; font-size: .85rem; }
@media print { @page { size: A4; margin: 15mm; } main { padding: 0; } }
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def whatif_html(result: WhatIfResult) -> str:
    """A self-contained printable page: figures by month, assumptions, the cases."""
    head = "".join(f'<th class="num">{_e(label)}</th>' for _, label in _FIGURES)
    total_row = "".join(
        f'<td class="num">{_e(german_number(getattr(result, key)))}</td>' for key, _ in _FIGURES
    )
    rows = []
    for month in result.months:
        year, number = month.month.split("-")
        cells = "".join(
            f'<td class="num">{_e(german_number(getattr(month, key)))}</td>' for key, _ in _FIGURES
        )
        rows.append(
            f'<tr data-month="{_e(month.month)}"><td>{_e(MONTH_NAMES[int(number) - 1])} '
            f"{_e(year)}</td>{cells}</tr>"
        )
    items = "".join(
        f"<tr><td>{_e(item.reference)}</td><td>{_e(item.event)} (v{item.version})</td>"
        f"<td>{_e(item.at.isoformat())}</td><td>{_e(item.actor)}</td>"
        f"<td>{_e(item.document)} {item.document_number}</td>"
        f'<td>{_e(_VISITS[item.visit])}</td><td class="num">{item.actions}</td></tr>'
        for item in result.saved
    )
    assumptions = "".join(f"<li>{_e(text)}</li>" for text in result.assumptions)
    definitions = "".join(
        f"<li><strong>{_e(label)}:</strong> {_e(DEFINITIONS[key])}</li>" for key, label in _FIGURES
    )
    parameters = ", ".join(f"{key}={value}" for key, value in sorted(result.parameters.items()))
    title = f"Was wäre, wenn: {result.label}"
    return (
        '<!DOCTYPE html>\n<html lang="de"><head><meta charset="utf-8">'
        f"<title>{_e(title)} – {_e(result.office_id)}</title><style>{_CSS}</style></head>"
        f"<body><main><header><h1>{_e(title)}</h1>"
        f'<p class="meta">Dienststelle {_e(result.office_id)} · Zeitraum '
        f"{result.period_from:%d.%m.%Y} bis {result.period_until:%d.%m.%Y} · Regel "
        f"{_e(result.policy)} ({_e(parameters)}) · Ereignisprotokoll bis Position "
        f"{_e(german_number(result.position))}</p></header>"
        '<section data-section="figures"><h2>Eingespart nach Monaten</h2>'
        f"<table><thead><tr><th>Monat</th>{head}</tr></thead><tbody>{''.join(rows)}"
        f'<tr data-month="total"><th>Zeitraum</th>{total_row}</tr></tbody></table></section>'
        f'<section data-section="assumptions"><h2>Annahmen</h2><ul>{assumptions}</ul>'
        f"<ul>{definitions}</ul></section>"
        '<section data-section="saved"><h2>Die Fälle hinter jeder eingesparten Vorsprache</h2>'
        "<table><thead><tr><th>Aktenzeichen</th><th>Ereignis</th><th>Zeit</th>"
        "<th>Bearbeitet von</th><th>Papier</th><th>Vorsprache</th>"
        f'<th class="num">Schritte</th></tr></thead><tbody>{items}</tbody></table></section>'
        '<footer class="hint">Nachgerechnet aus dem Ereignisprotokoll, ohne es zu ändern; '
        "nur Zählungen, Aktenzeichen und Kennungen der Beschäftigten, keine "
        "personenbezogenen Daten.</footer></main></body></html>\n"
    )
