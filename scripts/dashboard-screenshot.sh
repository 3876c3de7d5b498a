#!/bin/sh
# dashboard-screenshot.sh - makes docs/dashboard.png: the load test of
# tests/e2e/dashboard.test.mjs (subscribers held, a publisher in a loop) with
# the optimized build, the page screenshotted in headless Chromium after 40 s
# of it, so the charts have something to show.
#
#   scripts/dashboard-screenshot.sh [OUT.png]
set -eu
cd "$(dirname "$0")/.."
make -s -j2 build/courant
COURANT_BIN="$PWD/build/courant" \
DASHBOARD_SCREENSHOT="${1:-docs/dashboard.png}" \
DASHBOARD_SCREENSHOT_WAIT_MS="${WAIT_MS:-40000}" \
COURANT_E2E_ONLY="charts draw" \
    node tests/e2e/dashboard.test.mjs
