# Sourced by bin/*: makes sure .venv exists and holds what pyproject.toml asks for.
# Reinstalls only when pyproject.toml changed since the last install.
#
# Safe to source from an interactive shell too: it changes none of the shell's options
# (the work runs in a subshell that checks each step itself, since `set -e` would be
# lost there in some contexts and would close a terminal if left behind), and it only
# sets AKTE_ROOT and VENV and puts .venv/bin on PATH. A failure returns 1 to the caller
# (a script's own `set -e` then stops it); it never exits the caller's shell.
AKTE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$AKTE_ROOT/.venv"
(
    python=""
    if [[ ! -x "$VENV/bin/python" ]]; then
        for candidate in python3.11 python3.12 python3.13 python3; do
            if command -v "$candidate" >/dev/null 2>&1 &&
                "$candidate" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 14))'; then
                python="$candidate"
                break
            fi
        done
        if [[ -z "$python" ]]; then
            echo "Akte needs Python 3.11, 3.12 or 3.13 on PATH" >&2
            exit 1
        fi
        echo "akte: creating $VENV" >&2
        "$python" -m venv "$VENV" || exit 1
    fi
    digest="$(sha256sum "$AKTE_ROOT/pyproject.toml")" || exit 1
    stamp="$VENV/.installed-${digest:0:16}"
    if [[ ! -f "$stamp" ]]; then
        echo "akte: installing Akte and its dependencies into $VENV (log: $VENV/install.log)" >&2
        if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade pip &&
            "$VENV/bin/python" -m pip install --disable-pip-version-check -e "$AKTE_ROOT[dev]"; } \
            >"$VENV/install.log" 2>&1; then
            tail -n 30 "$VENV/install.log" >&2
            echo "akte: installing failed; the whole log is $VENV/install.log" >&2
            exit 1
        fi
        rm -f "$VENV"/.installed-*
        touch "$stamp" || exit 1
    fi
) || return 1 2>/dev/null || exit 1
case ":$PATH:" in
*":$VENV/bin:"*) ;;
*) export PATH="$VENV/bin:$PATH" ;;
esac
