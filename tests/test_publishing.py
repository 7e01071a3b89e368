"""What a public body needs to take Akte: the licence text, the licence in the package's
metadata, and a ``publiccode.yml`` for the public-sector code catalogues (standard v0.4)."""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML comes with mkdocs, without stubs

ROOT = Path(__file__).resolve().parents[1]


def _publiccode() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "publiccode.yml").read_text(encoding="utf-8"))
    return loaded


def test_the_licence_is_the_eupl_1_2_in_the_file_and_the_package() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

    assert text.startswith("EUROPEAN UNION PUBLIC LICENCE v. 1.2\n")
    for article in ("1.Definitions", "5.Obligations of the Licensee", "15.Applicable Law"):
        assert article in text
    assert "Appendix" in text
    assert pyproject["project"]["license"] == "EUPL-1.2"
    assert pyproject["project"]["license-files"] == ["LICENSE"]
    assert _publiccode()["legal"]["license"] == "EUPL-1.2"


def test_publiccode_yml_has_what_the_standard_requires() -> None:
    code = _publiccode()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

    assert code["publiccodeYmlVersion"] == "0.4"
    for key in ("name", "url", "platforms", "categories", "developmentStatus", "softwareType"):
        assert code[key], key
    assert code["softwareVersion"] == pyproject["project"]["version"]
    date.fromisoformat(code["releaseDate"])
    assert code["developmentStatus"] in {"concept", "development", "beta", "stable", "obsolete"}
    assert code["maintenance"]["type"] in {"internal", "contract", "community", "none"}
    assert code["localisation"]["availableLanguages"]
    for language in ("en", "de"):
        description = code["description"][language]
        assert len(description["shortDescription"]) <= 150
        assert 150 <= len(description["longDescription"]) <= 10_000
