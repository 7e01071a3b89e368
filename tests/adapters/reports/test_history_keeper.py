"""Long case files' histories written ahead as they grow (issue 25: the whole 5,000-entry
history under 25 ms, also for the first request after a file grew long): at each
multiple of SHELF_STEP events the keeper writes both views onto the store's shelf, and
a failing keeper never fails a command."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.bootstrap import build_service, served_app
from adapters.personal_data.batch_decoding import batch_decoder
from adapters.personal_data.kept_history_keys import kept_histories
from adapters.reports import case_history
from adapters.reports.history_keeper import HistoryKeeper
from adapters.reports.kept_histories import SHELF_STEP, KeptHistories
from adapters.settings import Settings
from adapters.store.kept_history_shelf import KeptHistoryShelf, StepsInLog, shelf_of
from service import AkteService
from tests.conftest import FakeClock
from tests.support.case_files import case_with_notes

OFFICE = "abh-musterstadt"
VIEWS = ("personal", "withheld")


@pytest.fixture
def kept(service: AkteService) -> KeptHistories:
    kept = kept_histories(service.mapper)
    assert kept is not None  # Akte's own mapper, as deployed
    kept.min_entries = 100  # the test files are a few hundred events long
    return kept


@pytest.fixture
def shelf(service: AkteService) -> KeptHistoryShelf:
    shelf = shelf_of(service)
    assert shelf is not None
    return shelf


@pytest.fixture
def keeper(
    service: AkteService, kept: KeptHistories, shelf: KeptHistoryShelf
) -> Iterator[HistoryKeeper]:
    keeper = HistoryKeeper(service, kept, shelf, batch_decoder(service.mapper))
    keeper.start()
    yield keeper
    keeper.stop()


WAIT_SECONDS = 60.0
"""Only so that a broken follower fails the test instead of hanging it; never a timing."""


def _head(service: AkteService) -> int:
    return int(service.recorder.max_notification_id() or 0)


def _kept_versions(shelf: KeptHistoryShelf, kept: KeptHistories, case_id: Any) -> list[Any]:
    return [shelf.kept_version(case_id, view, kept.writer) for view in VIEWS]


def test_a_long_file_is_kept_on_the_shelf_when_it_reaches_the_next_step(
    service: AkteService, kept: KeptHistories, shelf: KeptHistoryShelf, keeper: HistoryKeeper
) -> None:
    case_id, version = case_with_notes(service, OFFICE, SHELF_STEP - 2)
    keeper.drain()
    assert version == SHELF_STEP - 1
    assert _kept_versions(shelf, kept, case_id) == [None, None]  # not at a step yet

    service.add_note(case_id, expected_version=version, by="sb-01", text="Vermerk")
    keeper.drain()

    # No history was asked for: the keeper wrote both views, as far as the step.
    assert _kept_versions(shelf, kept, case_id) == [SHELF_STEP, SHELF_STEP]
    assert keeper.kept_files == 1


def test_a_groups_writes_are_not_kept_ahead(
    service: AkteService, kept: KeptHistories, shelf: KeptHistoryShelf, keeper: HistoryKeeper
) -> None:
    with service.grouped():
        case_id, version = case_with_notes(service, OFFICE, SHELF_STEP)
    keeper.drain()

    assert version > SHELF_STEP
    assert _kept_versions(shelf, kept, case_id) == [None, None]  # bulk writers own their data


def test_a_failing_keeper_neither_fails_the_command_nor_stops(
    service: AkteService,
    kept: KeptHistories,
    shelf: KeptHistoryShelf,
    keeper: HistoryKeeper,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    build = case_history.build_history_json
    failures = [RuntimeError("Amal Beispiel, geboren 1991")]

    def fails_once(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return build(*args, **kwargs)

    monkeypatch.setattr(case_history, "build_history_json", fails_once)
    with caplog.at_level(logging.ERROR, logger="akte.history_keeper"):
        first, _ = case_with_notes(service, OFFICE, SHELF_STEP - 1)  # recorded all the same
        keeper.drain()
        second, _ = case_with_notes(service, OFFICE, SHELF_STEP - 1)
        keeper.drain()

    assert _kept_versions(shelf, kept, first) == [None, None]
    assert _kept_versions(shelf, kept, second) == [SHELF_STEP, SHELF_STEP]
    assert "failed with RuntimeError" in caplog.text
    assert "Amal" not in caplog.text  # the type only: no personal data in the log


def test_an_observer_that_raises_does_not_fail_the_command(
    service: AkteService, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def saved(self, events: Any) -> None:
            raise ValueError("Beispiel")

    service.observe_writes(Broken())
    with caplog.at_level(logging.ERROR, logger="akte.service"):
        case_id, version = case_with_notes(service, OFFICE, 1)

    assert service.get_case(case_id).version == version == 2
    assert "a write observer failed with ValueError" in caplog.text
    assert "Beispiel" not in caplog.text


def test_the_served_app_keeps_histories_ahead(settings: Settings, service: AkteService) -> None:
    with served_app(settings, service) as app:
        keeper = app.state.history_keeper
        assert isinstance(keeper, HistoryKeeper)
        assert keeper in service._write_observers
    assert keeper not in service._write_observers  # stopped with the app


def test_a_file_another_process_grew_to_the_step_is_kept_from_the_log(
    settings: Settings,
    clock: FakeClock,
    service: AkteService,
    kept: KeptHistories,
    shelf: KeptHistoryShelf,
    keeper: HistoryKeeper,
) -> None:
    keeper.follow_log(StepsInLog(service.recorder), every_seconds=0.01)
    other = build_service(settings, clock=clock)  # the import's or inbox worker's process
    try:
        case_id, version = case_with_notes(other, OFFICE, SHELF_STEP - 1)
        written = _head(other)
    finally:
        other.close()

    assert keeper.looked_past(written, timeout=WAIT_SECONDS)
    keeper.drain()
    assert version == SHELF_STEP
    assert _kept_versions(shelf, kept, case_id) == [SHELF_STEP, SHELF_STEP]
    assert keeper.kept_files == 1


def test_a_groups_file_is_kept_from_the_log(
    service: AkteService, kept: KeptHistories, shelf: KeptHistoryShelf, keeper: HistoryKeeper
) -> None:
    keeper.follow_log(StepsInLog(service.recorder), every_seconds=0.01)
    with service.grouped():
        case_id, version = case_with_notes(service, OFFICE, SHELF_STEP)

    assert keeper.looked_past(_head(service), timeout=WAIT_SECONDS)
    keeper.drain()
    assert version == SHELF_STEP + 1
    # As far as the step the log showed; a request writes the one event after it.
    assert _kept_versions(shelf, kept, case_id) == [SHELF_STEP + 1, SHELF_STEP + 1]


def test_a_file_kept_when_it_was_saved_is_not_kept_again_from_the_log(
    service: AkteService, kept: KeptHistories, shelf: KeptHistoryShelf, keeper: HistoryKeeper
) -> None:
    case_id, _ = case_with_notes(service, OFFICE, SHELF_STEP - 1)
    keeper.drain()
    assert keeper.kept_files == 1
    # From the start of the log, as if it had looked before the file reached the step.
    keeper.follow_log(StepsInLog(service.recorder), every_seconds=0.01, after=0)

    assert keeper.looked_past(_head(service), timeout=WAIT_SECONDS)
    keeper.drain()
    assert keeper.kept_files == 1
    assert _kept_versions(shelf, kept, case_id) == [SHELF_STEP, SHELF_STEP]


def test_a_log_that_cannot_be_read_is_logged_and_looked_at_again(
    service: AkteService,
    kept: KeptHistories,
    shelf: KeptHistoryShelf,
    keeper: HistoryKeeper,
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Flaky(StepsInLog):
        failures = [RuntimeError("Amal Beispiel, geboren 1991")] * 2

        def reached(self, *args: Any) -> list[Any]:
            if self.failures:
                raise self.failures.pop()
            return super().reached(*args)

    with caplog.at_level(logging.ERROR, logger="akte.history_keeper"):
        keeper.follow_log(Flaky(service.recorder), every_seconds=0.01)
        with service.grouped():
            case_id, _ = case_with_notes(service, OFFICE, SHELF_STEP - 1)
        assert keeper.looked_past(_head(service), timeout=WAIT_SECONDS)
        keeper.drain()

    assert _kept_versions(shelf, kept, case_id) == [SHELF_STEP, SHELF_STEP]
    assert caplog.text.count("looking in the log for long files failed with RuntimeError") == 2
    assert "Amal" not in caplog.text


def test_the_served_app_follows_the_log_unless_told_not_to(
    settings: Settings, service: AkteService
) -> None:
    with served_app(settings, service) as app:
        assert app.state.history_keeper.following
    quiet = settings.model_copy(update={"history_follow_seconds": 0})
    with served_app(quiet, service) as app:
        assert not app.state.history_keeper.following
