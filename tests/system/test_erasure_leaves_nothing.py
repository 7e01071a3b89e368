"""Issue 21, "Show it": a person with every kind of record, erased; then every byte of
the store searched for the person's values in every encoding. On SQLite and PostgreSQL.

The person (tests/support/erasure_scenario.py) has a case file with an uploaded letter, a
contact form submission with a file, a counter booking made with the file's id (its
confirmation mail kept in the development mailbox), a waitlist entry and a commitment
declaration in which they are the invited visitor. After the erasure: none of their
values in any file below the data directory (SQLite databases with WAL, key store, read
models, documents, mailbox, erasure journal) nor in a ``pg_dump`` of the schema, in UTF-8,
UTF-16, JSON-escaped or base64 form; every content route answers 410; the reports the
head of office reads are byte-identical; the audit chain verifies; the guarantor's part
of the declaration is still readable.
"""

from __future__ import annotations

import base64
import json
import os
import re
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

import adapters.cli.main as cli
from adapters.http.auth.identity import Role
from adapters.personal_data.subject_access import subject_access
from adapters.settings import Settings
from adapters.store.hash_chain import ChainSource, verify_chains
from adapters.views.read_models import ReadModels
from domain.appointments import WaitlistEntry
from domain.personal import REDACTED_TEXT
from projections.read_models import READ_MODELS
from service import AkteService
from tests.conftest import FakeClock, bearer
from tests.support.erasure_scenario import (
    EMAIL,
    GUARANTOR,
    GUARANTOR_VALUES,
    LETTER,
    PASSPORT,
    PERSON_VALUES,
    SCAN,
    SURNAME,
    build_person,
    erase,
)
from tests.support.erasure_search import needles, search, store_bytes
from tests.support.projections import engine_for


def _without_position(body: bytes) -> bytes:
    """The log position a report was read at moves with every event (the erasure's too)."""
    body = re.sub(rb'"position":\s*\d+', b'"position":0', body)
    body = re.sub(rb"Eintrag Nr\. \d+", b"Eintrag Nr. 0", body)
    return re.sub(rb"Position [\d.]+", b"Position 0", body)


def audit_verify(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """``akte audit verify`` on the settings' store: exit code 0."""
    for name in [name for name in os.environ if name.startswith("AKTE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AKTE_STORE", settings.store)
    monkeypatch.setenv("AKTE_DATA_DIR", str(settings.data_dir))
    if settings.store == "postgres":
        monkeypatch.setenv("AKTE_POSTGRES_HOST", settings.postgres_host)
        monkeypatch.setenv("AKTE_POSTGRES_PORT", str(settings.postgres_port))
        monkeypatch.setenv("AKTE_POSTGRES_USER", settings.postgres_user)
        monkeypatch.setenv("AKTE_POSTGRES_DBNAME", settings.postgres_dbname)
        monkeypatch.setenv("AKTE_POSTGRES_SCHEMA", settings.postgres_schema)
    assert cli.main(["audit", "verify"]) == 0


def test_the_search_finds_every_form_it_looks_for() -> None:
    """The search is not blind: each form of a value is found inside other bytes."""
    value = "Żółkiewska-Ünal"
    for form, needle in needles(value).items():
        assert search({"blob": b"\x00prefix" + needle + b"suffix\xff"}, [value]), form
    encoded = value.encode()
    blobs = [
        base64.b64encode(b"xy" + encoded + b"z"),
        base64.b64encode(b"x" + encoded),
        json.dumps({"surname": value}).encode(),
        value.encode("utf-16"),
    ]
    for blob in blobs:
        assert search({"blob": blob}, [value]), blob


def test_an_erased_person_leaves_nothing_readable_in_any_file_or_table(
    client: TestClient,
    service: AkteService,
    settings: Settings,
    read_models: ReadModels,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = build_person(service, settings)
    head = bearer(settings, "al-01", Role.HEAD_OF_OFFICE)
    caseworker = bearer(settings, "sb-01", Role.CASEWORKER)
    # A write through the API with an idempotency key: its first answer is kept for
    # retries (akte_idempotency_keys) and searched with the rest.
    noted = client.post(
        f"/cases/{records.case_id}/notes",
        json={"text": f"{SURNAME} legte Pass {PASSPORT} vor"},
        headers=caseworker
        | {
            "If-Match": f'"{service.case_head_version(records.case_id)}"',
            "Idempotency-Key": "note-z1",
        },
    )
    assert noted.status_code == 201, noted.text
    content_routes = {
        f"/cases/{records.case_id}/documents/1/content": LETTER,
        f"/contact-submissions/{records.submission_id}/files/1/content": SCAN,
    }
    for url, expected in content_routes.items():
        answer = client.get(url, headers=caseworker)
        assert answer.status_code == 200, answer.text
        assert answer.content == expected
    period = {"from": "2024-02-26", "until": "2024-03-31"}

    def reports() -> list[bytes]:
        with engine_for(service, read_models.views, READ_MODELS) as engine:
            engine.catch_up()
        answers = [
            client.get("/reports/yearly/2024", headers=head),
            client.get("/reports/yearly/2024?format=html", headers=head),
            client.get("/reports/workload", params=period, headers=head),
        ]
        for answer in answers:
            assert answer.status_code == 200, answer.text
        return [_without_position(answer.content) for answer in answers]

    before = reports()
    # The search sees what is there: the kept mail holds the person's address in clear.
    assert any(EMAIL in hit for hit in search(store_bytes(settings), [EMAIL]))
    export = subject_access(service, read_models.views, records.case_id, requested_by="dsb-01")
    document = export.document
    assert [a["state"]["id"] for a in document["appointments"]] == [str(records.appointment_id)]
    assert [w["state"]["id"] for w in document["waitlist_entries"]] == [
        str(records.waitlist_entry_id)
    ]
    assert [s["state"]["id"] for s in document["contact_submissions"]] == [
        str(records.submission_id)
    ]
    assert [d["state"]["id"] for d in document["commitment_declarations"]] == [
        str(records.declaration_id)
    ]
    clock.advance(hours=1)

    erase(service, records)

    after = reports()
    assert after == before
    for url in content_routes:
        answer = client.get(url, headers=caseworker)
        assert answer.status_code == 410, answer.text
        assert answer.json()["type"].endswith("document-erased")
    source: ChainSource = service.recorder  # type: ignore[assignment]
    chain = verify_chains(source)
    assert chain.ok, chain.findings
    audit_verify(settings, monkeypatch)
    assert "OK" in capsys.readouterr().out
    # The guarantor's part stays; the visitor's reads erased.
    declaration = service.declarations.get_declaration(records.declaration_id)
    assert declaration.guarantor == GUARANTOR
    assert declaration.invited_person.surname == REDACTED_TEXT
    assert declaration.invited_person.passport_number == REDACTED_TEXT
    appointment = service.appointments.appointment_events(records.appointment_id)[0]
    assert getattr(appointment, "surname") == REDACTED_TEXT  # noqa: B009
    entry: WaitlistEntry = service.repository.get(UUID(str(records.waitlist_entry_id)))
    assert entry.person.email == REDACTED_TEXT
    # Let every read model follow the erasure too, then search every byte.
    with engine_for(service, read_models.views, READ_MODELS) as engine:
        engine.catch_up()
    stored = store_bytes(settings)
    assert search(stored, PERSON_VALUES) == []
    # The guarantor's values are sealed too (never plain), but still open with their key.
    assert search(stored, GUARANTOR_VALUES) == []
