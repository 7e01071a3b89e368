"""The yearly report as JSON, CSV, a German summary paragraph and a printable HTML page.

Pure functions of a :class:`~projections.yearly_report.YearlyReport`: no I/O, no clock,
so the same report always gives the same bytes (the HTTP route and ``akte report`` only
choose the format and write the result). A figure whose value is ``None`` was not
recorded; every format says so ("nicht erfasst", an empty CSV value with
``recorded=false``, ``null`` in JSON) and none ever shows it as 0. Reports hold counts
only, so nothing here can leak personal data.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any, Final
from urllib.parse import quote

from projections.yearly_report import Figure, YearlyReport

NOT_RECORDED: Final = "nicht erfasst"
MONTHS: Final = ("Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez")
MONTH_NAMES: Final = (
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
)
CSV_COLUMNS: Final = (
    "section",
    "key",
    "label",
    "breakdown",
    "item",
    "month",
    "value",
    "previous",
    "unit",
    "recorded",
)
DEFAULT_SUBJECT: Final = "Die Ausländerbehörde"
"""Who the summary speaks of: a report knows its office only by id."""

_SECTIONS: Final = (
    ("balance", "Jahresbilanz"),
    ("management", "Steuerung"),
    ("workload", "Arbeitslast"),
)
_SHORT_LABELS: Final = {
    # SVG text does not wrap: the charts need labels that fit in one line.
    "appointments_served": "Termine",
    "customers": "Kundinnen und Kunden",
    "residence_documents_issued": "Aufenthaltsdokumente",
    "fiction_certificates_issued": "Fiktionsbescheinigungen",
    "procedures_processed": "Vorgänge bearbeitet",
    "digital_share": "Anteil digital",
    "entry_procedures": "Einreiseverfahren",
    "integration_course_entitlements": "Integrationskurs: Berechtigungen",
    "integration_course_obligations": "Integrationskurs: Verpflichtungen",
    "commitment_declarations": "Verpflichtungserklärungen",
    "commitment_fees_eur": "Gebühren Verpfl.-Erkl.",
    "civil_registry_inquiries": "Anfragen Standesämter",
    "naturalisation_inquiries": "Anfragen Einbürgerung",
    "procedures_received": "Vorgänge eingegangen",
    "backlog_at_year_end": "Offen am Jahresende",
}

JsonDict = dict[str, Any]


# ------------------------------------------------------------------ numbers


def german_number(value: float, decimals: int = 0) -> str:
    """``value`` with '.' between thousands and ',' before decimals: 150.000, 78,4."""
    text = f"{value:,.{decimals}f}"
    if text.lstrip("-").strip("0.,") == "":
        # "-0" from rounding a tiny negative number would read as a change that is none.
        text = text.lstrip("-")
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def _whole(value: float) -> bool:
    return math.isfinite(value) and value == int(value)


def _half_up(value: float) -> int:
    """Rounded as German readers expect (78,5 -> 79), not to even as :func:`round` does."""
    return math.floor(value + 0.5)


def _plain(value: float) -> int | float:
    """An integral float as int, so JSON and CSV say 150000, not 150000.0."""
    return int(value) if _whole(value) else value


def format_value(value: float | None, unit: str) -> str:
    """A figure's value as printed in the report's tables, with its unit."""
    if value is None:
        return NOT_RECORDED
    if unit == "eur":
        return f"{german_number(value, 2)} €"
    if unit == "percent":
        return f"{german_number(value, 0 if _whole(value) else 1)} %"
    decimals = 0 if _whole(value) else 1
    if unit == "days":
        return f"{german_number(value, decimals)} {'Tag' if value == 1 else 'Tage'}"
    return german_number(value, decimals)


def _step(value: float) -> float:
    """The rounding step for ``value`` >= 100: two significant digits, at most 5 % off.

    Three-digit numbers from 500 on round to fifties ("über 700", "knapp 550"): press
    releases do not say "gut 710", and 25 is still at most 5 % of 500.
    """
    digits = len(str(int(value)))
    if digits == 3 and value >= 500:
        return 50.0
    return float(10 ** (digits - 2))


def approximately(value: float) -> str:
    """``value`` as a press release says it: "rund 150.000", "knapp 3.500", "gut 900".

    Honest by construction, relative to the round number ``X`` said:

    - no word: exactly ``X`` (and every number below 100 is said exactly);
    - "rund": within 0.5 % of ``X``, either side;
    - "knapp": below ``X`` by at most 5 %;
    - "gut": above ``X`` by at most 2.5 %;
    - "über": above ``X`` by at most 5 %.
    """
    if value < 0 or not math.isfinite(value):
        return german_number(value, 0 if _whole(value) else 2)
    if value < 100:
        if _whole(value):
            return german_number(value)
        return german_number(value, 2)
    step = _step(value)
    target = round(value / step) * step
    offset = (value - target) / step  # -0.5 .. 0.5
    said = german_number(target)
    if offset == 0:
        return said
    if abs(offset) <= 0.05:
        return f"rund {said}"
    if offset < 0:
        return f"knapp {said}"
    if offset <= 0.25:
        return f"gut {said}"
    return f"über {said}"


# --------------------------------------------------------------------- JSON


def drill_down_link(report: YearlyReport, figure: Figure) -> str | None:
    """Where the events a figure counts are listed, relative to the API's root."""
    if figure.drill_down is None:
        return None
    return f"/reports/yearly/{report.year}/figures/{quote(figure.key, safe='')}/events"


def change(figure: Figure) -> JsonDict | None:
    """The figure against the year before, when both years are recorded.

    ``absolute`` is in the figure's unit (percentage points for a share). ``percent``
    is the relative change; it is ``None`` for shares (a relative change of a share
    misleads) and when the year before was 0 (no relative change from nothing).
    """
    if figure.value is None or figure.previous is None:
        return None
    absolute = round(figure.value - figure.previous, 2)
    percent: float | None = None
    if figure.unit != "percent" and figure.previous != 0:
        percent = round(100 * (figure.value - figure.previous) / figure.previous, 1)
    return {"absolute": _plain(absolute), "percent": percent}


def _months(values: Sequence[float] | None) -> list[int | float] | None:
    return None if values is None else [_plain(value) for value in values]


def figure_json(report: YearlyReport, figure: Figure) -> JsonDict:
    """One figure, every key always present (``None`` where it does not apply)."""
    return {
        "key": figure.key,
        "label": figure.label,
        "section": figure.section,
        "unit": figure.unit,
        "recorded": figure.value is not None,
        "value": None if figure.value is None else _plain(figure.value),
        "previous": None if figure.previous is None else _plain(figure.previous),
        "change": change(figure),
        "by_month": _months(figure.by_month),
        "previous_by_month": _months(figure.previous_by_month),
        "breakdowns": {
            name: {item: _plain(value) for item, value in items.items()}
            for name, items in figure.breakdowns.items()
        },
        "definition": figure.definition,
        "drill_down": drill_down_link(report, figure),
    }


def report_json(report: YearlyReport, *, subject: str = DEFAULT_SUBJECT) -> JsonDict:
    """The report as a JSON-ready dict with stable keys, figures in the report's order
    (and ``workload``, the workload section's figures, where the report has them)."""
    data = {
        "office_id": report.office_id,
        "year": report.year,
        "previous_year": report.year - 1,
        "position": report.position,
        "notes": list(report.notes),
        "summary": german_summary(report, subject=subject),
        "figures": [figure_json(report, figure) for figure in report.figures],
    }
    if report.workload:
        data["workload"] = [figure_json(report, figure) for figure in report.workload]
    return data


# ---------------------------------------------------------------------- CSV


def _csv_number(value: float | None) -> str:
    # Machine readable first: '.' decimals, no thousands separator, so every
    # spreadsheet and script reads the same number; labels carry the German.
    return "" if value is None else repr(_plain(value))


def report_csv(report: YearlyReport) -> str:
    """The report as RFC 4180 CSV: a header row, then per figure its total, its months
    (``month`` as ``YYYY-MM``) and its breakdown items. A figure that was not recorded
    has an empty ``value`` and ``recorded`` = ``false``.
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for figure in (*report.figures, *report.workload):
        recorded = "true" if figure.value is not None else "false"

        def row(
            value: float | None,
            previous: float | None,
            *,
            breakdown: str = "",
            item: str = "",
            month: str = "",
            figure: Figure = figure,
            recorded: str = recorded,
        ) -> dict[str, str]:
            return {
                "section": figure.section,
                "key": figure.key,
                "label": figure.label,
                "breakdown": breakdown,
                "item": item,
                "month": month,
                "value": _csv_number(value),
                "previous": _csv_number(previous),
                "unit": figure.unit,
                "recorded": recorded,
            }

        writer.writerow(row(figure.value, figure.previous))
        if figure.by_month is not None:
            before = figure.previous_by_month
            for index, value in enumerate(figure.by_month):
                writer.writerow(
                    row(
                        value,
                        None if before is None else before[index],
                        month=f"{report.year:04d}-{index + 1:02d}",
                    )
                )
        for name, items in figure.breakdowns.items():
            for item, value in items.items():
                writer.writerow(row(value, None, breakdown=name, item=item))
    return out.getvalue()


# ------------------------------------------------------------------ summary


def _noun(value: float, singular: str, plural: str) -> str:
    return singular if value == 1 else plural


def _comparison(figure: Figure) -> str:
    """ " (12 % mehr als im Vorjahr)", or "" when there is nothing honest to compare."""
    if figure.value is None or figure.previous is None or figure.previous == 0:
        # A year before with 0 is most often a year before the log began: no "∞ % mehr".
        return ""
    if figure.value == figure.previous:
        return " (genauso viele wie im Vorjahr)"
    relative = 100 * (figure.value - figure.previous) / figure.previous
    percent = _half_up(abs(relative)) * (1 if relative > 0 else -1)
    if percent == 0:
        return " (etwa so viele wie im Vorjahr)"
    more = "mehr" if percent > 0 else "weniger"
    return f" ({german_number(abs(percent))} % {more} als im Vorjahr)"


_NOT_RECORDED_NAMES: Final = {
    "appointments_served": "die wahrgenommenen Termine",
    "customers": "die Zahl der Kundinnen und Kunden",
    "residence_documents_issued": "die ausgestellten Aufenthaltsdokumente",
    "fiction_certificates_issued": "die ausgestellten Fiktionsbescheinigungen",
    "procedures_processed": "die bearbeiteten Vorgänge",
    "digital_share": "der Anteil digital eingegangener Vorgänge",
    "entry_procedures": "die Einreiseverfahren",
    "integration_course_entitlements": "die Berechtigungen zum Integrationskurs",
    "integration_course_obligations": "die Verpflichtungen zum Integrationskurs",
    "commitment_declarations": "die Verpflichtungserklärungen",
    "commitment_fees_eur": "die Gebühren für Verpflichtungserklärungen",
    "civil_registry_inquiries": "die Anfragen der Standesämter",
    "naturalisation_inquiries": "die Anfragen zur Einbürgerung",
}


def _join(parts: Sequence[str], last: str = "und") -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} {last} {parts[-1]}"


def german_summary(report: YearlyReport, *, subject: str = DEFAULT_SUBJECT) -> str:
    """A short German paragraph in the style of a published yearly balance.

    Numbers are said as a press release says them (:func:`approximately`), each with
    its change against the year before where both years are recorded; figures that
    were not recorded are named as such, never counted as 0.
    """
    figures = {figure.key: figure for figure in report.figures if figure.section == "balance"}

    def recorded(key: str) -> Figure | None:
        figure = figures.get(key)
        return figure if figure is not None and figure.value is not None else None

    def amount(figure: Figure, singular: str, plural: str) -> str:
        value = figure.value if figure.value is not None else 0.0
        said = approximately(value)
        return f"{said} {_noun(value, singular, plural)}{_comparison(figure)}"

    # (verb, rest): the first clause gets "im Jahr ..." after its verb, as in the quote.
    clauses: list[tuple[str, str]] = []
    appointments, customers = recorded("appointments_served"), recorded("customers")
    if appointments is not None and customers is not None:
        a = amount(appointments, "Termin", "Terminen")
        c = amount(customers, "Kundin oder Kunden", "Kundinnen und Kunden")
        clauses.append(("betreute", f"bei {a} {c}"))
    elif appointments is not None:
        a = amount(appointments, "Termin", "Termine")
        clauses.append(("führte", f"{a} durch"))
    elif customers is not None:
        c = amount(customers, "Kundin oder Kunden", "Kundinnen und Kunden")
        clauses.append(("betreute", c))
    processed = recorded("procedures_processed")
    if processed is not None:
        p = amount(processed, "Vorgang", "Vorgänge")
        digital = recorded("digital_share")
        if digital is not None and digital.value is not None:
            before = ""
            if digital.previous is not None:
                before = f" (Vorjahr: {german_number(_half_up(digital.previous))} %)"
            p += f", davon {german_number(_half_up(digital.value))} % digital{before}"
        clauses.append(("bearbeitete", p))
    documents = []
    residence = recorded("residence_documents_issued")
    if residence is not None:
        documents.append(
            amount(
                residence,
                "elektronischen Aufenthaltstitel, Duldung oder Aufenthaltsgestattung",
                "elektronische Aufenthaltstitel, Duldungen und Aufenthaltsgestattungen",
            )
        )
    fiction = recorded("fiction_certificates_issued")
    if fiction is not None:
        documents.append(amount(fiction, "Fiktionsbescheinigung", "Fiktionsbescheinigungen"))
    if documents:
        d = _join(documents, "sowie")
        clauses.append(("stellte", f"{d} aus"))
    entry = recorded("entry_procedures")
    if entry is not None:
        e = amount(entry, "Einreiseverfahren", "Einreiseverfahren")
        clauses.append(("war", f"an {e} beteiligt"))
    course = []
    entitlements = recorded("integration_course_entitlements")
    if entitlements is not None:
        course.append(amount(entitlements, "Berechtigung", "Berechtigungen"))
    obligations = recorded("integration_course_obligations")
    if obligations is not None:
        course.append(amount(obligations, "Verpflichtung", "Verpflichtungen"))
    if course:
        k = _join(course)
        clauses.append(("erteilte", f"{k} zur Teilnahme am Integrationskurs"))
    commitments = recorded("commitment_declarations")
    if commitments is not None:
        v = amount(commitments, "Verpflichtungserklärung", "Verpflichtungserklärungen")
        fees = recorded("commitment_fees_eur")
        if fees is not None and fees.value is not None:
            v += f" mit Gebühren von {approximately(fees.value)} Euro"
        clauses.append(("nahm", f"{v} entgegen"))
    inquiries = []
    registry = recorded("civil_registry_inquiries")
    if registry is not None:
        inquiries.append(amount(registry, "Anfrage der Standesämter", "Anfragen der Standesämter"))
    naturalisation = recorded("naturalisation_inquiries")
    if naturalisation is not None:
        inquiries.append(
            amount(naturalisation, "Anfrage zur Einbürgerung", "Anfragen zur Einbürgerung")
        )
    if inquiries:
        q = _join(inquiries)
        clauses.append(("beantwortete", q))

    in_year = f" im Jahr {report.year}"
    sentences: list[str] = []
    if clauses:
        said = [
            f"{verb}{in_year if index == 0 else ''} {rest}"
            for index, (verb, rest) in enumerate(clauses)
        ]
        body = said[0] if len(said) == 1 else f"{'; '.join(said[:-1])} und {said[-1]}"
        sentences.append(f"{subject} {body}.")
    missing = [
        _NOT_RECORDED_NAMES.get(figure.key, f"„{figure.label}“")
        for figure in report.figures
        if figure.section == "balance" and figure.value is None
    ]
    if missing:
        verb = "ist" if len(missing) == 1 else "sind"
        sentences.append(
            f"Für {report.year} nicht erfasst {verb} {_join(missing)}; "
            "sie fehlen in dieser Bilanz und sind nicht als null zu lesen."
        )
    if not sentences:
        return f"Für {report.year} liegen keine Zahlen vor."
    return " ".join(sentences)


# --------------------------------------------------------------------- HTML

_CSS: Final = """
:root { --now: #1f4e79; --before: #a9c1da; --ink: #1d232a; --muted: #5b6670;
        --rule: #d5dbe1; --paper: #fff; }
* { box-sizing: border-box; }
html { background: #eef1f4; }
body { margin: 0; color: var(--ink); font: 15px/1.45 system-ui, "Segoe UI", Roboto,
       "Helvetica Neue", Arial, sans-serif; -webkit-print-color-adjust: exact;
       print-color-adjust: exact; }
main { max-width: 980px; margin: 24px auto; padding: 32px 40px; background: var(--paper);
       box-shadow: 0 1px 4px rgba(0,0,0,.12); }
header { border-bottom: 3px solid var(--now); margin-bottom: 20px; padding-bottom: 8px; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 28px 0 10px; border-bottom: 1px solid var(--rule);
     padding-bottom: 4px; break-after: avoid; }
h3 { font-size: 15px; margin: 0 0 6px; }
.meta { color: var(--muted); margin: 0; }
.summary { font-size: 16px; background: #f5f8fb; border-left: 4px solid var(--now);
           padding: 12px 16px; margin: 0; }
.hint { color: var(--muted); font-size: 13px; margin: 6px 0 0; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 8px; border-bottom: 1px solid var(--rule); vertical-align: top; }
th { text-align: left; font-size: 13px; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.up { color: #1b6e3a; } td.down { color: #a33a1f; }
.not-recorded { color: var(--muted); font-style: italic; }
sup a { text-decoration: none; }
a { color: var(--now); }
.charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 18px 24px; }
.charts.wide { grid-template-columns: minmax(0, 1fr); }
figure { margin: 0; break-inside: avoid; page-break-inside: avoid; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 2px; }
svg.chart { width: 100%; height: auto; display: block; }
svg text { font: 11px system-ui, "Segoe UI", Roboto, Arial, sans-serif; fill: var(--ink); }
svg.chart-comparison text { font-size: 13px; }
svg .axis { stroke: #9aa5b0; stroke-width: 1; }
svg .grid { stroke: #e3e7eb; stroke-width: 1; }
svg .now { fill: var(--now); } svg .before { fill: var(--before); }
.legend { font-size: 13px; color: var(--muted); margin: 0 0 10px; }
.swatch { display: inline-block; width: 11px; height: 11px; margin: 0 4px 0 10px;
          vertical-align: -1px; }
.swatch.now { background: var(--now); } .swatch.before { background: var(--before); }
ol.definitions { padding-left: 22px; font-size: 13px; }
ol.definitions li { margin-bottom: 6px; }
.link { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px;
        word-break: break-all; }
footer { margin-top: 28px; color: var(--muted); font-size: 12px; }
@page { size: A4; margin: 14mm 12mm 16mm; }
@media print {
  html { background: none; }
  body { font-size: 10pt; }
  main { max-width: none; margin: 0; padding: 0; box-shadow: none; }
  h1 { font-size: 20pt; }
  h2 { font-size: 13pt; margin-top: 16pt; }
  .summary { font-size: 10.5pt; }
  th, td { padding: 3pt 5pt; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; page-break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  .charts { gap: 10pt 16pt; }
  section.charts-section { break-before: page; }
}
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _short(figure: Figure, limit: int = 34) -> str:
    label = _SHORT_LABELS.get(figure.key, figure.label)
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _signed(value: float, decimals: int) -> str:
    if round(value, decimals) == 0:
        return f"±{german_number(0, decimals)}"
    sign = "+" if value > 0 else "−"
    return f"{sign}{german_number(abs(value), decimals)}"


def _change_cell(figure: Figure) -> str:
    delta = change(figure)
    if delta is None:
        return '<td class="num not-recorded">–</td>'
    absolute = float(delta["absolute"])
    if figure.unit == "percent":
        text = f"{_signed(absolute, 1)} Prozentpunkte"
    else:
        decimals = 2 if figure.unit == "eur" else (0 if _whole(absolute) else 1)
        text = _signed(absolute, decimals)
        if figure.unit == "eur":
            text += " €"
        if delta["percent"] is not None:
            text += f" ({_signed(float(delta['percent']), 1)} %)"
    direction = "up" if absolute > 0 else "down" if absolute < 0 else ""
    return f'<td class="num {direction}">{_e(text)}</td>'


def _value_cell(value: float | None, unit: str) -> str:
    if value is None:
        return f'<td class="num not-recorded">{_e(NOT_RECORDED)}</td>'
    return f'<td class="num">{_e(format_value(value, unit))}</td>'


def _table(report: YearlyReport, figures: Sequence[Figure], numbers: Mapping[str, int]) -> str:
    rows = []
    for figure in figures:
        link = drill_down_link(report, figure)
        proof = (
            f'<td><a href="{_e(link)}" data-drill-down="{_e(figure.key)}">Ereignisse</a></td>'
            if link is not None
            else "<td></td>"
        )
        note = numbers[figure.key]
        rows.append(
            f'<tr data-figure="{_e(figure.key)}">'
            f'<td>{_e(figure.label)}<sup><a href="#def-{_e(figure.key)}">{note}</a></sup></td>'
            f"{_value_cell(figure.value, figure.unit)}"
            f"{_value_cell(figure.previous, figure.unit)}"
            f"{_change_cell(figure)}{proof}</tr>"
        )
    return (
        "<table><thead><tr><th>Kennzahl</th>"
        f'<th class="num">{report.year}</th><th class="num">{report.year - 1}</th>'
        '<th class="num">Veränderung</th><th>Nachweis</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _nice_axis(top: float, *, whole: bool) -> tuple[float, float]:
    """An axis maximum >= ``top`` and a round tick step (about four ticks)."""
    if top <= 0:
        return 1.0, 1.0
    raw = top / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if whole:
        step = max(1.0, math.ceil(step))
    return math.ceil(top / step - 1e-9) * step, step


def _axis_label(value: float, unit: str) -> str:
    decimals = 0 if _whole(value) else 1
    return german_number(value, decimals) + (" €" if unit == "eur" else "")


def charted_figures(report: YearlyReport) -> tuple[Figure, ...]:
    """The figures that get a chart by month: the balance's recorded counts."""
    return tuple(
        figure
        for figure in report.figures
        if figure.section == "balance"
        and figure.unit == "count"
        and figure.value is not None
        and figure.by_month is not None
    )


def compared_figures(report: YearlyReport) -> tuple[Figure, ...]:
    """The figures in the year-over-year chart: the balance, where both years are known."""
    return tuple(
        figure
        for figure in report.figures
        if figure.section == "balance" and figure.value is not None and figure.previous is not None
    )


def _month_chart(report: YearlyReport, figure: Figure) -> str:
    months = figure.by_month or ()
    before = figure.previous_by_month
    width, height = 460, 210
    left, right, top, bottom = 52, 8, 10, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    highest = max([*months, *(before or ()), 0.0])
    axis_max, tick = _nice_axis(highest, whole=True)
    parts = [
        f'<svg class="chart chart-month" data-figure="{_e(figure.key)}" '
        f'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(figure.label)} nach Monaten">'
        f"<title>{_e(figure.label)} nach Monaten {report.year}</title>"
    ]
    ticks = round(axis_max / tick)
    for index in range(ticks + 1):
        value = tick * index
        y = top + plot_h - plot_h * value / axis_max
        parts.append(
            f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_e(_axis_label(value, figure.unit))}</text>"
        )
    group = plot_w / 12
    bar = group * (0.36 if before is not None else 0.6)
    for index, value in enumerate(months):
        x0 = left + group * index
        series: list[tuple[str, float, int]] = []
        if before is not None:
            series.append(("before", before[index], report.year - 1))
        series.append(("now", value, report.year))
        offset = (group - bar * len(series)) / 2
        for position, (css, amount, year) in enumerate(series):
            h = plot_h * max(amount, 0.0) / axis_max
            x = x0 + offset + position * bar
            parts.append(
                f'<rect class="{css}" x="{x:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{bar - 1:.1f}" height="{h:.1f}">'
                f"<title>{_e(MONTH_NAMES[index])} {year}: "
                f"{_e(format_value(amount, figure.unit))}</title></rect>"
            )
        parts.append(
            f'<text x="{x0 + group / 2:.1f}" y="{height - 8}" text-anchor="middle">'
            f"{_e(MONTHS[index])}</text>"
        )
    parts.append(
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width - right}" '
        f'y2="{top + plot_h}"/></svg>'
    )
    return (
        f'<figure data-chart="month" data-figure="{_e(figure.key)}">'
        f"<h3>{_e(figure.label)}</h3>{''.join(parts)}"
        f"<figcaption>{_e(format_value(figure.value, figure.unit))} im Jahr {report.year}"
        f"{_e(_month_caption(figure))}</figcaption></figure>"
    )


def _month_caption(figure: Figure) -> str:
    if figure.previous is None:
        return ""
    return f"; Vorjahr {format_value(figure.previous, figure.unit)}"


def _comparison_chart(report: YearlyReport, figures: Sequence[Figure]) -> str:
    width, row_h, label_w, text_w = 920, 42, 250, 150
    height = row_h * len(figures) + 8
    bars_w = width - label_w - text_w
    parts = [
        '<svg class="chart chart-comparison" data-chart="year-over-year" '
        f'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Vergleich {report.year} mit {report.year - 1}">'
        f"<title>Vergleich {report.year} mit {report.year - 1}</title>"
    ]
    for index, figure in enumerate(figures):
        y = 4 + index * row_h
        now, before = figure.value or 0.0, figure.previous or 0.0
        scale = max(now, before, 0.0) or 1.0
        parts.append(
            f'<g data-figure="{_e(figure.key)}"><text x="0" y="{y + row_h / 2 + 4:.1f}">'
            f"{_e(_short(figure))}</text>"
        )
        for offset, css, amount, year in (
            (4, "before", before, report.year - 1),
            (20, "now", now, report.year),
        ):
            w = bars_w * max(amount, 0.0) / scale
            parts.append(
                f'<rect class="{css}" x="{label_w}" y="{y + offset}" width="{w:.1f}" '
                f'height="14"><title>{year}: {_e(format_value(amount, figure.unit))}</title>'
                f'</rect><text x="{label_w + w + 6:.1f}" y="{y + offset + 11}">'
                f"{_e(format_value(amount, figure.unit))}</text>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return (
        '<figure data-chart="year-over-year">'
        f"{''.join(parts)}<figcaption>Je Zeile eigener Maßstab: der längere Balken ist das "
        f"größere der beiden Jahre. Obere Balken {report.year - 1}, untere {report.year}."
        "</figcaption></figure>"
    )


_MAX_ITEMS: Final = 8


def _breakdown_chart(figure: Figure, name: str, items: Mapping[str, float]) -> str:
    ordered = sorted(items.items(), key=lambda item: (-item[1], item[0]))
    if len(ordered) > _MAX_ITEMS:
        # A long tail (legal bases) would not fit on a page: the rest goes in one bar.
        rest = ordered[_MAX_ITEMS - 1 :]
        ordered = [
            *ordered[: _MAX_ITEMS - 1],
            (f"übrige ({len(rest)})", sum(value for _, value in rest)),
        ]
    total = sum(value for _, value in ordered)
    width, row_h, label_w, text_w = 460, 26, 150, 150
    height = row_h * len(ordered) + 6
    bars_w = width - label_w - text_w
    scale = max([value for _, value in ordered] + [0.0]) or 1.0
    parts = [
        f'<svg class="chart chart-breakdown" data-figure="{_e(figure.key)}" '
        f'data-breakdown="{_e(name)}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(figure.label)} nach {_e(name)}">'
        f"<title>{_e(figure.label)} nach {_e(name)}</title>"
    ]
    for index, (item, value) in enumerate(ordered):
        y = 3 + index * row_h
        w = bars_w * max(value, 0.0) / scale
        share = f" ({german_number(100 * value / total, 1)} %)" if total > 0 else ""
        text = format_value(value, figure.unit) + share
        parts.append(
            f'<text x="0" y="{y + 16}">{_e(_clip(item, 26))}</text>'
            f'<rect class="now" x="{label_w}" y="{y + 4}" width="{w:.1f}" height="16">'
            f"<title>{_e(item)}: {_e(text)}</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{_e(text)}</text>'
        )
    parts.append("</svg>")
    return (
        f'<figure data-chart="breakdown" data-figure="{_e(figure.key)}">'
        f"<h3>{_e(_short(figure, 60))} nach {_e(name)}</h3>{''.join(parts)}</figure>"
    )


def _breakdowns(report: YearlyReport) -> list[str]:
    return [
        _breakdown_chart(figure, name, items)
        for figure in report.figures
        if figure.value is not None
        for name, items in figure.breakdowns.items()
        if items
    ]


def _definitions(report: YearlyReport, numbers: Mapping[str, int]) -> str:
    items = []
    for figure in (*report.figures, *report.workload):
        link = drill_down_link(report, figure)
        proof = (
            f' Einzelereignisse: <a class="link" href="{_e(link)}">{_e(link)}</a>'
            if link is not None
            else ""
        )
        items.append(
            f'<li id="def-{_e(figure.key)}" value="{numbers[figure.key]}">'
            f"<strong>{_e(figure.label)}:</strong> {_e(figure.definition)}{proof}</li>"
        )
    return f'<ol class="definitions">{"".join(items)}</ol>'


def report_html(report: YearlyReport, *, subject: str = DEFAULT_SUBJECT) -> str:
    """A self-contained printable HTML page (A4), no scripts, no external files.

    Title, the German summary paragraph (for a press release), the balance and the
    management tables with the year before and the change, charts as inline SVG
    (each balance count by month, the year-over-year comparison, the breakdowns), the
    definitions as footnotes and the drill-down links to the events behind each figure.
    """
    year, before = report.year, report.year - 1
    every = (*report.figures, *report.workload)
    numbers = {figure.key: index for index, figure in enumerate(every, start=1)}
    tables = []
    for section, heading in _SECTIONS:
        figures = [figure for figure in every if figure.section == section]
        if figures:
            tables.append(
                f'<section data-section="{section}"><h2>{heading} {year}</h2>'
                f"{_table(report, figures, numbers)}</section>"
            )
    charted = charted_figures(report)
    compared = compared_figures(report)
    charts = []
    legend = (
        f'<p class="legend"><span class="swatch now"></span>{year}'
        f'<span class="swatch before"></span>{before}</p>'
    )
    if charted:
        charts.append(
            f"<h2>Im Jahresverlauf</h2>{legend}"
            f'<div class="charts">{"".join(_month_chart(report, f) for f in charted)}</div>'
        )
    if compared:
        charts.append(
            f"<h2>Vergleich mit dem Vorjahr</h2>{legend}"
            f'<div class="charts wide">{_comparison_chart(report, compared)}</div>'
        )
    breakdowns = _breakdowns(report)
    if breakdowns:
        charts.append(f'<h2>Aufschlüsselungen</h2><div class="charts">{"".join(breakdowns)}</div>')
    missing = [figure.label for figure in report.figures if figure.value is None]
    if missing:
        charts.append(
            f'<p class="hint">Ohne Diagramm, weil {year} nicht erfasst: '
            f"{_e(', '.join(missing))}.</p>"
        )
    notes = "".join(f"<li>{_e(note)}</li>" for note in report.notes)
    title = f"Jahresbericht {year} der Ausländerbehörde"
    return (
        '<!DOCTYPE html>\n<html lang="de"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} – {_e(report.office_id)}</title><style>{_CSS}</style></head>"
        "<body><main>"
        f"<header><h1>{_e(title)}</h1>"
        f'<p class="meta">Dienststelle {_e(report.office_id)} · Berichtsjahr {year}, '
        f"verglichen mit {before} · Stand des Ereignisprotokolls: Position "
        f"{_e(german_number(report.position))}</p></header>"
        '<section data-section="summary"><h2>Das Jahr in Zahlen</h2>'
        f'<p class="summary">{_e(german_summary(report, subject=subject))}</p>'
        '<p class="hint">Textvorschlag für eine Pressemitteilung, erzeugt aus den Zahlen '
        "dieses Berichts.</p></section>"
        f"{''.join(tables)}"
        f'<section class="charts-section" data-section="charts">{"".join(charts)}</section>'
        '<section data-section="definitions"><h2>Begriffe und Nachweise</h2>'
        f'<ul class="notes">{notes}</ul>{_definitions(report, numbers)}</section>'
        f"<footer>Erzeugt aus dem Ereignisprotokoll (Position "
        f"{_e(german_number(report.position))}). Der Bericht enthält nur Zählungen, keine "
        "personenbezogenen Daten.</footer>"
        "</main></body></html>\n"
    )
