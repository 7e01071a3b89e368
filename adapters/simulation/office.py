"""The simulated office during a run: its staff and calendar, the people it knows, its
service points, and the bookkeeping of every command it gives.

People are fictitious (:mod:`adapters.simulation.fictitious_people`) and never logged. A
case file is opened before the person's first procedure: new arrivals on the day they
apply, long-term residents with an ``Opened`` one to ten years earlier. Residents come
back: a pool of known people gets most of the year's procedures.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections import Counter, deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import zip_longest
from typing import Any, Final, TypeVar
from uuid import UUID, uuid4

from adapters.payment.provider import CreatedPayment, PaymentOrder
from adapters.simulation.calendar import (
    OFFICE_LAST_START,
    OFFICE_OPENS,
    WorkingCalendar,
    local_date,
    utc,
)
from adapters.simulation.fictitious_people import (
    NAMES,
    STREETS,
    add_months,
    paper_number,
    passport_number,
    weighted,
)
from adapters.simulation.plans import AppointmentPlan, ProcedurePlan
from adapters.simulation.profile import OfficeProfile, targets_for
from adapters.simulation.tally import YearTally
from domain.case_file import MasterData
from domain.commitment_declaration import Guarantor, InvitedPerson
from service import AkteService
from service_common import Recorded

T = TypeVar("T")

PAYMENT_PLATFORM: Final = "simulated-epay"
STAFF_TEAM_LEADS: Final = 3
POOL_PER_SCALE: Final = 45_000
"""Known people who come back with further procedures, at scale 1 (a city of this size
sees some 48,000 customers a year)."""
WALK_IN_REACH: Final = 25
"""Working days a visit for an extension may lie from the walk-in whose seat it takes."""
NATIONS: Final = (
    *(("TUR", 22), ("SYR", 16), ("UKR", 12), ("IND", 14), ("AFG", 9), ("IRN", 5)),
    *(("NGA", 5), ("CHN", 6), ("BRA", 4), ("USA", 4), ("XXA", 3)),
)

HOLDER_TOPICS: Final = {
    "extend_residence_permit": frozenset({"eat"}),
    "student_permit": frozenset({"eat"}),
    "extend_gestattung_duldung": frozenset({"duldung", "aufenthaltsgestattung"}),
    "transfer_eat_new_passport": frozenset({"eat"}),
}
"""Topics of people who come back with a document they hold: its kinds."""

Story = Generator[int, None, None]
"""A story yields the business time of its next step and runs that step when resumed."""


def staff_ids(posts: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Team leads and caseworkers of an office with ``posts``: as many people as posts
    (the workload's actors match the staff plan); a one-post office has one person who
    assigns and decides alike."""
    if posts < 2:
        return ("sb-01",), ("sb-01",)
    # A team lead for some eight people (three at the reference office's 26 posts).
    team_leads = min(STAFF_TEAM_LEADS, max(1, posts // 8))
    return (
        tuple(f"tl-{n:02d}" for n in range(1, team_leads + 1)),
        tuple(f"sb-{n:02d}" for n in range(1, posts - team_leads + 1)),
    )


class SimulatedPaymentPlatform:
    """The ePayment platform, in process: payments are created and reported by the
    simulator itself (the HTTP stand-in of :mod:`adapters.payment.stand_in` would cost a
    round trip per payment and tell nothing more)."""

    name = PAYMENT_PLATFORM

    def create_payment(self, order: PaymentOrder) -> CreatedPayment:
        transaction_id = f"SIM-{uuid4().hex[:20]}"
        return CreatedPayment(transaction_id, f"https://epay.simulation.invalid/{transaction_id}")


@dataclass(slots=True)
class PersonOnFile:
    case_id: UUID
    version: int
    nationality: str
    active: int = 0
    """Stories under way on the file: it may be transferred or closed only at 0."""
    pool_index: int = -1
    surname: str = ""
    given_names: str = ""
    born: date = date(1980, 1, 1)
    documents: dict[int, HeldDocument] = field(default_factory=dict)
    """The residence documents issued to the person in this run, by number."""
    listed: bool = False
    """Among the holders who come back with a document (``SimulatedOffice.holders``)."""


@dataclass(slots=True)
class HeldDocument:
    kind: str
    valid_until: date
    card_handed_over: bool = False
    """An eAT whose card the person holds (only then can it move to a new passport)."""
    issued_at: int = 0
    """The simulated minute it was issued: a story running a little behind in time (its
    step started before the issue) cannot extend or move it yet."""
    changed_at: int = 0
    """The simulated minute of its last step (issue, card ordered, arrived, handed over,
    extended, moved): the case file refuses a step of another story dated before it."""


@dataclass(frozen=True)
class ServicePointSlots:
    code: str
    starts: tuple[int, ...]
    """Minutes after local midnight at which its slots begin, every working day."""
    seats: int
    """Seats of a slot bookable before its day (the same-day seats are held back)."""


class SimulatedOffice:
    """The office's state during a run and the commands every story gives through it."""

    def __init__(
        self,
        service: AkteService,
        profile: OfficeProfile,
        *,
        first_year: int,
        years: int,
        scale: float,
        growth: float,
        office_id: str,
    ) -> None:
        self.service = service
        self.profile = profile
        self.first_year = first_year
        self.last_year = first_year + years - 1
        self.scale = scale
        self.growth = growth
        self.office_id = office_id
        self.calendar = WorkingCalendar(first_year - 11, self.last_year + 2)
        self.platform = SimulatedPaymentPlatform()
        self.posts = {
            year: profile.staff_target(
                scale=scale, years_after_first=year - first_year, growth=growth
            )
            for year in range(first_year, self.last_year + 1)
        }
        """Per simulated year, the posts of the staff plan (the profile's staff, scaled)."""
        self.team_leads, self.caseworkers = staff_ids(max(self.posts.values()))
        self.targets = {
            year: targets_for(
                profile, scale=scale, years_after_first=year - first_year, growth=growth
            )
            for year in range(first_year, self.last_year + 2)
        }
        self.tallies = {year: YearTally() for year in range(first_year - 1, self.last_year + 3)}
        self.received_by_year: Counter[int] = Counter()
        self.decided_pairs: Counter[tuple[int, int]] = Counter()
        self.customer_targets = {
            year: profile.customer_target(
                scale=scale, years_after_first=year - first_year, growth=growth
            )
            for year in range(first_year, self.last_year + 2)
        }
        self.picks: Counter[int] = Counter()
        """Per year, the people procedures received in it will be given (planned)."""
        self.picked: Counter[int] = Counter()
        self.bound_to_be_new: Counter[int] = Counter()
        """Per year, customers planned that cannot be someone served already (newcomers,
        walk-ins, guarantors): the customer steering keeps room for them."""
        self.walk_ins: dict[int, list[AppointmentPlan]] = {}
        self.walk_in_days: dict[int, list[int]] = {}
        """Per year, the days of the walk-ins (sorted with them at the first take)."""
        """Per year, the bookings of people without a file planned (an extension's visit
        may take the seat of one not yet booked)."""
        self.holders: list[PersonOnFile] = []
        """People holding a residence document issued in the run (they come back to
        extend it, or to move an eAT to a new passport)."""
        self.served: dict[int, list[PersonOnFile]] = {}
        """Per year, the people on file served in it (to come back in the same year)."""
        self.pool: list[PersonOnFile] = []
        # Room for every customer of the largest year; the steering decides who comes.
        self.pool_cap = max(20, max(self.customer_targets.values()))
        self.arrivals: deque[PersonOnFile] = deque()
        self.heap: list[tuple[int, int, Any]] = []
        """The stories and plans due, by business time (the run works through them)."""
        self.sequence = 0
        self.commands = 0
        self.events = 0
        self.case_files = 0
        self.commands_by_kind: Counter[str] = Counter()
        self.points: dict[str, ServicePointSlots] = {}
        self.seats: Counter[tuple[str, int]] = Counter()
        """Seats taken per service point and slot start: the simulator books every one."""

    def _push(self, ts: int, item: Any) -> None:
        self.sequence += 1
        heapq.heappush(self.heap, (ts, self.sequence, item))

    def _counted(self, kind: str, events: int) -> None:
        self.commands += 1
        self.events += events
        self.commands_by_kind[kind] += 1

    def _take_walk_in(self, year: int, now: int, day: int) -> AppointmentPlan | None:
        """A walk-in of ``year`` not booked yet (its story starts after ``now``), the
        nearest to working day ``day``, now cancelled; None if there is none left.

        The nearest (within :data:`WALK_IN_REACH` working days), so that the seats move
        by days only and the appointments keep their months."""
        plans = self.walk_ins.get(year)
        if not plans:
            return None
        days = self.walk_in_days.get(year)
        if days is None:
            plans.sort(key=lambda plan: plan.day)
            days = self.walk_in_days[year] = [plan.day for plan in plans]
        # Walk-ins of today and before are booked already (they book days ahead).
        past = bisect.bisect_right(days, self._day_of(now))
        del plans[:past], days[:past]
        index = bisect.bisect_left(days, day)
        # Within some working days only: where the seats are short, every month goes
        # short alike (a search to the year's end would take the last weeks' seats early).
        end = bisect.bisect_right(days, day + WALK_IN_REACH)
        start = bisect.bisect_left(days, day - WALK_IN_REACH)
        later, earlier = range(index, end), range(index - 1, start - 1, -1)
        for pair in zip_longest(earlier, later):
            for position in pair:
                if position is not None and plans[position].start > now:
                    plan = plans[position]
                    del plans[position], days[position]
                    plan.cancelled = True
                    # Its person will not come: the customer steering need not keep room.
                    self.bound_to_be_new[year] -= 1
                    return plan
        return None

    def _customer(self, ts: int, identity: str, person: PersonOnFile | None = None) -> None:
        """Served in the year of ``ts`` (the report's definition of customers)."""
        year = self.calendar.year_of(ts)
        customers = self.tallies[year].customers
        if person is not None and identity not in customers:
            self.served.setdefault(year, []).append(person)
        customers.add(identity)

    # ------------------------------------------------------------------- time

    def _at(self, rng: random.Random, day: int, after: int) -> int:
        """A business time on working day ``day``, later than ``after``."""
        ts = self.calendar.moment(day, rng.randint(OFFICE_OPENS, OFFICE_LAST_START))
        if ts <= after:
            ts = after + 60 * rng.randint(1, 4)
        return ts

    def _soon(self, rng: random.Random, after: int) -> int:
        """Minutes after ``after``: the next step at the same desk."""
        return after + 60 * rng.randint(1, 4)

    def _day_of(self, ts: int) -> int:
        return self.calendar.last_on_or_before(local_date(ts))

    def _caseworker(self, rng: random.Random) -> str:
        return rng.choice(self.caseworkers)

    # ------------------------------------------------------------------ people

    def _case(
        self,
        person: PersonOnFile,
        command: Callable[..., Recorded[T]],
        t: int,
        by: str,
        **fields: Any,
    ) -> T:
        recorded = command(
            person.case_id, expected_version=person.version, by=by, at=utc(t), **fields
        )
        self._counted(command.__name__, recorded.version - person.version)
        person.version = recorded.version
        return recorded.result

    def _person_for(self, plan: ProcedurePlan, rng: random.Random, t: int) -> PersonOnFile:
        if plan.new_person:
            if self.arrivals and plan.topic in ("family_reunion", "first_title_after_entry"):
                person = self.arrivals.popleft()
                self._join_pool(person, rng)
                return person
            ages = (0, 0) if plan.topic == "child_born_in_germany" else (18, 50)
            return self._open(rng, t - 60 * rng.randint(2, 9), ages, pooled=True)
        wanted = HOLDER_TOPICS.get(plan.topic)
        if wanted is not None and self.holders and rng.random() < 0.8:
            for _ in range(8):
                if not self.holders:
                    break
                index = rng.randrange(len(self.holders))
                holder = self.holders[index]
                if holder.pool_index < 0 or not any(
                    held.kind in wanted for held in holder.documents.values()
                ):
                    continue
                # Back with the document once; a new document lists them again.
                self.holders[index] = self.holders[-1]
                self.holders.pop()
                holder.listed = False
                self.picked[self.calendar.year_of(t)] += 1
                return holder
        return self._steered_person(rng, t)

    def _steered_person(self, rng: random.Random, t: int) -> PersonOnFile:
        """A known person for a procedure, steered so that the year's distinct customers
        come out at the profile's figure: someone not yet served this year with the
        probability (customers still wanted) / (procedures still to come), else someone
        served already this year (they come back with a further procedure)."""
        year = self.calendar.year_of(t)
        self.picked[year] += 1
        planned = max(self.picks[year], self.picked[year])
        remaining = max(planned - self.picked[year] + 1, 1)
        reserve = self.bound_to_be_new[year] * remaining / max(planned, 1)
        wanted = self.customer_targets.get(year, 0) - len(self.tallies[year].customers) - reserve
        customers = self.tallies[year].customers
        served = self.served.get(year, [])
        if rng.random() >= wanted / remaining and served:
            for _ in range(8):
                person = served[rng.randrange(len(served))]
                if person.pool_index >= 0:  # still the office's (not moved away)
                    return person
        for _ in range(8 if self.pool else 0):
            person = self.pool[rng.randrange(len(self.pool))]
            if f"c:{person.case_id}" not in customers:
                return person
        day = max(0, self._day_of(t) - rng.randint(250, 2500))
        opened = self.calendar.moment(day, rng.randint(OFFICE_OPENS, OFFICE_LAST_START))
        return self._open(rng, opened, (20, 60), pooled=True)

    def _pooled_person(self, rng: random.Random, t: int, *, new_share: float) -> PersonOnFile:
        """Someone the office knows: mostly a returning person, else a resident whose
        file was opened years ago (the ``Opened`` lies in an earlier year)."""
        if self.pool and (len(self.pool) >= self.pool_cap or rng.random() >= new_share):
            return self.pool[rng.randrange(len(self.pool))]
        day = max(0, self._day_of(t) - rng.randint(250, 2500))
        opened = self.calendar.moment(day, rng.randint(OFFICE_OPENS, OFFICE_LAST_START))
        return self._open(rng, opened, (20, 60), pooled=True)

    def _open(
        self, rng: random.Random, t: int, ages: tuple[int, int], *, pooled: bool
    ) -> PersonOnFile:
        nationality = weighted(rng, NATIONS)
        given_names, surnames = NAMES[nationality]
        today = local_date(t)
        if ages == (0, 0):
            born = today - timedelta(days=rng.randint(10, 120))
        else:
            born = add_months(today, -12 * rng.randint(*ages)) - timedelta(days=rng.randint(1, 364))
        master_data = MasterData(
            surname=rng.choice(surnames),
            given_names=" ".join(rng.sample(given_names, 2 if rng.random() < 0.2 else 1)),
            date_of_birth=born,
            nationality=nationality,
            passport_number=passport_number(rng, nationality),
            address=f"{rng.choice(STREETS)} {rng.randint(1, 140)}, 99999 Simulationsstadt",
        )
        recorded = self.service.open_case(
            office_id=self.office_id,
            master_data=master_data,
            by=self._caseworker(rng),
            at=utc(t),
        )
        self._counted("open_case", recorded.version + 1)  # and the claim on its file number
        self.case_files += 1
        person = PersonOnFile(
            recorded.case_id,
            recorded.version,
            nationality,
            surname=master_data.surname,
            given_names=master_data.given_names,
            born=born,
        )
        if pooled:
            self._join_pool(person, rng)
        return person

    def _join_pool(self, person: PersonOnFile, rng: random.Random) -> None:
        if len(self.pool) >= self.pool_cap:
            # Someone the office no longer sees; their file stays as it is.
            self._leave_pool(self.pool[rng.randrange(len(self.pool))])
        person.pool_index = len(self.pool)
        self.pool.append(person)

    def _leave_pool(self, person: PersonOnFile) -> None:
        last = self.pool.pop()
        if last is not person:
            self.pool[person.pool_index] = last
            last.pool_index = person.pool_index
        person.pool_index = -1

    def _guarantor(self, rng: random.Random, today: date) -> Guarantor:
        nationality = weighted(rng, (("DEU", 55), *NATIONS))
        given_names, surnames = NAMES["TUR" if nationality == "DEU" else nationality]
        return Guarantor(
            surname=rng.choice(surnames),
            given_names=rng.choice(given_names),
            date_of_birth=add_months(today, -12 * rng.randint(25, 70)),
            address=f"{rng.choice(STREETS)} {rng.randint(1, 140)}, 99999 Simulationsstadt",
            nationality=nationality,
            id_document_number=paper_number(rng, "L"),
        )

    def _invited(self, rng: random.Random, today: date) -> InvitedPerson:
        nationality = weighted(rng, NATIONS)
        given_names, surnames = NAMES[nationality]
        return InvitedPerson(
            surname=rng.choice(surnames),
            given_names=rng.choice(given_names),
            date_of_birth=add_months(today, -12 * rng.randint(18, 80)),
            nationality=nationality,
            passport_number=passport_number(rng, nationality),
        )
