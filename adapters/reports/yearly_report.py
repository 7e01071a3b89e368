"""The yearly report as JSON, CSV, a German summary paragraph and a printable HTML page.

Pure functions of a :class:`~projections.figures.yearly_report.YearlyReport`: no I/O, no clock,
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Final
from urllib.parse import quote

from adapters.reference.catalogue import Catalogue
from adapters.reports.templates import render
from adapters.settings import Settings
from domain.appointments import ServicePoint
from projections.figures.yearly_report import FEE_PAYMENTS, Figure, YearlyReport

NOT_RECORDED: Final = "nicht erfasst"
LOWER_IS_BETTER: Final = frozenset(
    {"backlog_at_year_end", "days_to_decision_median", "days_to_decision_p90", "no_show_rate"}
)
"""Figures whose fall is good news (shown in the colour of an improvement)."""
HIGHER_IS_BETTER: Final = frozenset({"procedures_processed", "digital_share"})
"""Figures whose rise is good news; the others change without a verdict."""
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
    "staff_at_work": "Beschäftigte anwesend",
    "staff_posts": "Stellen",
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
    if figure.key == "customers":  # distinct customers, each with the events behind it
        return f"/reports/yearly/{report.year}/customers"
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
        "breakdown_units": {name: figure.unit_of(name) for name in figure.breakdowns},
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
        "provisional": report.provisional,
        "as_of": None if report.as_of is None else report.as_of.isoformat(),
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
            unit = figure.unit_of(breakdown) if breakdown else figure.unit
            return {
                "section": figure.section,
                "key": figure.key,
                "label": figure.label,
                "breakdown": breakdown,
                "item": item,
                "month": month,
                "value": _csv_number(value),
                "previous": _csv_number(previous),
                "unit": unit,
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
    "staff_at_work": "die tatsächlich anwesenden Beschäftigten",
    "staff_posts": "die Stellen",
    "entry_consents_deemed": "die durch Schweigen erteilten Zustimmungen zur Visumerteilung",
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


_PLURAL_NAMES: Final = frozenset(
    key for key, name in _NOT_RECORDED_NAMES.items() if key not in ("customers", "digital_share")
)
"""The names above that are plural nouns ("die wahrgenommenen Termine"); the two others
are singular ("die Zahl ...", "der Anteil ..."), as is a quoted label."""


def _label_of(report: YearlyReport, key: str) -> str:
    return next(figure.label for figure in report.figures if figure.key == key)


def _join(parts: Sequence[str], last: str = "und") -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} {last} {parts[-1]}"


def _fees_clause(fees: Figure) -> str:
    """The fees with the number of payments they are made of, so that the two add up
    ("für 315 Verpflichtungserklärungen Gebühren von gut 9.100 Euro", 315 × 29 €)."""
    payments = fees.breakdowns.get(FEE_PAYMENTS, {})
    paid, refunded = payments.get("bezahlt", 0.0), payments.get("erstattet", 0.0)
    booked = fees.breakdowns.get("Buchung", {})
    gross = booked.get("bezahlt", fees.value or 0.0)
    if not paid:
        return f"Gebühren von {approximately(fees.value or 0.0)} Euro{_comparison(fees)} ein"
    noun = _noun(paid, "bezahlte Verpflichtungserklärung", "bezahlte Verpflichtungserklärungen")
    clause = f"für {german_number(paid)} {noun} Gebühren von {approximately(gross)} Euro"
    if refunded:
        noun = _noun(refunded, "Erstattung", "Erstattungen")
        net = approximately(fees.value or 0.0)
        return f"{clause} ein, nach {german_number(refunded)} {noun} netto {net} Euro" + (
            _comparison(fees)
        )
    return f"{clause}{_comparison(fees)} ein"


def _lowered(subject: str) -> str:
    """ "Die Ausländerbehörde" inside a sentence: "die Ausländerbehörde"."""
    article, _, rest = subject.partition(" ")
    if article in ("Die", "Der", "Das") and rest:
        return f"{article.lower()} {rest}"
    return subject


def _staff_number(value: float) -> str:
    return german_number(value, 0 if _whole(value) else 1)


def _head_count_sentence(
    report: YearlyReport, subject: str, posts: Figure | None, at_work: Figure | None
) -> str:
    """ "Im Jahr 2024 hatte die Ausländerbehörde 26 Stellen; tatsächlich anwesend waren
    im Monatsdurchschnitt 17,2 Personen." (small numbers, said exactly), or "" without a
    staff plan."""
    opening = f"Im Jahr {report.year} hatte {_lowered(subject)}"
    people = ""
    if at_work is not None and at_work.value is not None:
        count = _noun(at_work.value, "Person", "Personen")
        people = f"{_staff_number(at_work.value)} {count}"
    if posts is not None and posts.value is not None:
        stellen = f"{_staff_number(posts.value)} {_noun(posts.value, 'Stelle', 'Stellen')}"
        if not people:
            return f"{opening} {stellen}."
        verb = _noun(at_work.value if at_work and at_work.value else 0.0, "war", "waren")
        return f"{opening} {stellen}; tatsächlich anwesend {verb} im Monatsdurchschnitt {people}."
    if people:
        return f"{opening} im Monatsdurchschnitt {people} tatsächlich anwesend."
    return ""


def german_summary(report: YearlyReport, *, subject: str = DEFAULT_SUBJECT) -> str:
    """A short German paragraph in the style of a published yearly balance.

    Numbers are said as a press release says them (:func:`approximately`), each with
    its change against the year before where both years are recorded; figures that
    were not recorded are named as such, never counted as 0.
    """
    figures = {figure.key: figure for figure in report.figures if figure.section == "balance"}
    if report.as_of is not None:
        # Part of a year is no match for the whole year before: no comparison at all.
        figures = {key: replace(figure, previous=None) for key, figure in figures.items()}

    def recorded(key: str) -> Figure | None:
        figure = figures.get(key)
        return figure if figure is not None and figure.value is not None else None

    def amount(figure: Figure, singular: str, plural: str) -> str:
        value = figure.value if figure.value is not None else 0.0
        said = approximately(value)
        return f"{said} {_noun(value, singular, plural)}{_comparison(figure)}"

    # (verb, rest): the first clause gets "im Jahr ..." after its verb, as in the quote.
    clauses: list[tuple[str, str]] = []
    # Customers and appointments in clauses of their own: "bei 4.100 Terminen 16.000
    # Kunden" reads as four customers per appointment, while customers come by every way.
    customers = recorded("customers")
    if customers is not None:
        c = amount(customers, "Kundin oder Kunden", "Kundinnen und Kunden")
        clauses.append(("betreute", f"{c} auf allen Wegen"))
    appointments = recorded("appointments_served")
    if appointments is not None:
        a = amount(appointments, "Termin", "Termine")
        clauses.append(("führte", f"{a} vor Ort durch"))
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
        deemed = recorded("entry_consents_deemed")
        if deemed is not None and deemed.value:
            cases = _noun(deemed.value, "Fall", "Fällen")
            e += (
                f" (in {german_number(deemed.value)} {cases} galt die Zustimmung durch "
                "Schweigen als erteilt)"
            )
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
        clauses.append(("händigte", f"{v} aus"))
    fees = recorded("commitment_fees_eur")
    if fees is not None and fees.value is not None:
        clauses.append(("nahm", _fees_clause(fees)))
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
    provisional = ""
    if report.as_of is not None:
        in_year += " bisher"
        provisional = (
            f"Vorläufig, Stand {german_date(report.as_of)}: Das Jahr {report.year} läuft "
            "noch; die Zahlen umfassen nur einen Teil des Jahres und werden nicht mit dem "
            "Vorjahr verglichen. "
        )
    head_count = _head_count_sentence(
        report, subject, recorded("staff_posts"), recorded("staff_at_work")
    )
    if head_count:
        # The press release opens with the head count; then "Sie" for the office.
        sentences.append(head_count)
    if clauses:
        said = [
            f"{verb}{in_year if index == 0 else ''} {rest}"
            for index, (verb, rest) in enumerate(clauses)
        ]
        body = said[0] if len(said) == 1 else f"{'; '.join(said[:-1])} und {said[-1]}"
        sentences.append(f"{'Sie' if head_count else subject} {body}.")
    unrecorded = [
        figure.key
        for figure in report.figures
        if figure.section == "balance" and figure.value is None
    ]
    missing = [_NOT_RECORDED_NAMES.get(key, f"„{_label_of(report, key)}“") for key in unrecorded]
    if missing:
        if len(missing) == 1:
            rest = "diese Zahl fehlt in dieser Bilanz und ist nicht als null zu lesen."
        else:
            rest = "diese Zahlen fehlen in dieser Bilanz und sind nicht als null zu lesen."
        # The verb agrees with what is named: "ist die Zahl der Kundinnen und Kunden",
        # "sind die wahrgenommenen Termine" (a plural name), "sind ... und ...".
        singular = len(unrecorded) == 1 and unrecorded[0] not in _PLURAL_NAMES
        verb = "ist" if singular else "sind"
        sentences.append(f"Für {report.year} nicht erfasst {verb} {_join(missing)}; {rest}")
    if not sentences:
        return f"{provisional}Für {report.year} liegen keine Zahlen vor."
    return provisional + " ".join(sentences)


# --------------------------------------------------------------------- HTML
# report_html() computes every text, number and chart coordinate; the template
# templates/yearly_report.html.j2 lays them out and escapes every value.


@dataclass(frozen=True)
class _Cell:
    css: str
    text: str


@dataclass(frozen=True)
class _Row:
    key: str
    label: str
    note: int
    cells: tuple[_Cell, ...]
    link: str | None


@dataclass(frozen=True)
class _Table:
    section: str
    heading: str
    rows: tuple[_Row, ...]


@dataclass(frozen=True)
class _Tick:
    y: float
    label: str


@dataclass(frozen=True)
class _Bar:
    css: str
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class _Month:
    x: float
    name: str
    bars: tuple[_Bar, ...]


@dataclass(frozen=True)
class _MonthChart:
    key: str
    label: str
    caption: str
    width: int
    height: int
    left: int
    right: int
    baseline: int
    ticks: tuple[_Tick, ...]
    months: tuple[_Month, ...]


@dataclass(frozen=True)
class _HorizontalBar:
    """A bar from ``x`` with its value written after its end."""

    css: str
    x: int
    y: int
    width: float
    height: int
    title: str
    text: str
    text_y: int


@dataclass(frozen=True)
class _ComparisonRow:
    key: str
    label: str
    label_y: float
    bars: tuple[_HorizontalBar, ...]


@dataclass(frozen=True)
class _ComparisonChart:
    width: int
    height: int
    rows: tuple[_ComparisonRow, ...]


@dataclass(frozen=True)
class _BreakdownRow:
    label: str
    label_y: int
    bar: _HorizontalBar


@dataclass(frozen=True)
class _BreakdownChart:
    key: str
    label: str
    heading: str
    name: str
    width: int
    height: int
    rows: tuple[_BreakdownRow, ...]


@dataclass(frozen=True)
class _Definition:
    key: str
    note: int
    label: str
    text: str
    link: str | None


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


def _change_cell(figure: Figure) -> _Cell:
    delta = change(figure)
    if delta is None:
        return _Cell("num not-recorded", "–")
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
    if absolute == 0:
        return _Cell("num", text)
    direction = "up" if absolute > 0 else "down"
    # The colour says good or bad news, not up or down (a falling backlog is good news);
    # most counts are neither (fewer entitlements issued is not a failure): no colour.
    if figure.key in LOWER_IS_BETTER:
        verdict = "better" if absolute < 0 else "worse"
    elif figure.key in HIGHER_IS_BETTER:
        verdict = "better" if absolute > 0 else "worse"
    else:
        verdict = "neutral"
    return _Cell(f"num {direction} {verdict}", text)


def _value_cell(value: float | None, unit: str) -> _Cell:
    if value is None:
        return _Cell("num not-recorded", NOT_RECORDED)
    return _Cell("num", format_value(value, unit))


def _rows(
    report: YearlyReport, figures: Sequence[Figure], numbers: Mapping[str, int]
) -> tuple[_Row, ...]:
    return tuple(
        _Row(
            key=figure.key,
            label=figure.label,
            note=numbers[figure.key],
            cells=(
                _value_cell(figure.value, figure.unit),
                _value_cell(figure.previous, figure.unit),
                _change_cell(figure),
            ),
            link=drill_down_link(report, figure),
        )
        for figure in figures
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


_NOT_CHARTED: Final = frozenset({"staff_posts"})
"""Posts change by decision, not by month: a row of equal bars says nothing."""


def charted_figures(report: YearlyReport) -> tuple[Figure, ...]:
    """The figures that get a chart by month: the balance's recorded counts."""
    return tuple(
        figure
        for figure in report.figures
        if figure.section == "balance"
        and figure.unit == "count"
        and figure.value is not None
        and figure.by_month is not None
        and figure.key not in _NOT_CHARTED
    )


def compared_figures(report: YearlyReport) -> tuple[Figure, ...]:
    """The figures in the year-over-year chart: the balance, where both years are known."""
    return tuple(
        figure
        for figure in report.figures
        if figure.section == "balance" and figure.value is not None and figure.previous is not None
    )


def _month_chart(report: YearlyReport, figure: Figure) -> _MonthChart:
    months = figure.by_month or ()
    before = figure.previous_by_month
    width, height = 460, 210
    left, right, top, bottom = 52, 8, 10, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    highest = max([*months, *(before or ()), 0.0])
    axis_max, tick = _nice_axis(highest, whole=True)
    ticks = tuple(
        _Tick(
            y=top + plot_h - plot_h * (tick * index) / axis_max,
            label=_axis_label(tick * index, figure.unit),
        )
        for index in range(round(axis_max / tick) + 1)
    )
    group = plot_w / 12
    bar = group * (0.36 if before is not None else 0.6)
    drawn = []
    for index, value in enumerate(months):
        x0 = left + group * index
        series: list[tuple[str, float, int]] = []
        if before is not None:
            series.append(("before", before[index], report.year - 1))
        series.append(("now", value, report.year))
        offset = (group - bar * len(series)) / 2
        bars = []
        for position, (css, amount, year) in enumerate(series):
            h = plot_h * max(amount, 0.0) / axis_max
            bars.append(
                _Bar(
                    css=css,
                    x=x0 + offset + position * bar,
                    y=top + plot_h - h,
                    width=bar - 1,
                    height=h,
                    title=f"{MONTH_NAMES[index]} {year}: {format_value(amount, figure.unit)}",
                )
            )
        drawn.append(_Month(x=x0 + group / 2, name=MONTHS[index], bars=tuple(bars)))
    caption = f"{format_value(figure.value, figure.unit)} im Jahr {report.year}"
    if figure.previous is not None:
        caption += f"; Vorjahr {format_value(figure.previous, figure.unit)}"
    return _MonthChart(
        key=figure.key,
        label=figure.label,
        caption=caption,
        width=width,
        height=height,
        left=left,
        right=width - right,
        baseline=top + plot_h,
        ticks=ticks,
        months=tuple(drawn),
    )


def _comparison_chart(report: YearlyReport, figures: Sequence[Figure]) -> _ComparisonChart:
    width, row_h, label_w, text_w = 920, 42, 250, 150
    bars_w = width - label_w - text_w
    rows = []
    for index, figure in enumerate(figures):
        y = 4 + index * row_h
        now, before = figure.value or 0.0, figure.previous or 0.0
        scale = max(now, before, 0.0) or 1.0
        bars = tuple(
            _HorizontalBar(
                css=css,
                x=label_w,
                y=y + offset,
                width=bars_w * max(amount, 0.0) / scale,
                height=14,
                title=f"{year}: {format_value(amount, figure.unit)}",
                text=format_value(amount, figure.unit),
                text_y=y + offset + 11,
            )
            for offset, css, amount, year in (
                (4, "before", before, report.year - 1),
                (20, "now", now, report.year),
            )
        )
        rows.append(_ComparisonRow(figure.key, _short(figure), y + row_h / 2 + 4, bars))
    return _ComparisonChart(width=width, height=row_h * len(figures) + 8, rows=tuple(rows))


_MAX_ITEMS: Final = 8


@dataclass(frozen=True)
class ReportHeading:
    """What the printed page says about its office and itself, besides the figures."""

    office_name: str | None = None
    """As the council knows it, e.g. "Ausländerbehörde Musterstadt" (default: the id)."""
    office_address: str | None = None
    generated_on: date | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    """German labels of the codes in breakdowns (legal bases, appointment types ...)."""


def _breakdown_chart(
    figure: Figure, name: str, items: Mapping[str, float], labels: Mapping[str, str]
) -> _BreakdownChart:
    ordered = sorted(
        ((labels.get(item, item), value) for item, value in items.items()),
        key=lambda item: (-item[1], item[0]),
    )
    if len(ordered) > _MAX_ITEMS:
        # A long tail (legal bases) would not fit on a page: the rest goes in one bar.
        rest = ordered[_MAX_ITEMS - 1 :]
        ordered = [
            *ordered[: _MAX_ITEMS - 1],
            (f"übrige ({len(rest)})", sum(value for _, value in rest)),
        ]
    # Paid and refunded are no parts of one whole: no share of their sum.
    total = 0.0 if name in figure.not_parts else sum(value for _, value in ordered)
    unit = figure.unit_of(name)
    width, row_h, label_w, text_w = 460, 26, 150, 150
    bars_w = width - label_w - text_w
    scale = max([value for _, value in ordered] + [0.0]) or 1.0
    rows = []
    for index, (item, value) in enumerate(ordered):
        y = 3 + index * row_h
        share = f" ({german_number(100 * value / total, 1)} %)" if total > 0 else ""
        text = format_value(value, unit) + share
        bar = _HorizontalBar(
            css="now",
            x=label_w,
            y=y + 4,
            width=bars_w * max(value, 0.0) / scale,
            height=16,
            title=f"{item}: {text}",
            text=text,
            text_y=y + 16,
        )
        rows.append(_BreakdownRow(label=_clip(item, 26), label_y=y + 16, bar=bar))
    return _BreakdownChart(
        key=figure.key,
        label=figure.label,
        heading=f"{_short(figure, 60)} nach {name}",
        name=name,
        width=width,
        height=row_h * len(ordered) + 6,
        rows=tuple(rows),
    )


def _definitions(report: YearlyReport, numbers: Mapping[str, int]) -> tuple[_Definition, ...]:
    return tuple(
        _Definition(
            key=figure.key,
            note=numbers[figure.key],
            label=figure.label,
            text=figure.definition,
            link=drill_down_link(report, figure),
        )
        for figure in (*report.figures, *report.workload)
    )


def code_labels(
    legal_bases: Mapping[str, tuple[str, str]],
    topics: Mapping[str, str],
    appointment_types: Mapping[str, str],
) -> dict[str, str]:
    """German labels for the codes breakdowns carry: legal bases by (paragraph, label),
    contact topics and appointment types by their German label."""
    labels = dict(topics.items())
    labels.update(appointment_types)
    for code, (paragraph, label) in legal_bases.items():
        labels[code] = f"{paragraph} ({label})" if label else paragraph
    return labels


def appointment_type_labels(service_points: Iterable[ServicePoint]) -> dict[str, str]:
    return {
        code: appointment_type.label_de
        for point in service_points
        for code, appointment_type in point.types.items()
    }


def report_heading(
    settings: Settings,
    catalogue: Catalogue,
    appointment_types: Mapping[str, str],
    generated_on: date,
) -> ReportHeading:
    """The page's heading from the office settings and the catalogue's German labels."""
    return ReportHeading(
        office_name=settings.office_name,
        office_address=settings.office_address,
        generated_on=generated_on,
        labels=code_labels(
            {
                code: (basis.paragraph, basis.label_de)
                for code, basis in catalogue.legal_bases.items()
            },
            {code: topic.label_de for code, topic in catalogue.contact_topics.items()},
            appointment_types,
        ),
    )


def german_date(day: date) -> str:
    return f"{day.day}. {MONTH_NAMES[day.month - 1]} {day.year}"


def report_html(
    report: YearlyReport,
    *,
    subject: str = DEFAULT_SUBJECT,
    heading: ReportHeading | None = None,
) -> str:
    """A self-contained printable HTML page (A4), no scripts, no external files.

    Title, the German summary paragraph (for a press release), the balance and the
    management tables with the year before and the change, charts as inline SVG
    (each balance count by month, the year-over-year comparison, the breakdowns), the
    definitions as footnotes and the drill-down links to the events behind each figure.
    """
    every = (*report.figures, *report.workload)
    numbers = {figure.key: index for index, figure in enumerate(every, start=1)}
    tables = []
    for section, title in _SECTIONS:
        figures = [figure for figure in every if figure.section == section]
        if figures:
            tables.append(_Table(section, title, _rows(report, figures, numbers)))
    compared = compared_figures(report)
    charted = charted_figures(report)
    page = heading if heading is not None else ReportHeading()
    return render(
        "adapters.reports",
        "yearly_report.html.j2",
        report=report,
        year=report.year,
        before=report.year - 1,
        title=f"Jahresbericht {report.year} der Ausländerbehörde",
        position=german_number(report.position),
        office=page.office_name or f"Dienststelle {report.office_id}",
        address=page.office_address,
        generated_on=german_date(page.generated_on) if page.generated_on else None,
        summary=german_summary(report, subject=subject),
        tables=tables,
        month_charts=[_month_chart(report, figure) for figure in charted],
        months_before=any(figure.previous_by_month is not None for figure in charted),
        compared_any=any(figure.previous is not None for figure in every),
        comparison=_comparison_chart(report, compared) if compared else None,
        breakdown_charts=[
            _breakdown_chart(figure, name, items, page.labels)
            for figure in report.figures
            if figure.value is not None
            for name, items in figure.breakdowns.items()
            if items and name != FEE_PAYMENTS  # counts of the amounts: in the summary
        ],
        not_recorded=[figure.label for figure in report.figures if figure.value is None],
        definitions=_definitions(report, numbers),
    )
