#!/usr/bin/env bash
# scripts/conformance.sh - runs the Mercure conformance suites (dunglas/mercure
# conformance-tests/, Playwright) against ONE running courant that serves both
# dialects: the Mercure 1.0 suite (the 1.0 line) and the classic draft-07 suite
# (the 0.x line).
#
#   MERCURE_CONFORMANCE_V1=/path/to/1.0/conformance-tests \
#   MERCURE_CONFORMANCE_CLASSIC=/path/to/0.x/conformance-tests \
#   make conformance            (or scripts/conformance.sh)
#
# It fetches nothing. The suites are AGPL-licensed: keep them outside this
# repository (for example `git archive <commit> conformance-tests | tar -x -C
# /work/conformance/v1` from a clone of dunglas/mercure) and run `npm ci` in
# each once (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1: Debian's Chromium is used,
# CHROMIUM_BIN, default /usr/bin/chromium). Either variable may be left unset
# to run only the other suite.
#
# The hub is started with the suites' fixed HS256 key and the 1.0 suite's
# issuer and resource identifier (its token says iss https://localhost, aud
# https://localhost/.well-known/mercure); subscribers are anonymous (the
# suites expect private updates not to reach them). Env: COURANT_BIN (default
# build/courant, built if missing), CHROMIUM_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN="${COURANT_BIN:-$ROOT/build/courant}"
CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"
V1="${MERCURE_CONFORMANCE_V1:-}"
CLASSIC="${MERCURE_CONFORMANCE_CLASSIC:-}"
if [ -z "$V1" ] && [ -z "$CLASSIC" ]; then
    echo "conformance: set MERCURE_CONFORMANCE_V1 and/or MERCURE_CONFORMANCE_CLASSIC to a conformance-tests copy" >&2
    exit 2
fi
for d in $V1 $CLASSIC; do
    if [ ! -f "$d/mercure.spec.ts" ] || [ ! -d "$d/node_modules/@playwright/test" ]; then
        echo "conformance: $d is not a conformance-tests copy with node_modules (run npm ci there)" >&2
        exit 2
    fi
done
[ -x "$BIN" ] || make -s "$BIN"

LOG=$(mktemp /tmp/courant-conformance.XXXXXX)
"$BIN" --listen 127.0.0.1:0 --workers 2 --history 10000 \
    --publisher-jwt-key '!ChangeThisMercureHubJWTSecretKey!' \
    --jwt-issuer https://localhost \
    --resource-identifier https://localhost/.well-known/mercure \
    2>"$LOG" &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -f "$LOG"' EXIT
ADDR=""
for _ in $(seq 100); do
    ADDR=$(sed -n 's|.*listening on http://\([^/]*\)/.*|\1|p' "$LOG" | head -1)
    [ -n "$ADDR" ] && break
    sleep 0.1
done
if [ -z "$ADDR" ]; then
    echo "conformance: courant did not start:" >&2
    cat "$LOG" >&2
    exit 1
fi
echo "conformance: courant $("$BIN" --version | cut -d' ' -f2) on http://$ADDR (pid $PID)"

# The suites' own configuration, narrowed to Debian's Chromium, one worker,
# no retries, a plain list reporter.
run_suite() { # NAME DIR
    local name="$1" dir="$2"
    cat >"$dir/courant-run.config.ts" <<EOF
import base from "./playwright.config";
import { devices } from "@playwright/test";
export default {
  ...base,
  reporter: "list",
  retries: 0,
  workers: 1,
  projects: [{ name: "chromium", use: { ...devices["Desktop Chrome"],
    launchOptions: { executablePath: process.env.CHROMIUM_BIN } } }],
};
EOF
    echo "== $name suite: $dir"
    (cd "$dir" && BASE_URL="http://$ADDR/.well-known/mercure" CHROMIUM_BIN="$CHROMIUM_BIN" \
        timeout 600 npx playwright test --config courant-run.config.ts)
}
rc=0
[ -n "$V1" ] && { run_suite "Mercure 1.0" "$V1" || rc=1; }
[ -n "$CLASSIC" ] && { run_suite "classic (draft-07)" "$CLASSIC" || rc=1; }
if grep -E "ERROR: AddressSanitizer|runtime error:" "$LOG" >/dev/null; then
    echo "conformance: courant reported a sanitizer error:" >&2
    cat "$LOG" >&2
    rc=1
fi
exit $rc
