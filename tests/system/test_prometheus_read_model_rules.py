"""The alert rules for the read models and the read replica: valid, loaded, and their unit
tests pass.

``deploy/prometheus/akte-read-model-rules.yml`` fires ``AkteReadModelFailed`` for each
read model whose ``akte_read_model_failed`` is 1 for a minute
(tests/projections/test_read_model_failure.py shows the metric).
``deploy/prometheus/akte-replica-rules.yml`` fires ``AkteReplicaDown`` when a server's
replica has not answered for five minutes (``akte_replica_up`` 0) and
``AkteReplicaLagging`` when its replay stays more than a minute behind
(``akte_replica_replay_lag_seconds``); tests/system/test_read_replica.py shows the
metrics. ``promtool`` comes from Debian's ``prometheus`` package (``bin/_packages.sh``);
without it the test is skipped, saying so, and under ``CI=true`` that is a failure.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.system.test_prometheus import _tool

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULE_FILES = ("akte-read-model-rules", "akte-replica-rules")


@pytest.mark.parametrize("rules", RULE_FILES)
def test_the_alert_rules_are_valid_and_their_unit_tests_pass(rules: str) -> None:
    promtool = _tool("promtool")

    checked = subprocess.run(
        [promtool, "check", "rules", str(PROMETHEUS / f"{rules}.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    tested = subprocess.run(
        [promtool, "test", "rules", str(PROMETHEUS / f"{rules}.test.yml")],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROMETHEUS,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.parametrize("rules", RULE_FILES)
def test_prometheus_loads_the_rules(rules: str) -> None:
    config = (PROMETHEUS / "prometheus.yml").read_text()
    listed = re.search(r"^rule_files:\n((?:  - .*\n)+)", config, re.MULTILINE)
    assert listed is not None
    assert f"  - {rules}.yml\n" in listed.group(1)
