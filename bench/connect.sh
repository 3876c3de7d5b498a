#!/usr/bin/env bash
# bench/connect.sh - connects per second, courant against nginx + nchan,
# alternating one fresh server of each, many times (part of `make bench`,
# whose matrix measures each cell only 3 times among everything else).
#
#   bench/connect.sh [N] [REPS]      (default 1000 subscribers, 10 repetitions)
#   CONNECT_BENCH_BIN=path/to/courant bench/connect.sh ...   (another build)
#   CONNECT_BENCH_MD=FILE            also append a Markdown section to FILE
#
# Each repetition starts a fresh courant (--workers 2) and a fresh nginx
# (2 workers, bench/nchan.sh's configuration), connects N subscribers with
# bench/loadgen (256 connects in flight, as in `make bench`), records
# connects/s and both sides' CPU, and stops the server. Prints one line per
# run and the medians; the ratio is taken within each repetition. Why a
# separate script: 1,000 connects take 25-40 ms, so three samples say
# little on a shared machine. Bounded: every server runs under timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
BIN=${CONNECT_BENCH_BIN:-./build/courant}
REPS=${2:-10}
WORK=$(mktemp -d /tmp/courant-connect-bench.XXXXXX)
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

make -s build/courant build/bench/loadgen
NCHAN_SO=""
for d in /usr/lib/nginx/modules /usr/share/nginx/modules; do
    [ -e "$d/ngx_nchan_module.so" ] && NCHAN_SO="$d/ngx_nchan_module.so"
done
[ -n "$NCHAN_SO" ] || { echo "bench/connect.sh: nginx's nchan module is missing (make bench installs it)" >&2; exit 1; }
# shellcheck source=bench/nchan.sh
source bench/nchan.sh

port_free() { [ "$(ss -Hltn "sport = :$1" 2>/dev/null | wc -l)" -eq 0 ]; }
wait_listening() { for _ in $(seq 100); do [ "$(ss -Hltn "sport = :$PORT" | wc -l)" -ge 2 ] && return 0; sleep 0.05; done; return 1; }

# run KIND: one fresh server, one connect phase; prints connects/s.
run() {
    PORT=$((20000 + RANDOM % 9000))
    while ! port_free "$PORT"; do PORT=$((PORT + 1)); done
    local pids target
    if [ "$1" = nchan ]; then
        nchan_conf "$WORK/nginx-$PORT" 2 ""
        timeout -s KILL 60 nginx -p "$WORK/nginx-$PORT" -c "$WORK/nginx-$PORT/nginx.conf" 2>/dev/null &
        PID=$!; wait_listening; sleep 0.3
        pids="$(pgrep -P "$(pgrep -P $PID)" | paste -sd,)"; target=nchan
    else
        timeout -s KILL 60 "$BIN" --listen 127.0.0.1:$PORT --workers 2 --heartbeat 0 --log-level warn 2>/dev/null &
        PID=$!; wait_listening; sleep 0.3
        pids=$(pgrep -P $PID); target=courant
    fi
    ./build/bench/loadgen --target $target --port $PORT -n "$N" --pids "$pids" --labels x=1 --settle-ms 100 2>/dev/null |
        tr ' ' '\n' | sed -n 's/^connects_per_s=//p'
    kill $PID 2>/dev/null; wait $PID 2>/dev/null || true; PID=""
}

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

: >"$WORK/c"; : >"$WORK/n"; : >"$WORK/r"
for rep in $(seq "$REPS"); do
    c=$(run courant); n=$(run nchan)
    echo "$c" >>"$WORK/c"; echo "$n" >>"$WORK/n"
    awk -v c="$c" -v n="$n" 'BEGIN {printf "%.2f\n", c / n}' >>"$WORK/r"
    echo "rep $rep: courant $c/s, nchan $n/s"
done
SUMMARY="N=$N, $REPS repetitions: courant $(median <"$WORK/c")/s, nchan $(median <"$WORK/n")/s; courant/nchan median $(median <"$WORK/r")× (min $(sort -g "$WORK/r" | head -1), max $(sort -g "$WORK/r" | tail -1))"
echo "$SUMMARY"
if [ -n "${CONNECT_BENCH_MD:-}" ]; then
    {
        echo "## N=$N, $REPS repetitions"
        echo
        echo "| repetition | courant connects/s | nchan connects/s | courant / nchan |"
        echo "|---:|---:|---:|---:|"
        paste -d' ' "$WORK/c" "$WORK/n" "$WORK/r" | awk '{printf "| %d | %s | %s | %s× |\n", NR, $1, $2, $3}'
        echo
        echo "**$SUMMARY**"
        echo
    } >>"$CONNECT_BENCH_MD"
fi
