"""``bin/_chromium.sh``: ``bin/test`` and ``.ci/run`` install Debian's Chromium for the
browser tests where they may, and say plainly where they may not."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bin" / "_chromium.sh"


def _ensure(tmp_path: Path, setup: str) -> subprocess.CompletedProcess[str]:
    """ensure_chromium with a PATH that holds only ``tmp_path`` (no chromium, no apt-get)
    and whatever ``setup`` defines, in a shell whose options are compared before and
    after."""
    script = f"""
    set -o > "{tmp_path}/before"
    source "{SCRIPT}"
    {setup}
    PATH="{tmp_path}" ensure_chromium
    echo "status=$?"
    set -o > "{tmp_path}/after"
    """
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_missing_chromium_that_cannot_be_installed_is_said_and_returns_1(
    tmp_path: Path,
) -> None:
    done = _ensure(tmp_path, "id() { echo 1000; }")

    assert "status=1" in done.stdout
    assert "chromium is missing and cannot be installed here" in done.stderr
    assert "apt-get install -y chromium" in done.stderr
    assert (tmp_path / "before").read_text() == (tmp_path / "after").read_text()


def test_a_chromium_on_the_path_is_used_as_it_is(tmp_path: Path) -> None:
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\nexit 0\n")
    chromium.chmod(0o755)

    done = _ensure(tmp_path, "")

    assert "status=0" in done.stdout
    assert done.stderr == ""


def test_root_installs_with_apt_get_and_refreshes_the_lists_once_on_failure(
    tmp_path: Path,
) -> None:
    log = tmp_path / "apt.log"
    apt_get = tmp_path / "apt-get"
    # A stand-in package manager: the first install fails (stale lists), update succeeds,
    # the second install puts chromium on the PATH.
    fake_chromium = tmp_path / "chromium"
    apt_get.write_text(
        "#!/bin/bash\n"
        f'echo "$*" >> "{log}"\n'
        'if [[ "$1" == update ]]; then : > "$0.updated"; exit 0; fi\n'
        'if [[ -e "$0.updated" ]]; then\n'
        f'  printf "#!/bin/sh\\nexit 0\\n" > "{fake_chromium}"\n'
        f'  /bin/chmod +x "{fake_chromium}"; exit 0\n'
        "fi\n"
        "exit 100\n"
    )
    apt_get.chmod(0o755)
    env_tool = tmp_path / "env"
    env_tool.write_text('#!/bin/bash\nshift\nexec "$@"\n')  # drops DEBIAN_FRONTEND=...
    env_tool.chmod(0o755)

    done = _ensure(tmp_path, "id() { echo 0; }")

    assert "status=0" in done.stdout, done.stderr
    calls = log.read_text().splitlines()
    assert calls == [
        "install -y --no-install-recommends chromium",
        "update",
        "install -y --no-install-recommends chromium",
    ]
