"""``akte outbox``'s configuration (adapters/cli/outbox.py): which office events go out
under."""

from __future__ import annotations

from adapters.cli.outbox import outbox_config
from adapters.settings import Settings


def test_a_store_of_several_offices_publishes_each_event_under_its_aggregates_office() -> None:
    config = outbox_config(Settings(default_office_id="abh-a"))
    assert not config.shard
    assert config.office == "abh-a", "only for aggregates of no office"
    # The stream starts with the default office's subjects; others are added as they come.
    assert config.subjects == "akte.abh-a.>"
    assert config.subjects_of("abh-b") == "akte.abh-b.>"


def test_a_shard_publishes_under_its_office() -> None:
    config = outbox_config(Settings(shard_office="abh-b", default_office_id="abh-b"))
    assert config.shard
    assert config.office == "abh-b"
    assert config.subjects == "akte.abh-b.>"
