"""Many clients booking the last slots at once, on PostgreSQL: every seat goes to one
person at most, and everyone else hears a clear refusal."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from uuid import UUID

import pytest

from adapters.bootstrap import build_service
from domain.appointments import Appointment, Slot, SlotTaken, slot_id
from service_appointment_mails import SlotBusy
from tests.conftest import FakeClock, make_settings
from tests.service.test_appointments import NEXT_MONDAY
from tests.support.appointments import OFFICE, POINT, STUDENT, local, person, proof, set_up

CLIENTS = 24
LAST_SLOTS = (local(NEXT_MONDAY, 11), local(NEXT_MONDAY, 11, 30))
"""Two slots of one free seat each (two counters, one held back for the day itself)."""


@pytest.mark.postgres
def test_many_clients_booking_the_last_slots_at_once(
    tmp_path: Path, request: pytest.FixtureRequest, clock: FakeClock
) -> None:
    settings = make_settings("postgres", tmp_path, request).model_copy(
        update={"postgres_pool_size": 8, "postgres_max_overflow": 16}
    )
    service = build_service(settings, clock=clock)
    try:
        set_up(service)
        solved = [proof(service) for _ in range(CLIENTS)]
        barrier = threading.Barrier(CLIENTS)
        outcomes: list[tuple[int, str, UUID | None]] = []
        lock = threading.Lock()

        def client(n: int) -> None:
            barrier.wait()
            try:
                recorded = service.appointments.book_appointment(
                    office_id=OFFICE,
                    service_point_code=POINT,
                    appointment_type="extend-title",
                    starts_at=LAST_SLOTS[n % 2],
                    situation=STUDENT,
                    person=person(n),
                    proof=solved[n],
                    by="public",
                )
                outcome, booked = "booked", recorded.appointment_id
            except SlotTaken as refusal:
                outcome, booked = f"slot-taken: {refusal}", None
            except SlotBusy as refusal:
                outcome, booked = f"slot-busy: {refusal}", None
            with lock:
                outcomes.append((n, outcome, booked))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert len(outcomes) == CLIENTS, "a client neither booked nor heard why not"
        tally = Counter(outcome.split(":")[0] for _, outcome, _ in outcomes)
        assert tally["booked"] == len(LAST_SLOTS), tally
        assert tally["booked"] + tally["slot-taken"] + tally["slot-busy"] == CLIENTS
        # Every refusal says why, in words a person can act on.
        for _, outcome, _ in outcomes:
            if outcome.startswith("slot-taken"):
                assert "is fully booked; choose another slot or join the waitlist" in outcome
            elif outcome.startswith("slot-busy"):
                assert "try again" in outcome
        for starts in LAST_SLOTS:
            slot = service.appointments._get(slot_id(OFFICE, POINT, starts), Slot)
            assert slot is not None
            assert len(slot.holders) == 1
            holder = service.appointments.get_appointment(UUID(slot.holders[0]))
            assert holder.starts_at == starts
        booked = {appointment_id for _, _, appointment_id in outcomes if appointment_id}
        assert all(isinstance(service.appointments.get_appointment(a), Appointment) for a in booked)
        # Nobody else got an appointment: refused bookings recorded nothing.
        topic_count = _count_booked(service)
        assert topic_count == len(LAST_SLOTS)
    finally:
        service.close()


def _count_booked(service: object) -> int:
    from eventsourcing.utils import get_topic

    recorder = service.recorder  # type: ignore[attr-defined]
    booked = recorder.select_notifications(
        start=1, limit=10_000, topics=[get_topic(Appointment.Booked)]
    )
    return len(booked)
