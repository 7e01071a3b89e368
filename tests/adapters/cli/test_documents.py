"""``akte documents encrypt`` from the shell: a store written in clear (as before documents
were encrypted) is encrypted per owner, in runs that go on where the last one stopped."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import date
from pathlib import Path
from uuid import UUID

import pytest

from adapters.bootstrap import build_service
from adapters.cli.main import main
from adapters.documents.directory import DirectoryDocumentStore
from adapters.documents.encryption import EncryptedDocumentStore
from adapters.settings import Settings
from adapters.simulation.legacy_scans import make_pdf
from domain.intake import ContactDetails
from service_intake import IncomingDocument
from tests.support.documents import raw_stored_bytes

OFFICE = "abh-musterstadt"
SENDER = ContactDetails(
    surname="Yılmaz",
    given_names="Ayşe Nur",
    email="ayse@example.org",
    date_of_birth=date(1991, 7, 14),
    file_number="2019-AB12",
)


def incoming(data: bytes) -> IncomingDocument:
    return IncomingDocument(
        content=io.BytesIO(data),
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        media_type="application/pdf",
        page_count=1,
        name="antrag.pdf",
    )


def marker(number: int) -> str:
    return f"Klartext-Antrag-{number:02d}"


def write_store_in_clear(settings: Settings, count: int) -> dict[UUID, bytes]:
    """Submissions with a file each, then their stored objects replaced by what the code
    before encryption wrote: the bytes in clear under their bare sha256."""
    sent: dict[UUID, bytes] = {}
    service = build_service(settings)
    try:
        documents = service.intake.documents
        assert isinstance(documents, EncryptedDocumentStore)
        for number in range(count):
            data = make_pdf(1, marker=marker(number))
            recorded = service.intake.submit_contact_form(
                office_id=OFFICE,
                topic="extend_residence_permit",
                message="Bitte verlängern.",
                contact=SENDER,
                files=[incoming(data)],
            )
            sent[recorded.submission_id] = data
        for entry in list(documents.entries()):
            documents.backend.remove(entry.sha256)
        for data in sent.values():
            documents.backend.put_bytes(data)
    finally:
        service.close()
    return sent


def test_a_store_in_clear_is_encrypted_in_resumable_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [name for name in os.environ if name.startswith("AKTE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    settings = Settings(store="sqlite", data_dir=tmp_path / "data")
    sent = write_store_in_clear(settings, 5)
    raw = raw_stored_bytes(DirectoryDocumentStore(settings.documents_directory), None)
    assert all(marker(number).encode() in raw for number in range(5))
    capsys.readouterr()

    assert main(["documents", "encrypt", "--limit", "2"]) == 0
    first = capsys.readouterr().out
    assert main(["documents", "encrypt", "--batch-size", "2"]) == 0
    second = capsys.readouterr().out
    assert main(["documents", "encrypt"]) == 0
    third = capsys.readouterr().out

    assert "5 documents in clear: 2 encrypted (2 copies)" in first
    assert "3 left for another run" in first
    assert "3 documents in clear: 3 encrypted (3 copies)" in second
    assert "0 documents in clear: 0 encrypted" in third
    service = build_service(settings)
    try:
        raw = raw_stored_bytes(service.intake.documents, None)
        assert not any(marker(number).encode() in raw for number in range(5))
        for submission_id, data in sent.items():
            [submitted] = service.intake.get_submission(submission_id).files
            assert service.intake.documents.read_bytes(submitted.sha256, owner=submission_id) == (
                data
            )
    finally:
        service.close()
    assert main(["documents", "verify"]) == 0
    assert "5 documents checked, 0 corrupted" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["documents", "encrypt", "--limit", "0"])
