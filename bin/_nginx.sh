# Sourced by bin/test and .ci/run: makes sure Debian's nginx is there for the reverse
# proxy test (tests/system/test_reverse_proxy.py), installing it with apt-get where this
# user may. Defines ensure_nginx; changes no shell options. The package's own service is
# not used: the test starts nginx itself, on a free port, with the repository's config.
ensure_nginx() {
    command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] && return 0
    if [[ "$(id -u)" != "0" ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "akte: nginx is missing and cannot be installed here (apt-get as root);" \
            "the reverse proxy test will be skipped: apt-get install -y nginx-light" >&2
        return 1
    fi
    echo "akte: nginx is missing; installing Debian's package" >&2
    local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y
        --no-install-recommends nginx-light)
    "${install[@]}" >&2 || { apt-get update >&2 && "${install[@]}" >&2; } || true
    command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]]
}
