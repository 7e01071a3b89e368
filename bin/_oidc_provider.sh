#!/usr/bin/env bash
# Installs the pinned node-oidc-provider (tests/support/oidc_provider/package-lock.json)
# with `npm ci` into .cache/oidc-provider (git-ignored), then runs provider.mjs there in
# the foreground. Used by the tests (tests/support/oidc_provider.py) and bin/oidc-provider.
# Environment: see the head of tests/support/oidc_provider/provider.mjs.
#   bin/_oidc_provider.sh --install-only   # install, do not start
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source_dir="$root/tests/support/oidc_provider"
cache_dir="${AKTE_OIDC_PROVIDER_CACHE:-$root/.cache/oidc-provider}"

for command in node npm; do
    if ! command -v "$command" >/dev/null 2>&1; then
        echo "akte: $command is missing; the OpenID provider needs Node.js 18 or later and npm" >&2
        exit 1
    fi
done
if (( $(node -p 'process.versions.node.split(".")[0]') < 18 )); then
    echo "akte: Node.js $(node --version) is too old for the OpenID provider; 18 or later" >&2
    exit 1
fi

mkdir -p "$cache_dir"
# Installed again only when the lock file changed; one installer at a time.
(
    flock 9
    if ! cmp -s "$source_dir/package-lock.json" "$cache_dir/package-lock.json" \
        || [[ ! -d "$cache_dir/node_modules/oidc-provider" ]]; then
        cp "$source_dir/package.json" "$source_dir/package-lock.json" "$cache_dir/"
        (cd "$cache_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
    fi
    cp "$source_dir/provider.mjs" "$cache_dir/provider.mjs"
) 9>"$cache_dir/.lock"

if [[ "${1:-}" == "--install-only" ]]; then
    exit 0
fi
cd "$cache_dir"
exec node provider.mjs
