"""Akte's container images: built with podman from Debian's packages, and run.

``bin/container-build --all`` makes the base image with debootstrap (once), Akte's wheels
on the host, and the images of ``deploy/container/``. One test starts Akte's image as
``akte serve --demo`` and works with the demo office over HTTP from outside, with a token
the container's own ``akte token`` prints; another starts ``deploy/container/compose.yml``
(Akte, PostgreSQL, the OpenID provider) and works with a token of the provider. Without
podman, runc, debootstrap or podman-compose the tests are skipped, saying so; under
``CI=true`` that is a failure (``bin/_packages.sh`` installs them). Root is needed
(rootful podman).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import httpx2 as httpx
import pytest

from tests.http.auth.route_table import PERSON

ROOT: Final = Path(__file__).resolve().parents[2]
TAG: Final = "localhost/akte:latest"
COMPOSE_FILE: Final = ROOT / "deploy" / "container" / "compose.yml"
MACHINE_CLIENT: Final = ("akte-intake", "intake-secret-for-tests-only")
BUILD_TIMEOUT_SECONDS: Final = 1800
START_TIMEOUT_SECONDS: Final = 300.0

pytestmark = pytest.mark.long


def _require_tools() -> None:
    tools = ("podman", "runc", "debootstrap", "podman-compose")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    problem = None
    if missing:
        problem = f"{', '.join(missing)} not installed: apt-get install -y {' '.join(tools)}"
    elif os.geteuid() != 0:
        problem = "the container test needs root (rootful podman)"
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {problem}")
    pytest.skip(problem)


def _podman(
    *args: str,
    timeout: float = 120,
    command: str = "akte_podman",
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """podman (or podman-compose) with the repository's options for this host
    (bin/_podman.sh)."""
    script = f'source "$0"; {command} "$@"'
    return subprocess.run(
        ["bash", "-c", script, str(ROOT / "bin" / "_podman.sh"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=None if env is None else os.environ | env,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def image() -> str:
    _require_tools()
    built = subprocess.run(
        [str(ROOT / "bin" / "container-build"), "--all", TAG],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-4000:]
    assert built.stdout.split() == [
        TAG,
        "localhost/akte-postgres:latest",
        "localhost/akte-oidc-provider:latest",
    ]
    return TAG


@pytest.fixture
def demo(image: str) -> Iterator[tuple[str, str]]:
    """The image serving the demo office on a free port of 127.0.0.1: (name, base URL)."""
    name = f"akte-test-{uuid.uuid4().hex[:12]}"
    port = _free_port()
    started = _podman(
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        image,
        "serve",
        "--demo",
        "--cases",
        "20",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        timeout=START_TIMEOUT_SECONDS,
    )
    assert started.returncode == 0, started.stderr
    try:
        yield name, f"http://127.0.0.1:{port}"
    finally:
        _podman("rm", "--force", "--volumes", name)


def _wait_answering(url: str, name: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    logs = _podman("logs", name)
    pytest.fail(f"{name} does not answer {url}:\n{(logs.stdout + logs.stderr)[-4000:]}")


def test_the_image_serves_the_demo_office(demo: tuple[str, str]) -> None:
    name, base_url = demo
    _wait_answering(f"{base_url}/healthz", name)
    logs = _podman("logs", name)
    shown = [
        line.removeprefix("Try: akte case show ").strip()
        for line in (logs.stdout + logs.stderr).splitlines()
        if line.startswith("Try: akte case show ")
    ]
    assert len(shown) == 1, logs.stdout + logs.stderr
    issued = _podman("exec", name, "akte", "token", "sb-01")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()

    with httpx.Client(base_url=base_url, trust_env=False, timeout=10) as http:
        case = http.get(f"/cases/{shown[0]}", headers={"Authorization": f"Bearer {token}"})
        anonymous = http.get(f"/cases/{shown[0]}")
        start_page = http.get("/")

    assert case.status_code == 200, case.text
    assert case.json()["office_id"] == "abh-musterstadt"
    assert anonymous.status_code == 401
    assert start_page.status_code == 200


def test_compose_runs_akte_on_postgresql_with_the_provider(image: str) -> None:
    project = f"aktetest{uuid.uuid4().hex[:8]}"
    ports = {"AKTE_PORT": str(_free_port()), "PROVIDER_PORT": str(_free_port())}
    akte_url = f"http://127.0.0.1:{ports['AKTE_PORT']}"
    provider_url = f"http://127.0.0.1:{ports['PROVIDER_PORT']}"
    compose = ("-p", project, "-f", str(COMPOSE_FILE))
    up = _podman(*compose, "up", "-d", command="akte_podman_compose", env=ports, timeout=600)
    try:
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        discovery = f"{provider_url}/.well-known/openid-configuration"
        _wait_answering(discovery, f"{project}_oidc-provider_1")
        _wait_answering(f"{akte_url}/readyz", f"{project}_akte_1")
        with httpx.Client(trust_env=False, timeout=30) as http:
            issued = http.post(
                f"{provider_url}/token",
                data={"grant_type": "client_credentials", "scope": "akte"},
                auth=MACHINE_CLIENT,
            )
            assert issued.status_code == 200, issued.text
            bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
            opened = http.post(f"{akte_url}/cases", json=PERSON, headers=bearer)
            assert opened.status_code == 201, opened.text
            case = http.get(f"{akte_url}/cases/{opened.json()['case_id']}", headers=bearer)
            anonymous = http.post(f"{akte_url}/cases", json=PERSON)
            ready = http.get(f"{akte_url}/readyz")
        stored = _podman(
            "exec",
            f"{project}_postgres_1",
            "psql",
            "-h",
            "/run/postgresql",
            "-U",
            "postgres",
            "-d",
            "akte",
            "-Atc",
            "SELECT count(*) FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
        )
    finally:
        _podman(*compose, "down", "-v", command="akte_podman_compose", env=ports, timeout=300)
        # Debian's podman-compose leaves the project's network behind.
        _podman("network", "rm", "--force", f"{project}_default")

    assert case.status_code == 200, case.text
    assert case.json()["office_id"] == "abh-musterstadt"
    assert anonymous.status_code == 401
    assert ready.json()["checks"]["store"] == "ok"
    # Akte's tables are in the compose file's PostgreSQL, not in a SQLite file.
    assert stored.returncode == 0, stored.stderr
    assert int(stored.stdout.strip()) > 0
