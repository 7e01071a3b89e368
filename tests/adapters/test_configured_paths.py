"""Dotted paths that live outside import statements, so a move would not break an import.

The library resolves the recorder and transcoder classes from topics in its
configuration, ``python -m`` starts the command line, and the reference data is read
as package resources; each is checked here against the layout as it is. Event topics are
stored data and must keep resolving: ``domain/`` modules never move.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Literal

import pytest
from eventsourcing.domain import DomainEvent
from eventsourcing.utils import get_topic, resolve_topic

from adapters.bootstrap import library_env
from adapters.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@pytest.mark.parametrize("transcoder", ["orjson", "json"])
def test_every_topic_in_the_library_configuration_resolves(
    store: Literal["sqlite", "postgres"], transcoder: Literal["orjson", "json"], tmp_path: Path
) -> None:
    settings = Settings(store=store, transcoder=transcoder, data_dir=tmp_path)
    topics = {key: value for key, value in library_env(settings).items() if key.endswith("TOPIC")}
    assert {"TRANSCODER_TOPIC", "APPLICATION_RECORDER_TOPIC"} <= set(topics)
    for topic in topics.values():
        assert isinstance(resolve_topic(topic), type)


def test_python_dash_m_starts_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: akte" in done.stdout


def test_the_console_script_names_an_existing_function() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (line,) = [line for line in pyproject.splitlines() if line.startswith("akte = ")]
    target = line.split("=", 1)[1].strip().strip('"')
    assert callable(resolve_topic(target))


@pytest.mark.parametrize(
    "name",
    [
        "legal-bases.json",
        "legal-bases-supplement.json",
        "contact-topics.json",
        "retention-rules.json",
        "staff.json",
        "office-2024.json",
    ],
)
def test_the_reference_data_is_a_package_resource(name: str) -> None:
    assert resources.files("adapters.reference").joinpath(name).is_file()


def _domain_event_classes() -> list[type[DomainEvent]]:
    classes: list[type[DomainEvent]] = []
    for path in sorted((ROOT / "domain").glob("*.py")):
        module = f"domain.{path.stem}"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                owner = resolve_topic(f"{module}:{node.name}")
                classes.extend(
                    value
                    for value in vars(owner).values()
                    if isinstance(value, type) and issubclass(value, DomainEvent)
                )
    return classes


def test_stored_event_topics_still_name_domain_modules() -> None:
    classes = _domain_event_classes()
    assert len(classes) > 50
    for cls in classes:
        topic = get_topic(cls)
        assert topic.startswith("domain."), topic
        assert resolve_topic(topic) is cls
