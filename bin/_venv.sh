# Sourced by bin/*: makes sure .venv exists and holds what pyproject.toml asks for.
# Reinstalls only when pyproject.toml changed since the last install.
set -euo pipefail
AKTE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$AKTE_ROOT/.venv"
pick_python() {
    for candidate in python3.11 python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 14))'; then
            echo "$candidate"
            return
        fi
    done
    echo "Akte needs Python 3.11, 3.12 or 3.13 on PATH" >&2
    exit 1
}
if [[ ! -x "$VENV/bin/python" ]]; then
    echo "akte: creating $VENV" >&2
    "$(pick_python)" -m venv "$VENV"
fi
STAMP="$VENV/.installed-$(sha256sum "$AKTE_ROOT/pyproject.toml" | cut -c1-16)"
if [[ ! -f "$STAMP" ]]; then
    echo "akte: installing Akte and its dependencies into $VENV (log: $VENV/install.log)" >&2
    if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade pip &&
        "$VENV/bin/python" -m pip install --disable-pip-version-check -e "$AKTE_ROOT[dev]"; } \
        >"$VENV/install.log" 2>&1; then
        tail -n 30 "$VENV/install.log" >&2
        echo "akte: installing failed; the whole log is $VENV/install.log" >&2
        exit 1
    fi
    rm -f "$VENV"/.installed-*
    touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
