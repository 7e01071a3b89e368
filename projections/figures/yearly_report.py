"""The head of office's yearly report, read from the statistics read model.

A report is every figure of the published yearly balance (see ``shared/DESIGN.md``) and
what a manager needs beside it, each with the year before, by month where it is a count,
and with the list of events it counts
(:func:`~projections.figures.counted_events.figure_events`). It reads only the totals kept
beside the counted facts (a few hundred small rows, and one index-only count of the year's
customers), so it costs the same with one year of history or ten.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final, Literal

from domain.values import DIGITAL_CHANNELS
from projections.figures.statistics import FACTS, NAME
from projections.figures.workload import StaffPlan
from projections.paging import (
    InvalidQuery,
)
from projections.positions import read_positions
from projections.projection import TOTALS_COUNT
from projections.storage import ViewsSession, ViewsStore

Unit = Literal["count", "eur", "days", "percent"]

CUSTOMERS_DEFINITION: Final = (
    "Kundinnen und Kunden: verschiedene Personen, die im Jahr bedient wurden, gleich über "
    "welchen Weg (Termin, Kontaktformular, Post, Online-Antrag); jede Person zählt einmal, "
    "wie oft sie auch kam. Bedient heißt: ein Vorgang ging ein oder wurde entschieden, ein "
    "Aufenthaltsdokument wurde ausgestellt, verlängert oder (eAT) auf einen neuen Pass "
    "übertragen, eine Fiktionsbescheinigung wurde ausgestellt oder verlängert, ein Termin "
    "wurde wahrgenommen oder eine Verpflichtungserklärung ausgehändigt. Nicht bedient wird, "
    "wer nur angefragt wird (Standesamt, Einbürgerung) oder im Ausland ein Visum beantragt "
    "(Einreiseverfahren). Eine Person ist ihre Akte; ohne Akte zählt bei Terminen die "
    "Person (pseudonym), bei Verpflichtungserklärungen jede Erklärung."
)
CUSTOMER_FIGURES: Final = (
    "procedures_received",
    "procedures_processed",
    "residence_documents_issued",
    "residence_documents_extended",
    "residence_documents_transferred",
    "fiction_certificates_issued",
    "fiction_certificates_extended",
    "appointments_served",
    "commitment_declarations",
)
"""The figures whose events serve a person (``customer`` names them)."""
YEAR_DEFINITION: Final = (
    "Jede Zahl zählt das Ereignis, das sie wahr macht, einmal, im Kalenderjahr seiner "
    "fachlichen Zeit (Ortszeit Berlin)."
)


FEE_PAYMENTS: Final = "Zahlungen"
"""The breakdown of the fee figure by the number of payments (paid, refunded)."""

FIGURE_KEYS: Final = (
    "staff_at_work",
    "staff_posts",
    "appointments_served",
    "customers",
    "residence_documents_issued",
    "fiction_certificates_issued",
    "procedures_processed",
    "digital_share",
    "entry_procedures",
    "entry_consents_deemed",
    "integration_course_entitlements",
    "integration_course_obligations",
    "commitment_declarations",
    "commitment_fees_eur",
    "civil_registry_inquiries",
    "naturalisation_inquiries",
    "procedures_received",
    "backlog_at_year_end",
    "days_to_decision_median",
    "days_to_decision_p90",
    "fiction_certificates_extended",
    "residence_documents_extended",
    "residence_documents_transferred",
    "case_files_opened",
    "no_show_rate",
)
"""Every figure of a report, in the order it is printed."""


@dataclass(frozen=True)
class DrillDown:
    """Which counted events a figure is made of (see
    :func:`~projections.figures.counted_events.figure_events`)."""

    figures: tuple[str, ...]
    kinds: tuple[str, ...] = ()
    """Only facts of these kinds (empty: all)."""
    channels: tuple[str, ...] = ()
    """Only facts that came in through these channels (empty: all)."""
    open_at_year_end: bool = False
    """The backlog: procedures received by the year's end and not decided by then."""
    customers_only: bool = False
    """Only facts that served a person: the customers are the distinct ``customer``
    values among them."""


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    """German, as printed in the report."""
    unit: Unit
    value: float | None
    """``None``: not recorded (never the same as 0)."""
    previous: float | None
    """The same figure for the year before (``None``: not recorded then)."""
    definition: str
    """German: what is counted, by which event."""
    by_month: tuple[float, ...] | None = None
    """Twelve values, January first (counts and amounts only)."""
    previous_by_month: tuple[float, ...] | None = None
    breakdowns: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Named breakdowns of the value, e.g. ``{"Art": {"eat": 11000, ...}}``."""
    drill_down: DrillDown | None = None
    breakdown_units: Mapping[str, Unit] = field(default_factory=dict)
    """The unit of a breakdown's items where it is not the figure's (the number of
    payments behind an amount in euros: ``count``)."""
    not_parts: frozenset[str] = frozenset()
    """Breakdowns whose items are no parts of one whole (paid and refunded): no shares."""
    section: Literal["balance", "management", "workload"] = "balance"
    """The published balance, or what the office's management looks at besides
    (``workload``: the figures of :attr:`YearlyReport.workload`)."""

    @property
    def recorded(self) -> bool:
        return self.value is not None

    def unit_of(self, breakdown: str) -> Unit:
        """The unit of the items of ``breakdown``."""
        return self.breakdown_units.get(breakdown, self.unit)


@dataclass(frozen=True)
class YearlyReport:
    office_id: str
    year: int
    figures: tuple[Figure, ...]
    notes: tuple[str, ...]
    position: int
    """The statistics read model's position in the event log when the report was read."""
    workload: tuple[Figure, ...] = ()
    """The workload section (:func:`workload_figures`): apart from ``figures``, whose
    every count drills down to the events it counts."""
    as_of: date | None = None
    """Set while the year is still running: the day the provisional figures stand at
    (they cover part of the year and compare with the whole year before)."""

    @property
    def provisional(self) -> bool:
        return self.as_of is not None

    def figure(self, key: str) -> Figure:
        for figure in self.figures:
            if figure.key == key:
                return figure
        raise KeyError(key)


# ---------------------------------------------------------------------- reading

_MONTHLY, _CHANNELS, _BASES, _DAYS, _CUSTOMERS = (schema.name for schema in FACTS.totals_schemas)


class _Totals:
    """The totals of one office for a year and the year before."""

    def __init__(self, session: ViewsSession, office_id: str, year: int) -> None:
        p = session.param
        years = (year - 1, year)
        self.monthly: dict[tuple[int, str], dict[str, list[int]]] = defaultdict(
            lambda: defaultdict(lambda: [0] * 12)
        )
        self.amounts: dict[tuple[int, str], dict[str, list[int]]] = defaultdict(
            lambda: defaultdict(lambda: [0] * 12)
        )
        for row_year, month, figure, kind, count, amount in session.fetch(
            f"SELECT year, month, figure, kind, {TOTALS_COUNT}, amount_cents "
            f"FROM {session.table(_MONTHLY)} WHERE office_id = {p} AND year IN ({p}, {p})",
            (office_id, *years),
        ):
            self.monthly[row_year, figure][kind][month - 1] += count
            self.amounts[row_year, figure][kind][month - 1] += amount
        first = session.fetch(
            f"SELECT MIN(year) FROM {session.table(_MONTHLY)} "
            f"WHERE office_id = {p} AND {TOTALS_COUNT} <> 0",
            (office_id,),
        )
        self.first_year: int | None = first[0][0] if first and first[0][0] is not None else None
        """The first year the log holds anything of the office in: before it, nothing was
        recorded (which is not the same as nothing happening)."""
        self.first_year_of: dict[str, int] = {
            str(figure): int(first_year)
            for figure, first_year in session.fetch(
                f"SELECT figure, MIN(year) FROM {session.table(_MONTHLY)} "
                f"WHERE office_id = {p} AND {TOTALS_COUNT} <> 0 GROUP BY figure",
                (office_id,),
            )
        }
        """Per counted figure, the first year the log holds one of its events in."""
        self.customers: dict[int, int] = dict.fromkeys(years, 0)
        for row_year, count in session.fetch(
            f"SELECT year, COUNT(*) FROM {session.table(_CUSTOMERS)} "
            f"WHERE office_id = {p} AND year IN ({p}, {p}) AND customer <> '' "
            f"AND {TOTALS_COUNT} <> 0 GROUP BY year",
            (office_id, *years),
        ):
            self.customers[row_year] = int(count)
        self.channels = self._grouped(session, _CHANNELS, "channel", office_id, years)
        self.bases = self._grouped(session, _BASES, "legal_basis", office_id, years)
        self.days = self._grouped(session, _DAYS, "days", office_id, years)
        self.to_date: dict[tuple[int, str], int] = defaultdict(int)
        """Per year up to this one and figure: counts since the beginning of the log."""
        for row_year, figure, count in session.fetch(
            f"SELECT year, figure, SUM({TOTALS_COUNT}) FROM {session.table(_MONTHLY)} "
            f"WHERE office_id = {p} AND year <= {p} AND figure IN ({p}, {p}, {p}) "
            "GROUP BY year, figure",
            (office_id, year, *_BACKLOG_FIGURES),
        ):
            for counted_in in years:
                if row_year <= counted_in:
                    self.to_date[counted_in, figure] += int(count)

    @staticmethod
    def _grouped(
        session: ViewsSession, table: str, column: str, office_id: str, years: Sequence[int]
    ) -> dict[tuple[int, str], dict[Any, int]]:
        p = session.param
        grouped: dict[tuple[int, str], dict[Any, int]] = defaultdict(dict)
        for row_year, figure, value, count in session.fetch(
            f"SELECT year, figure, {column}, {TOTALS_COUNT} FROM {session.table(table)} "
            f"WHERE office_id = {p} AND year IN ({p}, {p}) AND {TOTALS_COUNT} <> 0",
            (office_id, *years),
        ):
            grouped[row_year, figure][value] = count
        return grouped

    def months(
        self, year: int, figure: str, kinds: Sequence[str] = (), *, amounts: bool = False
    ) -> tuple[float, ...]:
        source = (self.amounts if amounts else self.monthly).get((year, figure), {})
        total = [0] * 12
        for kind, months in source.items():
            if not kinds or kind in kinds:
                total = [a + b for a, b in zip(total, months, strict=True)]
        return tuple(float(value) for value in total)

    def kinds(self, year: int, figure: str) -> dict[str, float]:
        return {
            kind: float(sum(months))
            for kind, months in sorted(self.monthly.get((year, figure), {}).items())
            if sum(months)
        }


_BACKLOG_FIGURES: Final = (
    "procedures_received",
    "procedures_processed",
    "procedures_transferred_open",
)
TRANSLATIONS: Final = {
    "eat": "eAT",
    "duldung": "Duldung",
    "aufenthaltsgestattung": "Aufenthaltsgestattung",
    "contact_form": "Kontaktformular",
    "online_application": "Online-Antrag",
    "mail": "Post",
    "appointment": "Termin",
    "granted": "stattgegeben",
    "refused": "abgelehnt",
    "withdrawn": "zurückgenommen",
    "civil_registry": "Standesamt",
    "naturalisation": "Einbürgerung",
    "81_3_1": "§ 81 Abs. 3 S. 1 AufenthG",
    "81_3_2": "§ 81 Abs. 3 S. 2 AufenthG",
    "81_4": "§ 81 Abs. 4 AufenthG",
    "": "ohne Angabe",
}


def translated(value: str) -> str:
    """A stored kind, channel or outcome in the report's German."""
    return TRANSLATIONS.get(value, value)


def _sorted_days(histogram: Mapping[Any, int]) -> tuple[list[tuple[int, int]], int]:
    """The histogram's (days, count) pairs in order, negatives left out, and their total."""
    counts = sorted((int(days), count) for days, count in histogram.items() if int(days) >= 0)
    return counts, sum(count for _, count in counts)


def _at_rank(counts: list[tuple[int, int]], rank: int) -> int:
    """The ``rank``-th smallest value (1 the smallest) of the counted days."""
    seen = 0
    for days, count in counts:
        seen += count
        if seen >= rank:
            return days
    raise AssertionError("unreachable: the ranks add up to the total")


def _percentile(histogram: Mapping[Any, int], share: float) -> float | None:
    """Nearest rank: the smallest value v with at least ``share`` of the values <= v."""
    counts, total = _sorted_days(histogram)
    if total == 0:
        return None
    return float(_at_rank(counts, max(1, math.ceil(share * total))))


def _median(histogram: Mapping[Any, int]) -> float | None:
    """The median: the middle value, or the mean of the two middle values for an even
    count (10 and 20 days: 15), as :func:`statistics.median` says it."""
    counts, total = _sorted_days(histogram)
    if total == 0:
        return None
    return (_at_rank(counts, (total + 1) // 2) + _at_rank(counts, total // 2 + 1)) / 2


def _share(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def yearly_report(
    views: ViewsStore,
    office_id: str,
    year: int,
    *,
    staff: StaffPlan | None = None,
    recorded_since: int | None = None,
    today: date | None = None,
) -> YearlyReport:
    """The yearly report of ``office_id`` for ``year``, from the statistics read model
    (and the workload read model; ``staff``: posts and people at work, if configured).

    Each figure is recorded from the first year its own events appear in the log (a
    case file back-dated to 2014 does not make the office's appointments "recorded" in
    2014), or, if configured, from ``recorded_since``, the year the office started
    recording all of its work in Akte: a year before that reads "not recorded", never
    0. ``today`` (the office's date): a report of the running year is provisional, as of
    that day."""
    if not 1900 <= year <= 9999:
        raise InvalidQuery("year", "must be a year between 1900 and 9999")
    with views.reader() as session:
        totals = _Totals(session, office_id, year)
        position = _position(session)
        workload = workload_figures(session, office_id, year, staff)
    figures = (
        *head_count_figures(office_id, year, staff),
        *(
            _as_recorded(figure, _recorded_since(figure, totals, recorded_since), year)
            for figure in _figures(totals, year)
        ),
    )
    return YearlyReport(
        office_id=office_id,
        year=year,
        figures=figures,
        notes=(YEAR_DEFINITION, CUSTOMERS_DEFINITION),
        position=position,
        workload=tuple(
            _as_recorded(figure, _office_recorded_since(totals, recorded_since), year)
            if figure.key in _COUNTED_WORKLOAD
            else figure
            for figure in workload
        ),
        as_of=today if today is not None and year >= today.year else None,
    )


@dataclass(frozen=True)
class RecordedYears:
    """The years of an office from whose log the yearly report has figures."""

    office_id: str
    first: int
    last: int

    def __str__(self) -> str:
        years = str(self.first) if self.first == self.last else f"{self.first}-{self.last}"
        return f"{self.office_id} ({years})"


def recorded_offices(views: ViewsStore) -> list[RecordedYears]:
    """Every office the statistics read model has figures of, with their years."""
    with views.reader() as session:
        rows = session.fetch(
            f"SELECT office_id, MIN(year), MAX(year) FROM {session.table(_MONTHLY)} "
            f"WHERE {TOTALS_COUNT} <> 0 GROUP BY office_id ORDER BY office_id",
            (),
        )
    return [RecordedYears(str(office), int(first), int(last)) for office, first, last in rows]


def _recorded_since(figure: Figure, totals: _Totals, configured: int | None) -> int | None:
    """The first year ``figure`` was recorded in (None: never). A configured recording
    start is the office's word that Akte records all of its work from then on: every
    figure is recorded from that year, a figure without an event since then is a real 0
    (no consent deemed given is 0, not "not recorded")."""
    if configured is not None:
        return configured
    sources = figure.drill_down.figures if figure.drill_down is not None else ()
    firsts = [totals.first_year_of[source] for source in sources if source in totals.first_year_of]
    if not sources:
        # Derived without events of its own (rates, days): as the office as a whole.
        firsts = [totals.first_year] if totals.first_year is not None else []
    if not firsts:
        return None
    return max(min(firsts), configured) if configured is not None else min(firsts)


_COUNTED_WORKLOAD: Final = frozenset(
    {"workload_actions", "workload_decided", "workload_backlog_assigned"}
)
"""The workload figures counted from the log: before it began, not recorded (never 0)."""


def _office_recorded_since(totals: _Totals, configured: int | None) -> int | None:
    """The first year the office as a whole was recorded in (None: never)."""
    return configured if configured is not None else totals.first_year


def _as_recorded(figure: Figure, first: int | None, year: int) -> Figure:
    if first is None or year < first:
        return _not_recorded(figure, this_year=True)
    if year - 1 < first:
        return _not_recorded(figure, this_year=False)
    return figure


def _not_recorded(figure: Figure, *, this_year: bool) -> Figure:
    """The figure for a year before the office's first event: not recorded, never 0."""
    if this_year:
        return dataclasses.replace(
            figure,
            value=None,
            previous=None,
            by_month=None,
            previous_by_month=None,
            breakdowns={},
            drill_down=None,
        )
    return dataclasses.replace(figure, previous=None, previous_by_month=None)


def _position(session: ViewsSession) -> int:
    for stored in read_positions(session):
        if stored.name == NAME:
            return stored.position
    return 0


def _figures(totals: _Totals, year: int) -> tuple[Figure, ...]:
    previous = year - 1
    figures: list[Figure] = []

    def counted(
        key: str,
        label: str,
        figure: str,
        definition: str,
        *,
        kinds: tuple[str, ...] = (),
        breakdown: str | None = None,
        section: Literal["balance", "management"] = "balance",
    ) -> Figure:
        months = totals.months(year, figure, kinds)
        before = totals.months(previous, figure, kinds)
        breakdowns: dict[str, dict[str, float]] = {}
        if breakdown is not None:
            breakdowns[breakdown] = {
                translated(kind): value for kind, value in totals.kinds(year, figure).items()
            }
        return Figure(
            key,
            label,
            "count",
            float(sum(months)),
            float(sum(before)),
            definition,
            by_month=months,
            previous_by_month=before,
            breakdowns=breakdowns,
            drill_down=DrillDown((figure,), kinds),
            section=section,
        )

    figures.append(
        counted(
            "appointments_served",
            "Wahrgenommene Termine",
            "appointments_served",
            "Jeder Termin, zu dem die Person erschienen ist und bedient wurde "
            "(Appointment.Attended), im Jahr des Termins.",
            breakdown="Terminart",
        )
    )
    figures.append(
        Figure(
            "customers",
            "Kundinnen und Kunden",
            "count",
            float(totals.customers[year]),
            float(totals.customers[previous]),
            CUSTOMERS_DEFINITION,
            drill_down=DrillDown(CUSTOMER_FIGURES, customers_only=True),
        )
    )
    figures.append(
        counted(
            "residence_documents_issued",
            "Aufenthaltsdokumente ausgestellt (eAT, Duldung, Aufenthaltsgestattung)",
            "residence_documents_issued",
            "Jede Ausstellung eines elektronischen Aufenthaltstitels, einer Duldung oder "
            "Aufenthaltsgestattung (Ereignis ResidenceDocumentIssued); Verlängerungen "
            "zählen gesondert.",
            breakdown="Art",
        )
    )
    figures.append(
        counted(
            "fiction_certificates_issued",
            "Fiktionsbescheinigungen ausgestellt",
            "fiction_certificates_issued",
            "Jede neu ausgestellte Fiktionsbescheinigung nach § 81 AufenthG "
            "(FictionCertificateIssued); Verlängerungen zählen gesondert.",
            breakdown="Art",
        )
    )
    processed = counted(
        "procedures_processed",
        "Vorgänge bearbeitet",
        "procedures_processed",
        "Jeder entschiedene Vorgang (ProcedureDecided: stattgegeben, abgelehnt oder "
        "zurückgenommen), im Jahr der Entscheidung.",
        breakdown="Ergebnis",
    )
    channels = totals.channels.get((year, "procedures_processed"), {})
    bases = totals.bases.get((year, "procedures_processed"), {})
    processed = dataclasses.replace(
        processed,
        breakdowns={
            **processed.breakdowns,
            "Eingangsweg": {translated(c): float(n) for c, n in sorted(channels.items())},
            "Rechtsgrundlage": {
                translated(b): float(n) for b, n in sorted(bases.items(), key=_by_count)
            },
        },
    )
    figures.append(processed)
    digital = sorted(DIGITAL_CHANNELS)

    def digital_share(in_year: int) -> float | None:
        by_channel = totals.channels.get((in_year, "procedures_processed"), {})
        part = sum(n for channel, n in by_channel.items() if channel in DIGITAL_CHANNELS)
        return _share(part, sum(by_channel.values()))

    figures.append(
        Figure(
            "digital_share",
            "davon digital eingegangen",
            "percent",
            digital_share(year),
            digital_share(previous),
            "Anteil der bearbeiteten Vorgänge, die über das Kontaktformular oder einen "
            "Online-Antrag eingegangen sind.",
            drill_down=DrillDown(("procedures_processed",), channels=tuple(digital)),
        )
    )
    figures.append(
        counted(
            "entry_procedures",
            "Beteiligung an Einreiseverfahren",
            "entry_procedures",
            "Jedes beantragte Vorabzustimmungsverfahren (§ 31 AufenthV, § 81a AufenthG; "
            "EntryProcedureRequested).",
        )
    )
    figures.append(
        counted(
            "entry_consents_deemed",
            "Zustimmungen zur Visumerteilung durch Schweigen",
            "entry_consents",
            "Jede Zustimmung, die als erteilt gilt, weil die Ausländerbehörde innerhalb der "
            "Frist des § 31 Abs. 1 Satz 3 oder 4 AufenthV nicht widersprochen hat "
            "(EntryConsentDeemedGiven), im Jahr, in dem die Frist endete.",
            kinds=("deemed",),
        )
    )
    figures.append(
        counted(
            "integration_course_entitlements",
            "Berechtigungen zum Integrationskurs",
            "integration_course_entitlements",
            "Jede ausgestellte Berechtigung nach § 44 AufenthG.",
        )
    )
    figures.append(
        counted(
            "integration_course_obligations",
            "Verpflichtungen zum Integrationskurs",
            "integration_course_obligations",
            "Jede auferlegte Verpflichtung nach § 44a AufenthG.",
        )
    )
    figures.append(
        counted(
            "commitment_declarations",
            "Verpflichtungserklärungen",
            "commitment_declarations",
            "Jede unterschriebene und ausgehändigte Verpflichtungserklärung nach § 68 "
            "AufenthG (SignedAndHandedOver).",
        )
    )
    paid = totals.months(year, "commitment_fees_paid", amounts=True)
    refunded = totals.months(year, "commitment_fees_refunded", amounts=True)
    paid_before = totals.months(previous, "commitment_fees_paid", amounts=True)
    refunded_before = totals.months(previous, "commitment_fees_refunded", amounts=True)

    def euros(values: Sequence[float]) -> tuple[float, ...]:
        return tuple(value / 100 for value in values)

    net = euros([a - b for a, b in zip(paid, refunded, strict=True)])
    net_before = euros([a - b for a, b in zip(paid_before, refunded_before, strict=True)])
    figures.append(
        Figure(
            "commitment_fees_eur",
            "Gebühren für Verpflichtungserklärungen (EUR)",
            "eur",
            round(sum(net), 2),
            round(sum(net_before), 2),
            "Bezahlte Gebühren (FeePaid, § 47 Abs. 1 Nr. 12 AufenthV) abzüglich erstatteter "
            "Gebühren (PaymentRefunded), im Jahr der Zahlung bzw. Erstattung.",
            by_month=net,
            previous_by_month=net_before,
            breakdowns={
                "Buchung": {
                    "bezahlt": round(sum(paid) / 100, 2),
                    "erstattet": round(sum(refunded) / 100, 2),
                },
                # How many payments the amounts are made of: the summary says the amount
                # with the number of fees paid, so that the two add up for a reader.
                FEE_PAYMENTS: {
                    "bezahlt": sum(totals.months(year, "commitment_fees_paid")),
                    "erstattet": sum(totals.months(year, "commitment_fees_refunded")),
                },
            },
            drill_down=DrillDown(("commitment_fees_paid", "commitment_fees_refunded")),
            breakdown_units={FEE_PAYMENTS: "count"},
            not_parts=frozenset({"Buchung", FEE_PAYMENTS}),
        )
    )
    figures.append(
        counted(
            "civil_registry_inquiries",
            "Anfragen der Standesämter beantwortet",
            "inquiries_answered",
            "Jede beantwortete Anfrage eines Standesamts (InquiryAnswered).",
            kinds=("civil_registry",),
        )
    )
    figures.append(
        counted(
            "naturalisation_inquiries",
            "Anfragen zur Einbürgerung beantwortet",
            "inquiries_answered",
            "Jede beantwortete Anfrage der Einbürgerungsbehörde (InquiryAnswered).",
            kinds=("naturalisation",),
        )
    )
    # What the office's management looks at besides the published balance.
    received = counted(
        "procedures_received",
        "Vorgänge eingegangen",
        "procedures_received",
        "Jeder eingegangene Vorgang (ProcedureReceived), im Jahr des Eingangs.",
        section="management",
    )
    received_channels = totals.channels.get((year, "procedures_received"), {})
    figures.append(
        dataclasses.replace(
            received,
            breakdowns={
                "Eingangsweg": {
                    translated(c): float(n) for c, n in sorted(received_channels.items())
                }
            },
        )
    )

    def backlog(in_year: int) -> float:
        to_date = totals.to_date
        return float(
            to_date[in_year, "procedures_received"]
            - to_date[in_year, "procedures_processed"]
            - to_date[in_year, "procedures_transferred_open"]
        )

    figures.append(
        Figure(
            "backlog_at_year_end",
            "Offene Vorgänge am Jahresende",
            "count",
            backlog(year),
            backlog(previous),
            "Vorgänge, die bis zum 31.12. (24 Uhr Ortszeit) eingegangen und bis dahin weder "
            "entschieden noch mit der Akte an eine andere Behörde abgegeben waren.",
            drill_down=DrillDown(("procedures_received",), open_at_year_end=True),
            section="management",
        )
    )

    def median(histogram: Mapping[Any, int]) -> float | None:
        return _median(histogram)

    def p90(histogram: Mapping[Any, int]) -> float | None:
        return _percentile(histogram, 0.9)

    for key, label, statistic, how in (
        (
            "days_to_decision_median",
            "Tage vom Eingang bis zur Entscheidung (Median)",
            median,
            "Median (bei gerader Anzahl der Mittelwert der beiden mittleren Werte).",
        ),
        (
            "days_to_decision_p90",
            "Tage vom Eingang bis zur Entscheidung (90. Perzentil)",
            p90,
            "Rangwert (nearest rank).",
        ),
    ):
        figures.append(
            Figure(
                key,
                label,
                "days",
                statistic(totals.days.get((year, "procedures_processed"), {})),
                statistic(totals.days.get((previous, "procedures_processed"), {})),
                "Über die im Jahr entschiedenen Vorgänge: Kalendertage zwischen dem Tag des "
                f"Eingangs und dem Tag der Entscheidung (Ortszeit), {how}",
                drill_down=DrillDown(("procedures_processed",)),
                section="management",
            )
        )
    for key, label, figure, definition in (
        (
            "fiction_certificates_extended",
            "Fiktionsbescheinigungen verlängert",
            "fiction_certificates_extended",
            "Jede Verlängerung einer Fiktionsbescheinigung (FictionCertificateExtended).",
        ),
        (
            "residence_documents_extended",
            "Aufenthaltsdokumente verlängert",
            "residence_documents_extended",
            "Jede Verlängerung eines Aufenthaltsdokuments (ResidenceDocumentExtended).",
        ),
        (
            "residence_documents_transferred",
            "Überträge auf einen neuen Pass",
            "residence_documents_transferred",
            "Jeder Übertrag eines elektronischen Aufenthaltstitels auf eine neue Karte für "
            "einen neuen Pass (EatTransferredToNewPassport): derselbe Titel, kein neuer; "
            "zählt nicht bei den ausgestellten Aufenthaltsdokumenten.",
        ),
        (
            "case_files_opened",
            "Neu angelegte Akten",
            "case_files_opened",
            "Jede neu angelegte Ausländerakte (Opened).",
        ),
    ):
        figures.append(counted(key, label, figure, definition, section="management"))

    def no_show_rate(in_year: int) -> float | None:
        served = sum(totals.months(in_year, "appointments_served"))
        missed = sum(totals.months(in_year, "appointment_no_shows"))
        return _share(missed, served + missed)

    figures.append(
        Figure(
            "no_show_rate",
            "Nicht wahrgenommene Termine (Anteil)",
            "percent",
            no_show_rate(year),
            no_show_rate(previous),
            "Anteil der Termine, zu denen niemand erschien (Appointment.NoShow), an allen "
            "Terminen, die am Schalter wahrgenommen oder als nicht wahrgenommen vermerkt "
            "wurden.",
            drill_down=DrillDown(("appointments_served", "appointment_no_shows")),
            section="management",
        )
    )
    return tuple(figures)


STAFF_DEFINITION: Final = (
    "Aus dem Stellenplan der Behörde (Konfiguration AKTE_STAFF_FILE), in "
    "Vollzeitäquivalenten, Durchschnitt der Monate des Jahres. Tatsächlich anwesend: "
    "Stellen abzüglich unbesetzter Stellen, Krankheit und Urlaub. Ein Jahr ohne Angaben "
    "im Stellenplan ist nicht erfasst."
)


def head_count_figures(office_id: str, year: int, staff: StaffPlan | None) -> list[Figure]:
    """People at work and posts by month, from the staff plan (the press release opens
    with the head count); a year without a month in the plan is not recorded."""

    def months(in_year: int, name: str) -> list[float | None]:
        values: list[float | None] = []
        for month in range(1, 13):
            entry = None if staff is None else staff.month(office_id, in_year, month)
            values.append(None if entry is None else getattr(entry, name))
        return values

    def mean(values: Sequence[float | None]) -> float | None:
        known = [value for value in values if value is not None]
        return round(sum(known) / len(known), 1) if known else None

    def complete(values: Sequence[float | None]) -> tuple[float, ...] | None:
        known = [value for value in values if value is not None]
        return tuple(known) if len(known) == 12 else None

    result = []
    for key, label, name, definition in (
        (
            "staff_at_work",
            "Beschäftigte tatsächlich anwesend (Durchschnitt)",
            "at_work",
            "Beschäftigte, die im Monat tatsächlich arbeiteten. ",
        ),
        ("staff_posts", "Stellen (Durchschnitt)", "posts", "Stellen der Behörde. "),
    ):
        now, before = months(year, name), months(year - 1, name)
        result.append(
            Figure(
                key,
                label,
                "count",
                mean(now),
                mean(before),
                definition + STAFF_DEFINITION,
                by_month=complete(now),
                previous_by_month=complete(before) if complete(now) else None,
            )
        )
    return result


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])


# ---------------------------------------------------------------------- workload

WORKLOAD_KEYS: Final = (
    "workload_actions",
    "workload_decided",
    "workload_backlog_assigned",
    "workload_backlog_age_median",
    "workload_booked_out_weeks",
    "workload_posts",
    "workload_at_work",
    "workload_actions_per_post",
    "workload_actions_per_person_at_work",
    "workload_decided_per_person_at_work",
)
"""The figures of the workload section, in the order they are printed."""


def workload_figures(
    session: ViewsSession, office_id: str, year: int, staff: StaffPlan | None
) -> tuple[Figure, ...]:
    """The workload section of ``year`` (empty while the workload read model is not built):
    actions and decisions per caseworker, the assigned backlog at the year's end and its
    age, the highest "booked out for N weeks", and per post and person at work."""
    # Imported here: the workload model is an addition the report reads if it is there.
    from projections.figures import workload as model

    if not model.built(session):
        return ()
    figures: list[Figure] = []
    per_year = {y: model.monthly_actions(session, office_id, y) for y in (year - 1, year)}

    def months_of(in_year: int, index: int) -> tuple[float, ...]:
        values = [0.0] * 12
        for (month, _actor), counts in per_year[in_year].items():
            values[month - 1] += counts[index]
        return tuple(values)

    def by_actor(index: int) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for (_month, actor), counts in per_year[year].items():
            totals[actor] += counts[index]
        return {actor: value for actor, value in sorted(totals.items()) if value}

    for key, label, index, definition in (
        (
            "workload_actions",
            "Arbeitsschritte der Sachbearbeitung",
            0,
            "Jedes Ereignis einer Akte, gezählt für die Kennung, die es erfasst hat (ohne "
            "Schritte des Online-Portals und der Öffentlichkeit), im Monat des Ereignisses.",
        ),
        (
            "workload_decided",
            "Entschiedene Vorgänge je Bearbeiterin/Bearbeiter",
            1,
            "Jede Entscheidung (ProcedureDecided), gezählt für die Kennung, die entschieden hat.",
        ),
    ):
        months = months_of(year, index)
        before = months_of(year - 1, index)
        figures.append(
            Figure(
                key,
                label,
                "count",
                float(sum(months)),
                float(sum(before)),
                definition,
                by_month=months,
                previous_by_month=before,
                breakdowns={"Je Kennung": by_actor(index)},
                section="workload",
            )
        )
    at_end = {
        y: model.open_at(session, office_id, _berlin_new_year(y + 1)) for y in (year - 1, year)
    }
    per_actor: dict[str, float] = defaultdict(float)
    bands: dict[str, float] = {label: 0.0 for _, _, label in model.AGE_BANDS}
    for actor, age in at_end[year]:
        per_actor[actor] += 1
        bands[model.age_band(age)] += 1
    figures.append(
        Figure(
            "workload_backlog_assigned",
            "Zugewiesene offene Vorgänge am Jahresende",
            "count",
            float(len(at_end[year])),
            float(len(at_end[year - 1])),
            "Vorgänge, die am 31.12. (24 Uhr Ortszeit) einer Kennung zugewiesen und noch nicht "
            "entschieden waren, je Kennung.",
            breakdowns={"Je Kennung": dict(sorted(per_actor.items())), "Alter in Tagen": bands},
            section="workload",
        )
    )

    def median_age(entries: list[tuple[str, int]]) -> float | None:
        ages = sorted(age for _, age in entries)
        if not ages:
            return None
        middle = len(ages) // 2
        return float(ages[middle]) if len(ages) % 2 else (ages[middle - 1] + ages[middle]) / 2

    figures.append(
        Figure(
            "workload_backlog_age_median",
            "Alter der zugewiesenen offenen Vorgänge (Median)",
            "days",
            median_age(at_end[year]),
            median_age(at_end[year - 1]),
            "Über die am Jahresende zugewiesenen, unentschiedenen Vorgänge: Kalendertage seit "
            "dem Eingang.",
            section="workload",
        )
    )
    booked = model.booked_out_by_day(
        session, office_id, datetime(year - 1, 1, 1).date(), datetime(year, 12, 31).date()
    )

    def booked_months(in_year: int) -> list[float | None]:
        highest: list[float | None] = [None] * 12
        for day, (days, _) in booked.items():
            if day.year == in_year and days is not None:
                weeks = float(days // 7)
                current = highest[day.month - 1]
                highest[day.month - 1] = weeks if current is None else max(current, weeks)
        return highest

    now_booked, before_booked = booked_months(year), booked_months(year - 1)
    observed_now = [value for value in now_booked if value is not None]
    observed_before = [value for value in before_booked if value is not None]
    figures.append(
        Figure(
            "workload_booked_out_weeks",
            "Terminvergabe ausgebucht für N Wochen (höchster Wert)",
            "count",
            max(observed_now) if observed_now else None,
            max(observed_before) if observed_before else None,
            "Der höchste Wert der täglichen Beobachtung (akte appointments tick): ganze "
            "Wochen bis zum nächsten freien Termin, über Standorte und Terminarten; je Monat "
            "der höchste des Monats (Monate ohne Beobachtung: 0).",
            by_month=tuple(value or 0.0 for value in now_booked) if observed_now else None,
            section="workload",
        )
    )
    figures.extend(_staff_figures(figures, office_id, year, staff))
    return tuple(figures)


def _berlin_new_year(year: int) -> datetime:
    from projections.figures.statistics import OFFICE_TIME_ZONE

    return datetime(year, 1, 1, tzinfo=OFFICE_TIME_ZONE)


def _staff_figures(
    figures: Sequence[Figure], office_id: str, year: int, staff: StaffPlan | None
) -> list[Figure]:
    """Posts, people at work, and the work per post and per person at work."""
    by_key = {figure.key: figure for figure in figures}
    months = [None if staff is None else staff.month(office_id, year, m) for m in range(1, 13)]
    configured = [month for month in months if month is not None]
    complete = len(configured) == 12
    posts = [None if m is None else m.posts for m in months]
    at_work = [None if m is None else m.at_work for m in months]

    def mean(values: Sequence[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return round(sum(known) / len(known), 1) if known else None

    def per(
        figure_key: str, staff_values: Sequence[float | None]
    ) -> tuple[float | None, tuple[float, ...] | None]:
        counted = by_key[figure_key].by_month or (0.0,) * 12
        pairs = [(c, s) for c, s in zip(counted, staff_values, strict=True) if s]
        if not pairs:
            return None, None
        value = round(sum(c for c, _ in pairs) / (sum(s for _, s in pairs) / len(pairs)), 1)
        monthly = (
            tuple(round(c / s, 1) if s else 0.0 for c, s in zip(counted, staff_values, strict=True))
            if complete
            else None
        )
        return value, monthly

    note = (
        " Aus der Konfiguration der Stellen (AKTE_STAFF_FILE), Vollzeitäquivalente; nicht "
        "konfigurierte Monate bleiben unberücksichtigt."
    )
    result = [
        Figure(
            "workload_posts",
            "Stellen (Durchschnitt)",
            "count",
            mean(posts),
            None,
            "Stellen der Behörde im Monatsdurchschnitt." + note,
            by_month=tuple(float(v or 0) for v in posts) if complete else None,
            section="workload",
        ),
        Figure(
            "workload_at_work",
            "Tatsächlich anwesende Beschäftigte (Durchschnitt)",
            "count",
            mean(at_work),
            None,
            "Beschäftigte, die tatsächlich arbeiten (ohne unbesetzte Stellen, Krankheit, "
            "Urlaub), im Monatsdurchschnitt." + note,
            by_month=tuple(float(v or 0) for v in at_work) if complete else None,
            section="workload",
        ),
    ]
    for key, label, counted, staff_values, what in (
        ("workload_actions_per_post", "Arbeitsschritte je Stelle", "workload_actions", posts,
         "Arbeitsschritte geteilt durch die Stellen"),
        ("workload_actions_per_person_at_work", "Arbeitsschritte je anwesender Person",
         "workload_actions", at_work, "Arbeitsschritte geteilt durch die anwesenden Beschäftigten"),
        ("workload_decided_per_person_at_work", "Entschiedene Vorgänge je anwesender Person",
         "workload_decided", at_work, "Entscheidungen geteilt durch die anwesenden Beschäftigten"),
    ):  # fmt: skip
        value, monthly = per(counted, staff_values)
        result.append(
            Figure(
                key,
                label,
                "count",
                value,
                None,
                f"{what} (je Monat; im Jahr: Summe geteilt durch den Monatsdurchschnitt).{note}",
                by_month=monthly,
                section="workload",
            )
        )
    return result
