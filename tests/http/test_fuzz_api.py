"""Property-based fuzzing of the whole OpenAPI schema with schemathesis.

Every operation gets generated requests from a caller allowed to use it. Path ids and
``If-Match`` usually name a real case file (or commitment declaration) at its current
version, so the fuzzing reaches the domain instead of stopping at 404/412. Checks: no 5xx,
every status documented, every response matching its schema. After each operation's run,
the event log must hold exactly the events of the writes that were acknowledged with 2xx:
a rejected request never left an event behind.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from adapters.bootstrap import build_app, build_read_models, build_service
from adapters.settings import Settings
from domain.case_file import CaseFile, MasterData
from domain.commitment_declaration import CommitmentDeclaration
from service import AkteService
from tests.conftest import FakeClock
from tests.support.declarations import RecordingProvider, submission
from tests.support.fuzz_auth import FuzzCaller, fuzz_caller

# Every operation of the schema, 25 generated requests each: about four minutes in one
# process, which bin/test runs a file per process; bin/test-long runs it.
pytestmark = pytest.mark.long

SEEDED_CASES = 3
SEEDED_DECLARATIONS = 2
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@dataclass
class FuzzEnvironment:
    service: AkteService
    app: FastAPI
    caller: FuzzCaller
    case_ids: list[UUID]
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    acknowledged: dict[UUID, set[int]] = field(default_factory=dict)
    declaration_ids: list[UUID] = field(default_factory=list)
    acknowledged_declarations: dict[UUID, set[int]] = field(default_factory=dict)
    public_submissions: int = 0
    """Acknowledged without an id: the applicant gets a secret reference instead."""

    def acknowledge(self, case_id: UUID, version: int) -> None:
        self.acknowledged.setdefault(case_id, set()).add(version)

    def acknowledge_declaration(self, declaration_id: UUID, *versions: int) -> None:
        self.acknowledged_declarations.setdefault(declaration_id, set()).update(versions)

    def assert_log_holds_only_acknowledged_writes(self) -> None:
        for case_id in self.all_case_ids():
            stored = {event.originator_version for event in self.service.case_events(case_id)}
            assert stored == self.acknowledged.get(case_id, set()), f"case {case_id}"
        submitted_publicly = 0
        for declaration_id in self.ids_with_topic(CommitmentDeclaration.Submitted):
            events = self.service.declarations.declaration_events(declaration_id)
            stored = {event.originator_version for event in events}
            acknowledged = self.acknowledged_declarations.get(declaration_id)
            if acknowledged is None:
                # A public submission: its two events, and nothing since.
                assert stored == {1, 2}, f"declaration {declaration_id}"
                submitted_publicly += 1
            else:
                assert stored == acknowledged, f"declaration {declaration_id}"
        assert submitted_publicly == self.public_submissions

    def ids_with_topic(self, event_class: type) -> set[UUID]:
        topic = f"{event_class.__module__}:{event_class.__qualname__}"
        return {
            UUID(str(notification.originator_id))
            for notification in self.service.recorder.select_notifications(
                start=1, limit=10**6, topics=[topic]
            )
        }

    def all_case_ids(self) -> set[UUID]:
        ids: set[UUID] = set()
        for notification in self.service.recorder.select_notifications(start=1, limit=10**6):
            if notification.topic.startswith(f"{CaseFile.__module__}:CaseFile."):
                ids.add(UUID(str(notification.originator_id)))
        return ids


@pytest.fixture
def fuzz_env(tmp_path: Any) -> Iterator[FuzzEnvironment]:
    clock = FakeClock()
    settings_ = Settings(store="sqlite", data_dir=tmp_path / "data")
    service = build_service(settings_, clock=clock)
    caller = fuzz_caller(settings_)
    read_models = build_read_models(settings_, service, follow=True)
    app = build_app(settings_, service, read_models=read_models)
    env = FuzzEnvironment(service=service, app=app, caller=caller, case_ids=[])
    for index in range(SEEDED_CASES):
        recorded = service.open_case(
            office_id=caller.office_id,
            master_data=MasterData("Beispiel", "Amal", date(1990, 1, 1 + index), "SYR", "N1234567"),
            by=caller.user_id,
        )
        env.case_ids.append(recorded.case_id)
        env.acknowledge(recorded.case_id, recorded.version)
        version = service.receive_procedure(
            recorded.case_id,
            expected_version=recorded.version,
            by=caller.user_id,
            channel="contact_form",
            topic="extend_residence_permit",
        ).version
        env.acknowledge(recorded.case_id, version)
    provider = RecordingProvider()
    for index in range(SEEDED_DECLARATIONS):
        submitted = service.declarations.submit_commitment_declaration(
            office_id=caller.office_id, **submission(clock.now.date())
        )
        declaration_id = submitted.declaration_id
        if index % 2:  # one paid, so that the office's later steps can succeed too
            started = service.declarations.start_payment(
                declaration_id,
                method="visa",
                provider=provider,
                notification_url="https://akte.example/payments/notifications",
                return_url="https://akte.example/payments/return",
            )
            service.declarations.settle_payment(
                provider=provider.name,
                transaction_id=started.result.payment.transaction_id,
                outcome="paid",
                amount_cents=2900,
                currency="EUR",
            )
        env.declaration_ids.append(declaration_id)
        seeded = service.declarations.get_declaration(declaration_id).version
        env.acknowledge_declaration(declaration_id, *range(1, seeded + 1))
    # Until the runner has built the read models, their routes answer 503 "not available
    # yet" (right, with Retry-After, but a server error to the fuzzer): on a busy machine
    # a list was asked for before its first build.
    head = service.recorder.max_notification_id() or 0
    assert read_models.wait_until(head, 60), "the read models were not built"
    yield env
    try:
        env.assert_log_holds_only_acknowledged_writes()
    finally:
        read_models.close()
        service.close()


def _operation_labels() -> list[str]:
    """The operations to fuzz, read from the OpenAPI schema of a throwaway app."""
    settings_ = Settings(store="sqlite", data_dir=Path(tempfile.mkdtemp()))
    service = build_service(settings_)
    try:
        api = schemathesis.openapi.from_dict(build_app(settings_, service).openapi())
        labels = []
        for result in api.get_all_operations():
            assert isinstance(result, Ok), f"the OpenAPI schema is invalid: {result}"
            labels.append(result.ok().label)
        return sorted(labels)
    finally:
        service.close()


@pytest.mark.parametrize("label", _operation_labels())
def test_no_request_breaks_the_api(label: str, fuzz_env: FuzzEnvironment) -> None:
    env = fuzz_env
    api = schemathesis.openapi.from_asgi("/openapi.json", env.app)
    operation = api.find_operation_by_label(label)
    assert operation is not None

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(case=operation.as_strategy())
    def fuzz(case: Any) -> None:
        path_parameters = case.path_parameters or {}
        real_case: UUID | None = None
        real_declaration: UUID | None = None
        if "case_id" in path_parameters and env.rng.random() < 0.8:
            real_case = env.rng.choice(env.case_ids)
            path_parameters["case_id"] = str(real_case)
            for name in path_parameters:
                if name.endswith("_number") and env.rng.random() < 0.8:
                    path_parameters[name] = env.rng.randint(1, 3)
            case.path_parameters = path_parameters
        if "declaration_id" in path_parameters and env.rng.random() < 0.8:
            real_declaration = env.rng.choice(env.declaration_ids)
            path_parameters["declaration_id"] = str(real_declaration)
            case.path_parameters = path_parameters
        headers = dict(case.headers or {})
        headers |= env.caller.headers_for(case.method, case.path)
        if case.method == "POST" and env.rng.random() < 0.8:
            if real_case is not None:
                headers["If-Match"] = f'"{env.service.get_case(real_case).version}"'
            elif real_declaration is not None:
                version = env.service.declarations.get_declaration(real_declaration).version
                headers["If-Match"] = f'"{version}"'
        case.headers = headers

        response = case.call_and_validate(checks=CHECKS)

        if case.method == "POST" and 200 <= response.status_code < 300:
            body = response.json()
            if "case_id" in body and "version" in body:
                env.acknowledge(UUID(body["case_id"]), body["version"])
            elif "case_id" in body:
                pass  # an erasure request: an event of its own aggregate, not the file's
            elif "declaration_id" in body:
                env.acknowledge_declaration(UUID(body["declaration_id"]), body["version"])
            elif case.path == "/commitment-declarations":
                env.public_submissions += 1

    fuzz()
