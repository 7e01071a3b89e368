"""A what-if result as JSON, CSV and a printable HTML page.

Pure functions of a :class:`~projections.figures.whatif.WhatIfResult` (no I/O, no clock): the same
result always gives the same bytes. The assumptions are printed next to the figures in
every format. Results hold counts, file numbers and staff ids only.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any, Final

from adapters.reports.templates import render
from adapters.reports.yearly_report import MONTH_NAMES, german_number
from projections.figures.statistics import OFFICE_TIME_ZONE
from projections.figures.whatif import DEFINITIONS, SavedExtension, WhatIfResult

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


@dataclass(frozen=True)
class _MonthRow:
    key: str
    name: str
    values: tuple[int, ...]


def whatif_html(result: WhatIfResult) -> str:
    """A self-contained printable page (templates/whatif.html.j2): figures by month,
    assumptions, the cases."""
    months = []
    for month in result.months:
        year, number = month.month.split("-")
        months.append(
            _MonthRow(
                key=month.month,
                name=f"{MONTH_NAMES[int(number) - 1]} {year}",
                values=tuple(getattr(month, key) for key, _ in _FIGURES),
            )
        )
    return render(
        "adapters.reports",
        "whatif.html.j2",
        result=result,
        title=f"Was wäre, wenn: {result.label}",
        parameters=", ".join(f"{key}={value}" for key, value in sorted(result.parameters.items())),
        figures=_FIGURES,
        months=months,
        totals=tuple(getattr(result, key) for key, _ in _FIGURES),
        definitions=DEFINITIONS,
        visits=_VISITS,
        number=german_number,
    )
