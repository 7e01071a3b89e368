"""The office-year simulator: a realistic year (or several) of an office, with ground truth.

Everything is written through the service's commands, never as rows, and the simulator
counts what it did in its own bookkeeping, figure by figure, so that the yearly report
can be checked against it exactly.

How a year comes about:

* **Targets.** The profile (``reference/office-2024.json``: the published balance of a
  mid-sized city) gives the year's counts; each is scaled, ``round(count * scale)`` and
  at least 1 where the count is positive, and grows by ``growth`` per further year. The
  counted event of every target figure (a decision, an issued document, a handover ...)
  is planned on a day of its year, so the figures hit their targets exactly; what leads
  up to it or follows it may lie in another year.
* **Time.** Business time lies on working days (Monday to Friday without the national
  public holidays, Easter-based ones computed) in office hours, Europe/Berlin.
  Applications arrive by the season (an assumption, see
  :data:`~adapters.simulation.calendar.ARRIVALS`): more before the summer travel season,
  fewer in August and between the years, students for the winter semester (August to
  November). Procedures take from the same day to about eleven months, a little longer
  when the staff plan has people away; those decided in January were often received in
  November or December, and some received in December of the last year are decided the
  January after (when that lies in the past), so procedures span the turn of the year.
* **People.** A case file is opened before the person's first procedure: new arrivals on
  the day they apply, long-term residents with an ``Opened`` one to ten years earlier.
  Residents come back: a pool of known people gets most of the year's procedures.
* **What happens** (the realistic-year facts of ``../shared/DESIGN.md``): procedures by
  contact topic, most of them digital; each received, assigned, sometimes documents
  requested, decided (granted, refused, withdrawn) and closed. Residence documents are
  issued on granted procedures (eATs ordered, arrived 4-6 weeks later, handed over;
  Duldungen; Aufenthaltsgestattungen), new titles split about 45 % family, 30 %
  employment, 25 % education. About one Fiktionsbescheinigung per four documents, issued
  while a procedure is pending, extended before it runs out (two extensions per carrier
  sheet, then a new sheet) and ended by the decision. Integration-course entitlements
  and obligations on first titles; entry procedures with consent given or refused;
  civil-registry and naturalisation inquiries received and answered; commitment
  declarations submitted online, their fee paid through the payment commands (now and
  then a failed first attempt, rarely a payment twice and a refund), ability to pay
  checked, signed and handed over. Appointments at two service points (defined through
  the service at the start): procedures opened at the counter (channel "appointment"),
  Fiktionsbescheinigungen issued and extended, residence documents extended, eATs moved
  to a new passport and eAT cards handed over at a booked appointment, and bookings
  without a case file (questions, declarations); the office books (no
  proof-of-work), the person confirms with the mail's code, is checked in and served,
  or does not come (some 8-12 %). Attendance lands on the case file. Appointment
  commands have no ``at``: they run inside :func:`service.business_time`. Their mails go
  to an in-memory mailbox for the run, never to a mail server (the people are fictitious).

Commands run in business-time order across all case files (a heap of stories, each a
generator that yields when its next step is due), so the log reads like a real office's
and each file's own commands are in order; only the back-dated ``Opened`` of a resident
is written when the person first turns up. The same seed, profile and scale give the
same business-time history and the same ground truth; ids are random. Names are
fictitious (:mod:`adapters.simulation.fictitious_people`) and never logged.

The parts: :mod:`~adapters.simulation.profile` (the targets),
:mod:`~adapters.simulation.calendar` (business time), :mod:`~adapters.simulation.plans`
(what happens on which day), :mod:`~adapters.simulation.office` (staff, people,
bookkeeping), :mod:`~adapters.simulation.appointments` (the appointment desk),
:mod:`~adapters.simulation.stories` (the stories), :mod:`~adapters.simulation.tally`
(the ground truth); this module runs them.
"""

from __future__ import annotations

import heapq
import logging
import random
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Final

from adapters.reference.catalogue import load_catalogue
from adapters.simulation.calendar import OFFICE_LAST_START, OFFICE_OPENS, local_date
from adapters.simulation.office import Story
from adapters.simulation.plans import (
    MAX_LEAD,
    AppointmentPlan,
    DeclarationPlan,
    EntryPlan,
    InquiryPlan,
    Plan,
    ProcedurePlan,
    StandalonePlan,
    YearPlanner,
    first_day_of,
)
from adapters.simulation.profile import OfficeProfile, SimulationError
from adapters.simulation.staff import staff_plan_json, yearly_staff
from adapters.simulation.stories import OfficeStories
from adapters.simulation.tally import SimulationResult, achieved, figures_of
from service import AkteService
from service_appointment_mails import AppointmentsNotConfigured
from service_ports import OutgoingMail

logger = logging.getLogger("akte.simulator")

DEFAULT_OFFICE_ID: Final = "abh-simulation"


@dataclass(frozen=True)
class _ServicePointsDue:
    """Time to define the service points, before the first booking."""


@dataclass(frozen=True)
class _YearMark:
    """Reached the start of ``year``: time to plan the year after."""

    year: int


@dataclass(frozen=True)
class SimulationProgress:
    simulated_day: date
    share: float
    """How far through the simulated span business time has come (0..1)."""
    commands: int
    events: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def commands_per_second(self) -> float:
        return self.commands / self.seconds if self.seconds > 0 else 0.0


class _SimulatedMailbox:
    """Where the simulated office's mail goes for the run: counted, never sent. The
    people are fictitious, and a mail server would cost a connection per booking."""

    def __init__(self) -> None:
        self.sent = 0

    def send(self, mail: OutgoingMail) -> None:
        self.sent += 1


class _Simulator(OfficeStories):
    """One run: the year's plans and stories worked through in business-time order."""

    def __init__(
        self,
        service: AkteService,
        profile: OfficeProfile,
        *,
        seed: int,
        first_year: int,
        years: int,
        scale: float,
        growth: float,
        office_id: str,
        progress: Callable[[SimulationProgress], None] | None,
        now: datetime,
    ) -> None:
        super().__init__(
            service,
            profile,
            first_year=first_year,
            years=years,
            scale=scale,
            growth=growth,
            office_id=office_id,
        )
        self.seed = seed
        self.progress = progress
        # A day's margin: the steps of a story come minutes after the time it is due.
        self.now_limit = int(now.timestamp()) - 86400
        self.started = 0.0
        self.span_start = self.calendar.year_start(first_year)
        self.span_end = self.calendar.year_start(self.last_year + 1)
        self.planner = YearPlanner(load_catalogue(), self.calendar)

    # ---------------------------------------------------------------- running

    def run(self) -> SimulationResult:
        end_of_span = self.span_end
        if end_of_span > self.now_limit:
            raise SimulationError(
                f"the year {self.last_year} has not ended yet: business time must not lie "
                "in the future"
            )
        self.started = time.monotonic()
        self._plan_year(self.first_year, tail=False)
        self._push(self.calendar.year_start(self.first_year) - 1, _YearMark(self.first_year))
        # Weeks before the first booking (bookings come at most MAX_LEAD days ahead, and
        # certificate visits are booked up to 20 working days before the year).
        first_day = self.calendar.span(self.first_year)[0] - 2 * MAX_LEAD - 20
        self._push(self.calendar.moment(first_day, OFFICE_OPENS), _ServicePointsDue())
        next_report = 0
        while self.heap:
            ts, _sequence, item = heapq.heappop(self.heap)
            if ts > self.now_limit:
                # Beyond now: only what follows the last simulated year (its January).
                if isinstance(item, Generator):
                    item.close()
                continue
            if isinstance(item, _YearMark):
                self._year_reached(item.year)
                continue
            if isinstance(item, _ServicePointsDue):
                self._define_service_points(ts)
                continue
            if isinstance(item, AppointmentPlan) and item.cancelled:
                continue  # its seat went to a visit for an extension
            story: Story = item if isinstance(item, Generator) else self._story(item)
            next_ts = next(story, None)
            if next_ts is not None:
                self._push(next_ts, story)
            if self.progress is not None and self.commands >= next_report:
                next_report = self.commands + 2000
                self._report(ts)
        seconds = time.monotonic() - self.started
        if self.progress is not None:
            self._report(self.span_end, seconds=seconds)
        years = tuple(range(self.first_year, self.last_year + 1))
        staff_plan = staff_plan_json(self.office_id, self.posts)
        truth = {
            year: self._truth(year) | yearly_staff(staff_plan, self.office_id, year)
            for year in years
        }
        for year in years:
            if achieved(truth[year]) != self.targets[year]:
                # A bug in the planning, never an input problem: say which figures.
                wrong = sorted(
                    name
                    for name, value in achieved(truth[year]).items()
                    if value != self.targets[year][name]
                )
                raise SimulationError(f"{year}: missed the targets of {', '.join(wrong)}")
        return SimulationResult(
            office_id=self.office_id,
            seed=self.seed,
            scale=self.scale,
            growth=self.growth,
            years=years,
            targets={year: self.targets[year] for year in years},
            truth=truth,
            commands=self.commands,
            events=self.events,
            case_files=self.case_files,
            seconds=seconds,
            commands_by_kind=dict(sorted(self.commands_by_kind.items())),
            staff_plan=staff_plan,
        )

    def _report(self, ts: int, seconds: float | None = None) -> None:
        assert self.progress is not None
        span = max(self.span_end - self.span_start, 1)
        share = min(max((ts - self.span_start) / span, 0.0), 1.0)
        self.progress(
            SimulationProgress(
                simulated_day=local_date(min(ts, self.span_end - 1)),
                share=share,
                commands=self.commands,
                events=self.events,
                seconds=seconds if seconds is not None else time.monotonic() - self.started,
            )
        )

    def _year_reached(self, year: int) -> None:
        following = year + 1
        if following <= self.last_year:
            self._plan_year(following, tail=False)
            self._push(self.calendar.year_start(following) - 1, _YearMark(following))
        elif following == self.last_year + 1:
            self._plan_year(following, tail=True)

    def _truth(self, year: int) -> dict[str, Any]:
        received = sum(count for y, count in self.received_by_year.items() if y <= year)
        decided = sum(
            count for (r, d), count in self.decided_pairs.items() if r <= year and d <= year
        )
        return figures_of(
            self.tallies[year], year=year, office_id=self.office_id, backlog=received - decided
        )

    # ---------------------------------------------------------------- planning

    def _plan_year(self, year: int, *, tail: bool) -> None:
        """Plan the stories whose counted events fall in ``year``.

        ``tail``: the year after the last simulated one; only what starts in the last
        simulated year is kept (procedures received in December and decided in January).
        """
        rng = random.Random(f"akte-simulator/{self.seed}/{year}")
        plans = self.planner.plan_year(rng, year, self.targets[year], tail=tail)
        last_day_before = self.calendar.span(year - 1)[1]
        for plan in plans:
            plan.start = self._start_of(plan, rng)
            if tail and (
                isinstance(plan, EntryPlan | StandalonePlan | AppointmentPlan)
                or first_day_of(plan) > last_day_before
            ):
                continue
            self._push(plan.start, plan)
            self._expect_customers(plan)

    def _expect_customers(self, plan: Plan) -> None:
        """Count what the customer steering must expect of a plan (see
        :meth:`~adapters.simulation.office.SimulatedOffice._steered_person`)."""

        def year_of(day: int) -> int:
            return self.calendar.year_of(self.calendar.moment(day, OFFICE_OPENS))

        if isinstance(plan, ProcedurePlan):
            if plan.new_person:
                self.bound_to_be_new[year_of(plan.receive_day)] += 1
            else:
                self.picks[year_of(plan.receive_day)] += 1
        elif isinstance(plan, AppointmentPlan) and plan.attends:
            self.bound_to_be_new[year_of(plan.day)] += 1
            self.walk_ins.setdefault(year_of(plan.day), []).append(plan)
        elif isinstance(plan, DeclarationPlan) and plan.handover_day is not None:
            self.bound_to_be_new[year_of(plan.handover_day)] += 1

    def _start_of(self, plan: Plan, rng: random.Random) -> int:
        day = first_day_of(plan)
        if isinstance(plan, ProcedurePlan) and plan.visit_lead:
            day -= plan.visit_lead  # the booking comes first
        return self.calendar.moment(day, rng.randint(OFFICE_OPENS, OFFICE_LAST_START))

    def _story(self, plan: Plan) -> Story:
        if isinstance(plan, ProcedurePlan):
            return self._procedure_story(plan)
        if isinstance(plan, EntryPlan):
            return self._entry_story(plan)
        if isinstance(plan, DeclarationPlan):
            return self._declaration_story(plan)
        if isinstance(plan, InquiryPlan):
            return self._inquiry_story(plan)
        if isinstance(plan, AppointmentPlan):
            return self._appointment_story(plan)
        return self._standalone_story(plan)


_CASE_CACHE_PER_SCALE: Final = 60_000


def suggested_case_cache(scale: float, *, years: int = 1, growth: float = 0.0) -> int:
    """A service case cache that holds the files a simulation keeps coming back to.

    The returning people and the year's newcomers: with them in memory, commands do not
    reload case files from the store (about twice as fast); a case file takes some 5 KB.
    """
    factor = scale * (1.0 + growth) ** max(years - 1, 0)
    return max(1000, round(_CASE_CACHE_PER_SCALE * factor))


def simulate(
    service: AkteService,
    profile: OfficeProfile,
    *,
    seed: int,
    year: int | None = None,
    years: int = 1,
    scale: float = 1.0,
    office_id: str = DEFAULT_OFFICE_ID,
    growth: float = 0.0,
    progress: Callable[[SimulationProgress], None] | None = None,
) -> SimulationResult:
    """Simulate ``years`` consecutive years of ``office_id`` from ``year`` (default: the
    profile's) through the service's commands; returns the ground truth per year.

    Business time must lie in the past (the service refuses anything else), so the last
    simulated year must have ended; its January after is written as far as it has
    passed. ``progress`` is called every couple of thousand commands.
    """
    if years < 1:
        raise SimulationError("simulate at least one year")
    if not 0 < scale <= 100:
        raise SimulationError("the scale must lie between 0 and 100")
    if not -0.5 < growth < 1.0:
        raise SimulationError("the growth per year must lie between -0.5 and 1")
    first_year = profile.year if year is None else year
    try:
        setup = service.appointments.appointment_setup
    except AppointmentsNotConfigured:
        raise SimulationError(
            "appointments are not configured in this service (AKTE_APPOINTMENT_SECRET)"
        ) from None
    simulator = _Simulator(
        service,
        profile,
        seed=seed,
        first_year=first_year,
        years=years,
        scale=scale,
        growth=growth,
        office_id=office_id,
        progress=progress,
        now=service.clock(),
    )
    # The run's mail goes to a mailbox in memory, whatever mail server is configured.
    service.appointments.configure_appointments(replace(setup, mailer=_SimulatedMailbox()))
    try:
        # Commands written in groups of transactions (the same commands and events, fewer
        # commits): 8 to 9 times faster on PostgreSQL (docs/performance/simulator.md).
        with service.grouped():
            result = simulator.run()
    finally:
        service.appointments.configure_appointments(setup)
    logger.info(
        "simulated %d year(s) of office %s: %d commands, %d events in %.1f s",
        years,
        office_id,
        result.commands,
        result.events,
        result.seconds,
    )
    return result


__all__ = [
    "DEFAULT_OFFICE_ID",
    "SimulationProgress",
    "simulate",
    "suggested_case_cache",
]
