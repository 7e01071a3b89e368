"""The stores written by earlier releases (``tests/fixtures/stores/<release>/``, made by
``tests.fixtures.make_fixture_store``) open with this code: a copy is migrated, then every
event decodes, every case file, declaration and contact submission loads, the hash chain
verifies, every document reads, and the read models rebuild to what the old release had.

A new release adds its own fixture and keeps the old ones: each stays a test forever.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import psycopg
import pytest

from adapters.backup.drill import views_digest
from adapters.bootstrap import migrate_stores, open_service, open_views_store
from adapters.settings import Settings
from adapters.store.hash_chain import ChainSource, verify_chains
from adapters.store.migrations import COMPONENTS
from adapters.views.runner import ApplicationEventLog
from projections.engine import ProjectionEngine
from projections.read_models import READ_MODELS
from service import AkteService
from tests.adapters.store.test_migrations import version_numbers
from tests.conftest import POSTGRES
from tests.fixtures.make_fixture_store import CASES, PG_SCHEMA

STORES = Path(__file__).parents[2] / "fixtures" / "stores"
RELEASES = sorted(path.name for path in STORES.iterdir() if path.is_dir())


def test_this_release_has_a_fixture_store_of_its_own() -> None:
    assert RELEASES, "run .venv/bin/python -m tests.fixtures.make_fixture_store"
    size = sum(path.stat().st_size for path in STORES.rglob("*") if path.is_file())
    assert size < 1_000_000 * len(RELEASES)


@pytest.fixture(params=RELEASES)
def release(request: pytest.FixtureRequest) -> Path:
    return STORES / str(request.param)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_store(request: pytest.FixtureRequest, release: Path, tmp_path: Path) -> Iterator[Settings]:
    """Settings over a copy of the release's store."""
    data = tmp_path / "data"
    if request.param == "sqlite":
        shutil.copytree(release / "sqlite", data)
        yield Settings(store="sqlite", data_dir=data)
        return
    schema: str = request.getfixturevalue("postgres_schema")
    script = (release / "postgres.sql").read_text()
    script = script.replace(f"CREATE SCHEMA {PG_SCHEMA};\n", "").replace(PG_SCHEMA, schema)
    with psycopg.connect(autocommit=True, **POSTGRES) as conn:
        conn.execute(script.encode())
    yield Settings(
        store="postgres",
        data_dir=data,
        postgres_host=POSTGRES["host"],
        postgres_port=POSTGRES["port"],
        postgres_user=POSTGRES["user"],
        postgres_dbname=POSTGRES["dbname"],
        postgres_schema=schema,
    )


def _ids(service: AkteService, topic: str) -> list[str]:
    return [
        str(notification.originator_id)
        for notification in service.recorder.select_notifications(
            start=1, limit=100_000, topics=[topic]
        )
    ]


def test_a_store_of_an_earlier_release_migrates_and_reads_completely(
    old_store: Settings,
) -> None:
    migrate_stores(old_store)
    assert {name: numbers[-1] for name, numbers in version_numbers(old_store).items()} == {
        component.name: component.latest
        for component in COMPONENTS
        if component.name != "documents" or old_store.store == "postgres"
    }

    with open_service(old_store) as service:
        head = service.recorder.max_notification_id() or 0
        notifications = service.recorder.select_notifications(start=1, limit=head)
        assert len(notifications) == head > 0
        for notification in notifications:
            service.mapper.to_domain_event(notification)

        source: ChainSource = service.recorder  # type: ignore[assignment]
        verified = verify_chains(source)
        assert verified.ok, verified.first
        assert verified.events == head

        cases = _ids(service, "domain.case_file:CaseFile.Opened")
        assert len(cases) == CASES
        for case_id in cases:
            assert service.get_case(UUID(case_id)).version > 1
        declarations = _ids(
            service, "domain.commitment_declaration:CommitmentDeclaration.Submitted"
        )
        assert len(declarations) == 1
        service.declarations.get_declaration(UUID(declarations[0]))
        submissions = _ids(service, "domain.intake:ContactSubmission.Submitted")
        assert submissions
        for submission_id in submissions:
            service.intake.get_submission(UUID(submission_id))

        references = service.intake.referenced_documents()
        assert references
        for reference in references:
            service.intake.documents.verify(
                reference.sha256, owner=reference.owner, size_bytes=reference.size_bytes
            )

        views = open_views_store(old_store)
        writer = views.writer()
        try:
            engine = ProjectionEngine(ApplicationEventLog(service), writer, READ_MODELS)
            engine.catch_up()
            kept = views_digest(views)
            engine.rebuild()
            rebuilt = views_digest(views)
        finally:
            writer.close()
            views.close()
    assert rebuilt == kept
    assert len(rebuilt) == len(READ_MODELS)
