# Sourced by bin/container-* and tests/system/test_container.py: `akte_podman` runs
# podman (`akte_podman_compose`: podman-compose) with the options that work on hosts like
# the CI machine: rootful, the vfs storage driver (no overlay mounts needed),
# runc (crun refuses hybrid cgroup v1/v2 hosts), and resource limits no higher than this
# shell's own (a container may not raise them without CAP_SYS_RESOURCE).
# AKTE_PODMAN_OPTIONS replaces the global options, e.g. "" on a host where defaults work.
# Changes no shell options.
read -r -a akte_podman_global <<<"${AKTE_PODMAN_OPTIONS---storage-driver vfs --runtime runc}"
akte_podman_limits=(--ulimit "nofile=$(ulimit -Sn):$(ulimit -Hn)" --ulimit "nproc=4096:4096")

akte_podman_compose() {  # akte_podman_compose ARGS...: podman-compose with the same options
    podman-compose --podman-args="${akte_podman_global[*]}" \
        --podman-run-args="${akte_podman_limits[*]}" "$@"
}

akte_podman() {  # akte_podman SUBCOMMAND ARGS...: limits added to run, create and build
    local subcommand="$1"
    shift
    case "$subcommand" in
        run | create | build) podman "${akte_podman_global[@]}" "$subcommand" \
            "${akte_podman_limits[@]}" "$@" ;;
        *) podman "${akte_podman_global[@]}" "$subcommand" "$@" ;;
    esac
}
