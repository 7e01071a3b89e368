"""The primary-with-standby helper really replicates: what the primary commits, the
standby serves; killed and promoted, the standby takes writes. Two clusters of the test's
own (``tests/support/postgres_standby.py``); needs root. Marker ``long``."""

from __future__ import annotations

import psycopg
import pytest

from tests.support.postgres_cluster import cluster_tools_problem
from tests.support.postgres_standby import (
    conninfo,
    kill_primary,
    primary_with_standby,
    promote,
    wait_for_replay,
)

pytestmark = pytest.mark.long


@pytest.fixture(autouse=True)
def _tools() -> None:
    problem = cluster_tools_problem()
    assert problem is None, problem


def test_a_row_written_on_the_primary_is_read_on_the_standby() -> None:
    with primary_with_standby("akte_standby", synchronous=False, databases=("akte",)) as (
        primary,
        standby,
    ):
        with primary.connect("akte") as conn:
            conn.execute("CREATE TABLE written (text text)")
            conn.execute("INSERT INTO written VALUES ('on the primary')")
        wait_for_replay(primary, standby)
        with standby.connect("akte") as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            assert conn.execute("SELECT text FROM written").fetchall() == [("on the primary",)]
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute("INSERT INTO written VALUES ('on the standby')")


def test_a_synchronous_standby_keeps_every_commit_and_takes_over() -> None:
    with primary_with_standby("akte_standby", synchronous=True, databases=("akte",)) as (
        primary,
        standby,
    ):
        with primary.connect() as conn:
            row = conn.execute(
                "SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
                (standby.name,),
            ).fetchone()
        assert row == ("sync",)
        with primary.connect("akte") as conn:
            conn.execute("CREATE TABLE written (n int)")
            for n in range(20):
                conn.execute("INSERT INTO written VALUES (%s)", (n,))
        # No wait for replay: a synchronous commit is on the standby once acknowledged.
        kill_primary(primary)
        promote(standby)
        with psycopg.connect(conninfo((primary, standby), "akte"), autocommit=True) as conn:
            assert conn.info.port == standby.port
            assert conn.execute("SELECT count(*) FROM written").fetchone() == (20,)
            conn.execute("INSERT INTO written VALUES (20)")
