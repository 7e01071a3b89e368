"""``bin/_venv.sh`` may be sourced from a person's shell: it must leave the shell's options
as they were (a ``set -e`` left behind closes the terminal at the next typo), and a
failure must return to the shell rather than end it. ``bin/akte`` runs the command."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bin" / "_venv.sh"

_OPTIONS_BEFORE_AND_AFTER = """
set -o > "$1/before"; shopt > "$1/before-shopt"
source "$2"
echo "status=$?"
set -o > "$1/after"; shopt > "$1/after-shopt"
echo "still here"
"""


def _source(script: Path, tmp_path: Path, *, interactive: bool) -> str:
    flags = ["-ic"] if interactive else ["-c"]
    done = subprocess.run(
        ["bash", *flags, _OPTIONS_BEFORE_AND_AFTER, "bash", str(tmp_path), str(script)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("interactive", [False, True], ids=["bash -c", "bash -ic"])
def test_sourcing_leaves_the_shell_options_as_they_were(tmp_path: Path, interactive: bool) -> None:
    out = _source(SCRIPT, tmp_path, interactive=interactive)

    assert "status=0" in out
    assert "still here" in out
    before = (tmp_path / "before").read_text()
    assert "errexit        \toff" in before  # so a `set -e` left behind would show
    assert (tmp_path / "after").read_text() == before
    assert (tmp_path / "after-shopt").read_text() == (tmp_path / "before-shopt").read_text()


def test_a_failure_returns_to_the_shell_instead_of_ending_it(tmp_path: Path) -> None:
    # A copy of the script in a tree without pyproject.toml, with a "venv" whose python
    # exists: the install step fails.
    (tmp_path / "tree" / "bin").mkdir(parents=True)
    (tmp_path / "tree" / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / "tree" / ".venv" / "bin" / "python").symlink_to(sys.executable)
    script = tmp_path / "tree" / "bin" / "_venv.sh"
    shutil.copy(SCRIPT, script)

    out = _source(script, tmp_path, interactive=False)

    assert "status=1" in out
    assert "still here" in out
    assert (tmp_path / "after").read_text() == (tmp_path / "before").read_text()


def test_bin_akte_runs_the_command_from_the_venv(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(ROOT / "bin" / "akte"), "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("akte ")
