# tests/e2e/lib.sh - helpers for the shell end-to-end tests (sourced).
#
# start_courant ARGS...   starts $COURANT_BIN on 127.0.0.1:0 (unless ARGS
#                         has --listen), waits for its "listening on" line,
#                         sets PID, PORT, BASE, LOG. Every server started is
#                         stopped by the EXIT trap, which also fails the test
#                         if a server printed a sanitizer report.
# stop_courant            SIGTERM, wait (5 s at most), sets STOP_RC
# ok NAME / not_ok NAME WHY / check NAME CMD...   TAP-like lines
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
COURANT_BIN="${COURANT_BIN:-$ROOT/build/asan/courant}"
TEST_FILE="$(basename "$0")"
TMP="$(mktemp -d)"
FAILS=0
PIDS=()
LOGS=()

ok() { echo "ok - $TEST_FILE: $1"; }
not_ok() { echo "not ok - $TEST_FILE: $1"; shift; [ $# -gt 0 ] && echo "#   $*"; FAILS=$((FAILS + 1)); }
# check NAME CMD...: passes when CMD succeeds.
check() { local n="$1"; shift; if "$@"; then ok "$n"; else not_ok "$n" "command failed: $*"; fi; }
# expect_eq NAME GOT WANT
expect_eq() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "got [$2], want [$3]"; fi; }
# expect_match NAME TEXT REGEX
expect_match() { if printf '%s' "$2" | grep -Eq -- "$3"; then ok "$1"; else not_ok "$1" "[$2] does not match /$3/"; fi; }

start_courant() {
    LOG="$TMP/courant.$RANDOM.log"
    local args=("$@")
    case " $* " in *" --listen "*) ;; *) args=(--listen 127.0.0.1:0 "${args[@]}") ;; esac
    "$COURANT_BIN" "${args[@]}" 2>"$LOG" &
    PID=$!
    PIDS+=("$PID")
    LOGS+=("$LOG")
    for _ in $(seq 1 100); do
        if grep -q 'listening on http://' "$LOG" 2>/dev/null && grep -q 'courant ready' "$LOG"; then
            # (text or --log-format json lines: the address ends at '/')
            BASE=$(grep -o 'listening on http://[^ /"]*' "$LOG" | head -n1 | sed 's/listening on //')
            PORT=${BASE##*:}
            return 0
        fi
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "# courant did not start:"; sed 's/^/#   /' "$LOG"
    return 1
}

stop_courant() {
    local pid="${1:-$PID}"
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid"; STOP_RC=137
    fi
    wait "$pid" 2>/dev/null
    STOP_RC=${STOP_RC:-$?}
}

# sanitizer_clean: no ASan/UBSan/LSan report in any server log
sanitizer_clean() {
    local l
    for l in "${LOGS[@]}"; do
        if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|ThreadSanitizer' "$l" 2>/dev/null; then
            echo "# sanitizer report in $l:"; sed 's/^/#   /' "$l" | head -60
            return 1
        fi
    done
    return 0
}

finish() {
    local p
    for p in "${PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null
        fi
    done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if ! sanitizer_clean; then
        echo "not ok - $TEST_FILE: servers ran without sanitizer reports"
        FAILS=$((FAILS + 1))
    else
        echo "ok - $TEST_FILE: servers ran without sanitizer reports"
    fi
    rm -rf "$TMP"
    [ "$FAILS" -eq 0 ]
}
trap 'finish; exit $?' EXIT

# raw_request HOST PORT DATA [SECONDS]: sends bytes on one connection, prints the reply
raw_request() {
    python3 - "$1" "$2" "$3" "${4:-2}" <<'PY'
import socket, sys, time
host, port, data, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
s = socket.create_connection((host, port), timeout=secs)
s.sendall(data.encode('latin-1').decode('unicode_escape').encode('latin-1'))
out = b''
end = time.time() + secs
try:
    while time.time() < end:
        b = s.recv(65536)
        if not b:
            break
        out += b
except socket.timeout:
    pass
sys.stdout.write(out.decode('latin-1'))
PY
}
