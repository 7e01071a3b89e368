"""Reading the settings so that mistakes show: every ``AKTE_*`` variable (in the
environment and in ``.env``) must be a setting, secrets may come from files
(``AKTE_<SECRET>_FILE``, as container platforms mount them), relative paths become
absolute (so the log says which directory a process uses), and every invalid value is
reported at once rather than the first one only.

Messages name variables and files, never a value: a value may be a password.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from dotenv import dotenv_values
from pydantic import SecretStr, ValidationError

from adapters.settings import Settings

PREFIX: Final = "AKTE_"
FILE_SUFFIX: Final = "_FILE"
DOTENV: Final = Path(".env")

TOOLING_VARIABLES: Final = frozenset({"AKTE_ROOT", "AKTE_CHROMIUM"})
"""Variables of Akte's own scripts and tests (``bin/_venv.sh``, the browser test), not
settings of the service; accepted so that they do not stop a command."""
TOOLING_PREFIXES: Final = ("AKTE_TEST_",)
"""``AKTE_TEST_POSTGRES_*``, ``AKTE_TEST_WORKERS``: the test suite's server and workers."""


def setting_variable(field: str) -> str:
    """The environment variable of a setting: ``data_dir`` -> ``AKTE_DATA_DIR``."""
    return PREFIX + field.upper()


def secret_fields() -> tuple[str, ...]:
    """The settings that hold secrets (and may come from ``AKTE_<NAME>_FILE``)."""
    return tuple(
        name
        for name, field in Settings.model_fields.items()
        if field.annotation is not None and SecretStr in _types_of(field.annotation)
    )


def path_fields() -> tuple[str, ...]:
    """The settings that name a file or directory."""
    return tuple(
        name
        for name, field in Settings.model_fields.items()
        if field.annotation is not None and Path in _types_of(field.annotation)
    )


def _types_of(annotation: Any) -> tuple[Any, ...]:
    arguments = getattr(annotation, "__args__", None)
    return tuple(arguments) if arguments else (annotation,)


def known_variables() -> frozenset[str]:
    """Every variable a deployment may set: the settings and the secrets' ``_FILE``s."""
    settings = {setting_variable(name) for name in Settings.model_fields}
    files = {setting_variable(name) + FILE_SUFFIX for name in secret_fields()}
    return frozenset(settings | files)


@dataclass(frozen=True)
class SettingsReading:
    """The settings, or ``None`` when they cannot be built, and every problem found."""

    settings: Settings | None
    problems: tuple[str, ...]


def read_settings() -> SettingsReading:
    """The settings from the environment and ``.env``, as :class:`Settings` reads them,
    with every problem of the reading: unknown variables, unreadable secret files,
    invalid values. Paths come back absolute (relative to the current directory)."""
    environment = dict(os.environ)
    dotenv = DOTENV
    from_file = _dotenv_variables(dotenv)
    problems: list[str] = []
    problems += _unknown_variables(environment, source="environment")
    problems += _unknown_variables(from_file, source=f"{dotenv.absolute()}")
    overrides, file_problems = _secrets_from_files(from_file | _upper(environment))
    problems += file_problems
    try:
        settings: Settings | None = Settings(**overrides)
    except ValidationError as error:
        settings = None
        for item in error.errors():
            variable = setting_variable("_".join(str(part) for part in item["loc"]))
            problems.append(f"{variable}: {item['msg']}")
    if settings is not None:
        settings = with_absolute_paths(settings)
    return SettingsReading(settings=settings, problems=tuple(problems))


def with_absolute_paths(settings: Settings) -> Settings:
    """The settings with every path absolute: a relative one means "below the current
    directory", which differs between a server and a command run elsewhere."""
    update = {
        name: value.expanduser().absolute()
        for name in path_fields()
        if isinstance(value := getattr(settings, name), Path) and not value.is_absolute()
    }
    return settings.model_copy(update=update) if update else settings


def _upper(variables: Mapping[str, str]) -> dict[str, str]:
    # Settings are read case-insensitively; so are the names checked here.
    return {name.upper(): value for name, value in variables.items()}


def _dotenv_variables(dotenv: Path) -> dict[str, str]:
    if not dotenv.is_file():
        return {}
    return {
        name.upper(): value or ""
        for name, value in dotenv_values(dotenv).items()
        if name.upper().startswith(PREFIX)
    }


def _unknown_variables(variables: Mapping[str, str], *, source: str) -> list[str]:
    known = known_variables()
    problems = []
    for name in sorted(_upper(variables)):
        if not name.startswith(PREFIX) or name in known or name in TOOLING_VARIABLES:
            continue
        if name.startswith(TOOLING_PREFIXES):
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        problems.append(f"{name} (in the {source}) is not a setting{hint}")
    return problems


def _secrets_from_files(variables: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """``AKTE_<SECRET>_FILE``: the secret is the file's content (without the final line
    break), for container platforms that mount secrets as files."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name in secret_fields():
        variable = setting_variable(name)
        path_text = variables.get(variable + FILE_SUFFIX)
        if path_text is None:
            continue
        if variable in variables:
            problems.append(f"{variable} and {variable}{FILE_SUFFIX} are both set; set one")
            continue
        path = Path(path_text).expanduser().absolute()
        try:
            values[name] = path.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            problems.append(f"{variable}{FILE_SUFFIX}: cannot read {path} ({reason})")
    return values, problems
