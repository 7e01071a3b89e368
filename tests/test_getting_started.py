"""The getting-started guide's first steps work as written: the curl commands of "Open a
case file and work it" are read from ``docs/getting-started.md`` and sent, in order, with
the guide's headers and bodies, and each answers what the guide says it answers."""

from __future__ import annotations

import json
import re
import shlex
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from adapters.http.auth.identity import Role
from adapters.settings import Settings
from tests.conftest import bearer

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "getting-started.md"
SECTION = "## Open a case file and work it"
_DATE_VARIABLE = re.compile(r"(\w+)=\$\(date(?: -d '\+(\d+) (days?|weeks?|months?)')? \+%F\)")
_STATUS_COMMENT = re.compile(r"^#\s*(\d{3})\b")


def _block(text: str, heading: str) -> list[str]:
    """The commands of the first bash block after ``heading``, one per line: continued
    lines and quotes that span lines (a JSON body) joined, as bash reads them."""
    after = text.split(heading, 1)[1]
    block = after.split("```bash\n", 1)[1].split("\n```", 1)[0]
    commands: list[str] = []
    pending = ""
    for line in block.replace("\\\n", " ").splitlines():
        pending = f"{pending}\n{line}" if pending else line
        try:
            shlex.split(pending.split("  #", 1)[0], comments=False)
        except ValueError:  # a quote still open: the command goes on
            continue
        commands.append(pending)
        pending = ""
    return commands


def _later(today: date, count: int, unit: str) -> date:
    if unit.startswith("day"):
        return today + timedelta(days=count)
    if unit.startswith("week"):
        return today + timedelta(weeks=count)
    month = today.month - 1 + count
    return today.replace(year=today.year + month // 12, month=month % 12 + 1)


def _expected_status(lines: list[str], index: int) -> int | None:
    """The status the guide's comment right after a command names (``# 403 ...``)."""
    if index + 1 < len(lines):
        found = _STATUS_COMMENT.match(lines[index + 1].strip())
        if found:
            return int(found.group(1))
    return None


def test_the_guides_first_case_file_is_worked_as_written(
    client: TestClient, settings: Settings
) -> None:
    lines = _block(GUIDE.read_text(encoding="utf-8"), SECTION)
    today = client.app.state.service.clock().date()  # type: ignore[attr-defined]
    variables: dict[str, str] = {
        "B": "",
        "J": "Content-Type: application/json",
        "SB": "Authorization: " + bearer(settings, "sb-01", Role.CASEWORKER)["Authorization"],
        "TL": "Authorization: " + bearer(settings, "tl-01", Role.TEAM_LEAD)["Authorization"],
    }
    sent = 0
    for index, line in enumerate(lines):
        for name, count, unit in _DATE_VARIABLE.findall(line):
            variables[name] = str(_later(today, int(count), unit) if count else today)
        command = line.split("  #", 1)[0].strip()
        if not command.startswith("curl "):
            continue
        for name, value in sorted(variables.items(), key=lambda item: -len(item[0])):
            command = command.replace(f"'${name}'", value).replace(f"${name}", value)
        words = shlex.split(command)
        method = words[words.index("-X") + 1] if "-X" in words else "GET"
        path = next(word for word in words[1:] if word.startswith("/"))
        headers = dict(words[i + 1].split(": ", 1) for i, word in enumerate(words) if word == "-H")
        body: Any = json.loads(words[words.index("-d") + 1]) if "-d" in words else None
        response = client.request(method, path, headers=headers, json=body)
        sent += 1
        expected = _expected_status(lines, index)
        if expected is not None:
            assert response.status_code == expected, (path, response.text)
        else:
            assert response.is_success, (method, path, response.text)
        if method == "POST" and path == "/cases":
            variables["C"] = f"/cases/{response.json()['case_id']}"
    # The file, the procedure, the refused and the granted assignment, the certificate,
    # the read, the events.
    assert sent == 7
