# Sourced by bin/test and .ci/run: makes sure the Debian packages that system tests start
# are there (nginx for tests/system/test_reverse_proxy.py, Prometheus and promtool for
# tests/system/test_prometheus.py, podman, runc, debootstrap and podman-compose for
# tests/system/test_container.py, Node.js and npm for the OpenID provider of
# tests/http/auth/test_real_provider.py), installing them with apt-get where this user may.
# Defines ensure_package; changes no shell options. The packages' own services are not
# used: each test starts its server itself, on a free port, with the repository's config.
ensure_package() {  # ensure_package COMMAND PACKAGE
    local command="$1" package="$2"
    command -v "$command" >/dev/null 2>&1 || [[ -x "/usr/sbin/$command" ]] && return 0
    if [[ "$(id -u)" != "0" ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "akte: $command is missing and cannot be installed here (apt-get as root);" \
            "its tests will be skipped: apt-get install -y $package" >&2
        return 1
    fi
    echo "akte: $command is missing; installing Debian's package $package" >&2
    local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y
        --no-install-recommends "$package")
    "${install[@]}" >&2 || { apt-get update >&2 && "${install[@]}" >&2; } || true
    command -v "$command" >/dev/null 2>&1 || [[ -x "/usr/sbin/$command" ]]
}

ensure_system_test_packages() {
    local status=0
    ensure_package nginx nginx-light || status=1
    ensure_package prometheus prometheus || status=1
    ensure_container_packages || status=1
    ensure_package node nodejs || status=1  # the OpenID provider of tests/http/auth
    ensure_package npm npm || status=1
    return $status
}

# The container images (tests/system/test_container.py, bin/container-build): rootful
# podman with runc, debootstrap for the Debian base image, podman-compose.
ensure_container_packages() {
    local status=0
    ensure_package podman podman || status=1
    ensure_package runc runc || status=1
    ensure_package debootstrap debootstrap || status=1
    ensure_package podman-compose podman-compose || status=1
    # Compose's services find each other by name (akte -> postgres) through the CNI
    # dnsname plugin; podman works without it, so nothing else would install it.
    ensure_package /usr/lib/cni/dnsname golang-github-containernetworking-plugin-dnsname \
        || status=1
    return $status
}
