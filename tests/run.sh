#!/usr/bin/env bash
# tests/run.sh - runs every test and ends with the line
# "N passed, N failed, N skipped".
#
# Every test program prints TAP-like lines, "ok - name" or "not ok - name",
# and exits non-zero if anything failed; a test that cannot run here prints
# "ok - name # SKIP reason" and is counted as skipped, never as passed. This
# script counts those lines; a
# program that exits non-zero (a crash, a sanitizer report, a timeout)
# without printing "not ok" counts as one more failure. Each program runs
# under `timeout`, so nothing can hang the suite.
#
#   tests/run.sh            everything
#   tests/run.sh unit       only unit tests (also: checks, fuzz, e2e, node, tsan)
#   FUZZ_SECONDS=20         how long each fuzz target runs (default 10)
# The whole script is one compound command, so bash parses it before it runs
# anything: editing this file while a run is under way cannot break that run.
{
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
export COURANT_BIN="${COURANT_BIN:-$ROOT/build/asan/courant}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
FUZZ_SECONDS="${FUZZ_SECONDS:-10}"
ONLY="${1:-all}"
LOGDIR="$ROOT/build/test-logs"
mkdir -p "$LOGDIR"

passed=0
failed=0
skipped=0
failures=()

# run NAME TIMEOUT CMD... : runs one test program and tallies its lines.
run() {
    local name="$1" limit="$2"
    shift 2
    local log="$LOGDIR/$(echo "$name" | tr '/ ' '__').log"
    echo "== $name"
    timeout --kill-after=5 "$limit" "$@" >"$log" 2>&1
    local rc=$?
    local ok nok skip
    skip=$(grep -c '^ok - .*# SKIP' "$log")
    ok=$(($(grep -c '^ok - ' "$log") - skip))
    nok=$(grep -c '^not ok - ' "$log")
    grep -E '^(ok|not ok) - ' "$log" | sed 's/^/   /'
    passed=$((passed + ok))
    failed=$((failed + nok))
    skipped=$((skipped + skip))
    if [ "$nok" -gt 0 ]; then
        failures+=("$name")
    fi
    if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
        failed=$((failed + 1))
        failures+=("$name (exit $rc)")
        echo "   not ok - $name exited with status $rc"
    fi
    if [ "$rc" -ne 0 ] || [ "$nok" -gt 0 ]; then
        echo "   --- last lines of $log:"
        tail -n 40 "$log" | sed 's/^/   | /'
    fi
}

want() { [ "$ONLY" = all ] || [ "$ONLY" = "$1" ]; }

# check NAME MAKE-TARGET: a code check from the Makefile, as one test.
check() {
    run "checks/$1" 600 sh -c "make -s $2 && echo 'ok - $1' || { echo 'not ok - $1'; exit 1; }"
}

if want checks; then
    check "format (clang-format)" format-check
    check "static analysis (clang --analyze)" analyze
    check "layer order (docs/ARCHITECTURE.md)" check-layers
fi

if want unit; then
    for src in tests/unit/*_test.c; do
        t="build/asan/$(basename "$src" .c)"
        [ -x "$t" ] || { echo "not ok - unit test $t was not built"; failed=$((failed + 1)); continue; }
        run "unit/$(basename "$t")" 120 "$t"
    done
fi

if want fuzz; then
    # Every target the sources define (a stale binary of a removed target is not run).
    for src in fuzz/*_fuzz.c; do
        name=$(basename "$src" _fuzz.c)
        f="build/fuzz/${name}_fuzz"
        [ -x "$f" ] || { echo "not ok - fuzz target $name was not built"; failed=$((failed + 1)); continue; }
        corpus="fuzz/corpus/$name"
        dictarg=""
        [ -f "fuzz/$name.dict" ] && dictarg="-dict=$ROOT/fuzz/$name.dict"
        run "fuzz/$name (corpus replay)" 120 sh -c \
            "'$f' -runs=0 '$corpus' && echo 'ok - corpus $name replays clean' || { echo 'not ok - corpus $name'; exit 1; }"
        scratch=$(mktemp -d)
        run "fuzz/$name (${FUZZ_SECONDS}s)" $((FUZZ_SECONDS + 60)) sh -c \
            "cd '$scratch' && '$ROOT/$f' $dictarg -max_total_time=$FUZZ_SECONDS -timeout=10 -rss_limit_mb=2048 '$scratch' '$ROOT/$corpus' >fuzz.log 2>&1; rc=\$?; tail -n 3 fuzz.log; [ \$rc = 0 ] && echo 'ok - fuzz $name for ${FUZZ_SECONDS}s' || { cat fuzz.log | tail -n 40; for a in crash-* leak-* timeout-* oom-*; do [ -f \"\$a\" ] && cp \"\$a\" '$ROOT/build/test-logs/fuzz-$name-'\"\$a\" && echo \"input kept: build/test-logs/fuzz-$name-\$a (base64: \$(head -c 3000 \"\$a\" | base64 -w0))\"; done; echo 'not ok - fuzz $name'; exit 1; }"
        rm -rf "$scratch"
    done
fi

if want e2e; then
    for t in tests/e2e/*.test.sh; do
        [ -f "$t" ] && run "e2e/$(basename "$t")" 300 bash "$t"
    done
fi

if want node; then
    for t in tests/e2e/*.test.mjs; do
        [ -f "$t" ] && run "node/$(basename "$t")" 300 node "$t"
    done
fi

# The cross-worker tests again under ThreadSanitizer (hub lock, inboxes, store and backplane threads,
# the TLS context swapped by SIGHUP or by the ACME thread, its ticket keys, the JWKS fetcher and its
# key-set holder, SIGHUP's swaps, atomics): a data race is a failure.
if want tsan && [ -x build/tsan/courant ]; then
    for t in tests/e2e/hub.test.mjs tests/e2e/store.test.mjs tests/e2e/redis.test.mjs tests/e2e/jwks.test.mjs \
        tests/e2e/reload.test.mjs tests/e2e/mercure1.test.mjs tests/e2e/tls.test.mjs tests/e2e/acme.test.mjs; do
        [ -f "$t" ] && COURANT_BIN="$ROOT/build/tsan/courant" TSAN_OPTIONS="halt_on_error=1:exitcode=66" \
            run "tsan/$(basename "$t")" 300 node "$t"
    done
fi

echo
if [ "${#failures[@]}" -gt 0 ]; then
    echo "failed:"
    printf '  %s\n' "${failures[@]}"
fi
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
exit $?
}
