"""A PostgreSQL primary with a streaming standby of the test's own, for replicas and failover.

Both clusters are made with the server's own tools (Debian's ``pg_createcluster``, then
``pg_basebackup -R`` run as the ``postgres`` OS user into the standby's data directory), on
free ports, with trust authentication on 127.0.0.1, and dropped with everything in them
when the ``with`` block ends, also when it fails. The shared server at 127.0.0.1:5432 is
never touched. Needs root (see ``cluster_tools_problem``).

Use::

    from tests.support.postgres_standby import (
        conninfo, kill_primary, primary_with_standby, promote, wait_for_replay,
    )

    with primary_with_standby("akte_pair", synchronous=True, databases=("akte",)) as (
        primary,
        standby,
    ):
        with primary.connect("akte") as conn:  # a psycopg connection, autocommit
            conn.execute("CREATE TABLE t (x int)")
        wait_for_replay(primary, standby)  # the standby has replayed all the primary wrote
        with standby.connect("akte") as conn:  # read-only (hot standby)
            conn.execute("SELECT count(*) FROM t")
        dsn = conninfo((primary, standby), "akte")  # libpq multi-host, read-write target
        kill_primary(primary)  # SIGKILL: the postmaster and its children, no shutdown
        promote(standby)  # returns once the standby accepts writes

What you get:

- ``primary`` and ``standby`` are ``tests.support.postgres_cluster.Cluster`` values
  (``name``, ``port``, ``host``, ``user``, ``connect(dbname)``, ``start()``, ``stop(mode)``).
- The primary has ``wal_level = replica`` and a ``host replication`` entry for 127.0.0.1
  in ``pg_hba.conf``; ``databases`` are created on it before the base backup, so they
  exist on both.
- The standby streams from the primary (checked in ``pg_stat_replication``); its
  ``application_name`` is its cluster name (``standby.name``).
- ``synchronous=True`` sets ``synchronous_standby_names`` on the primary to the standby
  (``synchronous_commit`` stays ``on``): a commit is acknowledged only once the standby has
  flushed it to disk, so no acknowledged commit is lost when the primary dies and the
  standby is promoted. The block starts only once ``sync_state`` is ``sync``. With
  ``synchronous=False`` the standby is asynchronous (replication lag can lose commits).
- While the standby is synchronous and down, commits on the primary wait for it, without
  end: PostgreSQL turns ``statement_timeout`` off before a commit, so only a cancel ends
  the wait (and then the commit stands on the primary alone). Stop the primary first if
  a test stops both.
- SIGTERM during the block (e.g. ``timeout``) still drops both clusters; SIGKILL cannot.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Final

import psycopg

from tests.support.postgres_cluster import VERSION, Cluster, temporary_cluster

BIN: Final = Path(f"/usr/lib/postgresql/{VERSION}/bin")
"""The server's own programs of this version (the /usr/bin wrappers pick a version by guessing)."""
WAIT: Final = 60.0
"""How long the helpers wait for the servers before they give up (a bound, not a figure)."""


def config_dir(cluster: Cluster) -> Path:
    """Debian keeps a cluster's configuration in /etc."""
    return Path("/etc/postgresql") / VERSION / cluster.name


def data_dir(cluster: Cluster) -> Path:
    return Path("/var/lib/postgresql") / VERSION / cluster.name


def conninfo(clusters: Sequence[Cluster], dbname: str) -> str:
    """The libpq multi-host connection string over ``clusters`` that connects to whichever of
    them accepts writes (``target_session_attrs=read-write``)."""
    hosts = ",".join(cluster.host for cluster in clusters)
    ports = ",".join(str(cluster.port) for cluster in clusters)
    return (
        f"host={hosts} port={ports} user={clusters[0].user} dbname={dbname} "
        "target_session_attrs=read-write connect_timeout=2"
    )


@contextmanager
def primary_with_standby(
    prefix: str = "akte_pair", *, synchronous: bool, databases: tuple[str, ...] = ()
) -> Iterator[tuple[Cluster, Cluster]]:
    """A running primary and a standby streaming from it (see the module docstring);
    both dropped afterwards."""
    with _sigterm_as_exit(), temporary_cluster(f"{prefix}_p", databases=databases) as primary:
        _allow_replication(primary)
        standby = Cluster(f"{prefix}_s_{uuid.uuid4().hex[:8]}", _free_port(primary.port))
        try:
            _make_standby(primary, standby)
            _wait_streaming(primary, standby, synchronous=False)
            if synchronous:
                with primary.connect() as conn:
                    conn.execute(
                        f"ALTER SYSTEM SET synchronous_standby_names = '\"{standby.name}\"'"
                    )
                    conn.execute("SELECT pg_reload_conf()")
                _wait_streaming(primary, standby, synchronous=True)
            yield primary, standby
        finally:
            # The primary may be dead or the standby promoted: stop what still runs first
            # (an immediate stop of a synchronous primary does not wait for its standby).
            subprocess.run(
                ["pg_ctlcluster", VERSION, primary.name, "stop", "-m", "immediate"],
                capture_output=True,
                check=False,
                timeout=120,
            )
            _drop(standby)


@contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """SIGTERM (``timeout``'s, a CI runner's) ends Python without running ``finally``
    blocks, which would leave both clusters running: while they exist it raises
    ``SystemExit`` instead, so they are dropped. Only in the main thread, and only where
    nobody else handles SIGTERM."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def kill_primary(primary: Cluster) -> None:
    """The primary dies as with a lost machine: SIGKILL to its postmaster (from
    ``postmaster.pid``) and to every process it started, no shutdown, no checkpoint."""
    postmaster = _postmaster_pid(primary)
    children = _children(postmaster)
    os.kill(postmaster, signal.SIGKILL)
    for child in children:
        with suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + WAIT
    while any(_alive(pid) for pid in (postmaster, *children)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the processes of cluster {primary.name} did not die")
        time.sleep(0.05)


def promote(standby: Cluster, timeout: float = WAIT) -> None:
    """Promote the standby (``pg_ctlcluster promote``) and return once it accepts writes."""
    subprocess.run(
        ["pg_ctlcluster", VERSION, standby.name, "promote"],
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout,
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            with standby.connect() as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if row is not None and row[0] is False:
                    # A transaction id is given only to a server that can write.
                    conn.execute("SELECT pg_current_xact_id()")
                    return
        except psycopg.Error:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"standby {standby.name} does not accept writes after promote")
        time.sleep(0.05)


def wait_for_replay(primary: Cluster, standby: Cluster, timeout: float = WAIT) -> None:
    """Return once the standby has replayed everything the primary has written so far."""
    with primary.connect() as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    target = row[0]
    deadline = time.monotonic() + timeout
    with standby.connect() as conn:
        while True:
            replayed = conn.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
            ).fetchone()
            if replayed is not None and replayed[0]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"standby {standby.name} did not replay up to {target}")
            time.sleep(0.05)


def _allow_replication(primary: Cluster) -> None:
    # initdb's --auth=trust already writes replication entries; say so explicitly all the
    # same, so the pair does not depend on that default. wal_level replica is the default
    # of version 15; set it anyway (a restart, only if it was not).
    hba = config_dir(primary) / "pg_hba.conf"
    entry = "host replication all 127.0.0.1/32 trust\n"
    text = hba.read_text()
    if entry not in text:
        hba.write_text(entry + text)
    with primary.connect() as conn:
        row = conn.execute("SHOW wal_level").fetchone()
        conn.execute("ALTER SYSTEM SET wal_level = 'replica'")
        conn.execute("SELECT pg_reload_conf()")
    if row is None or row[0] not in ("replica", "logical"):
        subprocess.run(
            ["pg_ctlcluster", VERSION, primary.name, "restart"],
            capture_output=True,
            check=True,
            timeout=120,
        )


def _make_standby(primary: Cluster, standby: Cluster) -> None:
    _run(
        "pg_createcluster", VERSION, standby.name, "--port", str(standby.port), "--", "--auth=trust"
    )
    target = data_dir(standby)
    # The base backup replaces the fresh cluster's data; its configuration in /etc (port,
    # paths, pg_hba) stays the standby's own.
    # Emptied rather than removed: the directory stays the postgres user's, in a parent
    # that user may not write to.
    for entry in target.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    _run(
        "runuser",
        "-u",
        "postgres",
        "--",
        str(BIN / "pg_basebackup"),
        "--pgdata",
        str(target),
        "--write-recovery-conf",
        "--wal-method=stream",
        "--checkpoint=fast",
        "--dbname",
        f"host={primary.host} port={primary.port} user={primary.user} "
        f"application_name={standby.name}",
    )
    standby.start()


def _wait_streaming(primary: Cluster, standby: Cluster, *, synchronous: bool) -> None:
    wanted = "sync" if synchronous else None
    deadline = time.monotonic() + WAIT
    with primary.connect() as conn:
        while True:
            row = conn.execute(
                "SELECT state, sync_state FROM pg_stat_replication WHERE application_name = %s",
                (standby.name,),
            ).fetchone()
            if row is not None and row[0] == "streaming" and (wanted is None or row[1] == wanted):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"standby {standby.name} is not streaming ({row})")
            time.sleep(0.1)


def _drop(cluster: Cluster) -> None:
    subprocess.run(
        ["pg_dropcluster", VERSION, cluster.name, "--stop"],
        capture_output=True,
        check=False,
        timeout=120,
    )


def _postmaster_pid(cluster: Cluster) -> int:
    return int((data_dir(cluster) / "postmaster.pid").read_text().splitlines()[0])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 is the parent's pid; the command name (field 2) may hold spaces.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _free_port(taken: int) -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port != taken:
            return port


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stdout}{done.stderr}")
