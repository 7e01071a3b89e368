"""The HTTP fast path: verified tokens are remembered, but never past their expiry, their
signing key or their exact text; the projection runner of ``akte serve`` on PostgreSQL
runs in a child process that gives read-your-writes and stops with the server."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from jwt import PyJWK, PyJWKSet

from adapters.bootstrap import build_service, open_views_store
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LOCAL_AUDIENCE, LOCAL_ISSUER, LocalIssuer
from adapters.http.auth.tokens import InvalidToken, TokenVerifier
from adapters.settings import Settings
from adapters.views import runner
from adapters.views.runner import ProjectionProcess, wait_for_position
from benchmarks.cluster import ApiProcess, settings_env, stop_all
from projections.read_models import READ_MODELS
from service import AkteService
from tests.conftest import make_settings
from tests.support.projections import TOPIC, CaseDriver

OFFICE = "abh-musterstadt"

BOUND = 120.0
"""How long the tests below wait for a child process to get somewhere (start, catch up,
stop): a bound for a hang, not a measure. It must be generous: a child first imports the
whole application, and on a shared two-core machine at load 13 that alone took 15 s."""


# ------------------------------------------------------------ remembered tokens


class PublishedKeys:
    """The issuer's key set as the verifier sees it; ``republish`` hands out new objects
    for the same keys, as a refetch of the key set does."""

    def __init__(self, issuer: LocalIssuer) -> None:
        self._jwks = issuer.jwks()
        self.lookups = 0
        self.republish()

    def republish(self) -> None:
        self.keys: dict[str, PyJWK] = {
            str(key.key_id): key for key in PyJWKSet.from_dict(self._jwks).keys
        }

    def withdraw(self) -> None:
        self.keys = {}

    def signing_key(self, kid: str) -> PyJWK:
        self.lookups += 1
        key = self.keys.get(kid)
        if key is None:
            raise InvalidToken("the token is signed with a key its issuer does not publish")
        return key


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> LocalIssuer:
    return LocalIssuer.load_or_create(tmp_path_factory.mktemp("issuer") / "key.pem")


@pytest.fixture
def keys(issuer: LocalIssuer) -> PublishedKeys:
    return PublishedKeys(issuer)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(keys: PublishedKeys, clock: Clock) -> TokenVerifier:
    return TokenVerifier(
        issuer=LOCAL_ISSUER,
        audience=LOCAL_AUDIENCE,
        signing_keys=keys,
        remembered_tokens=3,
        clock=clock,
    )


def token_for(
    issuer: LocalIssuer,
    user_id: str = "sb-01",
    *,
    lifetime: timedelta = timedelta(minutes=30),
    now: datetime | None = None,
) -> str:
    return issuer.issue(
        user_id=user_id, roles=[Role.CASEWORKER], office_id=OFFICE, lifetime=lifetime, now=now
    )


def test_a_verified_token_is_remembered_with_its_principal(
    issuer: LocalIssuer, verifier: TokenVerifier
) -> None:
    token = token_for(issuer)

    first = verifier.verify(token)
    again = verifier.verify(token)

    assert again == first
    assert first.user_id == "sb-01"
    assert first.roles == frozenset({Role.CASEWORKER})
    assert verifier.remembered_count == 1


def test_a_remembered_token_is_not_taken_past_its_expiry(
    issuer: LocalIssuer, verifier: TokenVerifier, clock: Clock
) -> None:
    token = token_for(issuer, lifetime=timedelta(minutes=5))
    verifier.verify(token)
    assert verifier.remembered_count == 1

    clock.now += 5 * 60 + 1
    verifier.verify(token)  # the full check (the system clock still says valid)

    assert verifier.remembered_count == 0, "past exp the token is checked again, and not kept"


def test_an_expired_token_is_refused_and_never_remembered(
    issuer: LocalIssuer, verifier: TokenVerifier
) -> None:
    verifier.verify(token_for(issuer))
    expired = token_for(
        issuer, lifetime=timedelta(minutes=5), now=datetime.now(tz=UTC) - timedelta(minutes=10)
    )

    for _ in range(2):
        with pytest.raises(InvalidToken, match="expired"):
            verifier.verify(expired)
    assert verifier.remembered_count == 1


def _with_segment(token: str, index: int, replace: Callable[[bytes], bytes]) -> str:
    segments = token.split(".")
    raw = base64.urlsafe_b64decode(segments[index] + "=" * (-len(segments[index]) % 4))
    segments[index] = base64.urlsafe_b64encode(replace(raw)).rstrip(b"=").decode()
    return ".".join(segments)


def test_a_forged_token_is_refused_although_the_genuine_one_is_remembered(
    issuer: LocalIssuer, verifier: TokenVerifier
) -> None:
    genuine = token_for(issuer)
    verifier.verify(genuine)
    other_subject = _with_segment(genuine, 1, lambda claims: claims.replace(b"sb-01", b"sb-02"))
    flipped_signature = _with_segment(genuine, 2, lambda sig: bytes([sig[0] ^ 1]) + sig[1:])

    for forged in (other_subject, flipped_signature):
        with pytest.raises(InvalidToken, match="signature"):
            verifier.verify(forged)
    assert verifier.remembered_count == 1


def test_a_remembered_token_is_refused_once_its_key_is_withdrawn(
    issuer: LocalIssuer, verifier: TokenVerifier, keys: PublishedKeys
) -> None:
    token = token_for(issuer)
    verifier.verify(token)

    keys.withdraw()

    with pytest.raises(InvalidToken, match="does not publish"):
        verifier.verify(token)
    assert verifier.remembered_count == 0


def test_a_refetched_key_set_makes_remembered_tokens_verify_again(
    issuer: LocalIssuer, verifier: TokenVerifier, keys: PublishedKeys, clock: Clock
) -> None:
    token = token_for(issuer)
    verifier.verify(token)
    remembered_hit = verifier.verify(token)

    keys.republish()  # same key id, a new key object: trust only what verified
    clock.now += 1
    after_refetch = verifier.verify(token)

    assert after_refetch == remembered_hit


def test_remembered_tokens_are_bounded(issuer: LocalIssuer, verifier: TokenVerifier) -> None:
    for n in range(5):
        verifier.verify(token_for(issuer, user_id=f"sb-{n:02d}"))

    assert verifier.remembered_count == 3


# ------------------------------------------------- the projection child process


@pytest.fixture
def pg_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return make_settings("postgres", tmp_path, request)


@pytest.fixture
def pg_service(pg_settings: Settings) -> Iterator[AkteService]:
    service = build_service(pg_settings)
    try:
        yield service
    finally:
        service.close()


def eventually(condition: Callable[[], bool], timeout: float = BOUND) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _ended(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")  # a zombie has ended; its parent has not reaped it yet


@pytest.mark.long  # 6-9 s: bin/test-long runs it, so bin/test stays under ten minutes
@pytest.mark.postgres
def test_a_projection_process_gives_read_your_writes_and_stops_cleanly(
    pg_settings: Settings, pg_service: AkteService
) -> None:
    views = open_views_store(pg_settings)
    process = ProjectionProcess(pg_settings, supervise_interval=0.05)
    try:
        process.start()
        case = CaseDriver.open(pg_service)
        case("receive_procedure", channel="mail", topic=TOPIC)

        assert wait_for_position(views, READ_MODELS, case.position, timeout=BOUND)

        first_child = process.pid
        assert first_child is not None
        os.kill(first_child, signal.SIGKILL)
        assert eventually(lambda: process.restarts == 1 and process.alive())
        # Ready again only once the new child has stayed up for a while.
        assert process.problem() == "projection process restarted, not yet running steadily"
        case("receive_procedure", channel="mail", topic=TOPIC)
        assert wait_for_position(views, READ_MODELS, case.position, timeout=BOUND)
    finally:
        # Closing its stdin asks the child to stop; it is killed only after BOUND (the
        # server's own 10 s, CHILD_STOP_TIMEOUT, is a policy for production, not what
        # "stops cleanly" means on a machine this busy).
        exit_code = process.stop(BOUND)
        views.close()
    assert exit_code == 0
    assert not process.alive()
    assert process.problem() == "projection process not running"


def serve_with_projection_child(settings: Settings, tmp_path: Path) -> tuple[ApiProcess, int]:
    """A live ``akte serve`` on PostgreSQL and the pid of its projection child."""
    build_service(settings).close()
    api = ApiProcess(settings, tmp_path / "api.log")
    try:
        api.start()
        api.wait_ready(BOUND)
        assert eventually(lambda: len(_children(api.pid)) == 1)
    except BaseException:
        stop_all([api])
        raise
    (child,) = _children(api.pid)
    return api, child


@pytest.mark.postgres
@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_the_projection_process_of_akte_serve_ends_with_the_server(
    pg_settings: Settings, tmp_path: Path
) -> None:
    api, child = serve_with_projection_child(pg_settings, tmp_path)
    try:
        with httpx.Client(base_url=api.base_url, trust_env=False, timeout=BOUND) as http:
            ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["projection_process"] == "ok"

        api.kill()  # SIGKILL: the server cleans nothing up

        assert eventually(lambda: _ended(child)), "the child noticed the server is gone"
    finally:
        stop_all([api])


@pytest.mark.postgres
@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_a_projection_process_ends_when_its_parent_is_killed(
    pg_settings: Settings, tmp_path: Path
) -> None:
    """Without a server: a bare parent that starts the child and is killed."""
    parent_code = (
        "import sys, time\n"
        "from adapters.views.runner import ProjectionProcess\n"
        "from adapters.settings import Settings\n"
        "p = ProjectionProcess(Settings())\n"
        "p.start()\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code],
        env=settings_env(pg_settings),
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert not _ended(child)

        parent.kill()
        parent.wait(timeout=BOUND)

        assert eventually(lambda: _ended(child))
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=BOUND)


def test_the_projection_process_gets_every_secret_unmasked() -> None:
    from pydantic import SecretStr

    from adapters.views.runner import _settings_from, _settings_message

    master_keys = "k2026:" + "B" * 43 + "="
    settings = Settings(
        store="postgres",
        postgres_password=SecretStr("pw"),
        master_keys=SecretStr(master_keys),
        appointment_secret=SecretStr("s" * 40),
    )
    received = _settings_from(_settings_message(settings))
    assert received.master_keys is not None
    assert received.master_keys.get_secret_value() == master_keys
    assert received.postgres_password.get_secret_value() == "pw"
    assert received.appointment_secret is not None
    assert received.appointment_secret.get_secret_value() == "s" * 40
    assert received == settings


@pytest.mark.long  # 6-9 s: bin/test-long runs it, so bin/test stays under ten minutes
@pytest.mark.postgres
def test_akte_serve_stopped_with_sigterm_stops_its_projection_process(
    pg_settings: Settings, tmp_path: Path
) -> None:
    api, child = serve_with_projection_child(pg_settings, tmp_path)
    try:
        # A SIGTERM that reaches the child too (process group) does not stop it early.
        os.kill(child, signal.SIGTERM)
        exit_code = api.stop(BOUND)
        # The server ran its clean-up: it stopped and reaped the child itself.
        assert exit_code == 128 + signal.SIGTERM
        assert _ended(child)
        assert "Fatal Python error" not in (tmp_path / "api.log").read_text()
    finally:
        stop_all([api])


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_a_projection_process_that_cannot_start_exits_cleanly_with_growing_backoff(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A child that stayed up CHILD_STABLE_SECONDS resets the backoff, and the time a child
    # spends importing counts: on a busy machine (35 s per attempt at load 13) each failing
    # child would look stable. The growth is what is tested here, so no child counts as
    # stable.
    monkeypatch.setattr(runner, "CHILD_STABLE_SECONDS", 3600.0)
    unreachable = Settings(
        store="postgres", data_dir=tmp_path, postgres_port=1, postgres_schema="akte_nowhere"
    )
    process = ProjectionProcess(unreachable, supervise_interval=0.05)
    caplog.set_level("WARNING", logger="akte")
    try:
        process.start()
        # Three children, each importing the application before it fails.
        assert eventually(lambda: process.restarts >= 3, timeout=3 * BOUND)
        assert process.problem() is not None
    finally:
        process.stop()
    ended = [r.getMessage() for r in caplog.records if "projection process ended" in r.getMessage()]
    # Each attempt failed with exit 1 (logged), not an interpreter abort (-6).
    assert ended[:3] == [
        f"projection process ended (exit 1); starting another in {delay:.1f} s"
        for delay in (0.2, 0.4, 0.8)
    ]
