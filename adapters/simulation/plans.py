"""The plans of a simulated year: which stories happen on which working days.

The counted event of every target figure (a decision, an issued document, a handover
...) is planned on a day of its year, so the figures hit their targets exactly; what
leads up to it or follows it may lie in another year. The shares below are how the
office works (topics, channels, outcomes, documents, appointments).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from adapters.reference.catalogue import Catalogue
from adapters.simulation.calendar import (
    ARRIVALS,
    QUIET_DAYS,
    SEASON,
    STUDENT_ARRIVALS,
    DayPicker,
    WorkingCalendar,
)
from adapters.simulation.fictitious_people import weighted
from adapters.simulation.staff import PRESENCE
from domain.values import (
    Channel,
    DecisionOutcome,
    FictionKind,
    InquiryKind,
    ResidenceDocumentKind,
)

_QUICK_TOPICS: Final = frozenset(
    {
        "general_question",
        "change_of_address",
        "eat_pickup",
        "non_expiry_certificate",
        "naturalisation_inquiry",
        "commitment_declaration",
        "lost_document",
        "integration_course",
    }
)
# Shares of the year's procedures by contact topic (per mille), from what offices report
# of their contact forms: renewals lead, pick-ups and address changes follow.
_TOPIC_WEIGHTS: Final[tuple[tuple[str, int], ...]] = (
    ("extend_residence_permit", 220),
    ("change_of_address", 100),
    ("eat_pickup", 80),
    ("first_title_after_entry", 60),
    ("extend_gestattung_duldung", 60),
    ("transfer_eat_new_passport", 40),
    ("fiction_certificate", 40),
    ("settlement_permit", 40),
    ("family_reunion", 40),
    ("employer_change", 40),
    ("change_of_purpose", 30),
    ("temporary_protection_ukraine", 30),
    ("student_permit", 30),
    ("general_question", 30),
    ("blue_card", 20),
    ("lost_document", 20),
    ("residence_obligation_change", 20),
    ("humanitarian_title_after_bamf", 20),
    ("naturalisation_inquiry", 20),
    ("commitment_declaration", 10),
    ("child_born_in_germany", 10),
    ("job_search_after_studies", 10),
    ("non_expiry_certificate", 10),
    ("visa_extension", 10),
    ("integration_course", 10),
)
_NEW_PERSON_TOPICS: Final = frozenset(
    {
        "first_title_after_entry",
        "blue_card",
        "family_reunion",
        "child_born_in_germany",
        "temporary_protection_ukraine",
        "visa_extension",
    }
)
# "Most of them digitally": the contact form opens most procedures.
_CHANNEL_WEIGHTS: Final[tuple[tuple[Channel, int], ...]] = (
    ("contact_form", 50),
    ("online_application", 25),
    ("appointment", 15),
    ("mail", 10),
)
_TOLERATION_CHANNELS: Final[tuple[tuple[Channel, int], ...]] = (
    ("appointment", 55),
    ("contact_form", 25),
    ("mail", 20),
)
_REST_OUTCOMES: Final[tuple[tuple[DecisionOutcome, int], ...]] = (
    ("granted", 82),
    ("refused", 6),
    ("withdrawn", 12),
)
_PURPOSE_BASES: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    # purpose: (topic, legal basis) of a first title; new titles split ~45/30/25.
    "family": (
        ("family_reunion", "aufenthg-30"),
        ("family_reunion", "aufenthg-30"),
        ("family_reunion", "aufenthg-32"),
        ("family_reunion", "aufenthg-28-1"),
        ("family_reunion", "aufenthg-36"),
        ("first_title_after_entry", "aufenthg-30"),
        ("first_title_after_entry", "aufenthg-28-1"),
        ("child_born_in_germany", "aufenthg-33"),
    ),
    "employment": (
        ("first_title_after_entry", "aufenthg-18b"),
        ("first_title_after_entry", "aufenthg-18a"),
        ("first_title_after_entry", "aufenthg-19c"),
        ("first_title_after_entry", "aufenthg-20a"),
        ("first_title_after_entry", "aufenthg-21"),
        ("blue_card", "aufenthg-18g"),
        ("blue_card", "aufenthg-18g"),
    ),
    "education": (
        ("first_title_after_entry", "aufenthg-16b"),
        ("first_title_after_entry", "aufenthg-16b"),
        ("first_title_after_entry", "aufenthg-16b"),
        ("first_title_after_entry", "aufenthg-16a"),
    ),
}
_PURPOSES: Final = (("family", 45), ("employment", 30), ("education", 25))
_EDUCATION_BASES: Final = frozenset(
    {"aufenthg-16a", "aufenthg-16b", "aufenthg-16d", "aufenthg-16f", "aufenthg-17"}
)
# eATs issued, by the kind of procedure that issues them.
_EAT_KINDS: Final = (
    ("new", 38),
    ("humanitarian", 6),
    ("ukraine", 6),
    ("extension", 30),
    ("change", 8),
    ("settlement", 12),
)
_EAT_PLANS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "humanitarian": (
        ("humanitarian_title_after_bamf", "aufenthg-25-2-1"),
        ("humanitarian_title_after_bamf", "aufenthg-25-2-1"),
        ("humanitarian_title_after_bamf", "aufenthg-25-2-2"),
        ("humanitarian_title_after_bamf", "aufenthg-25-1"),
    ),
    "ukraine": (("temporary_protection_ukraine", "aufenthg-24"),),
    "extension": (
        ("extend_residence_permit", "aufenthg-18b"),
        ("extend_residence_permit", "aufenthg-30"),
        ("extend_residence_permit", "aufenthg-28-1"),
        ("extend_residence_permit", "aufenthg-25-2-1"),
        ("extend_residence_permit", "aufenthg-18g"),
        ("extend_residence_permit", "aufenthg-32"),
        ("student_permit", "aufenthg-16b"),
        ("student_permit", "aufenthg-16b"),
    ),
    "change": (
        ("change_of_purpose", "aufenthg-18b"),
        ("change_of_purpose", "aufenthg-18a"),
        ("change_of_purpose", "aufenthg-20"),
        ("job_search_after_studies", "aufenthg-20"),
    ),
    "settlement": (
        ("settlement_permit", "aufenthg-9"),
        ("settlement_permit", "aufenthg-9"),
        ("settlement_permit", "aufenthg-9a"),
        ("settlement_permit", "aufenthg-18c-2"),
        ("settlement_permit", "aufenthg-26-3"),
        ("settlement_permit", "aufenthg-28-2"),
    ),
}
_FIRST_TITLE_KINDS: Final = frozenset({"new", "humanitarian", "ukraine"})
_EAT_MONTHS: Final[dict[str, tuple[int, ...]]] = {
    "new": (12, 24, 24, 36),
    "humanitarian": (12, 36, 36),
    "ukraine": (12, 24),
    "extension": (12, 24, 24, 36),
    "change": (18, 24, 36),
    "settlement": (120,),
}
_DOCUMENT_SHARES: Final = (("eat", 78), ("duldung", 13), ("aufenthaltsgestattung", 9))
_DULDUNG_BASES: Final = (("aufenthg-60a", 80), ("aufenthg-60c", 12), ("aufenthg-60d", 8))
_FICTION_TOPICS: Final[dict[str, tuple[tuple[FictionKind, int], ...]]] = {
    "extend_residence_permit": (("81_4", 1),),
    "student_permit": (("81_4", 1),),
    "settlement_permit": (("81_4", 1),),
    "change_of_purpose": (("81_4", 1),),
    "job_search_after_studies": (("81_4", 1),),
    "fiction_certificate": (("81_4", 1),),
    "visa_extension": (("81_4", 1),),
    "temporary_protection_ukraine": (("81_3_1", 1),),
    "first_title_after_entry": (("81_3_1", 55), ("81_4", 40), ("81_3_2", 5)),
    "blue_card": (("81_4", 1),),
    "family_reunion": (("81_3_1", 50), ("81_4", 45), ("81_3_2", 5)),
}


# Appointments: the citizens' office of the foreigners' authority serves procedures and
# questions; cards are handed out at a counter of their own, in short slots.
MAIN_POINT: Final = "buergerbuero"
PICKUP_POINT: Final = "ausgabe"
MAIN_TOPICS: Final = (
    "extend_residence_permit",
    "first_title_after_entry",
    "extend_gestattung_duldung",
    "settlement_permit",
    "family_reunion",
    "blue_card",
    "change_of_address",
    "transfer_eat_new_passport",
    "employer_change",
    "change_of_purpose",
    "student_permit",
    "lost_document",
    "temporary_protection_ukraine",
    "humanitarian_title_after_bamf",
    "fiction_certificate",
    "general_question",
    "naturalisation_inquiry",
    "commitment_declaration",
)
# Shares of the appointments served: procedures received at the counter, certificates
# issued and cards handed over at an appointment. The rest (some three quarters) are
# planned as bookings without a case file; the visits for extensions and transfers,
# booked days ahead as they come due, take most of their seats (stories.py), so the
# year's count stays exact: renewals are most of what a foreigners' office's counter
# sees.
_RECEIPT_SHARE: Final = 0.10
_FICTION_VISIT_SHARE: Final = 0.06
_PICKUP_SHARE: Final = 0.10
_NO_SHOW_SHARES: Final = (0.08, 0.12)
MAX_DURATION: Final = 150
"""Working days from receipt to decision, at most."""
MAX_LEAD: Final = 15
"""Working days a booking is made ahead, at most (the calendar releases six weeks)."""


@dataclass(slots=True)
class ProcedurePlan:
    seed: int
    topic: str
    channel: Channel
    basis: str | None
    """Legal basis given at receipt."""
    decision_basis: str | None
    outcome: DecisionOutcome
    receive_day: int
    decide_day: int
    new_person: bool
    start: int = 0
    document: ResidenceDocumentKind | None = None
    document_basis: str = ""
    document_months: int = 12
    fiction: FictionKind | None = None
    fiction_day: int = 0
    entitlement: bool = False
    obligation: bool = False
    first_title: bool = False
    visit_lead: int = 0
    """Received at a booked appointment, booked this many working days before; 0: not."""
    fiction_visit: bool = False
    """The certificate is issued at an appointment booked when the procedure came in."""
    pickup_day: int = 0
    """The eAT card is handed over at an appointment on this day; 0: without one."""


@dataclass(slots=True)
class EntryPlan:
    seed: int
    request_day: int
    start: int = 0


@dataclass(slots=True)
class DeclarationPlan:
    seed: int
    submit_day: int
    check_day: int
    handover_day: int | None
    """None: never handed over (ability not shown, or withdrawn)."""
    start: int = 0


@dataclass(slots=True)
class InquiryPlan:
    seed: int
    kind: InquiryKind
    receive_day: int
    answer_day: int
    start: int = 0


Standalone = Literal["eat", "fiction", "entitlement", "obligation"]


@dataclass(slots=True)
class StandalonePlan:
    """A counted event without a procedure to hang it on (only at tiny scales)."""

    seed: int
    what: Standalone
    day: int
    start: int = 0


@dataclass(slots=True)
class AppointmentPlan:
    """A booking that hangs on no procedure: a question at the counter, or a no-show."""

    seed: int
    day: int
    book_day: int
    attends: bool
    start: int = 0
    cancelled: bool = False
    """Its seat went to a visit for an extension (the year's count stays exact)."""


Plan = ProcedurePlan | EntryPlan | DeclarationPlan | InquiryPlan | StandalonePlan | AppointmentPlan


def first_day_of(plan: Plan) -> int:
    """The working day a plan's story begins on."""
    if isinstance(plan, ProcedurePlan):
        return plan.receive_day
    if isinstance(plan, EntryPlan):
        return plan.request_day
    if isinstance(plan, DeclarationPlan):
        return plan.submit_day
    if isinstance(plan, InquiryPlan):
        return plan.receive_day
    if isinstance(plan, AppointmentPlan):
        return plan.book_day
    return plan.day


class YearPlanner:
    """Plans the stories of a year against its targets (the same for the same draws)."""

    def __init__(self, catalogue: Catalogue, calendar: WorkingCalendar) -> None:
        self.catalogue = catalogue
        self.calendar = calendar
        self._fictions_short = 0
        self._entitlements_short = 0
        self._obligations_short = 0

    def plan_year(
        self, rng: random.Random, year: int, target: Mapping[str, int], *, tail: bool
    ) -> list[Plan]:
        """The stories whose counted events fall in ``year``.

        ``tail``: the year after the last simulated one; appointments are not planned.
        """
        calendar = self.calendar
        general = DayPicker(calendar, year, SEASON)
        year_first, _year_last = calendar.span(year)
        plans: list[Plan] = []
        procedures = self._plan_procedures(rng, target, year_first)
        plans.extend(procedures)
        plans.extend(self._plan_standalone(rng, target, procedures, general))
        for _ in range(target["entry_procedures"]):
            plans.append(EntryPlan(rng.getrandbits(64), general.draw(rng)))
        plans.extend(self._plan_declarations(rng, target["commitment_declarations"], general))
        if not tail:
            plans.extend(self._plan_appointments(rng, target, procedures, general, year))
        inquiries: tuple[tuple[InquiryKind, str], ...] = (
            ("civil_registry", "civil_registry_inquiries"),
            ("naturalisation", "naturalisation_inquiries"),
        )
        for kind, figure in inquiries:
            for _ in range(target[figure]):
                answer_day = general.draw(rng)
                plans.append(
                    InquiryPlan(
                        rng.getrandbits(64), kind, answer_day - rng.randint(1, 15), answer_day
                    )
                )
        return plans

    def _plan_procedures(
        self,
        rng: random.Random,
        target: Mapping[str, int],
        year_first: int,
    ) -> list[ProcedurePlan]:
        total = target["procedures_processed"]
        anchors = min(target["residence_documents_issued"], total)
        kinds = [weighted(rng, _DOCUMENT_SHARES) for _ in range(anchors)]
        plans: list[ProcedurePlan] = []
        for kind in kinds:
            if kind == "eat":
                plans.append(self._eat_anchor(rng))
            elif kind == "duldung":
                basis = weighted(rng, _DULDUNG_BASES)
                plans.append(
                    self._procedure(
                        rng, "extend_gestattung_duldung", basis, "granted", document="duldung"
                    )
                )
                plans[-1].document_months = rng.choice((3, 3, 6))
            else:
                plans.append(
                    self._procedure(
                        rng,
                        "extend_gestattung_duldung",
                        "asylg-55",
                        "granted",
                        document="aufenthaltsgestattung",
                    )
                )
                plans[-1].document_months = rng.choice((3, 6))
        for _ in range(total - anchors):
            topic = weighted(rng, _TOPIC_WEIGHTS)
            plans.append(self._procedure(rng, topic, None, weighted(rng, _REST_OUTCOMES)))
        rng.shuffle(plans)
        year = self.calendar.days[year_first].year
        arrivals = DayPicker(self.calendar, year, ARRIVALS, lead=MAX_DURATION, quiet=QUIET_DAYS)
        student_arrivals = DayPicker(
            self.calendar, year, STUDENT_ARRIVALS, lead=MAX_DURATION, quiet=QUIET_DAYS
        )
        for plan in plans:
            education = plan.basis in _EDUCATION_BASES or plan.topic == "student_permit"
            self._arrive(rng, plan, student_arrivals if education else arrivals)
        # Certificates are issued when the application comes in: on arrival days.
        in_the_year = DayPicker(self.calendar, year, ARRIVALS, quiet=QUIET_DAYS)
        self._plan_fictions(
            rng, plans, target["fiction_certificates_issued"], year_first, in_the_year
        )
        self._plan_integration(rng, plans, target)
        return plans

    def _eat_anchor(self, rng: random.Random) -> ProcedurePlan:
        kind = weighted(rng, _EAT_KINDS)
        if kind == "new":
            topic, basis = rng.choice(_PURPOSE_BASES[weighted(rng, _PURPOSES)])
        else:
            topic, basis = rng.choice(_EAT_PLANS[kind])
        plan = self._procedure(rng, topic, basis, "granted", document="eat")
        plan.document_months = rng.choice(_EAT_MONTHS[kind])
        plan.first_title = kind in _FIRST_TITLE_KINDS
        return plan

    def _procedure(
        self,
        rng: random.Random,
        topic: str,
        basis: str | None,
        outcome: DecisionOutcome,
        *,
        document: ResidenceDocumentKind | None = None,
    ) -> ProcedurePlan:
        bases = self.catalogue.contact_topics[topic].legal_bases
        if basis is None and bases:
            if topic == "first_title_after_entry":
                basis = rng.choice(_PURPOSE_BASES[weighted(rng, _PURPOSES)])[1]
            else:
                basis = rng.choice(bases)
        channel = weighted(
            rng,
            _TOLERATION_CHANNELS if topic == "extend_gestattung_duldung" else _CHANNEL_WEIGHTS,
        )
        # A contact form often leaves the legal basis open; the decision names it.
        given = basis if basis is None or document is not None or rng.random() < 0.75 else None
        decision_basis: str | None = None
        if outcome == "granted" and basis is not None and (given is None or rng.random() < 0.6):
            decision_basis = basis
        return ProcedurePlan(
            seed=rng.getrandbits(64),
            topic=topic,
            channel=channel,
            basis=given,
            decision_basis=decision_basis,
            outcome=outcome,
            receive_day=0,
            decide_day=0,
            new_person=topic in _NEW_PERSON_TOPICS,
            document=document,
            document_basis=basis or "",
        )

    def _arrive(self, rng: random.Random, plan: ProcedurePlan, arrivals: DayPicker) -> None:
        """The plan's receipt and decision: the application arrives by the season
        (``arrivals``) and is decided after its duration, later where the desk is empty
        then (the staff plan's presence: more people away in summer and at Christmas, so
        decisions wait for them); drawn again until the decision falls in the year, so
        the year's procedures processed stay exact."""
        busiest = max(PRESENCE)
        while True:
            receive = arrivals.draw(rng)
            decide = receive + self._duration(rng, plan.topic)
            month = self.calendar.days[min(decide, arrivals.last)].month
            if rng.random() * busiest >= PRESENCE[month - 1]:
                decide += rng.randint(5, 15)  # back from leave, the caseworker decides
            if arrivals.year_first <= decide <= arrivals.last:
                plan.receive_day, plan.decide_day = receive, decide
                return

    @staticmethod
    def _duration(rng: random.Random, topic: str) -> int:
        """Working days from receipt to decision."""
        if topic in _QUICK_TOPICS:
            return rng.randint(0, 8)
        draw = rng.random()
        if draw < 0.55:
            return rng.randint(1, 20)
        if draw < 0.88:
            return rng.randint(20, 55)
        return rng.randint(55, MAX_DURATION)

    def _plan_fictions(
        self,
        rng: random.Random,
        plans: list[ProcedurePlan],
        count: int,
        year_first: int,
        picker: DayPicker,
    ) -> None:
        """Certificates issued when the application comes in, spread over the year as
        applications are (no pile-up in January): for each certificate a day of the
        year is drawn, and a pending procedure decided after it is received then."""
        eligible = sorted(
            (p for p in plans if p.topic in _FICTION_TOPICS and p.decide_day - year_first >= 2),
            key=lambda p: p.decide_day,
        )
        others = sorted(
            (p for p in plans if p.topic not in _FICTION_TOPICS and p.decide_day - year_first >= 2),
            key=lambda p: p.decide_day,
        )
        # Their decision days, sorted as they are, taken once: looked up for every
        # certificate (a list built per lookup made a state's year quadratic).
        eligible_decided = [p.decide_day for p in eligible]
        others_decided = [p.decide_day for p in others]
        taken: set[int] = set()
        chosen = 0
        for _ in range(count):
            plan = self._pending_on(
                rng, eligible, eligible_decided, picker.draw(rng), taken
            ) or self._pending_on(rng, others, others_decided, picker.draw(rng), taken)
            if plan is None:
                break
            taken.add(id(plan))
            chosen += 1
            kinds = _FICTION_TOPICS.get(plan.topic, (("81_4", 1),))
            plan.fiction = weighted(rng, kinds)
        # Fewer procedures than certificates (tiny scales): the rest stand alone.
        self._fictions_short = count - chosen

    @staticmethod
    def _pending_on(
        rng: random.Random,
        plans: list[ProcedurePlan],
        decided: list[int],
        day: int,
        taken: set[int],
    ) -> ProcedurePlan | None:
        """A plan decided after ``day`` (within some 11 months), now received on ``day``
        or a few days before, its certificate issued on ``day``. ``decided``: the plans'
        decision days, in their order (by decision day)."""
        low = bisect.bisect_right(decided, day)
        high = bisect.bisect_right(decided, day + 235)
        if low >= high:
            low, high = bisect.bisect_right(decided, day), len(plans)
        for attempt in range(12):
            if low >= high:
                return None
            plan = plans[rng.randrange(low, high)] if attempt < 11 else None
            if plan is None:
                free = [p for p in plans[low:high] if id(p) not in taken]
                if not free:
                    return None
                plan = rng.choice(free)
            if id(plan) in taken:
                continue
            plan.receive_day = day - rng.randint(0, 4)
            plan.fiction_day = day
            return plan
        return None

    def _plan_integration(
        self, rng: random.Random, plans: list[ProcedurePlan], target: Mapping[str, int]
    ) -> None:
        """Entitlements (and some obligations) with the first titles of the year."""
        wanted = target["integration_course_entitlements"]
        first = [p for p in plans if p.first_title and p.topic != "child_born_in_germany"]
        chosen = rng.sample(first, min(wanted, len(first)))
        if len(chosen) < wanted:
            taken = {id(p) for p in chosen}
            others = [p for p in plans if p.outcome == "granted" and id(p) not in taken]
            chosen += rng.sample(others, min(wanted - len(chosen), len(others)))
        for plan in chosen:
            plan.entitlement = True
        self._entitlements_short = wanted - len(chosen)
        obliged = target["integration_course_obligations"]
        picked = rng.sample(chosen, min(obliged, len(chosen)))
        if len(picked) < obliged:
            taken = {id(p) for p in picked}
            others = [p for p in plans if p.outcome == "granted" and id(p) not in taken]
            picked += rng.sample(others, min(obliged - len(picked), len(others)))
        for plan in picked:
            plan.obligation = True
        self._obligations_short = obliged - len(picked)

    def _plan_standalone(
        self,
        rng: random.Random,
        target: Mapping[str, int],
        procedures: list[ProcedurePlan],
        general: DayPicker,
    ) -> list[StandalonePlan]:
        plans: list[StandalonePlan] = []
        documents = target["residence_documents_issued"] - len(procedures)
        for _ in range(max(documents, 0)):
            plans.append(StandalonePlan(rng.getrandbits(64), "eat", general.draw(rng)))
        shortfalls: tuple[tuple[Standalone, int], ...] = (
            ("fiction", self._fictions_short),
            ("entitlement", self._entitlements_short),
            ("obligation", self._obligations_short),
        )
        for what, count in shortfalls:
            for _ in range(count):
                plans.append(StandalonePlan(rng.getrandbits(64), what, general.draw(rng)))
        return plans

    def _plan_declarations(
        self, rng: random.Random, count: int, general: DayPicker
    ) -> list[DeclarationPlan]:
        plans = []
        for _ in range(count):
            handover = general.draw(rng)
            check = handover - rng.randint(2, 10)
            plans.append(
                DeclarationPlan(rng.getrandbits(64), check - rng.randint(1, 8), check, handover)
            )
        # Some never get signed: the ability to pay is not shown, or the visit is off.
        for _ in range(round(count * 0.04)):
            check = general.draw(rng)
            plans.append(
                DeclarationPlan(rng.getrandbits(64), check - rng.randint(1, 8), check, None)
            )
        return plans

    def _plan_appointments(
        self,
        rng: random.Random,
        target: Mapping[str, int],
        procedures: list[ProcedurePlan],
        general: DayPicker,
        year: int,
    ) -> list[AppointmentPlan]:
        """Appointments served in ``year``, exactly the target: hung on procedures where
        the visit certainly falls in the year, the rest without a case file; and the
        no-shows beside them."""
        served = target["appointments_served"]
        if served == 0:
            return []
        year_first, year_last = self.calendar.span(year)
        hooked = 0

        def pick(candidates: list[ProcedurePlan], share: float) -> list[ProcedurePlan]:
            nonlocal hooked
            chosen = rng.sample(candidates, min(len(candidates), round(served * share)))
            hooked += len(chosen)
            return chosen

        receipts = [
            p
            for p in procedures
            if p.channel == "appointment"
            and p.topic in MAIN_TOPICS
            and year_first <= p.receive_day <= year_last
        ]
        for plan in pick(receipts, _RECEIPT_SHARE):
            plan.visit_lead = rng.randint(1, MAX_LEAD)
        # Booked when the procedure comes in, for a day within the calendar's window.
        fictions = [
            p
            for p in procedures
            if p.fiction is not None and 1 <= p.fiction_day - p.receive_day <= 20
        ]
        for plan in pick(fictions, _FICTION_VISIT_SHARE):
            plan.fiction_visit = True
        # The card arrives 20-30 working days after the file is closed (at most two after
        # the decision): the pick-up comes after that and still in the year.
        pickups = [p for p in procedures if p.document == "eat" and p.decide_day + 42 <= year_last]
        for plan in pick(pickups, _PICKUP_SHARE):
            plan.pickup_day = plan.decide_day + 32 + rng.randint(1, 10)
        plans = []
        for _ in range(served - hooked):
            day = general.draw(rng)
            plans.append(
                AppointmentPlan(rng.getrandbits(64), day, day - rng.randint(1, MAX_LEAD), True)
            )
        share = rng.uniform(*_NO_SHOW_SHARES)
        for _ in range(round(served * share / (1 - share))):
            day = general.draw(rng)
            plans.append(
                AppointmentPlan(rng.getrandbits(64), day, day - rng.randint(1, MAX_LEAD), False)
            )
        return plans
