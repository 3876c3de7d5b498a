#!/usr/bin/env bash
# bench/h2.sh - HTTP/2 at scale: 10,000 subscriber streams over 100 h2c
# connections (100 streams each), beside the same 10,000 subscribers over
# HTTP/1.1 (one connection each), for courant and for nginx+nchan.
#
#   bench/h2.sh             (called by bench/run.sh; also runs alone)
#
# Every cell is build/bench/loadgen (bench/loadgen.c): `--h2 100` makes each
# subscriber process open ceil(n/100) HTTP/2 connections (libnghttp2's client
# session, h2c with prior knowledge) and parse the SSE of every stream;
# publishing stays HTTP/1.1 POSTs. Phases: idle (RSS per subscriber), rate
# (latency: --rate events/s), burst (throughput: deliveries/s until every
# stream has every event).
#
# nchan: nginx-light is built with http2, so `listen ... http2` serves h2c
# with prior knowledge; nchan's EventSource subscriber over HTTP/2 has been
# reported broken since 2020 (nchan issue #576). The cell runs anyway and
# its RESULT line says what happened (held, loss).
#
# Output: bench/RESULTS-h2.md (BENCH_OUT), with the exact commands. Env:
# H2_N (default 10000), H2_PER_CONN (100), REPS (BENCH_REPS, default 1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/nchan.sh # nchan_conf

N=${H2_N:-10000}
PER_CONN=${H2_PER_CONN:-100}
REPS=${BENCH_REPS:-1}
OUT=${BENCH_OUT:-bench}
WORKERS=$(nproc)
RATE=10
RATE_EVENTS=50
BURST=200
SIZE=100
LIFETIME=600

log() { echo "bench/h2: $*" >&2; }

command -v nginx >/dev/null 2>&1 || { log "nginx not installed (bench/run.sh installs nginx-light and nchan)"; }
NCHAN_SO=""
for d in /usr/lib/nginx/modules /usr/share/nginx/modules; do
    [ -e "$d/ngx_nchan_module.so" ] && NCHAN_SO="$d/ngx_nchan_module.so"
done

make -s build/courant
mkdir -p build/bench
if [ ! -x build/bench/loadgen ] || [ bench/loadgen.c -nt build/bench/loadgen ]; then
    gcc -std=gnu11 -O2 -g -Wall -Wextra -Wshadow -D_GNU_SOURCE -Isrc -o build/bench/loadgen bench/loadgen.c \
        src/sse.c -lm -lnghttp2
fi

WORK=$(mktemp -d /tmp/courant-h2bench.XXXXXX)
RAW=$WORK/raw
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$((33000 + RANDOM % 2000))
next_port() {
    PORT=$((PORT + 1))
    while [ "$(ss -Hltn "sport = :$PORT" | wc -l)" -gt 0 ]; do PORT=$((PORT + 1)); done
}
wait_port() {
    for _ in $(seq 100); do
        [ "$(ss -Hltn "sport = :$PORT" | wc -l)" -gt 0 ] && return 0
        sleep 0.05
    done
    log "nothing listens on $PORT; last server log lines:"
    tail -n 5 "$WORK"/*.log >&2 || true
    return 1
}

# start KIND: courant, or nchan with h2c (http2) or HTTP/1.1 on the port. Sets SPIDS.
start() {
    next_port
    case $1 in
    courant)
        timeout -s KILL $LIFETIME ./build/courant --listen 127.0.0.1:$PORT --workers "$WORKERS" --heartbeat 0 \
            --log-level warn 2>>"$WORK/courant.log" &
        PIDS+=($!)
        wait_port
        SPIDS=$(pgrep -P "${PIDS[-1]}" | paste -sd,) ;;
    nchan-h1 | nchan-h2)
        local dir=$WORK/nginx-$PORT http2=""
        [ "$1" = nchan-h2 ] && http2="http2 "
        nchan_conf "$dir" "$WORKERS" "$http2" "    http2_max_concurrent_streams $PER_CONN;
"
        timeout -s KILL $LIFETIME nginx -p "$dir" -c "$dir/nginx.conf" 2>>"$WORK/nginx.log" &
        PIDS+=($!)
        wait_port
        local master
        master=$(pgrep -P "${PIDS[-1]}" | head -1)
        sleep 0.3
        SPIDS="$master,$(pgrep -P "$master" | paste -sd,)" ;;
    esac
}

stop() {
    for p in ${SPIDS//,/ }; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 1
    for p in ${SPIDS//,/ } "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    PIDS=()
}

CMDS=()
# cell LABEL KIND TARGET [loadgen args...]
cell() {
    local label=$1 kind=$2 target=$3
    shift 3
    start "$kind"
    local cmd=(./build/bench/loadgen --target "$target" --port "$PORT" -n "$N" --pids "$SPIDS" --size $SIZE
        --rate $RATE --rate-events $RATE_EVENTS --burst-events $BURST --inflight 8 --timeout 30
        --labels "cell=$label" "$@")
    CMDS+=("$label: ${cmd[*]}")
    log "$label: n=$N $*"
    timeout -s KILL 300 "${cmd[@]}" >>"$RAW" 2>>"$WORK/loadgen.log" || log "$label: loadgen exited $?"
    stop
}

: >"$RAW"
for rep in $(seq "$REPS"); do
    cell courant-h2 courant courant --h2 "$PER_CONN"
    cell courant-h1 courant courant
    if [ -n "$NCHAN_SO" ] && command -v nginx >/dev/null 2>&1; then
        cell nchan-h2 nchan-h2 nchan --h2 "$PER_CONN"
        cell nchan-h1 nchan-h1 nchan
    fi
done

# ---- the report -----------------------------------------------------------------
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
{
    echo "# HTTP/2 benchmark: $N subscribers, HTTP/2 ($PER_CONN streams per connection) vs HTTP/1.1"
    echo
    echo "Written by \`bench/h2.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)),"
    echo "courant \`--workers $WORKERS\`, nginx \`worker_processes $WORKERS\`, events of $SIZE bytes, $REPS repetition(s)."
    echo "HTTP/2 cells: $N streams over $(( (N + PER_CONN - 1) / PER_CONN )) h2c connections; HTTP/1.1 cells: $N connections."
    echo
    echo "| cell | held | idle KiB/sub | rate: p50 / p99 ms | rate loss | burst deliveries/s | burst p99 ms | burst loss | server CPU (burst) |"
    echo "|---|---|---|---|---|---|---|---|---|"
    while read -r line; do
        case $line in *"phase=idle"*) idle=$line ;; *"phase=rate"*) rate=$line ;; *"phase=burst"*)
            c=$(field cell "$line")
            printf '| %s | %s/%s | %s | %.1f / %.1f | %s | %s | %.1f | %s | %s%% |\n' "$c" "$(field held "$idle")" "$N" \
                "$(field kib_per_sub "$idle")" "$(awk "BEGIN{print $(field p50_us "$rate")/1000}")" \
                "$(awk "BEGIN{print $(field p99_us "$rate")/1000}")" "$(field loss "$rate")" \
                "$(field deliveries_per_s "$line")" "$(awk "BEGIN{print $(field p99_us "$line")/1000}")" \
                "$(field loss "$line")" "$(field server_cpu_pct "$line")" ;;
        esac
    done < <(grep '^RESULT' "$RAW")
    echo
    echo "Commands as run (the port and the server pids are those of this run):"
    echo
    echo '```'
    printf '%s\n' "${CMDS[@]}"
    echo '```'
    echo
    echo "Raw RESULT lines:"
    echo
    echo '```'
    grep '^RESULT' "$RAW"
    echo '```'
    if grep -q . "$WORK/loadgen.log" 2>/dev/null; then
        echo
        echo "Load generator notes (first lines):"
        echo
        echo '```'
        grep -v '^loadgen: courant\|^loadgen: nchan' "$WORK/loadgen.log" | sort | uniq -c | sort -rn | head -15
        echo '```'
    fi
} >"$WORK/report.md"
if [ "$OUT" = bench ]; then
    # keep the hand-written analysis below the generated part
    tail=""
    [ -f bench/RESULTS-h2.md ] && tail=$(sed -n '/^## Reading it/,$p' bench/RESULTS-h2.md)
    { cat "$WORK/report.md"; [ -n "$tail" ] && { echo; echo "$tail"; }; } >bench/RESULTS-h2.md
else
    cp "$WORK/report.md" "$OUT/RESULTS-h2.md"
fi
cat "$WORK/report.md"
