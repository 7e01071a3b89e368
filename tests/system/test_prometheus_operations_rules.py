"""The alert rules for Akte's tasks and channels: valid, unit-tested, and firing in a real
Prometheus that scrapes a live Akte.

``deploy/prometheus/akte-operations-rules.yml`` alerts on the hash-chain verification,
the deadline and appointment ticks, failing mails and refused payment notifications;
``promtool`` checks the rules and runs their unit tests. Then a real Prometheus (Debian's
package) scrapes a live Akte whose last ``akte audit verify`` found a broken chain (the
run recorded in the views store, as the command records it): the task's label arrives
as ``task`` (not renamed by Prometheus's own ``job``), and ``AkteAuditVerifyFailed``
fires. Every query of the Grafana dashboard is valid PromQL (``promtool`` parses it).
Without Prometheus the tests are skipped, saying so; under ``CI=true`` that is a failure.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.bootstrap import build_service, open_views_store, served_app
from adapters.monitoring.runs import AUDIT_VERIFY, record_run
from adapters.settings import Settings
from tests.support.live_server import ServedApp
from tests.system.test_prometheus import (
    DASHBOARD,
    WAIT_SECONDS,
    _get,
    _tool,
    running_prometheus,
)

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = PROMETHEUS / "akte-operations-rules.yml"
RULE_TESTS = PROMETHEUS / "akte-operations-rules.test.yml"
ALERTS = {
    "AkteAuditVerifyFailed",
    "AkteAuditVerifyOverdue",
    "AkteDeadlineTickOverdue",
    "AkteAppointmentTickOverdue",
    "AkteTickFailing",
    "AkteMailsFailing",
    "AktePaymentNotificationsRefused",
    "AkteInboxAnswersTooLarge",
    "AkteInboxWorkerDown",
}


def test_the_operations_alert_rules_are_valid_and_their_unit_tests_pass() -> None:
    promtool = _tool("promtool")

    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    tested = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROMETHEUS,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in checked.stdout


def test_prometheus_loads_the_operations_rules() -> None:
    config = (PROMETHEUS / "prometheus.yml").read_text()
    listed = re.search(r"^rule_files:\n((?:  - .*\n)+)", config, re.MULTILINE)
    assert listed is not None
    assert f"  - {RULES.name}\n" in listed.group(1)


@pytest.fixture
def broken_chain_akte(tmp_path: Path) -> Iterator[ServedApp]:
    """A live Akte whose last verification found a broken chain."""
    settings = Settings(store="sqlite", data_dir=tmp_path / "data")
    service = build_service(settings)
    views = open_views_store(settings)
    now = datetime.now(UTC)
    try:
        record_run(views, AUDIT_VERIFY, started_at=now, finished_at=now, result="broken", steps=0)
    finally:
        views.close()
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


def _query(api: str, expression: str) -> list[dict[str, Any]]:
    found = _get(f"{api}/query?query={urllib.parse.quote(expression)}")
    result: list[dict[str, Any]] = found.get("data", {}).get("result", [])
    return result


@pytest.mark.long  # 6-9 s: bin/test-long runs it, so bin/test stays under ten minutes
def test_a_real_prometheus_fires_the_alert_for_a_broken_chain(
    broken_chain_akte: ServedApp, tmp_path: Path
) -> None:
    firing: list[dict[str, Any]] = []
    with running_prometheus(RULES, broken_chain_akte.base_url, tmp_path) as (api, process):
        deadline = time.monotonic() + WAIT_SECONDS
        mails: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not (firing and mails):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                firing = _query(
                    api, 'ALERTS{alertname="AkteAuditVerifyFailed", alertstate="firing"}'
                )
                mails = _query(api, 'akte_mails_total{job="akte"}')
            except OSError:
                firing = []
            if not (firing and mails):
                time.sleep(0.5)
        verified = _query(api, 'akte_task_last_run_ok{job="akte", task="audit_verify"}')
        rules = _get(f"{api}/rules")["data"]["groups"]

    assert firing, "Prometheus never fired AkteAuditVerifyFailed"
    assert firing[0]["metric"]["severity"] == "critical"
    assert [sample["value"][1] for sample in verified] == ["0"]
    assert {sample["metric"]["outcome"] for sample in mails} == {"sent", "failed", "bounced"}
    assert {rule["name"] for group in rules for rule in group["rules"]} == ALERTS


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = _tool("promtool")
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    # promtool parses expressions in rule files: each query as a recording rule.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{number}", "expr": expression}
                    for number, expression in enumerate(expressions)
                ],
            }
        ]
    }
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(json.dumps(rules), encoding="utf-8")  # JSON is YAML

    checked = subprocess.run(
        [promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, check=False
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(expressions)} rules found" in checked.stdout
