#!/usr/bin/env bash
# setup.sh - install what courant needs on a Debian 12 machine; idempotent.
#
#   scripts/setup.sh          everything `make test` needs: gcc/make, clang and
#                             its libFuzzer/ASan runtimes, clang-format (make
#                             format-check), curl, procps, python3 with
#                             python3-requests (tests/e2e/interop.test.sh), sqlite3,
#                             redis-server (tests/e2e/redis.test.mjs), openssl (the CLI:
#                             tests make their certificates), dpkg-dev and
#                             systemd (make deb, tests/e2e/package.test.sh: dpkg-shlibdeps,
#                             systemd-analyze verify), groff-base and man-db (the man
#                             page is checked and installed), pebble (Let's
#                             Encrypt's ACME test CA: tests/e2e/acme.test.mjs), Node.js
#                             and npm, Debian's Chromium, and tests/e2e's
#                             node_modules (npm ci; browsers are never downloaded)
#   scripts/setup.sh --run    only what running courant needs: compiler, make, curl,
#                             libsqlite3-dev (the --store history)
#                             libssl-dev (JWT verification, HTTPS) and libjansson-dev (JWT),
#                             libhiredis-dev (--redis: the Redis Stream backplane),
#                             libcurl4-openssl-dev (--jwks-url: JWK Sets over HTTPS),
#                             libnghttp2-dev (HTTP/2: framing, HPACK, flow control)
#                             libicu-dev (IDNA for URL patterns)
#
# Env: COURANT_SETUP_SKIP_NODE=1 skips Node.js, npm, Chromium and `npm ci`.
# Runs as root, or through sudo otherwise. Prints one line per action taken and
# nothing else when there is nothing to do; a failing step prints its log.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=all
for arg in "$@"; do
    case "$arg" in
        --run) mode=run ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "setup: unknown argument: $arg (use --run or nothing)" >&2; exit 2 ;;
    esac
done

skip_node=${COURANT_SETUP_SKIP_NODE:-0}
[ "$mode" = run ] && skip_node=1

log=$(mktemp "${TMPDIR:-/tmp}/courant-setup.XXXXXX")
trap 'rm -f "$log"' EXIT

# step DESCRIPTION CMD...: one line, the command's output kept in $log and
# shown only if it fails.
step() {
    local what=$1; shift
    echo "setup: $what"
    if ! "$@" >"$log" 2>&1; then
        echo "setup: FAILED: $what" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
}

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
    sudo -n true 2>/dev/null || SUDO=(sudo)
else
    SUDO=()
fi

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

node_ok() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || return 1
    local major
    major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || return 1
    [ "${major:-0}" -ge 18 ]
}

# ---- Debian packages ---------------------------------------------------------
# libsqlite3-dev: courant links SQLite for --store (durable history), and
# libssl-dev + libjansson-dev for JWT verification, so even --run mode
# needs them; libhiredis-dev too (--redis), since the server links it, and
# libcurl4-openssl-dev (--jwks-url fetches JWK Sets over HTTPS).
# sqlite3 (the CLI): tests and the backup procedure. redis-server: the
# --redis tests start their own (never the system service). dpkg-dev
# (dpkg-shlibdeps computes the package's Depends) and systemd (only for
# systemd-analyze verify; nothing is started): make deb and its test.
# groff-base, man-db: the generated man page renders cleanly and installs.
# openssl (the CLI): tests make certificates and serve JWK Sets with s_server.
# libnghttp2-dev (HTTP/2; bench/loadgen.c's --h2 client links it too).
# pebble (with pebble-challtestsrv): the ACME test CA tests/e2e/acme.test.mjs
# runs on 127.0.0.1 to issue and renew certificates (nothing is started
# system-wide: the package installs no service).
# libicu-dev: IDNA (UTS #46) for the hosts of URL patterns and topics (Mercure 1.0).
want=(build-essential curl libsqlite3-dev libssl-dev libjansson-dev libhiredis-dev libcurl4-openssl-dev libnghttp2-dev libicu-dev)
if [ "$mode" = all ]; then
    want+=(clang libclang-rt-14-dev clang-format ca-certificates procps python3 python3-requests sqlite3 redis-server openssl)
    want+=(dpkg-dev systemd groff-base man-db pebble)
fi
if [ "$skip_node" != 1 ]; then
    want+=(chromium)
    if ! node_ok; then
        want+=(nodejs npm)
    fi
fi

missing=()
for p in "${want[@]}"; do
    installed "$p" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
        echo "setup: missing packages (${missing[*]}) and not root, no sudo: install them by hand" >&2
        exit 1
    fi
    step "apt-get update" "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=300 update -q
    step "apt-get install ${missing[*]}" "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
fi

# ---- tests/e2e node_modules --------------------------------------------------
if [ "$skip_node" != 1 ]; then
    if ! node_ok; then
        echo "setup: node >= 18 and npm are needed for tests/e2e, found: $(node --version 2>/dev/null || echo none)" >&2
        exit 1
    fi
    e2e=tests/e2e
    stamp=$e2e/node_modules/.package-lock.json   # written by npm ci
    if [ ! -d "$e2e/node_modules" ] || [ ! -e "$stamp" ] || [ "$e2e/package-lock.json" -nt "$stamp" ]; then
        step "npm ci in $e2e" env PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm_config_update_notifier=false \
            bash -c 'cd "$1" && exec npm ci --no-audit --no-fund' npm-ci "$e2e"
    fi
fi
