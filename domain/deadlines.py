"""Legal deadlines as data: which event starts a period, how long it runs, on which
calendar it is counted, what happens when it passes, and where the rule comes from.

Pure: no clock, no holiday data. Public holidays differ by state, so the caller passes a
:class:`HolidayCalendar` (the office's national and state holidays; the adapter
``adapters/reference/office_holidays.py`` builds one from the ``holidays`` library).

Counting follows §§ 187-193 BGB, which § 31 Abs. 1 VwVfG applies to the periods of
administrative procedures: the day of the starting event is not counted (§ 187 Abs. 1
BGB); a period of weeks ends on the weekday of the start, so many weeks later (§ 188
Abs. 2 BGB); a period that ends on a Saturday, Sunday or public holiday ends on the next
working day instead (§ 193 BGB, § 31 Abs. 3 VwVfG), where the rule says so
(:attr:`DeadlineRule.rolls_forward`). A period ends at the end of its last day: it has
*passed* on the day after (:func:`has_passed`).

Calendars: ``calendar_days`` and ``weeks`` count every day; ``working_days`` count
Monday to Friday; ``werktage`` count Monday to Saturday (the legal "Werktag", which
includes Saturday); both skip the office's public holidays. ``dated``: the event itself
names the last day (a due date, a ``valid_until``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final, Literal, Protocol
from uuid import NAMESPACE_URL, uuid5
from zoneinfo import ZoneInfo

from eventsourcing.domain import Aggregate

from domain.acts import Act
from domain.errors import RuleViolation
from domain.values import LawfulEvent

Unit = Literal["calendar_days", "weeks", "working_days", "werktage"]
Calendar = Literal["calendar_days", "weeks", "working_days", "werktage", "dated"]

_SATURDAY: Final = 5
_SUNDAY: Final = 6


class HolidayCalendar(Protocol):
    """The public holidays that count at the office: national ones and its state's."""

    def is_holiday(self, day: date) -> bool: ...


class NoHolidays:
    """A calendar without public holidays (weekends still count as weekends)."""

    def is_holiday(self, day: date) -> bool:
        return False


class DeadlineNotPassed(RuleViolation):
    """A deadline's effect is recorded before its period has run out."""

    code = "deadline-not-passed"


class DeadlineRuleNotApplicable(RuleViolation):
    """A deadline rule is applied to something it does not govern."""

    code = "deadline-rule-not-applicable"


@dataclass(frozen=True)
class Source:
    """Where a rule comes from: the provision, its operative words (in short), and where
    they were read, so that a reviewer can check the rule against the law text."""

    provision: str
    wording: str
    read_at: str


@dataclass(frozen=True)
class PeriodPart:
    amount: int
    unit: Unit


@dataclass(frozen=True)
class DeadlineRule:
    code: str
    """Stable code, recorded in events (``rule``); never reuse one for another rule."""
    title: str
    legal_basis: str
    starts_with: str
    """The event (``CaseFile.<Event>``) whose business date starts the period."""
    period: tuple[PeriodPart, ...]
    """Empty for ``dated`` rules: the starting event names the last day (:attr:`end_field`)."""
    calendar: Calendar
    effect: str
    """What happens when the period passes."""
    source: Source
    end_field: str | None = None
    """The starting event's field that names the last day (``dated`` rules)."""
    rolls_forward: bool = False
    """Whether an end on a Saturday, Sunday or holiday moves to the next working day."""
    applies_to: frozenset[str] | None = None
    """The legal bases (codes) of the things it governs; None: every one."""
    conditions: str = ""
    """What must hold besides, in words (what the records cannot show)."""

    def applies(self, legal_basis: str) -> bool:
        return self.applies_to is None or legal_basis in self.applies_to

    def ends_on(self, start: date, holidays: HolidayCalendar) -> date:
        """The last day of the period started on ``start`` (the event's business date)."""
        if not self.period:
            msg = f"rule {self.code} is dated: its end is the event's {self.end_field}"
            raise ValueError(msg)
        end = start
        for part in self.period:
            end = add(end, part.amount, part.unit, holidays)
        if self.rolls_forward:
            end = next_working_day_from(end, holidays)
        return end

    def earliest_end(self, start: date) -> date:
        """The last day without any public holiday: holidays can only make it later, so
        this bounds the real end from below without knowing the office's state."""
        return self.ends_on(start, NoHolidays())


def is_working_day(day: date, holidays: HolidayCalendar) -> bool:
    """Monday to Friday and not a public holiday."""
    return day.weekday() < _SATURDAY and not holidays.is_holiday(day)


def is_werktag(day: date, holidays: HolidayCalendar) -> bool:
    """Monday to Saturday and not a public holiday (the legal "Werktag")."""
    return day.weekday() != _SUNDAY and not holidays.is_holiday(day)


def add(start: date, amount: int, unit: Unit, holidays: HolidayCalendar) -> date:
    """The day ``amount`` units after ``start`` (``start`` itself is not counted)."""
    if amount < 0:
        msg = "a period is not negative"
        raise ValueError(msg)
    if unit == "calendar_days":
        return start + timedelta(days=amount)
    if unit == "weeks":
        return start + timedelta(weeks=amount)
    counts = is_working_day if unit == "working_days" else is_werktag
    day = start
    counted = 0
    while counted < amount:
        day += timedelta(days=1)
        if counts(day, holidays):
            counted += 1
    return day


def next_working_day_from(day: date, holidays: HolidayCalendar) -> date:
    """``day`` if it is a working day, else the next one (§ 193 BGB)."""
    while not is_working_day(day, holidays):
        day += timedelta(days=1)
    return day


LEGAL_TIME_ZONE: Final = ZoneInfo("Europe/Berlin")
"""German periods are counted in German calendar days: an application at 00:30 in Berlin
(22:30 UTC the day before) was made on the Berlin day."""


def legal_day(at: datetime) -> date:
    """The calendar day in Germany on which the instant ``at`` falls: the day an event
    happened for the law (the day a period counts from, § 187 Abs. 1 BGB; the day an
    application was made), whatever the clock's or the server's time zone."""
    return at.astimezone(LEGAL_TIME_ZONE).date()


def has_passed(last_day: date, today: date) -> bool:
    """A period has passed once its last day is over."""
    return today > last_day


AUFENTHV_31_SOURCE: Final = Source(
    provision="§ 31 Abs. 1 Satz 3 und 4 AufenthV",
    wording=(
        "Satz 3: in the case of Satz 1 Nr. 3 the consent counts as given (gilt als "
        "erteilt) unless the foreigners' office objects to the visa within ten days of "
        "the transmission of the visa application's data, or tells the mission within "
        "that time that its check will not be finished within it. Satz 4: the same "
        "applies to applications for a visa for study, with the proviso that the period "
        "is three weeks and two Werktage (drei Wochen und zwei Werktage)."
    ),
    read_at=(
        "buzer.de, § 31 AufenthV, change of 28.08.2007 (Art. 7 G. v. 19.08.2007, BGBl. I "
        "S. 1970), text of the new version; the 2024 consolidated text (buzer.de/"
        "31_AufenthV.htm, lxgesetze.de/aufenthv/31) was read for Satz 1 only; AVwV-"
        "AufenthG 16.1.1.3 (yumpu.com copy) names the same silence period of three weeks "
        "and two days. To be checked against gesetze-im-internet.de before relying on it."
    ),
)

DEEMED_ENTRY_CONSENT: Final = DeadlineRule(
    code="aufenthv-31-deemed-consent",
    title="Deemed consent to a visa (Schweigefrist)",
    legal_basis="aufenthv-31",
    starts_with="CaseFile.EntryProcedureRequested",
    period=(PeriodPart(3, "weeks"), PeriodPart(2, "werktage")),
    calendar="werktage",
    rolls_forward=True,
    effect=(
        "the office's consent to the visa counts as given (EntryConsentDeemedGiven); it "
        "can no longer be refused"
    ),
    source=AUFENTHV_31_SOURCE,
    applies_to=frozenset({"aufenthv-31"}),
    conditions=(
        "Only where the silence procedure applies (§ 31 Abs. 1 Satz 3, 4 AufenthV: the "
        "mission transmitted the application's data and the office neither objected nor "
        "said its check takes longer). The entry procedure records the legal basis only, "
        "so every undecided § 31 AufenthV procedure is taken to be under it; the period "
        "of three weeks and two Werktage (Satz 4) is used. § 81a AufenthG pre-approvals "
        "have no deemed consent."
    ),
)

ENTRY_CONSENT_VALIDITY: Final = DeadlineRule(
    code="entry-consent-validity",
    title="Validity of an entry consent",
    legal_basis="aufenthv-31",
    starts_with="CaseFile.EntryConsentGiven",
    period=(),
    end_field="valid_until",
    calendar="dated",
    effect="the consent lapses; a visa needs a new consent",
    source=Source(
        provision="§ 31 Abs. 3 AufenthV (Vorabzustimmung), § 81a Abs. 3 AufenthG",
        wording=(
            "the office gives its consent before the visa application; the office sets "
            "how long it holds (valid_until)"
        ),
        read_at=(
            "DESIGN.md (domain table: consent given (valid until)); domain/case_file.py "
            "CaseFile.give_entry_consent"
        ),
    ),
)

DOCUMENT_REQUEST_DUE: Final = DeadlineRule(
    code="document-request-due",
    title="Due date of a document request",
    legal_basis="vwvfg-26",
    starts_with="CaseFile.DocumentsRequested",
    period=(),
    end_field="due_on",
    calendar="dated",
    effect="the procedure is overdue; the office may decide on the records it has",
    source=Source(
        provision="§ 82 Abs. 1 Satz 2-4 AufenthG, § 26 Abs. 2 VwVfG",
        wording=(
            "the office may set a reasonable period for the facts and proofs; what comes "
            "after it may be left aside"
        ),
        read_at="domain/case_file.py CaseFile.request_documents (due_on)",
    ),
)

FICTION_CERTIFICATE_END: Final = DeadlineRule(
    code="fiction-certificate-end",
    title="End of a Fiktionsbescheinigung",
    legal_basis="aufenthg-81",
    starts_with="CaseFile.FictionCertificateIssued",
    period=(),
    end_field="valid_until",
    calendar="dated",
    effect=(
        "the certificate runs out: extend it or decide (the fiction itself lasts until "
        "the decision)"
    ),
    source=Source(
        provision="§ 81 Abs. 3, 4, 5 AufenthG, Anlage D3 AufenthV",
        wording="the certificate attests the fiction for the time it names (valid until)",
        read_at=(
            "DESIGN.md (Fiktionsbescheinigung lifecycle); domain/case_file.py "
            "CaseFile.issue_fiction_certificate, extend_fiction_certificate"
        ),
    ),
)

RULES: Final[tuple[DeadlineRule, ...]] = (
    DEEMED_ENTRY_CONSENT,
    ENTRY_CONSENT_VALIDITY,
    DOCUMENT_REQUEST_DUE,
    FICTION_CERTIFICATE_END,
)

RULES_BY_CODE: Final = {rule.code: rule for rule in RULES}


class DeadlineCursor(Aggregate):
    """How far the deadline tick has read the log: below this position no entry
    procedure waits for its deemed consent any more. Written only by the tick."""

    def __init__(self) -> None:
        self.position: int = 0

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Started(Event, Aggregate.Created):
        def apply(self, cursor: DeadlineCursor) -> None:
            cursor.position = 0

    class Advanced(Event):
        position: int

        def apply(self, cursor: DeadlineCursor) -> None:
            cursor.position = self.position

    ID: Final = uuid5(NAMESPACE_URL, "akte:deadline-cursor")

    @classmethod
    def start(cls, act: Act) -> DeadlineCursor:
        return cls._create(cls.Started, id=cls.ID, by=act.by, at=act.at, timestamp=act.recorded_at)

    def advance(self, position: int, act: Act) -> None:
        if position > self.position:
            self.trigger_event(
                self.Advanced, by=act.by, at=act.at, timestamp=act.recorded_at, position=position
            )
