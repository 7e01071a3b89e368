"""Random command sequences through the service, checked against an in-memory mirror.

For every command, the same domain method runs on a copy of the mirror aggregate. The
service must accept exactly what the mirror accepts; a rejected command must leave no
event behind; and after every step the case reloaded from the store (through snapshots,
sometimes in a freshly started service) equals the mirror.
"""

from __future__ import annotations

import copy
import tempfile
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from adapters.bootstrap import build_service
from adapters.settings import Settings
from domain.acts import Act
from domain.case_file import CaseFile, MasterData
from domain.errors import DomainError
from domain.values import Validity
from service import AkteService
from service_common import ConcurrentModification, Recorded
from tests.conftest import POSTGRES, FakeClock

BY = "sb-01"
numbers = st.integers(min_value=1, max_value=4)
day_offsets = st.integers(min_value=-20, max_value=800)
card_numbers = st.sampled_from(["Y00ABC123", "Y00DEF456", "Y00GHI789"])
sheet_numbers = st.sampled_from(["FB0000001", "FB0000002", "FB0000003"])
texts = st.sampled_from(["Rückruf", "Unterlagen vollständig", "  ", "x" * 10])
RESIDENCE_BASES = {
    "eat": "aufenthg-16b",
    "duldung": "aufenthg-60a",
    "aufenthaltsgestattung": "asylg-55",
}

ServiceCall = Callable[[int], Recorded[Any]]
DomainCall = Callable[[CaseFile, Act], object]


class CaseFileMachine(RuleBasedStateMachine):
    store = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.schema: str | None = None
        if self.store == "sqlite":
            self.settings = Settings(store="sqlite", data_dir=Path(tempfile.mkdtemp()))
        else:
            self.schema = f"akte_sm_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(autocommit=True, **POSTGRES) as conn:
                conn.execute(f'CREATE SCHEMA "{self.schema}"')
            self.settings = Settings(
                store="postgres",
                postgres_host=POSTGRES["host"],
                postgres_port=POSTGRES["port"],
                postgres_user=POSTGRES["user"],
                postgres_dbname=POSTGRES["dbname"],
                postgres_schema=self.schema,
            )
        self.settings.snapshot_interval = 4
        self.service: AkteService = build_service(self.settings, clock=self.clock)
        self.mirror: CaseFile | None = None

    def teardown(self) -> None:
        self.service.close()
        if self.schema is not None:
            with psycopg.connect(autocommit=True, **POSTGRES) as conn:
                conn.execute(f'DROP SCHEMA "{self.schema}" CASCADE')

    # ------------------------------------------------------------- machinery

    @property
    def case(self) -> CaseFile:
        assert self.mirror is not None
        return self.mirror

    def stored_event_count(self) -> int:
        return len(self.service.case_events(self.case.id))

    def run(self, service_call: ServiceCall, domain_call: DomainCall) -> None:
        act = Act(by=BY, at=self.clock.now, recorded_at=self.clock.now)
        candidate = copy.deepcopy(self.case)
        expected: type[DomainError] | None = None
        try:
            domain_call(candidate, act)
        except DomainError as error:
            expected = type(error)
        before = self.stored_event_count()
        outcome: type[DomainError] | None = None
        try:
            recorded = service_call(self.case.version)
        except DomainError as error:
            outcome = type(error)
        assert outcome == expected
        if outcome is None:
            candidate.collect_events()
            assert recorded.version == candidate.version
            self.mirror = candidate
        else:
            assert self.stored_event_count() == before
        self.clock.advance(hours=7)

    def day(self, offset: int) -> date:
        return self.clock.now.date() + timedelta(days=offset)

    # ---------------------------------------------------------------- rules

    @initialize()
    def open_case(self) -> None:
        data = MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N12345678", None)
        recorded = self.service.open_case(office_id="abh-musterstadt", master_data=data, by=BY)
        self.mirror = self.service.get_case(recorded.case_id)

    @invariant()
    def store_equals_mirror(self) -> None:
        if self.mirror is not None:
            assert self.service.get_case(self.case.id) == self.case
            assert self.stored_event_count() == self.case.version

    @rule()
    def restart_service(self) -> None:
        self.service.close()
        self.service = build_service(self.settings, clock=self.clock)

    @rule()
    def stale_write_is_refused(self) -> None:
        before = self.stored_event_count()
        with pytest.raises(ConcurrentModification):
            self.service.add_note(
                self.case.id, expected_version=self.case.version - 1, by=BY, text="x"
            )
        assert self.stored_event_count() == before

    @rule(text=texts)
    def add_note(self, text: str) -> None:
        self.run(
            lambda v: self.service.add_note(self.case.id, expected_version=v, by=BY, text=text),
            lambda c, a: c.add_note(text=text, act=a),
        )

    @rule(surname=st.sampled_from(["Beispiel", "Muster", ""]))
    def correct_master_data(self, surname: str) -> None:
        corrections = {"surname": surname}
        self.run(
            lambda v: self.service.correct_master_data(
                self.case.id, expected_version=v, by=BY, corrections=corrections, reason="Heirat"
            ),
            lambda c, a: c.correct_master_data(corrections=corrections, reason="Heirat", act=a),
        )

    @rule(pages=st.integers(min_value=0, max_value=3))
    def attach_document(self, pages: int) -> None:
        fields: dict[str, Any] = {
            "kind": "passport_copy",
            "sha256": "e" * 64,
            "size_bytes": 100,
            "media_type": "application/pdf",
            "page_count": pages,
            "source": "scan",
        }
        self.run(
            lambda v: self.service.attach_document(
                self.case.id, expected_version=v, by=BY, **fields
            ),
            lambda c, a: c.attach_document(**fields, act=a),
        )

    @rule(number=numbers)
    def review_document(self, number: int) -> None:
        self.run(
            lambda v: self.service.review_document(
                self.case.id, expected_version=v, by=BY, document_number=number
            ),
            lambda c, a: c.review_document(document_number=number, act=a),
        )

    @rule(channel=st.sampled_from(["contact_form", "mail", "appointment"]))
    def receive_procedure(self, channel: Any) -> None:
        self.run(
            lambda v: self.service.receive_procedure(
                self.case.id,
                expected_version=v,
                by=BY,
                channel=channel,
                topic="extend_residence_permit",
                legal_basis="aufenthg-16b",
            ),
            lambda c, a: c.receive_procedure(
                channel=channel, topic="extend_residence_permit", legal_basis="aufenthg-16b", act=a
            ),
        )

    @rule(number=numbers, assignee=st.sampled_from(["sb-01", "sb-02"]))
    def assign_procedure(self, number: int, assignee: str) -> None:
        self.run(
            lambda v: self.service.assign_procedure(
                self.case.id, expected_version=v, by=BY, procedure_number=number, assignee=assignee
            ),
            lambda c, a: c.assign_procedure(procedure_number=number, assignee=assignee, act=a),
        )

    @rule(number=numbers, due=day_offsets)
    def request_documents(self, number: int, due: int) -> None:
        due_on = self.day(due)
        self.run(
            lambda v: self.service.request_documents(
                self.case.id,
                expected_version=v,
                by=BY,
                procedure_number=number,
                what=["Pass"],
                due_on=due_on,
            ),
            lambda c, a: c.request_documents(
                procedure_number=number, what=["Pass"], due_on=due_on, act=a
            ),
        )

    @rule(
        number=numbers,
        outcome=st.sampled_from(["granted", "refused", "withdrawn"]),
        reason=st.sampled_from([None, "Lebensunterhalt nicht gesichert"]),
    )
    def decide_procedure(self, number: int, outcome: Any, reason: str | None) -> None:
        self.run(
            lambda v: self.service.decide_procedure(
                self.case.id,
                expected_version=v,
                by=BY,
                procedure_number=number,
                outcome=outcome,
                reason=reason,
            ),
            lambda c, a: c.decide_procedure(
                procedure_number=number, outcome=outcome, legal_basis=None, reason=reason, act=a
            ),
        )

    @rule(number=numbers)
    def close_procedure(self, number: int) -> None:
        self.run(
            lambda v: self.service.close_procedure(
                self.case.id, expected_version=v, by=BY, procedure_number=number
            ),
            lambda c, a: c.close_procedure(procedure_number=number, act=a),
        )

    @rule(kind=st.sampled_from(list(RESIDENCE_BASES)), start=day_offsets, length=day_offsets)
    def issue_residence_document(self, kind: Any, start: int, length: int) -> None:
        valid_from, valid_until = self.day(start), self.day(start + length)
        self.run(
            lambda v: self.service.issue_residence_document(
                self.case.id,
                expected_version=v,
                by=BY,
                kind=kind,
                legal_basis=RESIDENCE_BASES[kind],
                valid_from=valid_from,
                valid_until=valid_until,
                document_number="Y00ABC123",
            ),
            lambda c, a: c.issue_residence_document(
                kind=kind,
                legal_basis=RESIDENCE_BASES[kind],
                validity=Validity(valid_from, valid_until),
                document_number="Y00ABC123",
                procedure_number=None,
                act=a,
            ),
        )

    @rule(number=numbers, until=day_offsets)
    def extend_residence_document(self, number: int, until: int) -> None:
        valid_until = self.day(until)
        self.run(
            lambda v: self.service.extend_residence_document(
                self.case.id,
                expected_version=v,
                by=BY,
                residence_document_number=number,
                valid_until=valid_until,
            ),
            lambda c, a: c.extend_residence_document(
                residence_document_number=number, valid_until=valid_until, reason=None, act=a
            ),
        )

    @rule(number=numbers, step=st.sampled_from(["order", "arrived", "handover"]))
    def eat_card_step(self, number: int, step: str) -> None:
        service_steps = {
            "order": self.service.order_eat_card,
            "arrived": self.service.record_eat_card_arrived,
            "handover": self.service.hand_over_eat_card,
        }
        domain_steps = {
            "order": CaseFile.order_eat_card,
            "arrived": CaseFile.record_eat_card_arrived,
            "handover": CaseFile.hand_over_eat_card,
        }
        self.run(
            lambda v: service_steps[step](
                self.case.id, expected_version=v, by=BY, residence_document_number=number
            ),
            lambda c, a: domain_steps[step](c, residence_document_number=number, act=a),
        )

    @rule(number=numbers, card=card_numbers)
    def transfer_eat(self, number: int, card: str) -> None:
        self.run(
            lambda v: self.service.transfer_eat_to_new_passport(
                self.case.id,
                expected_version=v,
                by=BY,
                residence_document_number=number,
                new_card_number=card,
            ),
            lambda c, a: c.transfer_eat_to_new_passport(
                residence_document_number=number, new_card_number=card, act=a
            ),
        )

    @rule(
        number=numbers,
        end_reason=st.sampled_from(["expired", "revoked", "replaced", "departed"]),
        reason=st.sampled_from([None, "§52"]),
    )
    def end_residence_document(self, number: int, end_reason: Any, reason: str | None) -> None:
        self.run(
            lambda v: self.service.end_residence_document(
                self.case.id,
                expected_version=v,
                by=BY,
                residence_document_number=number,
                end_reason=end_reason,
                reason=reason,
            ),
            lambda c, a: c.end_residence_document(
                residence_document_number=number, end_reason=end_reason, reason=reason, act=a
            ),
        )

    @rule(kind=st.sampled_from(["81_3_1", "81_3_2", "81_4"]), length=day_offsets)
    def issue_fiction_certificate(self, kind: Any, length: int) -> None:
        valid_from, valid_until = self.day(0), self.day(length)
        self.run(
            lambda v: self.service.issue_fiction_certificate(
                self.case.id,
                expected_version=v,
                by=BY,
                kind=kind,
                valid_from=valid_from,
                valid_until=valid_until,
                carrier_sheet_number="FB0000001",
            ),
            lambda c, a: c.issue_fiction_certificate(
                kind=kind,
                validity=Validity(valid_from, valid_until),
                carrier_sheet_number="FB0000001",
                procedure_number=None,
                act=a,
            ),
        )

    @rule(number=numbers, until=day_offsets, sheet=st.none() | sheet_numbers)
    def extend_fiction_certificate(self, number: int, until: int, sheet: str | None) -> None:
        valid_until = self.day(until)
        self.run(
            lambda v: self.service.extend_fiction_certificate(
                self.case.id,
                expected_version=v,
                by=BY,
                certificate_number=number,
                valid_until=valid_until,
                new_carrier_sheet_number=sheet,
            ),
            lambda c, a: c.extend_fiction_certificate(
                certificate_number=number,
                valid_until=valid_until,
                new_carrier_sheet_number=sheet,
                act=a,
            ),
        )

    @rule(number=numbers, end_reason=st.sampled_from(["decision", "withdrawal"]))
    def end_fiction_certificate(self, number: int, end_reason: Any) -> None:
        self.run(
            lambda v: self.service.end_fiction_certificate(
                self.case.id,
                expected_version=v,
                by=BY,
                certificate_number=number,
                end_reason=end_reason,
            ),
            lambda c, a: c.end_fiction_certificate(
                certificate_number=number, end_reason=end_reason, act=a
            ),
        )

    @rule(obligation=st.booleans())
    def integration_course(self, obligation: bool) -> None:
        if obligation:
            self.run(
                lambda v: self.service.impose_integration_course_obligation(
                    self.case.id, expected_version=v, by=BY
                ),
                lambda c, a: c.impose_integration_course_obligation(
                    legal_basis="aufenthg-44a", act=a
                ),
            )
        else:
            self.run(
                lambda v: self.service.issue_integration_course_entitlement(
                    self.case.id, expected_version=v, by=BY
                ),
                lambda c, a: c.issue_integration_course_entitlement(
                    legal_basis="aufenthg-44", act=a
                ),
            )

    @rule()
    def request_entry_consent(self) -> None:
        self.run(
            lambda v: self.service.request_entry_consent(self.case.id, expected_version=v, by=BY),
            lambda c, a: c.request_entry_consent(legal_basis="aufenthv-31", act=a),
        )

    @rule(number=numbers, give=st.booleans(), until=day_offsets)
    def decide_entry_consent(self, number: int, give: bool, until: int) -> None:
        if give:
            valid_until = self.day(until)
            self.run(
                lambda v: self.service.give_entry_consent(
                    self.case.id,
                    expected_version=v,
                    by=BY,
                    entry_procedure_number=number,
                    valid_until=valid_until,
                ),
                lambda c, a: c.give_entry_consent(
                    entry_procedure_number=number, valid_until=valid_until, act=a
                ),
            )
        else:
            self.run(
                lambda v: self.service.refuse_entry_consent(
                    self.case.id,
                    expected_version=v,
                    by=BY,
                    entry_procedure_number=number,
                    reason="Nein",
                ),
                lambda c, a: c.refuse_entry_consent(
                    entry_procedure_number=number, reason="Nein", act=a
                ),
            )

    @rule(kind=st.sampled_from(["civil_registry", "naturalisation"]))
    def receive_inquiry(self, kind: Any) -> None:
        self.run(
            lambda v: self.service.receive_inquiry(
                self.case.id, expected_version=v, by=BY, kind=kind
            ),
            lambda c, a: c.receive_inquiry(kind=kind, act=a),
        )

    @rule(number=numbers)
    def answer_inquiry(self, number: int) -> None:
        self.run(
            lambda v: self.service.answer_inquiry(
                self.case.id, expected_version=v, by=BY, inquiry_number=number
            ),
            lambda c, a: c.answer_inquiry(inquiry_number=number, act=a),
        )

    @rule(attachments=st.lists(numbers, max_size=2))
    def record_correspondence(self, attachments: list[int]) -> None:
        self.run(
            lambda v: self.service.record_correspondence(
                self.case.id,
                expected_version=v,
                by=BY,
                direction="received",
                counterpart_kind="court",
                counterpart_name="VG Musterstadt",
                subject="Klage",
                attachment_numbers=attachments,
            ),
            lambda c, a: c.record_correspondence(
                direction="received",
                counterpart_kind="court",
                counterpart_name="VG Musterstadt",
                subject="Klage",
                attachment_numbers=attachments,
                act=a,
            ),
        )

    @rule(reason=st.sampled_from(["naturalised", "died", "left"]))
    def close_case(self, reason: Any) -> None:
        self.run(
            lambda v: self.service.close_case(
                self.case.id, expected_version=v, by=BY, closure_reason=reason
            ),
            lambda c, a: c.close(closure_reason=reason, act=a),
        )

    @rule(office=st.sampled_from(["abh-anderswo", "abh-musterstadt"]))
    def transfer_to_office(self, office: str) -> None:
        self.run(
            lambda v: self.service.transfer_to_office(
                self.case.id, expected_version=v, by=BY, to_office_id=office
            ),
            lambda c, a: c.transfer_to_office(to_office_id=office, reason=None, act=a),
        )


class PostgresCaseFileMachine(CaseFileMachine):
    store = "postgres"


_SETTINGS = settings(
    deadline=None,
    stateful_step_count=40,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.long  # 6-9 s: bin/test-long runs it, so bin/test stays under ten minutes
def test_random_histories_on_sqlite() -> None:
    CaseFileMachine.TestCase.settings = settings(_SETTINGS, max_examples=40)
    CaseFileMachine.TestCase().runTest()


@pytest.mark.postgres
@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_random_histories_on_postgres() -> None:
    PostgresCaseFileMachine.TestCase.settings = settings(_SETTINGS, max_examples=20)
    PostgresCaseFileMachine.TestCase().runTest()
