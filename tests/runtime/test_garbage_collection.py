"""The process's one counted pause of the cyclic garbage collector."""

from __future__ import annotations

import gc
import threading

import pytest

from runtime.garbage_collection import collect_and_freeze, collection_paused


def test_overlapping_pauses_of_two_threads_collect_again_only_after_the_last() -> None:
    """The first pause to begin is not the last to end: collection stays off until the
    other thread's transaction is over too."""
    second_inside = threading.Event()
    second_may_leave = threading.Event()

    def second() -> None:
        with collection_paused():
            second_inside.set()
            second_may_leave.wait(timeout=30)

    assert gc.isenabled()
    thread = threading.Thread(target=second)
    try:
        with collection_paused():
            thread.start()
            assert second_inside.wait(timeout=30)
        assert not gc.isenabled()  # the second thread is still inside its pause
    finally:
        second_may_leave.set()
        thread.join(timeout=30)
    assert gc.isenabled()


def test_a_pause_leaves_collection_off_when_it_was_off_before() -> None:
    gc.disable()
    try:
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_last_pause_to_end_unfreezes_what_was_frozen_inside() -> None:
    with collection_paused():
        with collection_paused():
            collect_and_freeze()
            assert gc.get_freeze_count() > 0
        assert gc.get_freeze_count() > 0  # the outer pause is still on
        assert not gc.isenabled()
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()


def test_freezing_outside_a_pause_is_refused() -> None:
    """Nothing would ever unfreeze it: cycles among the frozen objects would stay."""
    with pytest.raises(RuntimeError, match="collection_paused"):
        collect_and_freeze()
    assert gc.get_freeze_count() == 0
