# Sourced by bin/test and .ci/run: makes sure Debian's Chromium is there for the browser
# tests (tests/system/test_report_browser.py, test_api_docs_browser.py), installing it with
# apt-get where this user may. Defines ensure_chromium; changes no shell options.
ensure_chromium() {
    command -v chromium >/dev/null 2>&1 && return 0
    if [[ "$(id -u)" != "0" ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "akte: chromium is missing and cannot be installed here (apt-get as root);" \
            "the browser tests will be skipped: apt-get install -y chromium" >&2
        return 1
    fi
    echo "akte: chromium is missing; installing Debian's package" >&2
    local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y
        --no-install-recommends chromium)
    # Stale package lists are the usual reason an install fails: refresh them once.
    "${install[@]}" >&2 || { apt-get update >&2 && "${install[@]}" >&2; } || true
    command -v chromium >/dev/null 2>&1
}
