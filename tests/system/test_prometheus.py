"""Monitoring as municipal IT runs it: a real Prometheus scrapes a live Akte.

``promtool`` checks and unit-tests the alert rules of ``deploy/prometheus/``; a real
Prometheus (Debian's package) started on a free port scrapes a live Akte with the
repository's rules loaded; every query of the Grafana dashboard names metrics Akte
really exports. Without Prometheus the tests are skipped, saying so; under ``CI=true``
that is a failure (``bin/test`` installs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from adapters.bootstrap import build_service, served_app
from adapters.settings import Settings
from tests.support.live_server import ServedApp

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "akte-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "akte-rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "akte-dashboard.json"
WAIT_SECONDS = 60.0


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    reason = f"{name} is not installed, so monitoring is not checked: apt-get install -y prometheus"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


def test_the_alert_rules_are_valid_and_their_unit_tests_pass() -> None:
    promtool = _tool("promtool")

    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    tested = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        check=False,
        cwd=RULE_TESTS.parent,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert tested.returncode == 0, tested.stdout + tested.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


@contextmanager
def running_prometheus(
    rules: Path, target_url: str, tmp_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Debian's Prometheus on a free port, scraping ``target_url`` every second with
    ``rules`` loaded; its API address and process, stopped when the block ends."""
    port = _free_port()
    shutil.copy(rules, tmp_path / rules.name)
    target = target_url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{rules.name}]\n"
        "scrape_configs:\n"
        f"  - job_name: akte\n    static_configs: [{{targets: ['{target}']}}]\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [
            _tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield f"http://127.0.0.1:{port}/api/v1", process
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def akte(tmp_path: Path) -> Iterator[ServedApp]:
    settings = Settings(store="sqlite", data_dir=tmp_path / "data")
    service = build_service(settings)
    try:
        # As `akte serve` runs it: the read models followed in the process.
        with served_app(settings, service) as app:
            served = ServedApp(app, service)
            served.start()
            try:
                yield served
            finally:
                served.stop()
    finally:
        service.close()


@pytest.mark.long  # 6-9 s: bin/test-long runs it, so bin/test stays under ten minutes
def test_a_real_prometheus_scrapes_akte_with_the_rules_loaded(
    akte: ServedApp, tmp_path: Path
) -> None:
    with running_prometheus(RULES, akte.base_url, tmp_path) as (api, process):
        deadline = time.monotonic() + WAIT_SECONDS
        found: dict[str, Any] = {}
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                query = urllib.parse.quote('akte_read_model_lag_events{job="akte"}')
                found = _get(f"{api}/query?query={query}")
            except OSError:
                found = {}
            if found.get("data", {}).get("result"):
                break
            time.sleep(0.5)
        assert found.get("data", {}).get("result"), "Prometheus never stored Akte's lag metric"
        targets = _get(f"{api}/targets")["data"]["activeTargets"]
        rules = _get(f"{api}/rules")["data"]["groups"]

    assert [target["health"] for target in targets] == ["up"]
    read_models = {sample["metric"]["read_model"] for sample in found["data"]["result"]}
    assert "statistics" in read_models
    loaded = {rule["name"] for group in rules for rule in group["rules"]}
    assert {"AkteDown", "AkteReadModelStalled", "AkteServerErrors"} <= loaded


def _exported_series(akte: ServedApp) -> set[str]:
    exported = akte.http.get("/metrics").text
    names = set(re.findall(r"^# TYPE (\w+) (\w+)", exported, re.MULTILINE))
    series = {name for name, _kind in names}
    series |= {f"{name}_total" for name, kind in names if kind == "counter"}
    series |= {f"{name}_bucket" for name, kind in names if kind == "histogram"}
    return series


def test_every_dashboard_query_names_metrics_akte_exports(akte: ServedApp) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    used = {
        metric
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for metric in re.findall(r"\b(akte_\w+)", target["expr"])
    }

    # Counts read from a read model appear once the runner has built its tables.
    deadline = time.monotonic() + WAIT_SECONDS
    series = _exported_series(akte)
    while not used <= series and time.monotonic() < deadline:
        time.sleep(0.5)
        series = _exported_series(akte)

    assert used
    assert used <= series, used - series
