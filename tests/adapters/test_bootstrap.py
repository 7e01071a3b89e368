"""Several processes starting at once on one empty store (API replicas, workers, a
migration run) create the tables once between them, and none of them fails."""

from __future__ import annotations

import threading

from adapters.bootstrap import build_service
from adapters.settings import Settings
from service import AkteService
from tests.support.projections import MASTER_DATA

STARTING_AT_ONCE = 6


def test_services_starting_at_once_on_an_empty_store_all_come_up(settings: Settings) -> None:
    started: list[AkteService] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(STARTING_AT_ONCE)

    def start() -> None:
        barrier.wait()
        try:
            started.append(build_service(settings))
        except BaseException as error:  # reported below, with the others
            failures.append(error)

    threads = [threading.Thread(target=start) for _ in range(STARTING_AT_ONCE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert not failures, [repr(failure) for failure in failures]
        assert len(started) == STARTING_AT_ONCE
        opened = started[0].open_case(
            office_id="abh-musterstadt", master_data=MASTER_DATA, by="sb-01"
        )
        assert started[-1].get_case(opened.case_id).reference == opened.result
    finally:
        for service in started:
            service.close()
