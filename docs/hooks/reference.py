"""MkDocs hook: writes the reference pages from the code, so they cannot drift from it.

Registered in ``mkdocs.yml`` (``hooks:``). At every build, :func:`on_files` adds four
virtual pages (nothing is written into ``docs/``):

- ``operations/configuration.md`` from the settings class ``adapters.settings.Settings``
  (fields, ``AKTE_*`` names, defaults, limits, attribute docstrings);
- ``reference/cli.md`` from the ``akte`` command's argparse parser;
- ``reference/events.md`` from every event class in ``domain/`` (stored topic, fields,
  which fields hold personal data);
- ``reference/problems.md`` from the problem responses of ``adapters/http/`` and the
  codes of the domain's errors.
- ``reference/asyncapi.md`` and ``reference/asyncapi.json``: the outbox's AsyncAPI
  document (``adapters/outbox/asyncapi.py``) for the default allow-list.

:func:`on_page_markdown` fills two tables into hand-written pages where they hold a
``<!-- generated: NAME -->`` line: ``read-models`` (every read model the runner follows,
from ``projections/read_models.py``) and ``permissions`` (what each role may, from
``adapters/http/auth/permissions.py``).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import importlib
import inspect
import itertools
import os
import pkgutil
import re
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT: Final = Path(__file__).resolve().parents[2]

GENERATED_NOTE: Final = (
    "<!-- Generated at build time by docs/hooks/reference.py; edit the code, not this page. -->"
)
# Fields every stored event has, from the eventsourcing library; not repeated per event.
LIBRARY_EVENT_FIELDS: Final = ("originator_id", "originator_version", "timestamp")
CREATED_EVENT_FIELD: Final = "originator_topic"
CLI_HELP_COLUMNS: Final = "100"


def _project_importable() -> None:
    """Put the repository's root on ``sys.path`` for the application's top-level modules.

    Done per event, not at import: MkDocs restores ``sys.path`` after loading a hook.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated reference pages to the site's files."""
    _project_importable()
    pages = {
        "operations/configuration.md": configuration_page(),
        "reference/cli.md": cli_page(),
        "reference/events.md": events_page(),
        "reference/problems.md": problems_page(),
        "reference/record-of-processing.md": record_of_processing_page(),
        "reference/asyncapi.md": asyncapi_page(),
        "reference/asyncapi.json": asyncapi_json(),
    }
    for src_uri, content in pages.items():
        files.append(File.generated(config, src_uri, content=content))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Replace each ``<!-- generated: NAME -->`` line with its generated table."""
    _project_importable()
    tables = {"read-models": read_models_table, "permissions": permissions_table}

    def table(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in tables:
            msg = f"{page.file.src_uri}: no generated table named {name!r}"
            raise ValueError(msg)
        return tables[name]()

    return re.sub(r"^<!-- generated: ([a-z-]+) -->$", table, markdown, flags=re.MULTILINE)


# ------------------------------------------------------------------ text helpers


def markdown_from_docstring(text: str) -> str:
    """Docstring markup (``code``, :func:`name`) as Markdown."""
    text = inspect.cleandoc(text)
    text = re.sub(r":(?:func|class|mod|data|meth|attr|obj):`~?([^`]+)`", r"`\1`", text)
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def one_line(text: str) -> str:
    """Text fit for a table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def code(text: str) -> str:
    return f"`{text}`"


# ------------------------------------------------------------------ configuration


def _attribute_docstrings(cls: type) -> dict[str, str]:
    """``name: T = ...`` followed by a string literal: the attribute's docstring."""
    source = inspect.getsource(cls)
    class_node = ast.parse(source).body[0]
    assert isinstance(class_node, ast.ClassDef)
    docs: dict[str, str] = {}
    body = class_node.body
    for statement, following in itertools.pairwise(body):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[statement.target.id] = following.value.value
    return docs


def _settings_type(annotation: Any) -> str:
    if typing.get_origin(annotation) is Literal:
        return " or ".join(code(str(choice)) for choice in typing.get_args(annotation))
    return type_name(annotation)


def _settings_default(default: Any) -> str:
    from pydantic import SecretStr

    if default is None:
        return "unset"
    if isinstance(default, SecretStr):
        return code(default.get_secret_value()) if default.get_secret_value() else 'empty (`""`)'
    if isinstance(default, bool):
        return code(str(default).lower())
    if isinstance(default, Path):
        return code(str(default))
    if isinstance(default, int) and not isinstance(default, bool) and default >= 10_000:
        return code(str(default)) + f" ({_bytes_or_number(default)})"
    if default == "":
        return 'empty (`""`)'
    return code(str(default))


def _bytes_or_number(value: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value % size == 0:
            return f"{value // size} {unit}"
    return f"{value:,}"


def _limits(metadata: list[Any]) -> str:
    words = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}
    found = [
        f"{word} {getattr(item, name)}"
        for item in metadata
        for name, word in words.items()
        if getattr(item, name, None) is not None
    ]
    return ", ".join(found)


def configuration_page() -> str:
    from adapters.settings import Settings

    prefix = str(Settings.model_config.get("env_prefix", ""))
    docs = _attribute_docstrings(Settings)
    lines = [
        GENERATED_NOTE,
        "# Configuration reference",
        "",
        "Akte reads its settings from environment variables, or from a `.env` file in the "
        "working directory; the variable is the field's name in capitals with the prefix "
        f"`{prefix}`. The source is the settings class `Settings` in `adapters/settings.py`; "
        "this page is generated from it at every build of the docs. Invalid values stop "
        "every `akte` command with exit code 2 and one message naming every variable at "
        "fault (never its value).",
        "",
        "Mistakes are caught, not ignored:",
        "",
        f"- an unknown `{prefix}*` variable (in the environment or in `.env`) is refused with "
        f"the closest known name (`{prefix}DATADIR`: did you mean `{prefix}DATA_DIR`?); "
        "only the test suite's and scripts' own variables (`AKTE_TEST_*`, `AKTE_ROOT`, "
        "`AKTE_CHROMIUM`) are let through;",
        "- relative paths are taken from the directory the command runs in and made "
        "absolute at once; `akte serve` logs every path it uses (`paths in use: ...`), and "
        "`akte token` and `akte report` refuse to work on a missing signing key or an "
        "empty store (exit 6) rather than make a new one or print a report of nothing;",
        "- `akte serve` checks every setting before it starts, secrets included (master "
        "keys, the payment and appointment secrets, the identity provider, the files the "
        "settings name), and lists every problem in one message;",
        f"- every secret can come from a file instead: `{prefix}<NAME>_FILE` names the "
        "file (as container platforms mount secrets), e.g. "
        f"`{prefix}PAYMENT_SHARED_SECRET_FILE=/run/secrets/payment`; its final line break "
        "is dropped; setting both the variable and its `_FILE` is an error;",
        "- `akte config check` prints the effective settings (secrets masked) and every "
        "problem, exit code 0 when they are usable, 2 when not; run it after every change.",
        "",
        "Which settings production needs, and what it refuses, is in "
        "[Authentication](authentication.md), [PostgreSQL](postgresql.md) and "
        "[Backup](backup.md).",
        "",
        "| variable | default |",
        "|---|---|",
    ]
    fields = Settings.model_fields
    for name, field in fields.items():
        variable = f"{prefix}{name.upper()}"
        anchor = variable.lower()
        lines.append(f"| [{variable}](#{anchor}) | {_settings_default(field.default)} |")
    lines.append("")
    for name, field in fields.items():
        variable = f"{prefix}{name.upper()}"
        lines += [f"## {variable}", ""]
        facts = [f"Type: {_settings_type(field.annotation)}"]
        limits = _limits(list(field.metadata))
        if limits:
            facts.append(f"limits: {limits}")
        facts.append(f"default: {_settings_default(field.default)}")
        lines += ["; ".join(facts) + ".", ""]
        description = docs.get(name) or field.description
        if description:
            lines += [markdown_from_docstring(description), ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ command line


def _parser() -> argparse.ArgumentParser:
    from adapters.cli import main

    for name in ("build_parser", "parser", "_parser"):
        factory = getattr(main, name, None)
        if callable(factory):
            built = factory()
            if isinstance(built, argparse.ArgumentParser):
                return built
    msg = "adapters.cli.main offers no argument parser (build_parser, parser or _parser)"
    raise RuntimeError(msg)


def _argument_name(action: argparse.Action) -> str:
    if not action.option_strings:
        return str(action.metavar or action.dest)
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    metavar = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
    return ", ".join(f"{option} {metavar}" for option in action.option_strings)


def _argument_help(action: argparse.Action, prog: str) -> str:
    text = action.help or ""
    # Help texts may use %(default)s like argparse's own; a literal % stays as it is.
    with contextlib.suppress(KeyError, TypeError, ValueError):
        text = text % {**vars(action), "prog": prog}
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        text += " (" + ", ".join(code(str(choice)) for choice in action.choices) + ")"
    return text


def _commands(
    parser: argparse.ArgumentParser, name: str, summary: str, depth: int
) -> Iterator[str]:
    heading = "#" * min(depth, 6)
    yield f"{heading} {name}"
    yield ""
    if summary:
        yield summary[0].upper() + summary[1:] + "."
        yield ""
    if parser.description:
        yield markdown_from_docstring(parser.description)
        yield ""
    yield "```text"
    yield parser.format_usage().strip()
    yield "```"
    yield ""
    rows = [
        f"| `{one_line(_argument_name(action))}` "
        f"| {one_line(_argument_help(action, parser.prog))} |"
        for action in parser._actions
        if action.help != argparse.SUPPRESS
        and not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
    ]
    if rows:
        yield "| argument | meaning |"
        yield "|---|---|"
        yield from rows
        yield ""
    if parser.epilog:
        yield markdown_from_docstring(parser.epilog)
        yield ""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for sub_name, sub_parser in action.choices.items():
                yield from _commands(
                    sub_parser, f"{name} {sub_name}", helps.get(sub_name, ""), depth + 1
                )


def cli_page() -> str:
    from adapters.cli import main, support

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = CLI_HELP_COLUMNS  # argparse wraps usage lines at this width
    try:
        parser = _parser()
        body = list(_commands(parser, "akte", "", 2))
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    intro = markdown_from_docstring(main.__doc__ or "")
    exit_codes = [
        "## Exit codes",
        "",
        "Every `akte` command ends with one of these codes, each with one meaning "
        "(`EXIT_CODES` in `adapters/cli/support.py`); scripts and monitoring can tell a "
        "mistyped setting (2) from a database that is down (3).",
        "",
        "| code | meaning |",
        "|---|---|",
        *(f"| {code} | {one_line(meaning)} |" for code, meaning in support.EXIT_CODES.items()),
        "",
    ]
    lines = [
        GENERATED_NOTE,
        "# Command line reference",
        "",
        "The `akte` command is installed into `.venv/bin/` by `bin/demo`, `bin/test` and "
        "`bin/akte`, which runs it from there (`bin/akte --help`). "
        "Its store and every other setting come from the environment "
        "([configuration](../operations/configuration.md)). This page is generated from "
        "the command's argument parser (`adapters/cli/main.py` and the modules of "
        "`adapters/cli/`) at every build of the docs.",
        "",
        intro,
        "",
        *exit_codes,
        *body,
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------ events


def type_name(hint: Any) -> str:
    """A type annotation as a reader would write it: ``str | None``, ``list[date]``."""
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if hint is type(None):
        return "None"
    if origin is Literal:
        return "one of " + ", ".join(repr(argument) for argument in arguments)
    if origin in (types.UnionType, typing.Union):
        return " | ".join(type_name(argument) for argument in arguments)
    if origin is not None:
        base = getattr(origin, "__name__", str(origin))
        if arguments:
            return f"{base}[{', '.join(type_name(argument) for argument in arguments)}]"
        return str(base)
    if hint is Ellipsis:
        return "..."
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _domain_modules() -> list[types.ModuleType]:
    import domain

    return [
        importlib.import_module(f"domain.{info.name}")
        for info in pkgutil.iter_modules(domain.__path__)
    ]


def _nested_classes(cls: type, module: str) -> Iterator[type]:
    for value in vars(cls).values():
        if (
            isinstance(value, type)
            and value.__module__ == module
            and value.__qualname__.startswith(cls.__qualname__ + ".")
        ):
            yield value
            yield from _nested_classes(value, module)


def event_classes(module: types.ModuleType) -> list[type]:
    """The concrete event classes a domain module defines (not the ``Event`` bases)."""
    from eventsourcing.domain import DomainEvent

    found: list[type] = []
    for value in vars(module).values():
        if not isinstance(value, type) or value.__module__ != module.__name__:
            continue
        for cls in (value, *_nested_classes(value, module.__name__)):
            if issubclass(cls, DomainEvent) and cls.__name__ != "Event" and cls not in found:
                found.append(cls)
    return found


def asyncapi_page() -> str:
    """The outbox's AsyncAPI document (default allow-list) as a page."""
    from adapters.outbox.asyncapi import asyncapi_document, asyncapi_markdown
    from adapters.outbox.cloudevents import Selection

    return f"{GENERATED_NOTE}\n{asyncapi_markdown(asyncapi_document(Selection.parse(None)))}"


def asyncapi_json() -> str:
    """The same document as a file consumers can download."""
    import json

    from adapters.outbox.asyncapi import asyncapi_document
    from adapters.outbox.cloudevents import Selection

    return json.dumps(asyncapi_document(Selection.parse(None)), indent=2, ensure_ascii=False)


def record_of_processing_page() -> str:
    from adapters.personal_data.record_of_processing import as_markdown, record_of_processing

    return f"{GENERATED_NOTE}\n{as_markdown(record_of_processing())}"


def events_page() -> str:
    from eventsourcing.utils import get_topic

    from domain.personal import personal_fields

    lines = [
        GENERATED_NOTE,
        "# Event catalogue",
        "",
        "Every event class of `domain/`, generated from the code at every build of the docs. "
        "The **topic** is what the event store keeps beside each stored event to find its "
        "class again: `module:Class.Event`. Topics are forever: a module or class in "
        "`domain/` never moves or changes its name, and a shipped event changes only with "
        "an upcaster and a test that loads the old form "
        "([architecture](../development/architecture.md#events-are-forever)).",
        "",
        "Every event also carries the library's fields "
        + ", ".join(code(name) for name in LIBRARY_EVENT_FIELDS)
        + " (the aggregate's id, the version it makes, when it was recorded); the first "
        f"event of an aggregate also {code(CREATED_EVENT_FIELD)}. They are not repeated below. "
        "Fields marked **personal** hold data about a person and are encrypted with that "
        "person's key ([data protection](../guides/data-protection.md)); after an erasure "
        "they read `[gelöscht]`.",
        "",
    ]
    total = 0
    for module in _domain_modules():
        classes = event_classes(module)
        if not classes:
            continue
        lines += [f"## {module.__name__}", ""]
        summary = (module.__doc__ or "").strip().split("\n\n")[0]
        if summary:
            lines += [markdown_from_docstring(summary), ""]
        for cls in classes:
            total += 1
            lines += _event_section(cls, get_topic(cls), personal_fields(cls))
    lines.insert(4, f"{total} event classes in all.")
    lines.insert(5, "")
    return "\n".join(lines)


def _event_section(cls: type, topic: str, personal: frozenset[str]) -> list[str]:
    lines = [f"### {cls.__qualname__}", "", f"Topic: `{topic}`", ""]
    if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "("):
        lines += [markdown_from_docstring(cls.__doc__), ""]
    hints = typing.get_type_hints(cls, include_extras=True)
    skipped = {*LIBRARY_EVENT_FIELDS, CREATED_EVENT_FIELD}
    fields = [field.name for field in dataclasses.fields(cls) if field.name not in skipped]
    if not fields:
        return [*lines, "No fields of its own.", ""]
    lines += ["| field | type | |", "|---|---|---|"]
    for name in fields:
        marker = "personal" if name in personal else ""
        lines.append(f"| `{name}` | {one_line(type_name(hints.get(name, Any)))} | {marker} |")
    return [*lines, ""]


# ------------------------------------------------------------------ problems


@dataclasses.dataclass
class Problem:
    statuses: set[int] = dataclasses.field(default_factory=set)
    sources: set[str] = dataclasses.field(default_factory=set)
    meaning: str = ""


def _literal_problems(problems: dict[str, Problem]) -> None:
    """``problem_response(404, "code", ...)`` and ``HttpProblem(...)`` in adapters/http."""
    http = ROOT / "adapters" / "http"
    for path in sorted(http.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            function = node.func
            called = function.id if isinstance(function, ast.Name) else None
            if isinstance(function, ast.Attribute):
                called = function.attr
            if called not in ("problem_response", "HttpProblem"):
                continue
            status, code_node = node.args[0], node.args[1]
            if not (isinstance(status, ast.Constant) and isinstance(status.value, int)):
                continue
            candidates = (
                [code_node.body, code_node.orelse]
                if isinstance(code_node, ast.IfExp)
                else [code_node]
            )
            for candidate in candidates:
                if isinstance(candidate, ast.Constant) and isinstance(candidate.value, str):
                    entry = problems.setdefault(candidate.value, Problem())
                    entry.statuses.add(status.value)
                    entry.sources.add(module)


def _subclasses(cls: type) -> Iterator[type]:
    subclasses: list[type] = cls.__subclasses__()
    for subclass in subclasses:
        yield subclass
        yield from _subclasses(subclass)


def _first_sentence(cls: type) -> str:
    doc = cls.__doc__ or ""
    if not doc or doc.startswith(cls.__name__ + "("):
        return ""
    return markdown_from_docstring(doc).split("\n\n")[0]


def _error_problems(problems: dict[str, Problem]) -> None:
    """The codes of the domain's errors (and of files the API refuses), by their family."""
    importlib.import_module("adapters.http.app")  # loads every module that defines errors
    from domain.errors import DomainError, InvalidValue, PartNotFound, RuleViolation

    families: list[tuple[type, int]] = [(PartNotFound, 404), (InvalidValue, 422)]
    families.append((RuleViolation, 409))
    for error in [DomainError, *_subclasses(DomainError)]:
        error_code = vars(error).get("code")
        if not isinstance(error_code, str) or error is DomainError:
            continue
        status = next((status for family, status in families if issubclass(error, family)), 0)
        if not status:
            continue
        entry = problems.setdefault(error_code, Problem())
        entry.statuses.add(status)
        entry.sources.add(f"{error.__module__}.{error.__qualname__}")
        entry.meaning = entry.meaning or _first_sentence(error)
    _upload_problems(problems)


def _upload_problems(problems: dict[str, Problem]) -> None:
    inspection = importlib.import_module("adapters.documents.inspection")
    uploads = importlib.import_module("adapters.http.uploads")
    base = getattr(inspection, "UnacceptableFile", None)
    statuses = getattr(uploads, "_UPLOAD_STATUS", {})
    if not isinstance(base, type) or not isinstance(statuses, dict):
        return
    for error in _subclasses(base):
        error_code = vars(error).get("code")
        if isinstance(error_code, str):
            entry = problems.setdefault(error_code, Problem())
            entry.statuses.add(int(statuses.get(error, 422)))
            entry.sources.add(f"{error.__module__}.{error.__qualname__}")
            entry.meaning = entry.meaning or _first_sentence(error)


def problems_page() -> str:
    from adapters.http import problems as http_problems

    base = str(getattr(http_problems, "PROBLEM_TYPE_BASE", ""))
    titles = getattr(http_problems, "_TITLES", {})
    found: dict[str, Problem] = {}
    _literal_problems(found)
    _error_problems(found)
    lines = [
        GENERATED_NOTE,
        "# Problem types",
        "",
        "Every error leaves the HTTP API as `application/problem+json` (RFC 9457): "
        f"`type` is `{base}` followed by the code below, `status` the HTTP status, `title` "
        "a short English title and `detail` what went wrong, naming rules, fields and "
        "numbers but never personal data. Invalid input (422) adds `errors`, a list of "
        "`field` and `message`; a stale `If-Match` (412) adds `expected_version` and "
        "`actual_version` and the current `ETag`; 503 answers carry `Retry-After`. A refused "
        "write records nothing.",
        "",
        "Generated at every build of the docs from the problem responses in "
        "`adapters/http/` (`adapters/http/problems.py` and the `install_*_problems` "
        "functions beside the routes) and from the `code` of every domain error: "
        "a `RuleViolation` answers 409, an `InvalidValue` 422, a `PartNotFound` 404. "
        "Starlette's own answers (an unknown path, a method the route does not take) use "
        "the status phrase as code, e.g. `not-found`, `method-not-allowed`.",
        "",
        f"{len(found)} codes.",
        "",
        "| code | status | meaning | raised in |",
        "|---|---|---|---|",
    ]
    for problem_code in sorted(found):
        entry = found[problem_code]
        # The API's own title for a code without one: "carrier-sheet-exhausted" ->
        # "Carrier sheet exhausted" (adapters.http.problems.problem_response).
        title = titles.get(problem_code) or problem_code.replace("-", " ").capitalize()
        meaning = entry.meaning or str(title)
        statuses = ", ".join(str(status) for status in sorted(entry.statuses))
        sources = "<br>".join(code(source) for source in sorted(entry.sources))
        lines.append(f"| `{problem_code}` | {statuses} | {one_line(meaning)} | {sources} |")
    lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------ tables in pages


def read_models_table() -> str:
    """Every read model a runner follows, with its module and the question it answers."""
    import projections
    from projections.read_models import READ_MODELS

    modules = [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(projections.__path__, prefix="projections.")
    ]
    lines = ["| read model | module | what it answers | events it reads |", "|---|---|---|---|"]
    for projection in READ_MODELS:
        module = next(
            (module for module in modules if getattr(module, "PROJECTION", None) is projection),
            None,
        )
        where = f"`{module.__name__.replace('.', '/')}.py`" if module else ""
        summary = ((module.__doc__ if module else "") or "").strip().split("\n\n")[0]
        lines.append(
            f"| `{projection.name}` | {where} | {one_line(markdown_from_docstring(summary))} "
            f"| {len(projection.handlers)} |"
        )
    return "\n".join(lines)


def permissions_table() -> str:
    """Which role holds which permission, and how far each role reaches."""
    from adapters.http.auth import permissions

    grants = permissions.ROLE_GRANTS
    roles = list(grants)
    public: frozenset[object] = getattr(permissions, "PUBLIC_PERMISSIONS", frozenset())
    docs = _attribute_docstrings(permissions.Permission)
    role_columns = " | ".join(code(str(role)) for role in roles)
    header = f"| permission | {role_columns} | public | meaning |"
    lines = [header, "|---|" + "---|" * (len(roles) + 2)]
    for permission in permissions.Permission:
        marks = ["yes" if permission in grants[role].permissions else "" for role in roles]
        marks.append("yes" if permission in public else "")
        meaning = one_line(markdown_from_docstring(docs.get(permission.name, "")))
        lines.append(f"| `{permission.value}` | " + " | ".join(marks) + f" | {meaning} |")
    reach = ", ".join(f"{code(str(role))}: {grants[role].reach.value}" for role in roles)
    lines += ["", f"Reach: {reach}."]
    return "\n".join(lines)
