"""The yearly report's formats: JSON, CSV, the German summary and the HTML page.

Reports are built by hand here (:func:`sample_report`), close to the published 2024
balance in ``shared/reference/office-2024.json``, with a year before and figures that
were not recorded, so these tests do not depend on the statistics read model.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date
from html.parser import HTMLParser
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.reference.catalogue import load_catalogue
from adapters.reports.yearly_report import (
    CSV_COLUMNS,
    NOT_RECORDED,
    ReportHeading,
    approximately,
    charted_figures,
    code_labels,
    compared_figures,
    german_number,
    german_summary,
    report_csv,
    report_heading,
    report_html,
    report_json,
)
from adapters.settings import Settings
from projections.figures.yearly_report import FEE_PAYMENTS, DrillDown, Figure, Unit, YearlyReport

YEAR = 2024
OFFICE = "office-musterstadt"
# Busier before the summer holidays and in autumn, quieter in December: realistic
# months, and no two months alike (a chart of a flat line would prove little).
_SEASON = (8, 8, 9, 10, 10, 11, 9, 7, 8, 9, 7, 4)


def months(total: int, season: Sequence[int] = _SEASON) -> tuple[float, ...]:
    """``total`` spread over twelve months by ``season``, adding up exactly."""
    weight = sum(season)
    shares = [total * part // weight for part in season]
    for index in range(total - sum(shares)):
        shares[index % 12] += 1
    return tuple(float(share) for share in shares)


def counted(
    key: str,
    label: str,
    value: int | None,
    previous: int | None,
    *,
    breakdowns: Mapping[str, Mapping[str, float]] | None = None,
    section: Literal["balance", "management"] = "balance",
) -> Figure:
    return Figure(
        key,
        label,
        "count",
        None if value is None else float(value),
        None if previous is None else float(previous),
        f"Definition von {label}.",
        by_month=None if value is None else months(value),
        previous_by_month=None if previous is None else months(previous, _SEASON[::-1]),
        breakdowns=breakdowns or {},
        drill_down=None if value is None else DrillDown((key,)),
        section=section,
    )


def single(
    key: str,
    label: str,
    unit: Unit,
    value: float | None,
    previous: float | None,
    *,
    section: Literal["balance", "management"] = "balance",
    drill_down: bool = True,
) -> Figure:
    return Figure(
        key,
        label,
        unit,
        value,
        previous,
        f"Definition von {label}.",
        drill_down=DrillDown((key,)) if drill_down else None,
        section=section,
    )


LEGAL_BASES = {
    f"§ {paragraph} AufenthG": float(count)
    for paragraph, count in (
        ("81 Abs. 4", 31_200),
        ("16b Abs. 1", 18_400),
        ("18g Abs. 1", 9_870),
        ("28 Abs. 1", 14_020),
        ("30 Abs. 1", 12_610),
        ("32 Abs. 1", 10_330),
        ("25 Abs. 5", 6_140),
        ("60a Abs. 2", 9_100),
        ("9 Abs. 2", 5_500),
        ("20a", 1_242),
        ("68", 1_318),
        ("44", 30_682),
    )
}


def sample_report(**changes: Figure) -> YearlyReport:
    """A report like the published 2024 balance; ``changes`` replace figures by key."""
    figures = [
        single(
            "appointments_served", "Wahrgenommene Termine", "count", None, None, drill_down=False
        ),
        single("customers", "Kundinnen und Kunden", "count", None, None, drill_down=False),
        counted(
            "residence_documents_issued",
            "Aufenthaltsdokumente ausgestellt (eAT, Duldung, Aufenthaltsgestattung)",
            14_000,
            13_212,
            breakdowns={"Art": {"eAT": 11_020, "Duldung": 1_870, "Aufenthaltsgestattung": 1_110}},
        ),
        counted(
            "fiction_certificates_issued",
            "Fiktionsbescheinigungen ausgestellt",
            3_472,
            3_010,
            breakdowns={
                "Art": {
                    "§ 81 Abs. 3 S. 1 AufenthG": 402,
                    "§ 81 Abs. 3 S. 2 AufenthG": 118,
                    "§ 81 Abs. 4 AufenthG": 2_952,
                }
            },
        ),
        counted(
            "procedures_processed",
            "Vorgänge bearbeitet",
            150_412,
            139_870,
            breakdowns={
                "Ergebnis": {"stattgegeben": 141_020, "abgelehnt": 4_310, "zurückgenommen": 5_082},
                "Eingangsweg": {
                    "Kontaktformular": 98_712,
                    "Online-Antrag": 19_210,
                    "Post": 12_490,
                    "Termin": 20_000,
                },
                "Rechtsgrundlage": LEGAL_BASES,
            },
        ),
        single("digital_share", "davon digital eingegangen", "percent", 78.4, 71.2),
        counted("entry_procedures", "Beteiligung an Einreiseverfahren", 502, 455),
        counted(
            "integration_course_entitlements", "Berechtigungen zum Integrationskurs", 1_284, 1_301
        ),
        counted("integration_course_obligations", "Verpflichtungen zum Integrationskurs", 507, 540),
        counted("commitment_declarations", "Verpflichtungserklärungen", 1_318, 1_190),
        replace(
            single(
                "commitment_fees_eur",
                "Gebühren für Verpflichtungserklärungen (EUR)",
                "eur",
                38_164.0,
                34_510.0,
            ),
            by_month=tuple(value * 29 for value in months(1_316)),
            previous_by_month=tuple(value * 29 for value in months(1_190)),
            breakdowns={"Buchung": {"bezahlt": 38_222.0, "erstattet": 58.0}},
        ),
        counted("civil_registry_inquiries", "Anfragen der Standesämter beantwortet", 718, 655),
        counted("naturalisation_inquiries", "Anfragen zur Einbürgerung beantwortet", 912, 912),
        counted(
            "procedures_received",
            "Vorgänge eingegangen",
            152_300,
            141_020,
            section="management",
            breakdowns={"Eingangsweg": {"Kontaktformular": 100_100, "Post": 52_200}},
        ),
        single(
            "backlog_at_year_end",
            "Offene Vorgänge am Jahresende",
            "count",
            4_642,
            2_754,
            section="management",
        ),
        single(
            "days_to_decision_median",
            "Tage vom Eingang bis zur Entscheidung (Median)",
            "days",
            21.0,
            26.0,
            section="management",
        ),
        single(
            "days_to_decision_p90",
            "Tage vom Eingang bis zur Entscheidung (90. Perzentil)",
            "days",
            64.0,
            None,
            section="management",
        ),
        counted(
            "fiction_certificates_extended",
            "Fiktionsbescheinigungen verlängert",
            2_130,
            0,
            section="management",
        ),
        single(
            "no_show_rate",
            "Nicht wahrgenommene Termine (Anteil)",
            "percent",
            None,
            None,
            section="management",
            drill_down=False,
        ),
    ]
    keys = {figure.key for figure in figures}
    unknown = set(changes) - keys
    assert not unknown, unknown
    figures = [changes.get(figure.key, figure) for figure in figures]
    return YearlyReport(
        office_id=OFFICE,
        year=YEAR,
        figures=tuple(figures),
        notes=("Definition des Jahres.", "Definition der Kundinnen und Kunden."),
        position=987_654,
    )


# --------------------------------------------------------------------- JSON


def test_json_has_the_reports_keys_and_is_json() -> None:
    report = sample_report()
    data = report_json(report)
    assert set(data) == {
        "office_id",
        "year",
        "previous_year",
        "position",
        "provisional",
        "as_of",
        "notes",
        "summary",
        "figures",
    }
    assert (data["office_id"], data["year"], data["position"]) == (OFFICE, YEAR, 987_654)
    assert data["notes"] == list(report.notes)
    assert data["summary"] == german_summary(report)
    assert [figure["key"] for figure in data["figures"]] == [f.key for f in report.figures]
    for figure in data["figures"]:
        assert set(figure) == {
            "key",
            "label",
            "section",
            "unit",
            "recorded",
            "value",
            "previous",
            "change",
            "by_month",
            "previous_by_month",
            "breakdowns",
            "breakdown_units",
            "definition",
            "drill_down",
        }
    # Strict JSON: no NaN, and the same dict after a round trip.
    assert json.loads(json.dumps(data, allow_nan=False)) == data


def test_json_values_changes_and_links() -> None:
    by_key = {figure["key"]: figure for figure in report_json(sample_report())["figures"]}
    processed = by_key["procedures_processed"]
    assert processed["value"] == 150_412
    assert isinstance(processed["value"], int)
    assert processed["previous"] == 139_870
    assert processed["change"] == {"absolute": 10_542, "percent": 7.5}
    assert processed["by_month"] is not None
    assert sum(processed["by_month"]) == 150_412
    assert len(processed["previous_by_month"]) == 12
    assert processed["breakdowns"]["Eingangsweg"]["Post"] == 12_490
    assert processed["drill_down"] == f"/reports/yearly/{YEAR}/figures/procedures_processed/events"
    assert processed["section"] == "balance"
    assert processed["definition"] == "Definition von Vorgänge bearbeitet."

    # A share changes by percentage points; a relative change of it would mislead.
    assert by_key["digital_share"]["change"] == {"absolute": 7.2, "percent": None}
    assert by_key["integration_course_entitlements"]["change"] == {
        "absolute": -17,
        "percent": -1.3,
    }
    assert by_key["naturalisation_inquiries"]["change"] == {"absolute": 0, "percent": 0.0}
    # No relative change from a year before with nothing counted.
    assert by_key["fiction_certificates_extended"]["change"] == {
        "absolute": 2_130,
        "percent": None,
    }
    assert by_key["commitment_fees_eur"]["value"] == 38_164
    assert by_key["commitment_fees_eur"]["change"]["percent"] == 10.6
    assert by_key["backlog_at_year_end"]["section"] == "management"
    assert by_key["days_to_decision_p90"]["change"] is None


def test_json_not_recorded_is_null_never_zero() -> None:
    by_key = {figure["key"]: figure for figure in report_json(sample_report())["figures"]}
    for key in ("appointments_served", "customers", "no_show_rate"):
        figure = by_key[key]
        assert figure["recorded"] is False
        assert figure["value"] is None
        assert figure["previous"] is None
        assert figure["change"] is None
        assert figure["by_month"] is None
        assert figure["drill_down"] is None
    assert by_key["procedures_processed"]["recorded"] is True


# ---------------------------------------------------------------------- CSV


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_csv_parses_back_with_every_figure_and_its_value() -> None:
    report = sample_report()
    text = report_csv(report)
    assert text.startswith(",".join(CSV_COLUMNS) + "\r\n")  # RFC 4180: CRLF
    rows = csv_rows(text)
    totals = {
        row["key"]: row for row in rows if not (row["breakdown"] or row["item"] or row["month"])
    }
    assert list(totals) == [figure.key for figure in report.figures]
    for figure in report.figures:
        row = totals[figure.key]
        assert row["label"] == figure.label
        assert row["unit"] == figure.unit
        assert row["section"] == figure.section
        if figure.value is None:
            assert row["value"] == ""
            assert row["recorded"] == "false"
        else:
            assert float(row["value"]) == figure.value
            assert row["recorded"] == "true"
        assert row["previous"] == ("" if figure.previous is None else row["previous"])
        if figure.previous is not None:
            assert float(row["previous"]) == figure.previous
    assert totals["procedures_processed"]["value"] == "150412"
    assert totals["digital_share"]["value"] == "78.4"


def test_csv_has_months_and_breakdowns() -> None:
    report = sample_report()
    rows = csv_rows(report_csv(report))
    processed = [row for row in rows if row["key"] == "procedures_processed"]
    monthly = [row for row in processed if row["month"]]
    assert [row["month"] for row in monthly] == [f"2024-{m:02d}" for m in range(1, 13)]
    assert sum(float(row["value"]) for row in monthly) == 150_412
    assert sum(float(row["previous"]) for row in monthly) == 139_870
    channels = {row["item"]: row["value"] for row in processed if row["breakdown"] == "Eingangsweg"}
    assert channels == {
        "Kontaktformular": "98712",
        "Online-Antrag": "19210",
        "Post": "12490",
        "Termin": "20000",
    }
    # No month rows for what was not recorded: an empty year is not twelve zeros.
    assert [row for row in rows if row["key"] == "customers"] == [
        {**dict.fromkeys(CSV_COLUMNS, ""), **_header("customers", report), "recorded": "false"}
    ]


def _header(key: str, report: YearlyReport) -> dict[str, str]:
    figure = report.figure(key)
    return {"section": figure.section, "key": key, "label": figure.label, "unit": figure.unit}


def test_csv_quotes_labels_with_commas_quotes_and_line_breaks() -> None:
    label = 'Anfragen, "dringend"\nund sonst'
    report = sample_report(
        entry_procedures=counted("entry_procedures", label, 502, 455),
    )
    rows = csv_rows(report_csv(report))
    assert {row["label"] for row in rows if row["key"] == "entry_procedures"} == {label}


# ------------------------------------------------------------------ summary


def test_german_number() -> None:
    assert german_number(150_000) == "150.000"
    assert german_number(1_234_567.891, 2) == "1.234.567,89"
    assert german_number(78.4, 1) == "78,4"
    assert german_number(-0.001, 1) == "0,0"
    assert german_number(999) == "999"


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (14_000, "14.000"),
        (3_472, "knapp 3.500"),
        (3_497, "rund 3.500"),
        (150_412, "rund 150.000"),
        (148_000, "knapp 150.000"),
        (718, "über 700"),
        (705, "gut 700"),
        (912, "gut 900"),
        (1_318, "gut 1.300"),
        (1_284, "knapp 1.300"),
        (502, "rund 500"),
        (507, "gut 500"),
        (480, "480"),
        (476, "knapp 480"),
        (99, "99"),
        (0, "0"),
        (20_000, "20.000"),
        (47_760, "knapp 48.000"),
        (1_000_000, "1.000.000"),
    ],
)
def test_approximately_examples(value: int, said: str) -> None:
    assert approximately(value) == said


_SAID = re.compile(r"^(?:(rund|knapp|gut|über) )?(\d{1,3}(?:\.\d{3})*)$")


@given(st.integers(min_value=0, max_value=10**12))
def test_approximately_is_honest(value: int) -> None:
    said = approximately(value)
    match = _SAID.match(said)
    assert match is not None, said
    word, number = match.group(1), int(match.group(2).replace(".", ""))
    if word is None:
        assert number == value
    elif word == "rund":
        assert number != value
        assert abs(value - number) <= 0.005 * number
    elif word == "knapp":
        assert number - 0.05 * number <= value < number
    elif word == "gut":
        assert number < value <= number + 0.025 * number
    else:
        assert number < value <= number + 0.05 * number
    if value < 100:
        assert said == str(value)
    # Two significant digits at most (fifties for 500..999): a press release number.
    if value >= 1_000:
        assert number % 10 ** (len(str(number)) - 2) == 0


_AMOUNT = re.compile(r"^(?:(rund|knapp|gut|über) )?(\d{1,3}(?:\.\d{3})*(?:,\d\d)?)$")


@given(st.floats(min_value=0, max_value=1e12, allow_nan=False))
def test_approximately_amounts_are_close(value: float) -> None:
    said = approximately(value)
    match = _AMOUNT.match(said)
    assert match is not None, said
    number = float(match.group(2).replace(".", "").replace(",", "."))
    assert abs(number - value) <= max(0.05 * value, 0.005)


_ZERO = re.compile(r"(?<![\d.,])0(?![\d.,])")


def test_summary_in_the_style_of_the_quote() -> None:
    summary = german_summary(sample_report())
    assert summary.startswith(
        "Die Ausländerbehörde bearbeitete im Jahr 2024 rund 150.000 Vorgänge "
        "(8 % mehr als im Vorjahr), davon 78 % digital (Vorjahr: 71 %); "
    )
    for part in (
        "stellte 14.000 elektronische Aufenthaltstitel, Duldungen und "
        "Aufenthaltsgestattungen (6 % mehr als im Vorjahr) sowie knapp 3.500 "
        "Fiktionsbescheinigungen (15 % mehr als im Vorjahr) aus; ",
        "war an rund 500 Einreiseverfahren (10 % mehr als im Vorjahr) beteiligt; ",
        "erteilte knapp 1.300 Berechtigungen (1 % weniger als im Vorjahr) und gut 500 "
        "Verpflichtungen (6 % weniger als im Vorjahr) zur Teilnahme am Integrationskurs; ",
        "händigte gut 1.300 Verpflichtungserklärungen (11 % mehr als im Vorjahr) aus; ",
        "nahm Gebühren von gut 38.000 Euro (11 % mehr als im Vorjahr) ein ",
        "und beantwortete über 700 Anfragen der Standesämter (10 % mehr als im Vorjahr) "
        "und gut 900 Anfragen zur Einbürgerung (genauso viele wie im Vorjahr).",
    ):
        assert part in summary
    # What was not recorded is named as such, never counted as 0.
    assert (
        "Für 2024 nicht erfasst sind die wahrgenommenen Termine und die Zahl der Kundinnen "
        "und Kunden" in summary
    )
    assert _ZERO.search(summary) is None
    # The management's figures are not part of the published balance.
    assert "Offene" not in summary


def test_summary_with_appointments_recorded_and_no_year_before() -> None:
    report = sample_report(
        appointments_served=counted("appointments_served", "Wahrgenommene Termine", 20_000, None),
        customers=counted("customers", "Kundinnen und Kunden", 47_760, None),
        digital_share=single("digital_share", "davon digital eingegangen", "percent", None, None),
    )
    summary = german_summary(report)
    # Customers and appointments apart: "bei 20.000 Terminen 48.000 Kunden" reads as a ratio.
    assert summary.startswith(
        "Die Ausländerbehörde betreute im Jahr 2024 knapp 48.000 Kundinnen und Kunden auf "
        "allen Wegen; führte 20.000 Termine vor Ort durch; bearbeitete rund 150.000 Vorgänge "
        "(8 % mehr als im Vorjahr); "
    )
    assert (
        "nicht erfasst ist der Anteil digital eingegangener Vorgänge; diese Zahl fehlt in "
        "dieser Bilanz und ist nicht als null zu lesen." in summary
    )
    assert "davon" not in summary


def test_summary_when_nothing_was_recorded() -> None:
    report = sample_report()
    empty = replace(
        report,
        figures=tuple(replace(f, value=None, previous=None) for f in report.figures),
    )
    summary = german_summary(empty)
    assert summary.startswith("Für 2024 nicht erfasst sind die wahrgenommenen Termine, ")
    assert _ZERO.search(summary) is None
    assert german_summary(replace(report, figures=())) == "Für 2024 liegen keine Zahlen vor."


_BALANCE_COUNTS = (
    "residence_documents_issued",
    "fiction_certificates_issued",
    "procedures_processed",
    "entry_procedures",
    "integration_course_entitlements",
    "integration_course_obligations",
    "commitment_declarations",
    "civil_registry_inquiries",
    "naturalisation_inquiries",
)


@given(
    st.lists(
        st.one_of(st.none(), st.integers(min_value=1, max_value=10**7)),
        min_size=len(_BALANCE_COUNTS),
        max_size=len(_BALANCE_COUNTS),
    ),
    st.lists(
        st.one_of(st.none(), st.integers(min_value=0, max_value=10**7)),
        min_size=len(_BALANCE_COUNTS),
        max_size=len(_BALANCE_COUNTS),
    ),
)
def test_summary_says_every_recorded_count_and_no_zero_for_the_rest(
    values: list[int | None], previous: list[int | None]
) -> None:
    base = sample_report()
    changes = {
        key: replace(
            base.figure(key),
            value=None if value is None else float(value),
            previous=None if before is None else float(before),
        )
        for key, value, before in zip(_BALANCE_COUNTS, values, previous, strict=True)
    }
    report = sample_report(**changes)
    summary = german_summary(report)
    for key, value in zip(_BALANCE_COUNTS, values, strict=True):
        if value is None:
            assert f"{report.figure(key).label}" not in summary or "nicht erfasst" in summary
        else:
            assert approximately(value) in summary
    if all(value is None for value in values):
        assert "nicht erfasst" in summary
    # Zero is said only for a recorded zero, and there is none here: the years before
    # with 0 give no comparison at all rather than "0 %" or "unendlich".
    assert _ZERO.search(summary) is None, summary


# --------------------------------------------------------------------- HTML

VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


class TagCollector(HTMLParser):
    """Collects start tags with their attributes and checks that every element closes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []
        self.problems: list[str] = []
        self.text: list[str] = []
        self.declarations: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.declarations.append(decl)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
            return
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            found
            for name, found in self.tags
            if name == tag and all(found.get(k.rstrip("_")) == v for k, v in attrs.items())
        ]


def parse(page: str) -> TagCollector:
    collector = TagCollector()
    collector.feed(page)
    collector.close()
    return collector


def svg_classes(collector: TagCollector) -> list[str]:
    return [str(attrs.get("class")) for attrs in collector.find("svg")]


def test_html_is_well_formed_self_contained_and_german() -> None:
    report = sample_report()
    page = report_html(report)
    parsed = parse(page)
    assert parsed.problems == []
    assert parsed.open == []
    assert parsed.declarations == ["DOCTYPE html"]
    assert parsed.find("html", lang="de")
    assert parsed.find("meta", charset="utf-8")
    # Self-contained: nothing to fetch, nothing to run.
    assert not parsed.find("script")
    assert not parsed.find("link")
    assert not parsed.find("img")
    assert "url(" not in page
    assert "@media print" in page
    assert "size: A4" in page
    text = "".join(parsed.text)
    assert f"Jahresbericht {YEAR}" in text
    assert OFFICE in text
    assert german_summary(report) in text


def test_html_tables_hold_every_figure_with_year_before_and_change() -> None:
    report = sample_report()
    parsed = parse(report_html(report))
    rows = {str(attrs["data-figure"]) for attrs in parsed.find("tr") if "data-figure" in attrs}
    assert rows == {figure.key for figure in report.figures}
    page = report_html(report)
    row = re.search(r'<tr data-figure="procedures_processed">(.*?)</tr>', page)
    assert row is not None
    assert "150.412" in row.group(1)
    assert "139.870" in row.group(1)
    assert "+10.542 (+7,5 %)" in row.group(1)
    digital = re.search(r'<tr data-figure="digital_share">(.*?)</tr>', page)
    assert digital is not None
    assert "78,4 %" in digital.group(1)
    assert "+7,2 Prozentpunkte" in digital.group(1)
    fees = re.search(r'<tr data-figure="commitment_fees_eur">(.*?)</tr>', page)
    assert fees is not None
    assert "38.164,00 €" in fees.group(1)
    customers = re.search(r'<tr data-figure="customers">(.*?)</tr>', page)
    assert customers is not None
    assert NOT_RECORDED in customers.group(1)
    assert not re.search(r">0<", customers.group(1))
    assert {attrs["data-section"] for attrs in parsed.find("section")} >= {
        "summary",
        "balance",
        "management",
        "charts",
        "definitions",
    }


def test_html_has_one_chart_per_charted_figure() -> None:
    report = sample_report()
    parsed = parse(report_html(report))
    charted = charted_figures(report)
    assert [f.key for f in charted] == list(_BALANCE_COUNTS)
    by_month = parsed.find("svg", class_="chart chart-month")
    assert [attrs["data-figure"] for attrs in by_month] == [f.key for f in charted]
    comparison = parsed.find("svg", class_="chart chart-comparison")
    assert len(comparison) == 1
    compared = compared_figures(report)
    assert len(parsed.find("g")) == len(compared)
    breakdowns = parsed.find("svg", class_="chart chart-breakdown")
    assert [(b["data-figure"], b["data-breakdown"]) for b in breakdowns] == [
        (figure.key, name)
        for figure in report.figures
        if figure.value is not None
        for name in figure.breakdowns
    ]
    # Every month chart has 24 bars (this year and the year before) and a title.
    page = report_html(report)
    for key in (f.key for f in charted):
        chart = re.search(rf'<svg class="chart chart-month" data-figure="{key}".*?</svg>', page)
        assert chart is not None
        assert chart.group(0).count("<rect ") == 24
        assert "<title>" in chart.group(0)
    # Twelve legal bases do not fit: seven and the rest in one bar.
    bases = re.search(r'data-breakdown="Rechtsgrundlage".*?</svg>', page)
    assert bases is not None
    assert bases.group(0).count("<rect ") == 8
    assert "übrige (5)" in bases.group(0)


def test_html_drill_down_links_and_definitions() -> None:
    report = sample_report()
    parsed = parse(report_html(report))
    links = {
        str(attrs["data-drill-down"]): attrs["href"]
        for attrs in parsed.find("a")
        if "data-drill-down" in attrs
    }
    assert links == {
        figure.key: f"/reports/yearly/{YEAR}/figures/{figure.key}/events"
        for figure in report.figures
        if figure.drill_down is not None
    }
    for index, figure in enumerate(report.figures, start=1):
        (note,) = parsed.find("li", id=f"def-{figure.key}")
        assert note["value"] == str(index)
        assert parsed.find("a", href=f"#def-{figure.key}")
    text = "".join(parsed.text)
    for note_text in report.notes:
        assert note_text in text


def test_html_escapes_every_text() -> None:
    evil = '<script>alert("x")</script> & "Anführung"'
    report = sample_report(
        entry_procedures=replace(
            counted("entry_procedures", evil, 502, 455, breakdowns={"Art": {evil: 5.0}}),
            definition=evil,
        )
    )
    report = replace(report, office_id='"><script>1</script>', notes=(evil,))
    page = report_html(report)
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;Anführung&quot;" in page
    parsed = parse(page)
    assert parsed.problems == []
    assert not parsed.find("script")
    assert evil in "".join(parsed.text)


def test_html_when_nothing_was_recorded() -> None:
    report = sample_report()
    empty = replace(
        report, figures=tuple(replace(f, value=None, previous=None) for f in report.figures)
    )
    page = report_html(empty)
    parsed = parse(page)
    assert parsed.problems == []
    assert not parsed.find("svg")
    cells = re.findall(r'<td class="num not-recorded">([^<]*)</td>', page)
    assert cells.count(NOT_RECORDED) == 2 * len(report.figures)
    assert "Ohne Diagramm, weil 2024 nicht erfasst" in page


def test_formats_are_deterministic() -> None:
    assert report_html(sample_report()) == report_html(sample_report())
    assert report_csv(sample_report()) == report_csv(sample_report())


def test_month_chart_without_a_year_before_has_twelve_bars() -> None:
    report = sample_report(
        entry_procedures=counted("entry_procedures", "Beteiligung an Einreiseverfahren", 502, None)
    )
    page = report_html(report)
    chart = re.search(
        r'<svg class="chart chart-month" data-figure="entry_procedures".*?</svg>', page
    )
    assert chart is not None
    assert chart.group(0).count("<rect ") == 12
    assert "entry_procedures" not in {f.key for f in compared_figures(report)}


def test_shares_and_changes_round_half_up() -> None:
    report = sample_report(
        digital_share=single("digital_share", "davon digital eingegangen", "percent", 78.5, 70.5),
        entry_procedures=counted("entry_procedures", "Einreiseverfahren", 500, 400),
        civil_registry_inquiries=counted("civil_registry_inquiries", "Standesamt", 700, 800),
    )
    summary = german_summary(report)
    assert "davon 79 % digital (Vorjahr: 71 %)" in summary
    assert "an 500 Einreiseverfahren (25 % mehr als im Vorjahr)" in summary
    assert "700 Anfragen der Standesämter (13 % weniger als im Vorjahr)" in summary


def _with(
    key: str, value: float, breakdowns: Mapping[str, Mapping[str, float]] | None = None
) -> str:
    """The summary of a report in which only ``key`` is recorded, with ``value``."""
    base = sample_report()
    figures = tuple(
        replace(
            figure,
            value=value if figure.key == key else None,
            previous=None,
            breakdowns=breakdowns or figure.breakdowns if figure.key == key else {},
        )
        for figure in base.figures
    )
    return german_summary(replace(base, figures=figures))


@pytest.mark.parametrize(
    ("key", "one", "many"),
    [
        (
            "customers",
            "betreute im Jahr 2024 1 Kundin oder Kunden auf allen Wegen",
            "betreute im Jahr 2024 {n} Kundinnen und Kunden auf allen Wegen",
        ),
        (
            "appointments_served",
            "führte im Jahr 2024 1 Termin vor Ort durch",
            "führte im Jahr 2024 {n} Termine vor Ort durch",
        ),
        (
            "procedures_processed",
            "bearbeitete im Jahr 2024 1 Vorgang",
            "bearbeitete im Jahr 2024 {n} Vorgänge",
        ),
        (
            "fiction_certificates_issued",
            "stellte im Jahr 2024 1 Fiktionsbescheinigung aus",
            "stellte im Jahr 2024 {n} Fiktionsbescheinigungen aus",
        ),
        (
            "commitment_declarations",
            "händigte im Jahr 2024 1 Verpflichtungserklärung aus",
            "händigte im Jahr 2024 {n} Verpflichtungserklärungen aus",
        ),
        (
            "civil_registry_inquiries",
            "beantwortete im Jahr 2024 1 Anfrage der Standesämter",
            "beantwortete im Jahr 2024 {n} Anfragen der Standesämter",
        ),
    ],
)
def test_each_sentence_says_its_number_in_singular_and_plural(
    key: str, one: str, many: str
) -> None:
    assert f"Die Ausländerbehörde {one}." in _with(key, 1)
    for value in (0, 2, 37, 12_345):
        said = approximately(value)
        assert f"Die Ausländerbehörde {many.format(n=said)}." in _with(key, value), value
    # Not recorded: named as such, in the singular when it is one figure only.
    assert "diese Zahlen fehlen in dieser Bilanz und sind nicht als null zu lesen" in _with(key, 1)


@pytest.mark.parametrize(
    ("paid", "refunded", "expected"),
    [
        (
            1,
            0,
            "nahm im Jahr 2024 für 1 bezahlte Verpflichtungserklärung Gebühren von 29 Euro ein.",
        ),
        (
            310,
            0,
            "nahm im Jahr 2024 für 310 bezahlte Verpflichtungserklärungen Gebühren von "
            "knapp 9.000 Euro ein.",
        ),
        (
            315,
            1,
            "nahm im Jahr 2024 für 315 bezahlte Verpflichtungserklärungen Gebühren von über "
            "9.100 Euro ein, nach 1 Erstattung netto gut 9.100 Euro.",
        ),
        (
            315,
            3,
            "nahm im Jahr 2024 für 315 bezahlte Verpflichtungserklärungen Gebühren von über "
            "9.100 Euro ein, nach 3 Erstattungen netto über 9.000 Euro.",
        ),
    ],
)
def test_the_fee_sentence_says_the_amount_with_the_payments_it_is_made_of(
    paid: int, refunded: int, expected: str
) -> None:
    fee = 29.0
    net = fee * (paid - refunded)
    summary = _with(
        "commitment_fees_eur",
        net,
        {
            "Buchung": {"bezahlt": fee * paid, "erstattet": fee * refunded},
            FEE_PAYMENTS: {"bezahlt": float(paid), "erstattet": float(refunded)},
        },
    )

    assert f"Die Ausländerbehörde {expected}" in summary
    # The amount said is within the precision of its words of paid × fee.
    assert approximately(fee * paid) in summary


def test_the_page_names_the_office_its_address_and_date_and_labels_codes() -> None:
    report = sample_report(
        procedures_processed=replace(
            sample_report().figure("procedures_processed"),
            breakdowns={"Rechtsgrundlage": {"aufenthg-16b": 12.0, "unbekannt-1": 3.0}},
        ),
        appointments_served=counted("appointments_served", "Wahrgenommene Termine", 20, 10),
    )
    report = replace(
        report,
        figures=tuple(
            replace(f, breakdowns={"Terminart": {"eat-pickup": 20.0}})
            if f.key == "appointments_served"
            else f
            for f in report.figures
        ),
    )
    heading = ReportHeading(
        office_name="Ausländerbehörde Musterstadt",
        office_address="Rathausplatz 1, 12345 Musterstadt",
        generated_on=date(2025, 1, 15),
        labels=code_labels(
            {"aufenthg-16b": ("§ 16b AufenthG", "Studium")},
            {},
            {"eat-pickup": "Abholung eAT"},
        ),
    )

    page = report_html(report, heading=heading)

    assert "Ausländerbehörde Musterstadt, Rathausplatz 1, 12345 Musterstadt" in page
    assert "Stand: 15. Januar 2025" in page
    assert "Erzeugt am 15. Januar 2025" in page
    assert "Dienststelle" not in page
    assert "§ 16b AufenthG (Studium)" in page
    assert "Abholung eAT" in page
    assert "eat-pickup" not in page
    assert "unbekannt-1" in page  # a code without a label is shown as it is, not dropped


def test_labels_come_from_the_catalogue_and_the_office_appointment_types() -> None:
    catalogue = load_catalogue()
    heading = report_heading(
        Settings(), catalogue, {"eat-pickup": "Abholung eAT"}, date(2025, 1, 1)
    )

    basis = catalogue.legal_bases["aufenthg-16b"]
    assert heading.labels["aufenthg-16b"] == f"{basis.paragraph} ({basis.label_de})"
    assert heading.labels["eat-pickup"] == "Abholung eAT"
    assert heading.office_name is None  # unset: the page falls back to the office id


def test_colours_say_good_or_bad_news_not_up_or_down() -> None:
    report = sample_report(
        backlog_at_year_end=replace(
            sample_report().figure("backlog_at_year_end"), value=800.0, previous=1_000.0
        ),
        procedures_processed=replace(
            sample_report().figure("procedures_processed"), value=900.0, previous=1_000.0
        ),
    )

    page = report_html(report)

    backlog = re.search(r'<tr data-figure="backlog_at_year_end">(.*?)</tr>', page)
    processed = re.search(r'<tr data-figure="procedures_processed">(.*?)</tr>', page)
    assert backlog is not None
    assert processed is not None
    assert 'class="num down better"' in backlog.group(1)  # a falling backlog is good news
    assert 'class="num down worse"' in processed.group(1)
    entitlements = re.search(r'<tr data-figure="integration_course_entitlements">(.*?)</tr>', page)
    assert entitlements is not None
    assert 'class="num down neutral"' in entitlements.group(1)  # no verdict on a count


def test_links_are_for_the_screen_and_definitions_for_paper() -> None:
    page = report_html(sample_report())

    print_rules = page[page.index("@media print {") :]
    assert ".screen-only { display: none; }" in print_rules
    for link in re.findall(r"<a [^>]*href=\"/reports/[^\"]+\"[^>]*>", page):
        assert 'class="screen-only"' in link or "link" in link
