"""``akte transfers request`` with the person from a file or standard input
(adapters/cli/transfers.py): no name or birth date in the process list or shell history;
the old arguments still work, and their help says what they show."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.cli.main import main
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.settings import Settings
from tests.support.file_transfers import OFFICE_A, OFFICE_B, PERSON
from tests.support.outbox import Broker, own_stream, stored_messages

PERSON_JSON = {
    "surname": PERSON.surname,
    "given_names": PERSON.given_names,
    "born": PERSON.date_of_birth.isoformat(),
    "file_number": "A-2019-17",
}


@pytest.fixture
def broker() -> Iterator[Broker]:
    with own_stream() as own:
        yield own


@pytest.fixture
def office_b(broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Office B's settings in the environment; returns a token file of a caseworker."""
    for name, value in {
        "AKTE_STORE": "sqlite",
        "AKTE_DATA_DIR": str(tmp_path / "office-b"),
        "AKTE_DEFAULT_OFFICE_ID": OFFICE_B,
        "AKTE_OUTBOX_URL": broker.url,
        "AKTE_OUTBOX_SUBJECT_PREFIX": broker.prefix,
        "AKTE_JSON_LOGS": "false",
    }.items():
        monkeypatch.setenv(name, value)
    issuer = LocalIssuer.load_or_create(Settings().local_issuer_key_file)
    token = tmp_path / "sb-neu.token"
    token.write_text(issuer.issue(user_id="sb-neu", roles=[Role.CASEWORKER], office_id=OFFICE_B))
    return token


def request(broker: Broker, token: Path, *person: str) -> list[str]:
    return [
        "transfers",
        "request",
        "--from-office",
        OFFICE_A,
        *person,
        "--moved-in",
        "2024-03-01",
        "--stream",
        broker.stream,
        "--token-file",
        str(token),
    ]


def sent_person(broker: Broker) -> dict[str, str]:
    [message] = stored_messages(broker)
    person: dict[str, str] = json.loads(message.data)["person"]
    return person


def test_the_person_comes_from_a_file_and_is_in_no_argument(
    broker: Broker,
    office_b: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    person_file = tmp_path / "person.json"
    person_file.write_text(json.dumps(PERSON_JSON), encoding="utf-8")
    argv = request(broker, office_b, "--person-file", str(person_file))
    assert PERSON.surname not in " ".join(argv)
    assert main(argv) == 0
    assert re.search(r"request [0-9a-f-]{36}", capsys.readouterr().out)
    assert sent_person(broker) == {
        "familienname": PERSON.surname,
        "vornamen": PERSON.given_names,
        "geburtsdatum": PERSON.date_of_birth.isoformat(),
        "aktenzeichenABH": "A-2019-17",
    }


def test_the_person_comes_from_standard_input(
    broker: Broker, office_b: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = {key: value for key, value in PERSON_JSON.items() if key != "file_number"}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(person)))
    assert main(request(broker, office_b, "--person-file", "-")) == 0
    assert sent_person(broker)["familienname"] == PERSON.surname
    assert "aktenzeichenABH" not in sent_person(broker)


def test_the_old_arguments_still_work(broker: Broker, office_b: Path) -> None:
    argv = request(
        broker,
        office_b,
        "--surname",
        PERSON.surname,
        "--given-names",
        PERSON.given_names,
        "--born",
        PERSON.date_of_birth.isoformat(),
    )
    assert main(argv) == 0
    assert sent_person(broker)["vornamen"] == PERSON.given_names


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("not json", "not JSON"),
        ("[]", "not a JSON object"),
        (json.dumps({**PERSON_JSON, "born": "17.05.1990"}), "born is no date"),
        (json.dumps({k: v for k, v in PERSON_JSON.items() if k != "surname"}), "surname is"),
        (json.dumps({**PERSON_JSON, "nationality": "UKR"}), "1 unknown field(s)"),
        # A key may be a name in a malformed file: never echoed.
        (json.dumps({**PERSON_JSON, PERSON.surname: "x"}), "1 unknown field(s)"),
    ],
)
def test_a_person_file_that_does_not_fit_is_refused_without_its_values(
    broker: Broker,
    office_b: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    reason: str,
) -> None:
    person_file = tmp_path / "person.json"
    person_file.write_text(content, encoding="utf-8")
    assert main(request(broker, office_b, "--person-file", str(person_file))) == 2
    error = capsys.readouterr().err
    assert reason in error
    assert PERSON.surname not in error
    assert PERSON.date_of_birth.isoformat() not in error
    assert stored_messages(broker) == []


def test_a_person_given_twice_or_not_at_all_is_refused(
    broker: Broker, office_b: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    person_file = tmp_path / "person.json"
    person_file.write_text(json.dumps(PERSON_JSON), encoding="utf-8")
    both = request(broker, office_b, "--person-file", str(person_file), "--surname", "X")
    assert main(both) == 2
    assert "either in the file or as arguments" in capsys.readouterr().err
    assert main(request(broker, office_b)) == 2
    assert "--person-file FILE" in capsys.readouterr().err
    # Standard input cannot carry both the person and the token.
    argv = request(broker, office_b, "--person-file", "-")
    argv[argv.index(str(office_b))] = "-"
    assert main(argv) == 2
    assert "cannot both read standard input" in capsys.readouterr().err
    assert stored_messages(broker) == []


def test_the_help_says_the_arguments_show_in_the_process_list(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["transfers", "request", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--person-file" in shown
    assert "shows in the process list" in shown
