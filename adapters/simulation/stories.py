"""What happens in the simulated office, story by story.

Each story is a generator that yields the business time of its next step and runs that
step when resumed. Procedures by contact topic, most of them digital: received,
assigned, sometimes documents requested, decided (granted, refused, withdrawn) and
closed. Residence documents are issued on granted procedures (eATs ordered, arrived 4-6
weeks later, handed over; Duldungen; Aufenthaltsgestattungen). Fiktionsbescheinigungen
are issued while a procedure is pending, extended before they run out (two extensions
per carrier sheet, then a new sheet) and ended by the decision. Holders of a residence
document come back to extend it or to move an eAT to a new passport; the extensions
and transfers, like the certificates' extensions, are done at a visit booked days ahead
(in the seat of a booking without a file, so the year's appointments stay exact), which
the what-if can then save. Integration-course
entitlements and obligations on first titles; entry procedures with consent given or
refused; civil-registry and naturalisation inquiries received and answered; commitment
declarations submitted online, their fee paid through the payment commands (now and
then a failed first attempt, rarely a payment twice and a refund), ability to pay
checked, signed and handed over.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal, cast
from uuid import UUID

from adapters.simulation.appointments import AppointmentDesk, Booking
from adapters.simulation.calendar import OFFICE_OPENS, local_date, utc
from adapters.simulation.demo_case_file import PORTAL
from adapters.simulation.fictitious_people import (
    add_months,
    eat_card_number,
    paper_number,
    until,
    weighted,
)
from adapters.simulation.office import HOLDER_TOPICS, HeldDocument, PersonOnFile, Story
from adapters.simulation.plans import (
    MAIN_POINT,
    MAX_LEAD,
    PICKUP_POINT,
    DeclarationPlan,
    EntryPlan,
    InquiryPlan,
    ProcedurePlan,
    StandalonePlan,
)
from domain.appointments import DocumentHeld
from domain.values import (
    COMMITMENT_DECLARATION_FEE_CENTS,
    DIGITAL_CHANNELS,
    MAX_FICTION_EXTENSIONS_PER_CARRIER_SHEET,
    ClosureReason,
    PaymentMethod,
    ResidenceDocumentKind,
    VisitPurpose,
)
from service import AkteService
from service_common import business_time
from service_deadlines import DEADLINE_USER, Deadlines
from service_declarations import DeclarationRecorded
from service_ports import ServiceStore

_REFUSAL_REASONS: Final = (
    "Lebensunterhalt nicht gesichert (§ 5 Abs. 1 Nr. 1 AufenthG).",
    "Angeforderte Unterlagen nicht fristgerecht vorgelegt.",
    "Voraussetzungen der Rechtsgrundlage nicht erfüllt.",
    "Passpflicht nicht erfüllt (§ 3 AufenthG).",
)
_DOCUMENT_REQUESTS: Final = (
    ["Aktueller Einkommensnachweis", "Mietvertrag"],
    ["Nachweis der Krankenversicherung"],
    ["Immatrikulationsbescheinigung", "Finanzierungsnachweis"],
    ["Arbeitsvertrag", "Erklärung zum Beschäftigungsverhältnis"],
    ["Meldebescheinigung"],
)
_OTHER_OFFICES: Final = ("abh-nachbarstadt", "abh-landkreis-simulation", "abh-kreisstadt")
_VISIT_PURPOSES: Final[tuple[tuple[VisitPurpose, int], ...]] = (
    ("family_visit", 60),
    ("private_visit", 18),
    ("tourism", 10),
    ("business", 7),
    ("medical_treatment", 2),
    ("training", 2),
    ("other", 1),
)
_PAYMENT_METHODS: Final[tuple[tuple[PaymentMethod, int], ...]] = (
    ("paypal", 35),
    ("giropay", 20),
    ("visa", 20),
    ("mastercard", 15),
    ("paydirect", 10),
)

_EXTENSION_VISIT_SHARE: Final = 0.9
"""Of the certificates' extensions, those done at a booked visit (the rest by mail)."""
_HOLDER_VISIT_SHARES: Final = {
    # Of the renewals and transfers a granted procedure leads to, those done at a visit
    # booked for the decision day (the rest by post). An assumption from how offices
    # work, not a measured figure: a Duldung or Aufenthaltsgestattung is a paper handed
    # out at the counter, an eAT's renewal and its Übertrag to a new passport need the
    # holder in person for photo and fingerprints (§ 78 AufenthG, new card).
    "eat": 0.9,
    "duldung": 0.95,
    "aufenthaltsgestattung": 0.95,
    "transfer": 1.0,
}
_SILENT_SHARE: Final = 0.1
"""Of the § 31 AufenthV entry procedures, those the office lets the period pass on."""
_DEEMED_AFTER_WORKING_DAYS: Final = 20
"""Working days after the request when the tick finds the period (three weeks and two
Werktage, holidays rolling it forward) passed."""


class _OnBusinessDay:
    """The service, with the business time of the simulated day as its clock: the
    deadline tick asks the clock what "today" is."""

    def __init__(self, service: AkteService, now: datetime) -> None:
        self._service = service
        self._now = now

    def clock(self) -> datetime:
        return self._now

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)


_NOTIFY_URL: Final = "https://akte.simulation.invalid/payments/notifications"
_RETURN_URL: Final = "https://akte.simulation.invalid/verpflichtungserklaerung"


class OfficeStories(AppointmentDesk):
    """The simulated office's stories, each written through the service's commands."""

    def _procedure_story(self, plan: ProcedurePlan) -> Story:
        rng = random.Random(plan.seed)
        service = self.service
        worker = self._caseworker(rng)
        t = plan.start
        visit: Booking | None = None
        booked_for: PersonOnFile | None = None
        if plan.visit_lead:
            # Booked days ahead; a newcomer's file is opened at the counter.
            if not plan.new_person:
                booked_for = self._person_for(plan, rng, t)
                booked_for.active += 1
            visit = self._book(
                rng,
                t,
                point=MAIN_POINT,
                topic=plan.topic,
                holds=self._holds(plan),
                person=booked_for,
                day=plan.receive_day,
                by=worker,
            )
            if visit is None:
                t = self._at(rng, plan.receive_day, t)
            else:
                t = self._soon(rng, t)
                yield t
                self._confirm(visit, t)
                t = self._arrival(rng, visit, t)
            yield t
            if visit is not None:
                self._check_in(visit, t, worker)
                t = self._soon(rng, t)
        if booked_for is not None:
            person = booked_for
        else:
            person = self._person_for(plan, rng, t)
            person.active += 1
        try:
            digital = plan.channel in DIGITAL_CHANNELS
            number = self._case(
                person,
                service.receive_procedure,
                t,
                PORTAL if digital else worker,
                channel=plan.channel,
                topic=plan.topic,
                legal_basis=plan.basis,
            )
            received_at = t
            self.received_by_year[self.calendar.year_of(t)] += 1
            self.tallies[self.calendar.year_of(t)].received[plan.channel] += 1
            self._customer(t, f"c:{person.case_id}", person)
            if visit is not None:
                t = self._soon(rng, t)
                if visit.case is None:
                    self._link(visit, person, t, worker)
                self._attended(visit, t, worker)
            fiction_visit: Booking | None = None
            if plan.fiction_visit:
                # The caseworker books the certificate's appointment there and then.
                fiction_visit = self._book(
                    rng,
                    self._soon(rng, t),
                    point=MAIN_POINT,
                    topic="fiction_certificate",
                    holds="eat" if plan.fiction == "81_4" else "visa",
                    person=person,
                    day=plan.fiction_day,
                    by=worker,
                )
                if fiction_visit is not None:
                    t = self._soon(rng, t + 60)
                    self._confirm(fiction_visit, t)
            steps: list[tuple[int, str]] = []
            span = plan.decide_day - plan.receive_day
            steps.append((plan.receive_day + rng.randint(0, min(3, span)), "assign"))
            if span >= 4 and rng.random() < 0.18:
                steps.append((rng.randint(steps[0][0], plan.decide_day - 1), "request"))
            if plan.fiction is not None:
                steps.append((plan.fiction_day, "fiction"))
            steps.sort()
            certificate = 0
            valid_until = date.min
            on_sheet = 0
            for day, step in steps:
                if step == "fiction" and fiction_visit is not None:
                    t = self._arrival(rng, fiction_visit, t)
                else:
                    t = self._at(rng, max(day, self._day_of(t)), t)
                yield t
                if step == "assign":
                    self._case(
                        person,
                        service.assign_procedure,
                        t,
                        rng.choice(self.team_leads),
                        procedure_number=number,
                        assignee=worker,
                    )
                elif step == "request":
                    self._case(
                        person,
                        service.request_documents,
                        t,
                        worker,
                        procedure_number=number,
                        what=list(rng.choice(_DOCUMENT_REQUESTS)),
                        due_on=local_date(t) + timedelta(days=rng.choice((14, 21, 28))),
                    )
                else:
                    assert plan.fiction is not None
                    if fiction_visit is not None:
                        self._check_in(fiction_visit, t, worker)
                        t = self._soon(rng, t)
                    valid_from = local_date(t)
                    valid_until = until(valid_from, 3 if rng.random() < 0.8 else 6)
                    certificate = self._case(
                        person,
                        service.issue_fiction_certificate,
                        t,
                        worker,
                        kind=plan.fiction,
                        valid_from=valid_from,
                        valid_until=valid_until,
                        carrier_sheet_number=paper_number(rng, "F"),
                        procedure_number=number,
                        # A renewal applied for in time: the previous title was still
                        # valid on receipt (§ 81 (4) S. 1 AufenthG).
                        **(
                            {
                                "order_basis": "timely_application",
                                "previous_title_valid_until": local_date(received_at)
                                + timedelta(days=30),
                            }
                            if plan.fiction == "81_4"
                            else {}
                        ),
                    )
                    self.tallies[self.calendar.year_of(t)].fictions_issued += 1
                    self._customer(t, f"c:{person.case_id}", person)
                    if fiction_visit is not None:
                        t = self._soon(rng, t)
                        self._attended(fiction_visit, t, worker)
            decide_date = self.calendar.days[plan.decide_day]
            # Extended shortly before it runs out, for as long as the procedure is pending.
            while certificate and valid_until < decide_date:
                wanted = self.calendar.last_on_or_before(
                    valid_until - timedelta(days=rng.randint(2, 10))
                )
                day = min(max(wanted, self._day_of(t)), plan.decide_day)
                extension_visit = None
                if day > self._day_of(t) and rng.random() < _EXTENSION_VISIT_SHARE:
                    # The person books a visit for the extension (the certificate is
                    # extended at the counter) some days ahead, in the seat of a walk-in
                    # of that year.
                    book_day = max(self._day_of(t), day - rng.randint(3, MAX_LEAD))
                    if book_day > self._day_of(t):
                        t = self._at(rng, book_day, t)
                        yield t
                    extension_visit = self._visit_for_extension(rng, t, person, day, worker)
                if extension_visit is not None:
                    t = self._soon(rng, t)
                    yield t
                    self._confirm(extension_visit, t)
                    t = self._arrival(rng, extension_visit, t)
                    yield t
                    self._check_in(extension_visit, t, worker)
                    t = self._soon(rng, t)
                else:
                    t = self._at(rng, day, t)
                    yield t
                new_sheet = None
                if on_sheet >= MAX_FICTION_EXTENSIONS_PER_CARRIER_SHEET:
                    new_sheet, on_sheet = paper_number(rng, "F"), 0
                valid_until = add_months(valid_until, 3)
                self._case(
                    person,
                    service.extend_fiction_certificate,
                    t,
                    worker,
                    certificate_number=certificate,
                    valid_until=valid_until,
                    new_carrier_sheet_number=new_sheet,
                )
                on_sheet += 1
                self.tallies[self.calendar.year_of(t)].fictions_extended += 1
                self.tallies[self.calendar.year_of(t)].fictions_extended_at_visit += (
                    extension_visit is not None
                )
                self._customer(t, f"c:{person.case_id}", person)
                if extension_visit is not None:
                    t = self._soon(rng, t)
                    self._attended(extension_visit, t, worker)
            holder_visit: Booking | None = None
            if plan.outcome == "granted" and plan.document is None and plan.topic in HOLDER_TOPICS:
                # The person comes in for the document: booked some days ahead, the
                # decision and the extension (or the Übertrag) done at the counter.
                holder_visit, t = yield from self._visit_for_held_document(
                    rng, t, person, plan, worker
                )
            if holder_visit is not None:
                t = self._arrival(rng, holder_visit, t)
                yield t
                self._check_in(holder_visit, t, worker)
                t = self._soon(rng, t)
            else:
                t = self._at(rng, plan.decide_day, t)
                yield t
            refused = plan.outcome == "refused"
            self._case(
                person,
                service.decide_procedure,
                t,
                rng.choice(self.team_leads) if refused else worker,
                procedure_number=number,
                outcome=plan.outcome,
                legal_basis=plan.decision_basis,
                reason=rng.choice(_REFUSAL_REASONS) if refused else None,
            )
            self._count_decision(plan, received_at, t)
            self._customer(t, f"c:{person.case_id}", person)
            eat = 0
            if plan.document is not None:
                eat, t = self._issue(
                    person, rng, self._soon(rng, t), worker, plan.document, plan, number
                )
            elif plan.outcome == "granted" and plan.topic in HOLDER_TOPICS:
                # Its own step: a card story of the same document may act meanwhile.
                t = self._soon(rng, t)
                yield t
                eat, t = self._held_document(
                    person, rng, t, worker, plan, at_visit=holder_visit is not None
                )
            if holder_visit is not None:
                t = self._soon(rng, t)
                self._attended(holder_visit, t, worker)
            # The decision ended the certificate's fiction (§ 81 AufenthG).
            if plan.entitlement:
                t = self._soon(rng, t)
                self._case(person, service.issue_integration_course_entitlement, t, worker)
                self.tallies[self.calendar.year_of(t)].entitlements += 1
            if plan.obligation:
                t = self._soon(rng, t)
                self._case(person, service.impose_integration_course_obligation, t, worker)
                self.tallies[self.calendar.year_of(t)].obligations += 1
            t = self._at(rng, plan.decide_day + rng.choice((0, 0, 1, 2)), t)
            yield t
            self._case(person, service.close_procedure, t, worker, procedure_number=number)
            if eat:
                t = yield from self._eat_card(person, rng, t, worker, eat, plan.pickup_day)
        finally:
            person.active -= 1
        yield from self._maybe_leave(person, rng, t, worker)

    @staticmethod
    def _held(person: PersonOnFile, plan: ProcedurePlan, t: int) -> tuple[int, HeldDocument] | None:
        """The document a granted renewal extends or an Übertrag moves (the latest the
        person holds of the topic's kinds), None where there is none to act on."""
        kinds = HOLDER_TOPICS.get(plan.topic)
        # Another story of the same person may have issued a document at a later minute
        # than this step's (steps run a few minutes past their turn): not yet held here.
        held = [
            (number, document)
            for number, document in person.documents.items()
            if kinds is not None
            and document.kind in kinds
            and document.issued_at < t
            # Nor its card ordered, arrived or handed over, or it extended, at a later minute.
            and document.changed_at <= t
        ]
        if not held:
            return None
        number, document = held[-1]
        if plan.topic == "transfer_eat_new_passport" and not document.card_handed_over:
            return None  # the card is not in the person's hands: nothing to move
        return number, document

    def _visit_for_held_document(
        self, rng: random.Random, t: int, person: PersonOnFile, plan: ProcedurePlan, worker: str
    ) -> Generator[int, None, tuple[Booking | None, int]]:
        """A visit on the decision day for extending a held document or moving an eAT to
        a new passport, booked some working days ahead (at the rate of
        :data:`_HOLDER_VISIT_SHARES`), in the seat of a walk-in of that year; (None, t)
        where there is nothing to act on, the person does not come, or no seat is left."""
        today = self._day_of(t)
        if plan.decide_day <= today or self._held(person, plan, t) is None:
            return None, t
        book_day = max(today, plan.decide_day - rng.randint(3, MAX_LEAD))
        if book_day > today:
            t = self._at(rng, book_day, t)
            yield t
        held = self._held(person, plan, t)
        if held is None:
            return None, t
        what = "transfer" if plan.topic == "transfer_eat_new_passport" else held[1].kind
        if rng.random() >= _HOLDER_VISIT_SHARES[what]:
            return None, t
        visit = self._visit_for_extension(
            rng,
            t,
            person,
            plan.decide_day,
            worker,
            topic=plan.topic,
            holds=cast(DocumentHeld, held[1].kind),
        )
        if visit is None:
            return None, t
        t = self._soon(rng, t)
        yield t
        self._confirm(visit, t)
        return visit, t

    def _held_document(
        self,
        person: PersonOnFile,
        rng: random.Random,
        t: int,
        worker: str,
        plan: ProcedurePlan,
        *,
        at_visit: bool = False,
    ) -> tuple[int, int]:
        """A granted renewal extends the document the person holds; a new passport moves
        the eAT to a new card (Übertrag). Returns the eAT whose new card is under way (0:
        none) and the time of the last step. ``at_visit``: done at a booked visit."""
        held = self._held(person, plan, t)
        if held is None:
            return 0, t
        number, document = held
        year = self.calendar.year_of(t)
        if plan.topic == "transfer_eat_new_passport":
            self._case(
                person,
                self.service.transfer_eat_to_new_passport,
                t,
                worker,
                residence_document_number=number,
                new_card_number=eat_card_number(rng),
            )
            document.card_handed_over = False
            document.changed_at = t
            self.tallies[year].documents_transferred += 1
            self.tallies[year].transfers_at_visit += at_visit
            self._customer(t, f"c:{person.case_id}", person)
            return number, t
        months = rng.choice((3, 6)) if document.kind != "eat" else rng.choice((12, 24, 24, 36))
        valid_until = until(max(document.valid_until, local_date(t)), months)
        self._case(
            person,
            self.service.extend_residence_document,
            t,
            worker,
            residence_document_number=number,
            valid_until=valid_until,
        )
        document.valid_until = valid_until
        document.changed_at = t
        self.tallies[year].documents_extended += 1
        if at_visit:
            self.tallies[year].extended_at_visit[document.kind] += 1
        self._customer(t, f"c:{person.case_id}", person)
        return 0, t

    def _visit_for_extension(
        self,
        rng: random.Random,
        t: int,
        person: PersonOnFile,
        day: int,
        worker: str,
        *,
        topic: str = "fiction_certificate",
        holds: DocumentHeld = "visa",
    ) -> Booking | None:
        """A booked visit on ``day`` for an extension (a certificate's by default), in
        the seat of a walk-in of that year not yet booked (the year's appointments stay
        exact); None where no walk-in is left or no slot is free."""
        year = self.calendar.year_of(self.calendar.moment(day, OFFICE_OPENS))
        walk_in = self._take_walk_in(year, t, day)
        if walk_in is None:
            return None
        visit = self._book(
            rng,
            t,
            point=MAIN_POINT,
            topic=topic,
            holds=holds,
            person=person,
            day=day,
            by=worker,
            serves=False,
        )
        if visit is None:
            walk_in.cancelled = False  # the walk-in comes after all
            self.bound_to_be_new[year] += 1
        return visit

    def _count_decision(self, plan: ProcedurePlan, received_at: int, decided_at: int) -> None:
        year = self.calendar.year_of(decided_at)
        tally = self.tallies[year]
        tally.processed_channels[plan.channel] += 1
        tally.processed_outcomes[plan.outcome] += 1
        tally.processed_bases[plan.decision_basis or plan.basis or ""] += 1
        tally.days[(local_date(decided_at) - local_date(received_at)).days] += 1
        self.decided_pairs[(self.calendar.year_of(received_at), year)] += 1

    def _issue(
        self,
        person: PersonOnFile,
        rng: random.Random,
        t: int,
        worker: str,
        kind: ResidenceDocumentKind,
        plan: ProcedurePlan | None,
        procedure_number: int | None,
    ) -> tuple[int, int]:
        """Issue a residence document and order an eAT's card; returns the eAT's number
        (0 for other documents) and the time of the last step."""
        valid_from = local_date(t)
        months = plan.document_months if plan is not None else 12
        if kind == "eat":
            basis = plan.document_basis if plan is not None else "aufenthg-18b"
            number_on_card = eat_card_number(rng)
        elif kind == "duldung":
            basis = plan.document_basis if plan is not None else "aufenthg-60a"
            number_on_card = paper_number(rng, "D")
        else:
            basis = "asylg-55"
            number_on_card = paper_number(rng, "G")
        number = self._case(
            person,
            self.service.issue_residence_document,
            t,
            worker,
            kind=kind,
            legal_basis=basis,
            valid_from=valid_from,
            valid_until=until(valid_from, months),
            document_number=number_on_card,
            procedure_number=procedure_number,
        )
        self.tallies[self.calendar.year_of(t)].documents[kind] += 1
        self._customer(t, f"c:{person.case_id}", person)
        if not person.listed:
            person.listed = True
            self.holders.append(person)
        document = HeldDocument(kind, until(valid_from, months), issued_at=t, changed_at=t)
        person.documents[number] = document
        if kind != "eat":
            return 0, t
        t = self._soon(rng, t)
        self._case(person, self.service.order_eat_card, t, worker, residence_document_number=number)
        document.changed_at = t
        return number, t

    def _eat_card(
        self,
        person: PersonOnFile,
        rng: random.Random,
        t: int,
        worker: str,
        number: int,
        pickup_day: int = 0,
    ) -> Generator[int, None, int]:
        """The Bundesdruckerei takes 4-6 weeks; the card is picked up days later, on
        ``pickup_day`` at a booked appointment where one is planned."""
        person.active += 1
        try:
            t = self._at(rng, self._day_of(t) + rng.randint(20, 30), t)
            yield t
            self._case(
                person,
                self.service.record_eat_card_arrived,
                t,
                worker,
                residence_document_number=number,
            )
            if number in person.documents:
                person.documents[number].changed_at = t
            pickup: Booking | None = None
            if pickup_day:
                # The office's letter says the card is there; the person books.
                t = self._soon(rng, t)
                yield t
                pickup = self._book(
                    rng,
                    t,
                    point=PICKUP_POINT,
                    topic="eat_pickup",
                    holds="eat",
                    person=person,
                    day=pickup_day,
                    by=PORTAL,
                )
            if pickup is not None:
                t = self._soon(rng, t)
                yield t
                self._confirm(pickup, t)
                t = self._arrival(rng, pickup, t)
                yield t
                self._check_in(pickup, t, worker)
                t = self._soon(rng, t)
            else:
                day = pickup_day or self._day_of(t) + rng.randint(1, 10)
                t = self._at(rng, day, t)
                yield t
            self._case(
                person,
                self.service.hand_over_eat_card,
                t,
                worker,
                residence_document_number=number,
            )
            if number in person.documents:
                person.documents[number].card_handed_over = True
                person.documents[number].changed_at = t
            if pickup is not None:
                t = self._soon(rng, t)
                self._attended(pickup, t, worker)
        finally:
            person.active -= 1
        return t

    def _maybe_leave(self, person: PersonOnFile, rng: random.Random, t: int, worker: str) -> Story:
        """Now and then a person moves away or leaves, when nothing is under way."""
        if person.active or person.pool_index < 0 or rng.random() >= 0.004:
            return
        self._leave_pool(person)
        t = self._at(rng, self._day_of(t) + rng.randint(5, 40), t)
        yield t
        if person.active:
            return
        if rng.random() < 0.6:
            self._case(
                person,
                self.service.transfer_to_office,
                t,
                worker,
                to_office_id=rng.choice(_OTHER_OFFICES),
                reason="Umzug in den Zuständigkeitsbereich einer anderen Behörde.",
            )
        else:
            reason: ClosureReason = weighted(rng, (("left", 6), ("naturalised", 3), ("died", 1)))
            self._case(person, self.service.close_case, t, worker, closure_reason=reason)

    def _entry_story(self, plan: EntryPlan) -> Story:
        rng = random.Random(plan.seed)
        worker = self._caseworker(rng)
        t = plan.start
        person = self._open(rng, t - 60 * rng.randint(2, 9), (18, 45), pooled=False)
        person.active += 1
        try:
            family = rng.random() < 0.6
            number = self._case(
                person,
                self.service.request_entry_consent,
                t,
                worker,
                legal_basis="aufenthv-31" if family else "aufenthg-81a",
            )
            self.tallies[self.calendar.year_of(t)].entry_procedures += 1
            if family and rng.random() < _SILENT_SHARE:
                # The office stays silent: after three weeks and two Werktage (§ 31 Abs. 1
                # S. 4 AufenthV) the deadline tick records the consent as given.
                t = self._at(rng, plan.request_day + _DEEMED_AFTER_WORKING_DAYS, t)
                yield t
                self._deadline_tick(t)
                return
            # § 31 AufenthV: the office answers within the silence period; § 81a: weeks.
            days = rng.randint(5, 14) if family else rng.randint(5, 25)
            t = self._at(rng, plan.request_day + days, t)
            yield t
            if rng.random() < 0.12:
                self._case(
                    person,
                    self.service.refuse_entry_consent,
                    t,
                    rng.choice(self.team_leads),
                    entry_procedure_number=number,
                    reason="Voraussetzungen für die Zustimmung nicht nachgewiesen.",
                )
                return
            self._case(
                person,
                self.service.give_entry_consent,
                t,
                worker,
                entry_procedure_number=number,
                valid_until=local_date(t) + timedelta(days=rng.choice((90, 120, 180))),
            )
        finally:
            person.active -= 1
        # After the visa, the person comes to apply for the first title.
        self.arrivals.append(person)

    def _deadline_tick(self, t: int) -> None:
        """The deadline tick on business day ``t`` (as the office runs it every day):
        records every consent deemed given whose period has passed by then. Every other
        § 31 procedure is answered within its period, so only the silent ones are."""
        ticking = Deadlines(
            cast(ServiceStore, _OnBusinessDay(self.service, utc(t))),
            holidays=self.service.deadlines.holidays,
            zone=self.service.deadlines.zone,
        )
        with business_time(utc(t)):
            report = ticking.run_deadline_tick(by=DEADLINE_USER)
        self._counted("run_deadline_tick", report.deemed_consents + 1)
        self.tallies[self.calendar.year_of(t)].entry_consents_deemed += report.deemed_consents

    def _inquiry_story(self, plan: InquiryPlan) -> Story:
        rng = random.Random(plan.seed)
        worker = self._caseworker(rng)
        t = plan.start
        person = self._pooled_person(rng, t, new_share=0.15)
        person.active += 1
        try:
            number = self._case(person, self.service.receive_inquiry, t, worker, kind=plan.kind)
            t = self._at(rng, plan.answer_day, t)
            yield t
            self._case(person, self.service.answer_inquiry, t, worker, inquiry_number=number)
            self.tallies[self.calendar.year_of(t)].inquiries[plan.kind] += 1
        finally:
            person.active -= 1

    def _standalone_story(self, plan: StandalonePlan) -> Story:
        rng = random.Random(plan.seed)
        worker = self._caseworker(rng)
        t = plan.start
        person = self._pooled_person(rng, t, new_share=0.5)
        person.active += 1
        try:
            if plan.what == "eat":
                eat, t = self._issue(person, rng, t, worker, "eat", None, None)
                if eat:
                    t = yield from self._eat_card(person, rng, t, worker, eat)
            elif plan.what == "fiction":
                valid_from = local_date(t)
                self._case(
                    person,
                    self.service.issue_fiction_certificate,
                    t,
                    worker,
                    # Without an application on file: § 81 (4) needs one, (3) S. 1 not.
                    kind="81_3_1",
                    valid_from=valid_from,
                    valid_until=until(valid_from, 3),
                    carrier_sheet_number=paper_number(rng, "F"),
                )
                self.tallies[self.calendar.year_of(t)].fictions_issued += 1
                self._customer(t, f"c:{person.case_id}", person)
            elif plan.what == "entitlement":
                self._case(person, self.service.issue_integration_course_entitlement, t, worker)
                self.tallies[self.calendar.year_of(t)].entitlements += 1
            else:
                self._case(person, self.service.impose_integration_course_obligation, t, worker)
                self.tallies[self.calendar.year_of(t)].obligations += 1
        finally:
            person.active -= 1

    def _declaration_story(self, plan: DeclarationPlan) -> Story:
        """Submitted online, fee paid online, ability checked, signed in person."""
        rng = random.Random(plan.seed)
        service = self.service
        worker = self._caseworker(rng)
        t = plan.start
        submitted_on = local_date(t)
        stay_from = submitted_on + timedelta(days=rng.randint(20, 80))
        recorded = service.declarations.submit_commitment_declaration(
            office_id=self.office_id,
            guarantor=self._guarantor(rng, submitted_on),
            invited_person=self._invited(rng, submitted_on),
            purpose=weighted(rng, _VISIT_PURPOSES),
            stay_from=stay_from,
            stay_until=stay_from + timedelta(days=rng.randint(10, 89)),
            monthly_net_income_cents=rng.randrange(180_000, 520_000, 100),
            assets_cents=rng.choice((None, None, rng.randrange(500_000, 5_000_000, 1000))),
            at=utc(t),
        )
        declaration_id = recorded.declaration_id
        version = recorded.version
        self._counted("submit_commitment_declaration", recorded.version + 1)
        if plan.handover_day is None and rng.random() < 0.3:
            t = self._at(rng, plan.check_day, t)
            yield t
            self._declaration(
                service.declarations.withdraw_declaration,
                declaration_id,
                version,
                t,
                worker,
                reason="Besuch abgesagt.",
            )
            return
        draw = rng.random()
        # Now and then the first attempt fails; rarely both attempts end up paid.
        attempts = 1 if draw < 0.94 else 2
        late_surplus = draw >= 0.99
        transactions: list[str] = []
        fee_paid = False
        for attempt in range(attempts):
            t = self._soon(rng, t) if attempt == 0 else t + 60 * rng.randint(10, 90)
            yield t
            started = service.declarations.start_payment(
                declaration_id,
                method=weighted(rng, _PAYMENT_METHODS),
                provider=self.platform,
                notification_url=_NOTIFY_URL,
                return_url=_RETURN_URL,
                at=utc(t),
            )
            self._counted("start_payment", started.version - version + 1)
            version = started.version
            transactions.append(started.result.payment.transaction_id)
            t = self._soon(rng, t)
            yield t
            outcome: Literal["paid", "failed"] = "paid" if attempt == attempts - 1 else "failed"
            version = self._settle(transactions[-1], outcome, t, version)
            if outcome == "paid" and not fee_paid:
                # The payment that settles the fee (FeePaid); a later one is surplus.
                fee_paid = True
                self.tallies[
                    self.calendar.year_of(t)
                ].fees_cents += COMMITMENT_DECLARATION_FEE_CENTS
        if late_surplus:
            # The declined first attempt is reported paid after all: money twice.
            t = self._soon(rng, t)
            yield t
            version = self._settle(transactions[0], "paid", t, version)
            t = self._at(rng, self._day_of(t) + 1, t)
            yield t
            version = self._declaration(
                service.declarations.refund_payment,
                declaration_id,
                version,
                t,
                worker,
                reason="Doppelt gezahlt; Erstattung der zweiten Zahlung.",
                payment_number=1,
            )
        t = self._at(rng, max(plan.check_day, self._day_of(t)), t)
        yield t
        if plan.handover_day is None or rng.random() < 0.04:
            version = self._declaration(
                service.declarations.check_ability_to_pay,
                declaration_id,
                version,
                t,
                worker,
                passed=False,
                reason="Einkommensnachweise unvollständig.",
            )
            if plan.handover_day is None:
                return
            t = self._at(rng, min(self._day_of(t) + rng.randint(1, 3), plan.handover_day), t)
            yield t
            version = self._declaration(
                service.declarations.check_ability_to_pay,
                declaration_id,
                version,
                t,
                worker,
                passed=True,
                reason="Nachweise nachgereicht.",
            )
        else:
            version = self._declaration(
                service.declarations.check_ability_to_pay,
                declaration_id,
                version,
                t,
                worker,
                passed=True,
            )
        t = self._soon(rng, t)
        handover = self._at(rng, plan.handover_day, t)
        version = self._declaration(
            service.declarations.set_pickup_appointment,
            declaration_id,
            version,
            t,
            worker,
            appointment_at=utc(handover),
        )
        yield handover
        self._declaration(
            service.declarations.hand_over_declaration, declaration_id, version, handover, worker
        )
        self.tallies[self.calendar.year_of(handover)].declarations += 1
        self._customer(handover, f"d:{declaration_id}")

    def _settle(
        self, transaction_id: str, outcome: Literal["paid", "failed"], t: int, version: int
    ) -> int:
        settled = self.service.declarations.settle_payment(
            provider=self.platform.name,
            transaction_id=transaction_id,
            outcome=outcome,
            amount_cents=COMMITMENT_DECLARATION_FEE_CENTS,
            currency="EUR",
            method=None,
            occurred_at=utc(t),
        )
        self._counted("settle_payment", settled.version - version)
        return settled.version

    def _declaration(
        self,
        command: Callable[..., DeclarationRecorded[Any]],
        declaration_id: UUID,
        version: int,
        t: int,
        by: str,
        **fields: Any,
    ) -> int:
        recorded = command(declaration_id, expected_version=version, by=by, at=utc(t), **fields)
        self._counted(command.__name__, recorded.version - version)
        return recorded.version
