"""Kept histories (issue 25: the whole 5,000-entry history under 25 ms): a long file's
written entries are kept sealed with the file's own key, and a whole history then writes
only the events after them. What it sends is byte for byte what it sends without; an
erasure makes what is kept unusable; nothing is kept in the clear, for a filter or page,
for a short file or for a file with a part about another person.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast
from uuid import UUID, uuid4

import orjson
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi.testclient import TestClient

from adapters.http.auth.identity import Role
from adapters.personal_data.kept_history_keys import kept_histories
from adapters.personal_data.mapper import PersonalDataMapper
from adapters.reports import case_history
from adapters.reports import kept_histories as kept_histories_module
from adapters.reports.case_history import build_history_json
from adapters.reports.kept_histories import KeptEntries, KeptHistories
from adapters.settings import Settings
from adapters.store.kept_history_shelf import KeptHistoryShelf, shelf_of
from domain.acts import Act
from domain.case_file import CaseFile
from domain.commitment_declaration import CommitmentDeclaration
from domain.history import HistoryFilter
from service import AkteService
from tests.adapters.reports.test_case_history_fast import PAGES, saved_histories
from tests.conftest import FakeClock, bearer
from tests.http.routes.test_history import a_case


def _kept(service: AkteService) -> KeptHistories:
    kept = kept_histories(service.mapper)
    assert kept is not None  # Akte's own mapper, as deployed
    kept.min_entries = 1  # the test files are short
    return kept


def _json(
    service: AkteService, case_id: UUID, kept: KeptHistories | None, **arguments: Any
) -> bytes:
    arguments.setdefault("with_personal_data", True)
    return build_history_json(service, case_id, kept=kept, **arguments).body


def _erase(service: AkteService, case_id: UUID) -> None:
    service.data_protection.erase_personal_data(
        case_id,
        expected_version=service.get_case(case_id).version,
        by="dsb-01",
        legal_ground="dsgvo-17",
        approved_by="dsb-01",
    )


def _note(service: AkteService, case_id: UUID, clock: FakeClock, text: str) -> None:
    case = service.get_case(case_id)
    case.add_note(text=text, act=Act(by="sb-01", at=clock.now, recorded_at=clock.now))
    service.save(case)


@pytest.mark.parametrize("with_personal_data", [True, False], ids=["auditor", "withheld"])
def test_a_whole_history_after_kept_entries_is_what_it_is_without(
    service: AkteService, clock: FakeClock, with_personal_data: bool
) -> None:
    case_id = saved_histories(service, clock)["rich"]
    kept = _kept(service)
    view = {"with_personal_data": with_personal_data, "limit": case_history.MAX_HISTORY_PAGE}

    first = _json(service, case_id, kept, **view)
    assert first == _json(service, case_id, None, **view)
    version = orjson.loads(first)["version"]
    taken = kept.take(case_id, with_personal_data=with_personal_data)
    assert taken is not None
    assert taken.version == version
    assert kept.take(case_id, with_personal_data=not with_personal_data) is None  # per view

    # Events written since: the kept entries and the new ones, as without.
    for text in ("Rückruf vereinbart", "Unterlagen vollständig"):
        _note(service, case_id, clock, text)
    again = _json(service, case_id, kept, **view)
    assert again == _json(service, case_id, None, **view)
    assert orjson.loads(again)["version"] == version + 2
    taken = kept.take(case_id, with_personal_data=with_personal_data)
    assert taken is not None
    assert taken.version == version + 2
    assert _json(service, case_id, kept, **view) == again


def test_pages_and_filters_are_written_as_without(service: AkteService, clock: FakeClock) -> None:
    histories = saved_histories(service, clock)
    kept = _kept(service)
    for case_id in histories.values():
        whole = _json(service, case_id, kept, limit=case_history.MAX_HISTORY_PAGE)
        assert whole == _json(service, case_id, None, limit=case_history.MAX_HISTORY_PAGE)
        for page in PAGES:
            arguments = {
                "criteria": page.criteria,
                "after_version": page.after_version,
                "limit": page.limit,
            }
            assert _json(service, case_id, kept, **arguments) == _json(
                service, case_id, None, **arguments
            ), page


def test_a_page_of_any_length_after_kept_entries_is_what_it_is_without(
    service: AkteService, clock: FakeClock
) -> None:
    case_id = saved_histories(service, clock)["rich"]
    kept = _kept(service)
    head = orjson.loads(_json(service, case_id, None, limit=10_000))["version"]
    assert head > 3
    for notes in range(3):  # the kept entries end at the head, then before it
        if notes:
            _note(service, case_id, clock, f"Vermerk {notes}")
        for limit in (1, 3, head - 1, head, head + 1, head + notes, 10_000):
            kept.forget(case_id)
            _json(service, case_id, kept, limit=head)  # keeps versions 1 to head
            taken = kept.take(case_id, with_personal_data=True)
            assert taken is not None
            assert taken.version == head
            written = build_history_json(
                service, case_id, with_personal_data=True, limit=limit, kept=kept
            )
            expected = build_history_json(service, case_id, with_personal_data=True, limit=limit)
            assert written == expected, (notes, limit)


class _CountingSource:
    """The service's events, counting those decoded (and hiding those after ``upto``, as
    a read replica behind the primary would)."""

    def __init__(self, service: AkteService, upto: int | None = None) -> None:
        self._inner = case_history.case_event_source(service)
        self._upto = upto
        self.decoded = 0

    def read(self, case_id: UUID, after_version: int, limit: int) -> Sequence[Any]:
        rows = self._inner.read(case_id, after_version, limit)
        if self._upto is None:
            return rows
        return [row for row in rows if self._inner.version_of(row) <= self._upto]

    def version_of(self, read: Any) -> int:
        return self._inner.version_of(read)

    def decode(self, case_id: UUID, read: Sequence[Any]) -> list[CaseFile.Event]:
        self.decoded += len(read)
        return self._inner.decode(case_id, read)

    def head_version(self, case_id: UUID) -> int:
        head = self._inner.head_version(case_id)
        return head if self._upto is None else min(head, self._upto)


def test_kept_entries_are_not_decoded_again(service: AkteService, clock: FakeClock) -> None:
    case_id = saved_histories(service, clock)["rich"]
    kept = _kept(service)
    counting = _CountingSource(service)
    whole = build_history_json(
        service, case_id, with_personal_data=True, limit=10_000, kept=kept, source=counting
    )
    assert counting.decoded == whole.version  # the first request decodes every event
    counting.decoded = 0
    again = build_history_json(
        service, case_id, with_personal_data=True, limit=10_000, kept=kept, source=counting
    )
    assert again == whole
    assert counting.decoded == 0
    _note(service, case_id, clock, "Rückruf vereinbart")
    _note(service, case_id, clock, "Unterlagen vollständig")
    latest = build_history_json(
        service, case_id, with_personal_data=True, limit=10_000, kept=kept, source=counting
    )
    assert counting.decoded == 2  # only the events written since
    assert latest == build_history_json(service, case_id, with_personal_data=True, limit=10_000)


def test_a_replica_behind_the_kept_entries_answers_what_it_holds(
    service: AkteService, clock: FakeClock
) -> None:
    case_id = saved_histories(service, clock)["rich"]
    kept = _kept(service)
    head = _json(service, case_id, kept, limit=10_000)  # kept from the primary
    behind = orjson.loads(head)["version"] - 2
    written = build_history_json(
        service,
        case_id,
        with_personal_data=True,
        limit=10_000,
        kept=kept,
        source=_CountingSource(service, upto=behind),
    )
    expected = build_history_json(
        service,
        case_id,
        with_personal_data=True,
        limit=10_000,
        source=_CountingSource(service, upto=behind),
    )
    assert written == expected
    assert written.version == behind
    taken = kept.take(case_id, with_personal_data=True)
    assert taken is not None
    assert taken.version == behind + 2  # the longer entries stay kept


def test_only_histories_from_the_first_event_unfiltered_are_kept(
    service: AkteService, clock: FakeClock
) -> None:
    case_id = saved_histories(service, clock)["rich"]
    kept = _kept(service)
    _json(service, case_id, kept, criteria=HistoryFilter(by="sb-01"), limit=10_000)
    _json(service, case_id, kept, after_version=2, limit=10_000)
    assert kept.kept_bytes == 0
    _json(service, case_id, kept, limit=2)  # a first page: its entries are kept
    taken = kept.take(case_id, with_personal_data=True)
    assert taken is not None
    assert taken.version == 2
    _json(service, case_id, kept, limit=10_000)
    taken = kept.take(case_id, with_personal_data=True)
    assert taken is not None
    assert taken.version > 2


def test_short_files_are_not_kept(service: AkteService, clock: FakeClock) -> None:
    case_id = saved_histories(service, clock)["rich"]
    kept = _kept(service)
    version = orjson.loads(_json(service, case_id, None, limit=10_000))["version"]
    kept.min_entries = version + 1
    _json(service, case_id, kept, limit=10_000)
    assert kept.kept_bytes == 0


def test_what_is_kept_is_sealed_with_the_files_key(service: AkteService, clock: FakeClock) -> None:
    histories = saved_histories(service, clock)
    case_id = histories["rich"]
    kept = _kept(service)
    whole = _json(service, case_id, kept, limit=10_000)
    surname = service.get_case(case_id).master_data.surname
    assert surname.encode() in whole  # the auditor's view shows it
    [(version, sealed)] = kept._kept.values()
    assert surname.encode() not in sealed
    assert b"Opened" not in sealed
    assert b"reference" not in sealed
    # It opens with the file's own data key, as the file's events do.
    file_key = cast(PersonalDataMapper, service.mapper).keys.for_reading(str(case_id))
    associated = kept_histories_module._associated(case_id, True, version, kept.writer)
    opened = file_key.decrypt(sealed[:12], sealed[12:], associated)
    assert opened.endswith(orjson.dumps(orjson.loads(whole)["entries"])[1:-1])


def _entries(version: int, size: int = 64) -> KeptEntries:
    return KeptEntries(version, "2024-000001", "abh-musterstadt", b"x" * size)


def test_a_kept_blob_opens_only_as_the_file_view_version_and_code_it_was_sealed_as() -> None:
    key = AESGCM(AESGCM.generate_key(bit_length=256))
    kept = KeptHistories(lambda owner: key, min_entries=1)  # one key for every file
    first, second = uuid4(), uuid4()
    assert kept.keep(first, with_personal_data=True, kept=_entries(5))
    sealed = kept._kept[(first, True)]
    for place, moved in (
        ((second, True), sealed),  # another file's
        ((first, False), sealed),  # the other view's
        ((first, True), (6, sealed[1])),  # another version's
    ):
        kept._kept[place] = moved
        assert kept.take(place[0], with_personal_data=place[1]) is None
        assert place not in kept._kept  # what does not open is dropped
    # Another release's code: the same file, view and version.
    kept._kept[(first, True)] = sealed
    kept.writer = "another release"
    assert kept.take(first, with_personal_data=True) is None


def test_a_key_store_that_cannot_answer_leaves_what_is_kept() -> None:
    key = AESGCM(AESGCM.generate_key(bit_length=256))
    answering = [True]

    def key_of(owner: str) -> AESGCM:
        if not answering[0]:
            raise ConnectionError("key store unreachable")
        return key

    kept = KeptHistories(key_of, min_entries=1)
    case_id = uuid4()
    assert kept.keep(case_id, with_personal_data=True, kept=_entries(5))
    answering[0] = False
    assert kept.take(case_id, with_personal_data=True) is None
    assert not kept.keep(case_id, with_personal_data=True, kept=_entries(6))
    answering[0] = True
    taken = kept.take(case_id, with_personal_data=True)
    assert taken is not None
    assert taken.version == 5


def test_fewer_entries_never_replace_more_and_none_is_too_large() -> None:
    key = AESGCM(AESGCM.generate_key(bit_length=256))
    kept = KeptHistories(lambda owner: key, min_entries=1, max_bytes=4096)
    case_id = uuid4()
    assert kept.keep(case_id, with_personal_data=True, kept=_entries(5))
    assert not kept.keep(case_id, with_personal_data=True, kept=_entries(3))
    assert not kept.keep(case_id, with_personal_data=True, kept=_entries(5))
    assert kept.keep(case_id, with_personal_data=True, kept=_entries(7))
    taken = kept.take(case_id, with_personal_data=True)
    assert taken is not None
    assert taken.version == 7
    # One history takes at most a quarter of the budget.
    assert not kept.keep(uuid4(), with_personal_data=True, kept=_entries(9, size=1024))
    assert kept.keep(uuid4(), with_personal_data=True, kept=_entries(9, size=900))
    assert "x" * 10 not in repr(_entries(1))  # entries never in a repr


def test_declarations_visitor_parts_are_known_as_parts_about_another_person() -> None:
    assert CommitmentDeclaration.Submitted in case_history._SEPARATE_PART_CLASSES


def test_an_erasure_makes_what_is_kept_unusable(service: AkteService, clock: FakeClock) -> None:
    case_id = saved_histories(service, clock)["rich"]
    kept = _kept(service)
    before = _json(service, case_id, kept, limit=10_000)
    assert kept.take(case_id, with_personal_data=True) is not None
    _erase(service, case_id)
    assert kept.take(case_id, with_personal_data=True) is None
    after = _json(service, case_id, kept, limit=10_000)
    assert after == _json(service, case_id, None, limit=10_000)
    assert after != before  # the fields read as their stand-ins now
    assert kept.kept_bytes == 0  # the erased file's key seals nothing any more


def test_a_file_with_a_part_about_another_person_is_never_kept(
    service: AkteService, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = saved_histories(service, clock)["rich"]
    # Parts about another person are a declaration's today, never a case file's: stand
    # in a case file's event for one.
    monkeypatch.setattr(case_history, "_SEPARATE_PART_CLASSES", frozenset({CaseFile.NoteAdded}))
    kept = _kept(service)
    written = _json(service, case_id, kept, limit=10_000)
    assert written == _json(service, case_id, None, limit=10_000)
    assert kept.kept_bytes == 0


def test_the_least_recently_used_go_beyond_the_budget(
    service: AkteService, clock: FakeClock
) -> None:
    histories = saved_histories(service, clock)
    rich, closed = histories["rich"], histories["closed and erased"]
    kept = _kept(service)
    for case_id in (rich, closed):
        _json(service, case_id, kept, limit=10_000)
    kept.max_bytes = kept.kept_bytes  # both fit, nothing more
    assert kept.take(rich, with_personal_data=True) is not None  # used last now
    small = KeptEntries(1, "2024-000001", "abh-musterstadt", b"{}")
    assert kept.keep(rich, with_personal_data=False, kept=small)
    assert 0 < kept.kept_bytes <= kept.max_bytes
    assert kept.take(closed, with_personal_data=True) is None  # the least recently used
    assert kept.take(rich, with_personal_data=True) is not None
    assert kept.take(rich, with_personal_data=False) is not None


def test_the_route_keeps_and_sends_the_same_bytes(
    client: TestClient, service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    case_id = a_case(service, clock, settings.default_office_id)
    kept = client.app.state.kept_histories  # type: ignore[attr-defined]
    assert isinstance(kept, KeptHistories)
    kept.min_entries = 1
    auditor = bearer(settings, "au-01", Role.AUDITOR)
    first = client.get(f"/cases/{case_id}/history", headers=auditor)
    assert first.status_code == 200, first.text
    assert kept.take(case_id, with_personal_data=True) is not None
    # In the store too, for the API's other processes.
    assert _shelved_version(_shelf(service), case_id) == orjson.loads(first.content)["version"]
    _note(service, case_id, clock, "Termin bestätigt")
    second = client.get(f"/cases/{case_id}/history", headers=auditor)
    assert second.status_code == 200, second.text
    expected = build_history_json(service, case_id, with_personal_data=True)
    assert second.content == expected.body
    assert second.headers["ETag"] == f'"{expected.version}"'
    kept.forget(case_id)  # as in another process: taken from the store
    assert client.get(f"/cases/{case_id}/history", headers=auditor).content == second.content


# ----------------------------------------------- kept in the store, for every process


WRITER = kept_histories_module.writer_fingerprint()


def _shelf(service: AkteService) -> KeptHistoryShelf:
    shelf = shelf_of(service)
    assert shelf is not None  # Akte's services have snapshots, so a shelf beside them
    return shelf


@pytest.mark.parametrize("with_personal_data", [True, False], ids=["auditor", "withheld"])
def test_a_new_process_takes_the_entries_from_the_store(
    service: AkteService, clock: FakeClock, with_personal_data: bool
) -> None:
    case_id = saved_histories(service, clock)["rich"]
    shelf = _shelf(service)
    view: dict[str, Any] = {"with_personal_data": with_personal_data, "limit": 10_000}
    first = build_history_json(service, case_id, kept=_kept(service), shelf=shelf, **view)

    # Another process (a restart, a second API replica): nothing kept in its memory.
    counting = _CountingSource(service)
    again = build_history_json(
        service, case_id, kept=_kept(service), shelf=shelf, source=counting, **view
    )
    assert again == first
    assert counting.decoded == 0  # every entry came from the store

    # Without the store, the same new process writes every event again.
    counting.decoded = 0
    build_history_json(service, case_id, kept=_kept(service), source=counting, **view)
    assert counting.decoded == first.version


def test_the_store_gets_a_growing_history_again_only_after_some_entries(
    service: AkteService, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kept_histories_module, "SHELF_STEP", 2)
    case_id = saved_histories(service, clock)["rich"]
    shelf, kept = _shelf(service), _kept(service)
    version = build_history_json(
        service, case_id, kept=kept, shelf=shelf, limit=10_000, with_personal_data=True
    ).version
    assert _shelved_version(shelf, case_id) == version

    _note(service, case_id, clock, "Rückruf vereinbart")
    build_history_json(
        service, case_id, kept=kept, shelf=shelf, limit=10_000, with_personal_data=True
    )
    assert _shelved_version(shelf, case_id) == version  # one entry more: not copied again

    _note(service, case_id, clock, "Unterlagen vollständig")
    latest = build_history_json(
        service, case_id, kept=kept, shelf=shelf, limit=10_000, with_personal_data=True
    )
    assert _shelved_version(shelf, case_id) == version + 2 == latest.version
    # Another process takes the longer entries and writes nothing from the events.
    counting = _CountingSource(service)
    assert (
        build_history_json(
            service,
            case_id,
            kept=_kept(service),
            shelf=shelf,
            source=counting,
            limit=10_000,
            with_personal_data=True,
        )
        == latest
    )
    assert counting.decoded == 0


def _shelved_version(shelf: KeptHistoryShelf, case_id: UUID) -> int | None:
    row = shelf.load(case_id, "personal", WRITER)
    return None if row is None else row[0]


def test_entries_another_release_kept_in_the_store_are_written_again(
    service: AkteService, clock: FakeClock
) -> None:
    case_id = saved_histories(service, clock)["rich"]
    shelf = _shelf(service)
    before = _kept(service)
    before.writer = "the release before"  # whose descriptions may differ from this one's
    view: dict[str, Any] = {"with_personal_data": True, "limit": 10_000}
    written = build_history_json(service, case_id, kept=before, shelf=shelf, **view)
    assert shelf.load(case_id, "personal", "the release before") is not None

    counting = _CountingSource(service)
    again = build_history_json(
        service, case_id, kept=_kept(service), shelf=shelf, source=counting, **view
    )
    assert again == written
    assert counting.decoded == written.version  # not taken: written from the events
    assert _shelved_version(shelf, case_id) == written.version  # and this release's kept


def test_an_erasure_deletes_what_the_store_keeps(service: AkteService, clock: FakeClock) -> None:
    case_id = saved_histories(service, clock)["rich"]
    shelf = _shelf(service)
    for with_personal_data in (True, False):
        build_history_json(
            service,
            case_id,
            kept=_kept(service),
            shelf=shelf,
            with_personal_data=with_personal_data,
            limit=10_000,
        )
    assert shelf.load(case_id, "personal", WRITER) is not None
    assert shelf.load(case_id, "withheld", WRITER) is not None
    _erase(service, case_id)
    # Deleted by the erasure, not only unreadable: nothing waits for a request.
    assert shelf.load(case_id, "personal", WRITER) is None
    assert shelf.load(case_id, "withheld", WRITER) is None


def test_a_blob_in_the_store_that_does_not_open_is_dropped_from_it(
    service: AkteService, clock: FakeClock
) -> None:
    case_id = saved_histories(service, clock)["rich"]
    shelf = _shelf(service)
    expected = build_history_json(service, case_id, with_personal_data=True, limit=10_000)
    assert shelf.save(
        case_id, "personal", WRITER, 3, b"\x00" * 64
    )  # not sealed with the file's key
    written = build_history_json(
        service, case_id, kept=_kept(service), shelf=shelf, with_personal_data=True, limit=10_000
    )
    assert written == expected
    # Dropped, and what this request wrote is kept in its place.
    assert _shelved_version(shelf, case_id) == expected.version


class _WatchedShelf:
    """The store's shelf, counting its reads; its first ``failing`` saves do not answer."""

    def __init__(self, shelf: KeptHistoryShelf, failing: int = 0) -> None:
        self.shelf = shelf
        self.loads = 0
        self.failing = failing

    def load(self, case_id: UUID, view: str, writer: str) -> tuple[int, bytes] | None:
        self.loads += 1
        return self.shelf.load(case_id, view, writer)

    def save(
        self, case_id: UUID, view: str, writer: str, version: int, sealed: bytes
    ) -> bool | None:
        if self.failing:
            self.failing -= 1
            return None
        return self.shelf.save(case_id, view, writer, version, sealed)

    def discard(self, case_id: UUID, view: str, writer: str, version: int) -> None:
        self.shelf.discard(case_id, view, writer, version)


def test_a_page_shorter_than_what_is_kept_does_not_read_it(
    service: AkteService, clock: FakeClock
) -> None:
    case_id = saved_histories(service, clock)["rich"]
    watched = _WatchedShelf(_shelf(service))
    kept = _kept(service)
    kept.min_entries = 5
    build_history_json(
        service, case_id, kept=kept, shelf=watched, with_personal_data=True, limit=10_000
    )
    kept.forget(case_id)  # a new process
    watched.loads = 0
    page = build_history_json(
        service, case_id, kept=kept, shelf=watched, with_personal_data=True, limit=4
    )
    assert page == build_history_json(service, case_id, with_personal_data=True, limit=4)
    assert watched.loads == 0  # nothing kept is as short as the page
    build_history_json(
        service, case_id, kept=kept, shelf=watched, with_personal_data=True, limit=10_000
    )
    assert watched.loads == 1


def test_a_store_that_did_not_answer_gets_the_entries_on_the_next_request(
    service: AkteService, clock: FakeClock
) -> None:
    case_id = saved_histories(service, clock)["rich"]
    watched = _WatchedShelf(_shelf(service), failing=1)
    kept = _kept(service)
    first = build_history_json(
        service, case_id, kept=kept, shelf=watched, with_personal_data=True, limit=10_000
    )
    assert _shelved_version(watched.shelf, case_id) is None  # the store did not answer
    _note(service, case_id, clock, "Rückruf vereinbart")
    build_history_json(
        service, case_id, kept=kept, shelf=watched, with_personal_data=True, limit=10_000
    )
    assert _shelved_version(watched.shelf, case_id) == first.version + 1
