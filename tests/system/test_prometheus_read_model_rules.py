"""The alert rule for a read model stopped on an event: valid, and its unit tests pass.

``deploy/prometheus/akte-read-model-rules.yml`` fires ``AkteReadModelFailed`` for each
read model whose ``akte_read_model_failed`` is 1 for a minute
(tests/projections/test_read_model_failure.py shows the metric). ``promtool`` comes from
Debian's ``prometheus`` package (``bin/_packages.sh``); without it the test is skipped,
saying so, and under ``CI=true`` that is a failure.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.system.test_prometheus import _tool

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = PROMETHEUS / "akte-read-model-rules.yml"
RULE_TESTS = PROMETHEUS / "akte-read-model-rules.test.yml"


def test_the_read_model_alert_rule_is_valid_and_its_unit_tests_pass() -> None:
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


def test_prometheus_loads_the_read_model_rules() -> None:
    config = (PROMETHEUS / "prometheus.yml").read_text()
    listed = re.search(r"^rule_files:\n((?:  - .*\n)+)", config, re.MULTILINE)
    assert listed is not None
    assert f"  - {RULES.name}\n" in listed.group(1)
