"""A person moves: the new office (abh-neu, its shard on a PostgreSQL server of its own,
started by the test) requests the file from the previous office (abh-alt, its shard on the
shared server) through the real NATS JetStream broker, never through a shared database;
each office runs its own inbox consumer. The file arrives with its history, documents and
the proof of A's hash chain; B takes it over with provenance and checks A's chain offline
(``akte transfers verify``), which also catches a proof tampered with; A's file ends as
transferred. Every message delivered twice, and answers and requests delivered again
after everything, change nothing."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import psycopg
import pytest
from psycopg import sql

from adapters.bootstrap import build_service, office_schema, shard_settings
from adapters.cli.main import main
from adapters.inbox.consumer import InboxConfig, InboxConsumer, ensure_stream
from adapters.inbox.file_transfers import proof_problems, transfer_subject
from adapters.settings import Settings
from domain.case_file import CaseFile
from domain.history import describe
from service import AkteService
from service_file_transfers import FileEvent
from tests.conftest import POSTGRES, postgres_environment
from tests.support.file_transfers import OFFICE_A, OFFICE_B, ask_for, file_with_history, log_length
from tests.support.outbox import Broker, own_stream, stored_messages
from tests.support.postgres_cluster import Cluster, cluster_tools_problem, temporary_cluster

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.long,
    pytest.mark.skipif(cluster_tools_problem() is not None, reason=str(cluster_tools_problem())),
]


@pytest.fixture(scope="module")
def second_server() -> Iterator[Cluster]:
    with temporary_cluster("akte_transfers", databases=("akte",)) as cluster:
        yield cluster


@pytest.fixture
def deployment(
    second_server: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """abh-alt's shard on the shared server, abh-neu's on the second one."""
    environment = {
        **postgres_environment(tmp_path / "data", f"akte_transfers_{uuid.uuid4().hex[:8]}"),
        "AKTE_SHARD_BY_OFFICE": "true",
        "AKTE_OFFICES": f"{OFFICE_A},{OFFICE_B}",
        "AKTE_OFFICE_SERVERS": f"{OFFICE_B}=127.0.0.1:{second_server.port}/akte",
        "AKTE_SNAPSHOT_INTERVAL": "0",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    base = Settings()
    try:
        yield base
    finally:
        servers: list[tuple[str, dict[str, Any]]] = [
            (OFFICE_A, dict(POSTGRES)),
            (
                OFFICE_B,
                {
                    "host": "127.0.0.1",
                    "port": second_server.port,
                    "user": "postgres",
                    "dbname": "akte",
                },
            ),
        ]
        for office_id, conn_kwargs in servers:
            with psycopg.connect(autocommit=True, **conn_kwargs) as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                        sql.Identifier(office_schema(base, office_id))
                    )
                )


@pytest.fixture
def broker() -> Iterator[Broker]:
    with own_stream() as own:
        yield own


def office(base: Settings, office_id: str) -> AkteService:
    return build_service(shard_settings(base.model_copy(update={"shard_office": office_id})))


def config(broker: Broker, office_id: str) -> InboxConfig:
    return InboxConfig(
        office=office_id,
        url=broker.url,
        stream=broker.stream,
        subject_prefix=broker.prefix,
        fetch_timeout=0.5,
    )


async def publish(broker: Broker, subject: str, *payloads: bytes) -> None:
    client = await nats.connect(servers=[broker.url])
    try:
        stream = client.jetstream()
        await ensure_stream(stream, config(broker, OFFICE_A))
        for payload in payloads:
            await stream.publish(subject, payload)
    finally:
        await client.close()


async def consume(service: AkteService, broker: Broker, office_id: str) -> InboxConsumer:
    consumer = InboxConsumer(
        service.notices, config(broker, office_id), transfers=service.file_transfers
    )
    await consumer.run(until_idle=True)
    return consumer


async def waiting(broker: Broker) -> int:
    """Messages the stream still holds (a work queue: what was acknowledged is gone)."""
    client = await nats.connect(servers=[broker.url])
    try:
        info = await client.jetstream().stream_info(broker.stream)
        return int(info.state.messages)
    finally:
        await client.close()


def test_a_person_moves_between_offices_on_two_servers_through_the_broker(
    deployment: Settings,
    broker: Broker,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AKTE_OUTBOX_URL", broker.url)
    monkeypatch.setenv("AKTE_OUTBOX_SUBJECT_PREFIX", broker.prefix)
    at_a = transfer_subject(broker.prefix, OFFICE_A)
    at_b = transfer_subject(broker.prefix, OFFICE_B)
    service_a = office(deployment, OFFICE_A)
    service_b = office(deployment, OFFICE_B)
    try:
        moved = file_with_history(service_a)
        request, message = ask_for(service_b)
        request_body = json.loads(message.payload())
        request_body["nachrichtenkopf"]["antwortAn"] = at_b  # the test's subject prefix
        request_bytes = json.dumps(request_body).encode()
        # The request, delivered twice.
        asyncio.run(publish(broker, at_a, request_bytes, request_bytes))
        consumer_a = asyncio.run(consume(service_a, broker, OFFICE_A))
        assert (consumer_a.stats.handled, consumer_a.stats.transfers) == (2, 1)
        assert consumer_a.stats.duplicates == 1
        a_log = log_length(service_a)
        sent = [message.data for message in stored_messages(broker) if message.subject == at_b]
        assert len(sent) == 2
        assert (
            json.loads(sent[0])["nachrichtenkopf"]["nachrichtUUID"]
            == (json.loads(sent[1])["nachrichtenkopf"]["nachrichtUUID"])
        )
        # Both answers (the same message twice) wait in B's inbox; B takes the file over once.
        consumer_b = asyncio.run(consume(service_b, broker, OFFICE_B))
        assert (consumer_b.stats.handled, consumer_b.stats.transfers) == (2, 1)
        assert consumer_b.stats.duplicates == 1
        b_log = log_length(service_b)

        outcome = service_b.file_transfers.get_request(request.request_id)
        assert outcome.status == "taken_over"
        assert outcome.case_id is not None
        case_b = service_b.get_case(uuid.UUID(outcome.case_id))
        case_a = service_a.get_case(moved.case_id)

        # A's history: the file ended with its transfer to B.
        history_a = [describe(event) for event in service_a.case_events(moved.case_id)]
        assert history_a[-1] == (
            f"Akte an Ausländerbehörde {OFFICE_B} abgegeben (Umzug, § 67 AufenthV)"
        )
        assert (case_a.status, case_a.transferred_to) == ("transferred", OFFICE_B)
        # B's history: its own opening, the take-over, and each of A's parts with provenance.
        events_b = service_b.case_events(case_b.id)
        history_b = [describe(event) for event in events_b]
        assert history_b[0].startswith(f"Akte {case_b.reference} angelegt")
        assert history_b[1].startswith(f"Akte {moved.reference} von Ausländerbehörde {OFFICE_A}")
        parts = history_b[2:]
        assert len(parts) == moved.version
        assert all(
            line.startswith(f"übernommen von Ausländerbehörde {OFFICE_A} am ") for line in parts
        )
        assert any("Dokument 1 zur Akte genommen" in line for line in parts)
        assert any("Aufenthaltsdokument 1 ausgestellt" in line for line in parts)
        # The parts are B's file now, and the documents are in B's own store.
        assert (case_b.office_id, case_b.master_data) == (OFFICE_B, case_a.master_data)
        assert case_b.residence_documents == case_a.residence_documents
        assert [d.sha256 for d in case_b.documents] == [moved.document_sha256]
        assert service_b.intake.documents.read_bytes(moved.document_sha256, owner=case_b.id)

        # B verifies A's chain offline, from what B keeps.
        assert main(["transfers", "verify", str(case_b.id), "--office", OFFICE_B, "--json"]) == 0
        record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert record["ok"] is True
        assert (record["from_office_id"], record["parts"]) == (OFFICE_A, moved.version)
        # ... and a proof tampered with does not verify.
        taken = next(e for e in events_b if isinstance(e, CaseFile.TakenOver))
        proof = json.loads(
            service_b.intake.documents.read_bytes(
                taken.proof_sha256, owner=case_b.id, size_bytes=taken.proof_size_bytes
            )
        )
        told = [
            FileEvent(
                e.source_kind,
                e.source_version,
                e.source_at,
                e.source_recorded_at,
                e.source_by,
                e.facts,
                e.personal,
            )
            for e in events_b
            if isinstance(e, CaseFile.PartTakenOver)
        ]
        from_case = uuid.UUID(taken.from_case_id)
        assert proof_problems(proof, from_case, told) == []
        changed = json.loads(json.dumps(proof))
        state = bytearray(base64.b64decode(changed["events"][2]["state"]))
        state[-2] ^= 1
        changed["events"][2]["state"] = base64.b64encode(bytes(state)).decode()
        assert any("version 3" in problem for problem in proof_problems(changed, from_case, told))
        dropped = json.loads(json.dumps(proof))
        del dropped["events"][1]
        assert proof_problems(dropped, from_case, told)

        # The file (personal data) left the broker once B acknowledged it.
        assert asyncio.run(waiting(broker)) == 0
        # Delivered again after everything, out of order: a stale copy of the file reaches
        # B first, then the request reaches A again (A answers it again with the same
        # answer, which B recognises): nothing changes on either side.
        asyncio.run(publish(broker, at_b, sent[1]))
        asyncio.run(publish(broker, at_a, request_bytes))
        again_a = asyncio.run(consume(service_a, broker, OFFICE_A))
        assert (again_a.stats.handled, again_a.stats.duplicates) == (1, 1)
        repeated = asyncio.run(consume(service_b, broker, OFFICE_B))
        assert (repeated.stats.handled, repeated.stats.duplicates) == (2, 2)
        assert (log_length(service_a), log_length(service_b)) == (a_log, b_log)
    finally:
        service_a.close()
        service_b.close()
