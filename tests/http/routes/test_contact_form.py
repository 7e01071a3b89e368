"""The contact form, triage and document uploads over HTTP, on SQLite and PostgreSQL.

Every refused upload (too large, empty, not a PDF/JPEG/PNG by its bytes whatever its name,
unreadable, an unsafe file name, too many files, a bad field next to good files) is a
``application/problem+json`` 4xx that stores no file and records no event.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app
from adapters.documents.encryption import EncryptedDocumentStore
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.settings import Settings
from adapters.simulation.legacy_scans import make_jpeg, make_pdf, make_png
from benchmarks.hostile_pdfs import object_stream_bomb
from service import AkteService
from tests.support.documents import raw_stored_bytes
from tests.support.erasure_requests import erase_over_http

PROBLEMS: Final = "https://akte.example/problems/"
PROBLEM_JSON: Final = "application/problem+json"
FIELDS: Final[dict[str, str]] = {
    "topic": "extend_residence_permit",
    "message": "Mein Titel läuft am 1. Mai ab.",
    "surname": "Yılmaz",
    "given_names": "Ayşe Nur",
    "email": "ayse.yilmaz@example.org",
    "date_of_birth": "1991-07-14",
}
LIMITS: Final[dict[str, int]] = {
    "contact_form_max_files": 3,
    "contact_form_max_file_bytes": 8192,
    "contact_form_max_total_bytes": 16384,
    "upload_max_file_bytes": 8192,
}
FILE_NAME: Final = "Reisepass Ayşe Yılmaz.pdf"

Upload = tuple[str, tuple[str, bytes, str]]


@pytest.fixture(scope="module")
def issuer_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("local-issuer") / "local-issuer.pem"
    LocalIssuer.load_or_create(path)
    return path


@pytest.fixture
def client(service: AkteService, settings: Settings, issuer_key_file: Path) -> Iterator[TestClient]:
    app_settings = settings.model_copy(update={**LIMITS, "local_issuer_key_path": issuer_key_file})
    with TestClient(build_app(app_settings, service)) as test_client:
        yield test_client


@pytest.fixture
def caseworker(issuer_key_file: Path, settings: Settings) -> dict[str, str]:
    issuer = LocalIssuer.load_or_create(issuer_key_file)
    token = issuer.issue(
        user_id="sb-01", roles=[Role.CASEWORKER], office_id=settings.default_office_id
    )
    return {"Authorization": f"Bearer {token}"}


def pdf(name: str = FILE_NAME, data: bytes | None = None, pages: int = 2) -> Upload:
    return (
        "files",
        (name, make_pdf(pages, marker=name) if data is None else data, "application/pdf"),
    )


def state(service: AkteService) -> tuple[int, set[str]]:
    """What was recorded and stored: the log's head and every stored hash."""
    return (
        service.recorder.max_notification_id() or 0,
        {entry.sha256 for entry in service.intake.documents.entries()},
    )


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    assert problem["type"] == PROBLEMS + code
    assert problem["status"] == status
    assert FILE_NAME not in response.text
    return problem


# -------------------------------------------------------------- the contact form


def test_a_submission_answers_a_receipt(client: TestClient, service: AkteService) -> None:
    document = make_pdf(3, marker="antrag")
    response = client.post(
        "/contact-form",
        data=FIELDS | {"file_number": "2019-ab12"},
        files=[
            pdf(data=document, pages=3),
            ("files", ("foto.png", make_png("foto"), "image/png")),
            # The declared type is ignored: the bytes say JPEG.
            ("files", ("foto2", make_jpeg("foto2"), "application/octet-stream")),
        ],
    )

    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["receipt"].startswith("KF-")
    assert [(f["media_type"], f["page_count"]) for f in receipt["files"]] == [
        ("application/pdf", 3),
        ("image/png", 1),
        ("image/jpeg", 1),
    ]
    assert response.headers["Cache-Control"] == "no-store"
    assert "Yılmaz" not in response.text
    submission = service.intake.get_submission(
        service.intake.find_submission_by_receipt(receipt["receipt"])
    )
    assert submission.contact.file_number == "2019-ab12"
    assert (
        service.intake.documents.read_bytes(submission.files[0].sha256, owner=submission.id)
        == document
    )


def test_a_message_without_files_is_taken_too(client: TestClient) -> None:
    body, headers = _raw_multipart(None, FIELDS | {"topic": "general_question"})

    response = client.post("/contact-form", content=body, headers=headers)

    assert response.status_code == 201, response.text
    assert response.json()["files"] == []


def _raw_multipart(
    file_name: bytes | None, fields: dict[str, str] = FIELDS
) -> tuple[bytes, dict[str, str]]:
    """A body written by hand: clients refuse to put a NUL byte into a file name, and send
    a form without files as urlencoded."""
    boundary = b"akte-boundary"
    parts = [
        b'Content-Disposition: form-data; name="%s"\r\n\r\n%s' % (name.encode(), value.encode())
        for name, value in fields.items()
    ]
    if file_name is not None:
        parts.append(
            b'Content-Disposition: form-data; name="files"; filename="%s"\r\n'
            b"Content-Type: application/pdf\r\n\r\n%s" % (file_name, make_pdf(1))
        )
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    body += b"--" + boundary + b"--\r\n"
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"}


REFUSED: Final[list[Any]] = [
    pytest.param(
        {"files": [pdf(data=make_pdf(1, payload_bytes=9000))]},
        413,
        "file-too-large",
        id="file-too-large",
    ),
    pytest.param(
        {
            "files": [
                pdf(f"{n}.pdf", make_pdf(1, marker=str(n), payload_bytes=7000)) for n in range(3)
            ]
        },
        413,
        "submission-too-large",
        id="submission-too-large",
    ),
    pytest.param(
        {"files": [pdf(data=make_pdf(1, payload_bytes=100_000))]},
        413,
        "payload-too-large",
        id="body-too-large",
    ),
    pytest.param({"files": [pdf(data=b"")]}, 422, "empty-file", id="empty-file"),
    pytest.param(
        {"files": [pdf("scan.pdf", b"MZ\x90\x00\x03 this is a Windows program")]},
        415,
        "unsupported-file-type",
        id="exe-renamed-as-pdf",
    ),
    pytest.param(
        {"files": [pdf("scan.pdf", b"<html><script>alert(1)</script>%PDF-1.4")]},
        415,
        "unsupported-file-type",
        id="html-renamed-as-pdf",
    ),
    pytest.param(
        {"files": [("files", ("foto.jpg", b"GIF89a\x01\x00\x01\x00", "image/jpeg"))]},
        415,
        "unsupported-file-type",
        id="gif-renamed-as-jpeg",
    ),
    pytest.param(
        {"files": [pdf(data=make_pdf(3)[:-400])]}, 422, "unreadable-file", id="truncated-pdf"
    ),
    pytest.param(
        {"files": [pdf("../../etc/passwd")]}, 422, "invalid-value", id="path-traversal-name"
    ),
    pytest.param({"files": [pdf("..")]}, 422, "invalid-value", id="dot-dot-name"),
    pytest.param({"files": [pdf("a/b.pdf")]}, 422, "invalid-value", id="name-with-directory"),
    pytest.param({"raw": b"bell\x07.pdf"}, 422, "invalid-value", id="control-character"),
    pytest.param({"raw": b"pass\x00.pdf"}, 422, "invalid-value", id="nul-in-name"),
    pytest.param(
        {"files": [pdf(f"{n}.pdf") for n in range(4)]}, 422, "too-many-files", id="too-many-files"
    ),
    pytest.param(
        {"files": [pdf("good.pdf"), pdf("bad.pdf", b"PK\x03\x04 a zip")]},
        415,
        "unsupported-file-type",
        id="good-file-then-bad-file",
    ),
    pytest.param(
        {"files": [pdf()], "data": FIELDS | {"email": "not an address"}},
        422,
        "invalid-value",
        id="bad-field-with-good-file",
    ),
    pytest.param(
        {"files": [pdf()], "data": FIELDS | {"topic": "no_such_topic"}},
        422,
        "invalid-value",
        id="unknown-topic-with-good-file",
    ),
    pytest.param(
        {"files": [pdf()], "data": {k: v for k, v in FIELDS.items() if k != "surname"}},
        422,
        "invalid-value",
        id="missing-field",
    ),
    pytest.param({"json": FIELDS}, 415, "unsupported-media-type", id="json-body"),
]


@pytest.mark.parametrize(("request_parts", "status", "code"), REFUSED)
def test_a_refused_submission_stores_and_records_nothing(
    client: TestClient,
    service: AkteService,
    request_parts: dict[str, Any],
    status: int,
    code: str,
) -> None:
    before = state(service)

    if "raw" in request_parts:
        body, headers = _raw_multipart(request_parts["raw"])
        response = client.post("/contact-form", content=body, headers=headers)
    elif "json" in request_parts:
        response = client.post("/contact-form", json=request_parts["json"])
    else:
        response = client.post(
            "/contact-form",
            data=request_parts.get("data", FIELDS),
            files=request_parts["files"],
        )

    assert_problem(response, status, code)
    assert state(service) == before


def test_nothing_personal_reaches_the_logs(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    client.post("/contact-form", data=FIELDS, files=[pdf()])
    client.post("/contact-form", data=FIELDS, files=[pdf(data=b"MZ")])
    client.post("/contact-form", data=FIELDS | {"email": "x"}, files=[pdf()])

    logged = "\n".join(f"{record.getMessage()} {vars(record)}" for record in caplog.records)
    for personal in ("Yılmaz", "Ayşe", "ayse.yilmaz", "Reisepass", "1991-07-14"):
        assert personal not in logged


# ----------------------------------------------------------------- triage


def test_a_caseworker_triages_a_submission_into_a_procedure(
    client: TestClient, service: AkteService, caseworker: dict[str, str]
) -> None:
    document = make_pdf(2, marker="Antrag")
    receipt = client.post("/contact-form", data=FIELDS, files=[pdf(data=document)]).json()

    waiting = client.get("/contact-submissions", headers=caseworker)
    found = client.get(
        "/contact-submissions", params={"receipt": receipt["receipt"]}, headers=caseworker
    )
    [summary] = waiting.json()
    assert found.json() == waiting.json()
    submission_url = f"/contact-submissions/{summary['id']}"
    read = client.get(submission_url, headers=caseworker)
    assert read.status_code == 200
    assert read.headers["ETag"] == '"1"'
    assert read.json()["files"][0]["name"] == FILE_NAME
    assert read.json()["contact"]["email"] == FIELDS["email"]
    content = client.get(f"{submission_url}/files/1/content", headers=caseworker)
    assert content.content == document
    assert content.headers["content-type"] == "application/pdf"

    opened = client.post(
        f"{submission_url}/case-file",
        json={"nationality": "TUR", "passport_number": "U12345678", "reference": "AZ-2024-17"},
        headers=caseworker | {"If-Match": read.headers["ETag"]},
    )
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case"]["case_id"]
    assert opened.headers["Location"].endswith(f"/cases/{case_id}")
    procedure = client.post(
        f"{submission_url}/procedure",
        json={"legal_basis": "aufenthg-16b"},
        headers=caseworker | {"If-Match": opened.headers["ETag"]},
    )
    assert procedure.status_code == 201, procedure.text
    assert procedure.json()["procedure"] == {
        "case_id": case_id,
        "version": 3,  # opened, procedure received, document attached
        "procedure_number": 1,
        "document_numbers": [1],
    }

    case = client.get(f"/cases/{case_id}", headers=caseworker).json()
    assert case["master_data"]["surname"] == FIELDS["surname"]
    assert case["procedures"][0]["channel"] == "contact_form"
    assert [(d["source"], d["page_count"]) for d in case["documents"]] == [("contact_form", 2)]
    on_file = client.get(f"/cases/{case_id}/documents/1/content", headers=caseworker)
    assert on_file.content == document
    events = client.get(f"{submission_url}/events", headers=caseworker).json()
    assert [(e["type"], e["by"]) for e in events] == [
        ("Submitted", "public"),
        ("LinkedToCaseFile", "sb-01"),
        ("TurnedIntoProcedure", "sb-01"),
    ]
    assert client.get("/contact-submissions", headers=caseworker).json() == []
    again = client.post(
        f"{submission_url}/reply",
        json={"reply": "x"},
        headers=caseworker | {"If-Match": procedure.headers["ETag"]},
    )
    assert_problem(again, 409, "submission-already-triaged")


def test_a_stale_if_match_on_a_submission_is_412(
    client: TestClient, service: AkteService, caseworker: dict[str, str]
) -> None:
    client.post("/contact-form", data=FIELDS, files=[pdf()])
    [summary] = client.get("/contact-submissions", headers=caseworker).json()
    before = state(service)

    stale = client.post(
        f"/contact-submissions/{summary['id']}/dismissal",
        json={"reason": "spam"},
        headers=caseworker | {"If-Match": '"7"'},
    )

    problem = assert_problem(stale, 412, "stale-version")
    assert (problem["expected_version"], problem["actual_version"]) == (7, 1)
    assert state(service) == before


# ---------------------------------------------------- caseworker uploads


def open_case(client: TestClient, caseworker: dict[str, str]) -> tuple[str, str]:
    response = client.post(
        "/cases",
        json={
            "surname": "Beispiel",
            "given_names": "Amal",
            "date_of_birth": "1990-01-01",
            "nationality": "SYR",
            "passport_number": "N12345678",
        },
        headers=caseworker,
    )
    return response.json()["case_id"], response.headers["ETag"]


def test_a_letter_arrives_with_an_uploaded_attachment(
    client: TestClient, caseworker: dict[str, str]
) -> None:
    case_id, version = open_case(client, caseworker)
    letter = make_pdf(3, marker="Verwaltungsgericht, Ladung")

    uploaded = client.post(
        f"/cases/{case_id}/uploads",
        data={"kind": "court-summons", "source": "mail"},
        files={"file": ("ladung.pdf", letter, "application/pdf")},
        headers=caseworker | {"If-Match": version},
    )
    assert uploaded.status_code == 201, uploaded.text
    number = uploaded.json()["number"]
    assert uploaded.headers["Location"].endswith(f"/cases/{case_id}/documents/{number}")
    recorded = client.post(
        f"/cases/{case_id}/correspondence",
        json={
            "direction": "received",
            "counterpart_kind": "court",
            "counterpart_name": "VG Musterstadt",
            "subject": "Ladung zur mündlichen Verhandlung",
            "attachment_numbers": [number],
        },
        headers=caseworker | {"If-Match": uploaded.headers["ETag"]},
    )
    assert recorded.status_code == 201, recorded.text

    document = client.get(f"/cases/{case_id}/documents/{number}", headers=caseworker).json()
    assert (document["kind"], document["source"], document["page_count"]) == (
        "court-summons",
        "mail",
        3,
    )
    assert document["sha256"] == hashlib.sha256(letter).hexdigest()
    content = client.get(f"/cases/{case_id}/documents/{number}/content", headers=caseworker)
    assert content.content == letter
    assert content.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("upload", "headers", "status", "code"),
    [
        pytest.param(
            ("a.pdf", b"MZ", "application/pdf"), {}, 415, "unsupported-file-type", id="exe"
        ),
        pytest.param(("a.pdf", b"", "application/pdf"), {}, 422, "empty-file", id="empty"),
        pytest.param(
            ("a.pdf", make_pdf(1, payload_bytes=9000), "application/pdf"),
            {},
            413,
            "file-too-large",
            id="too-large",
        ),
        pytest.param(
            ("../x.pdf", make_pdf(1), "application/pdf"), {}, 422, "invalid-value", id="path"
        ),
        pytest.param(
            ("a.pdf", make_pdf(1), "application/pdf"),
            {"If-Match": '"9"'},
            412,
            "stale-version",
            id="stale",
        ),
        pytest.param(
            ("a.pdf", make_pdf(1), "application/pdf"),
            {"If-Match": None},
            428,
            "if-match-required",
            id="no-if-match",
        ),
    ],
)
def test_a_refused_upload_stores_and_records_nothing(
    client: TestClient,
    service: AkteService,
    caseworker: dict[str, str],
    upload: tuple[str, bytes, str],
    headers: dict[str, str | None],
    status: int,
    code: str,
) -> None:
    case_id, version = open_case(client, caseworker)
    sent = caseworker | {"If-Match": version} | headers
    before = state(service)

    response = client.post(
        f"/cases/{case_id}/uploads",
        data={"kind": "letter"},
        files={"file": upload},
        headers={name: value for name, value in sent.items() if value is not None},
    )

    assert_problem(response, status, code)
    assert state(service) == before


def test_a_corrupted_document_is_a_500_and_never_served(
    client: TestClient,
    service: AkteService,
    caseworker: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case_id, version = open_case(client, caseworker)
    letter = make_pdf(2, marker="Schreiben")
    client.post(
        f"/cases/{case_id}/uploads",
        data={"kind": "letter"},
        files={"file": ("a.pdf", letter, "application/pdf")},
        headers=caseworker | {"If-Match": version},
    )
    documents = service.intake.documents
    assert isinstance(documents, EncryptedDocumentStore)
    original = documents.stored_chunks

    def flipped(sha256: str) -> Iterator[bytes]:
        for chunk in original(sha256):
            yield chunk[:-1] + bytes([chunk[-1] ^ 1])

    monkeypatch.setattr(service.intake.documents, "stored_chunks", flipped)

    response = client.get(f"/cases/{case_id}/documents/1/content", headers=caseworker)

    assert_problem(response, 500, "document-corrupted")
    assert letter not in response.content
    [logged] = [r for r in caplog.records if r.name == "akte.documents"]
    assert hashlib.sha256(letter).hexdigest() in logged.getMessage()


def test_content_that_is_not_stored_is_a_404(
    client: TestClient, service: AkteService, caseworker: dict[str, str]
) -> None:
    case_id, version = open_case(client, caseworker)
    # Attached by reference only (the JSON route), as before the document store existed.
    client.post(
        f"/cases/{case_id}/documents",
        json={
            "kind": "passport-copy",
            "sha256": "ab" * 32,
            "size_bytes": 10,
            "media_type": "text/html",
            "page_count": 1,
            "source": "scan",
        },
        headers=caseworker | {"If-Match": version},
    )

    response = client.get(f"/cases/{case_id}/documents/1/content", headers=caseworker)

    assert_problem(response, 404, "document-content-not-stored")


# ----------------------------------------------------------------- erasure


def test_after_an_erasure_no_document_is_served_nor_readable_in_the_store(
    client: TestClient,
    service: AkteService,
    settings: Settings,
    caseworker: dict[str, str],
    issuer_key_file: Path,
) -> None:
    sent = make_pdf(2, marker="Geheimvermerk-4711")
    letter = make_pdf(1, marker="Geheimbrief-0815")
    receipt = client.post("/contact-form", data=FIELDS, files=[pdf(data=sent)]).json()
    submission_id = service.intake.find_submission_by_receipt(receipt["receipt"])
    submission_url = f"/contact-submissions/{submission_id}"
    opened = client.post(
        f"{submission_url}/case-file",
        json={"nationality": "TUR", "passport_number": "U12345678", "reference": "AZ-2024-18"},
        headers=caseworker | {"If-Match": '"1"'},
    )
    case_id = opened.json()["case"]["case_id"]
    procedure = client.post(
        f"{submission_url}/procedure",
        json={"legal_basis": "aufenthg-16b"},
        headers=caseworker | {"If-Match": opened.headers["ETag"]},
    )
    assert procedure.status_code == 201, procedure.text
    uploaded = client.post(
        f"/cases/{case_id}/uploads",
        data={"kind": "letter"},
        files={"file": ("brief.pdf", letter, "application/pdf")},
        headers=caseworker | {"If-Match": '"3"'},
    )
    assert uploaded.status_code == 201, uploaded.text
    contents = {
        f"/cases/{case_id}/documents/1/content": sent,
        f"/cases/{case_id}/documents/2/content": letter,
        f"{submission_url}/files/1/content": sent,
    }
    for url, expected in contents.items():
        assert client.get(url, headers=caseworker).content == expected
    schema = settings.postgres_schema if settings.documents_in_postgres else None
    stored_before = raw_stored_bytes(service.intake.documents, schema)
    assert b"Geheimvermerk-4711" not in stored_before  # encrypted from the start
    officer_token = LocalIssuer.load_or_create(issuer_key_file).issue(
        user_id="dsb-01",
        roles=[Role.DATA_PROTECTION_OFFICER],
        office_id=settings.default_office_id,
    )
    officer = {"Authorization": f"Bearer {officer_token}"}
    lead_token = LocalIssuer.load_or_create(issuer_key_file).issue(
        user_id="tl-01", roles=[Role.TEAM_LEAD], office_id=settings.default_office_id
    )

    erased = erase_over_http(
        client, case_id, requester={"Authorization": f"Bearer {lead_token}"}, approver=officer
    )

    assert erased.status_code == 200, erased.text
    for url in contents:
        assert_problem(client.get(url, headers=caseworker), 410, "document-erased")
    stored = raw_stored_bytes(service.intake.documents, schema)
    assert len(stored) >= len(sent) * 2 + len(letter)  # noise until the sweep removes it
    for secret in (b"Geheimvermerk-4711", b"Geheimbrief-0815", sent[:64], letter[-64:]):
        assert secret not in stored


def test_a_pdf_bomb_is_refused_as_too_complex_and_records_nothing(
    client: TestClient, service: AkteService
) -> None:
    before = state(service)
    bomb = object_stream_bomb(1024, layers=2)  # a few KiB that inflate to 1 GiB

    response = client.post("/contact-form", data=FIELDS, files=[pdf(data=bomb)])

    assert_problem(response, 422, "file-too-complex")
    assert state(service) == before
