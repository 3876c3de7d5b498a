#!/usr/bin/env bash
# bench/run.sh - courant side by side with nginx+nchan and the kernel floor.
#
#   make bench              full matrix (about 15 minutes)
#   make bench QUICK=1      reduced matrix (under 3 minutes)
#   make bench BASELINE=e7e0298
#                           one more server, "courant@e7e0298": that revision
#                           of courant, built in a temporary git worktree under
#                           build/, measured in the same run (before/after
#                           ratios from the same minutes)
#   bench/run.sh            the same, without `make setup`
#
# Installs what it needs (nginx-light, libnginx-mod-nchan, gnuplot-nox) from
# Debian if missing, builds build/bench/loadgen and build/bench/floor, runs
# every cell REPS times with the three servers back to back inside each
# repetition (so ratios compare runs made under the same machine noise),
# then writes bench/RESULTS.md and bench/results.png and prints the table;
# then bench/redis.sh (RESULTS-redis.md), bench/h2.sh (RESULTS-h2.md),
# bench/tls.sh (RESULTS-tls.md) and bench/attack.sh (honest latency under
# each attack of the hostile-clients issue, RESULTS-attack.md).
#
# Every server is started on loopback under `timeout`, every load generator
# run is bounded (its own deadlines, plus `timeout`), and everything that
# was started is stopped on exit.
#
# Env: QUICK=1; BASELINE=<git rev>; BENCH_REPS (default 3); BENCH_MAX_N
# (largest-held target, default 1000000; 0 skips it); BENCH_SCALE_N (the
# fan-out at scale: courant as ceil(N/18,000) processes sharing one Redis,
# nchan as as many workers; default 100000, 0 in QUICK); BENCH_OUT (default
# bench/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/nchan.sh # nchan_conf

QUICK=${QUICK:-0}
REPS=${BENCH_REPS:-3}
OUT=${BENCH_OUT:-bench}
CORES=$(nproc)
WORKERS=$CORES           # courant --workers, nginx worker_processes, floor --threads
PER_PROC=18000           # subscribers per process: loadgen children, and servers past one process
EVENT_BYTES=100
RATE=10
if [ "$QUICK" = 1 ]; then
    FANOUT_N="100 1000"; MEM_N="1000 10000"; RATE_EVENTS=30; BURST_DELIVERIES=1000000
    CAP_REPS=1; MAX_N=0; SCALE_N=${BENCH_SCALE_N:-0}
else
    FANOUT_N="100 1000 10000"; MEM_N="1000 10000 50000"; RATE_EVENTS=100; BURST_DELIVERIES=2000000
    CAP_REPS=$REPS; MAX_N=${BENCH_MAX_N:-1000000}; SCALE_N=${BENCH_SCALE_N:-100000}
fi
SERVERS="courant nchan floor"
BASELINE=${BASELINE:-}
BASE_NAME=""      # "courant@<rev>" when BASELINE is set
BASE_BIN=""       # its binary
BENCH_START=$(date +%s)

log() { echo "bench: $*" >&2; }

# ---- packages ------------------------------------------------------------------
NCHAN_SO=""
find_nchan() {
    for d in /usr/lib/nginx/modules /usr/share/nginx/modules; do
        [ -e "$d/ngx_nchan_module.so" ] && { NCHAN_SO="$d/ngx_nchan_module.so"; return 0; }
    done
    return 1
}
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]; }

ensure_packages() {
    local want=()
    if ! command -v nginx >/dev/null 2>&1; then
        installed nginx-core || installed nginx-full || installed nginx-extras || want+=(nginx-light)
    fi
    find_nchan || want+=(libnginx-mod-nchan)
    command -v gnuplot >/dev/null 2>&1 || want+=(gnuplot-nox)
    command -v python3 >/dev/null 2>&1 || want+=(python3)
    [ "$SCALE_N" -gt 0 ] && ! command -v redis-server >/dev/null 2>&1 && want+=(redis-server)
    if [ "${#want[@]}" -gt 0 ]; then
        local port80_before
        port80_before=$(ss -Hltn 'sport = :80' 2>/dev/null | wc -l)
        log "installing ${want[*]}"
        local alog; alog=$(mktemp)
        if ! { apt-get -o DPkg::Lock::Timeout=300 update -q &&
               DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
                   --no-install-recommends "${want[@]}"; } >"$alog" 2>&1; then
            tail -n 30 "$alog" >&2; rm -f "$alog"; log "apt-get failed"; exit 1
        fi
        rm -f "$alog"
        # Debian's postinst starts nginx where services may start: we want
        # no system nginx on :80, only the ones this script starts.
        if [ "$(ss -Hltn 'sport = :80' 2>/dev/null | wc -l)" -gt "$port80_before" ] || [ -s /run/nginx.pid ]; then
            log "the package started a system nginx: stopping it"
            nginx -s quit 2>/dev/null || true
            [ -s /run/nginx.pid ] && kill "$(cat /run/nginx.pid)" 2>/dev/null || true
            sleep 1
        fi
    fi
    find_nchan || { log "ngx_nchan_module.so not found after install"; exit 1; }
}

# ---- build ----------------------------------------------------------------------
build() {
    make -s build/courant
    make -s build/bench/loadgen build/bench/floor
}

# BASELINE: builds that revision's courant in a temporary git worktree under
# build/ (its own Makefile, its own object directory), keeps the binary as
# build/bench/courant-<full sha> (reused by later runs) and removes the
# worktree.
build_baseline() {
    [ -n "$BASELINE" ] || return 0
    local sha short tree
    sha=$(git rev-parse --verify "$BASELINE^{commit}") || { log "BASELINE=$BASELINE: not a revision"; exit 1; }
    short=$(git rev-parse --short "$sha")
    BASE_NAME="courant@$short"
    BASE_BIN=build/bench/courant-$sha
    if [ ! -x "$BASE_BIN" ]; then
        tree=build/baseline-$short
        log "building $BASE_NAME in $tree"
        git worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"
        git worktree add --detach -q "$tree" "$sha"
        if ! nice make -s -C "$tree" -j"$CORES" build/courant >"$WORK/baseline-build.log" 2>&1; then
            tail -n 20 "$WORK/baseline-build.log" >&2
            git worktree remove --force "$tree"
            log "BASELINE=$BASELINE: build failed"; exit 1
        fi
        cp "$tree/build/courant" "$BASE_BIN"
        git worktree remove --force "$tree"
    fi
    SERVERS="courant $BASE_NAME nchan floor"
}

# ---- servers ----------------------------------------------------------------------
WORK=$(mktemp -d /tmp/courant-bench.XXXXXX)
RAW=$WORK/results.raw
TOP_PIDS=()       # what we started (timeout wrappers): stopped on exit
REAL_PIDS=()      # the servers under those wrappers (nginx: the master)
SERVER_PIDS=""    # comma list: the processes whose RSS and CPU are measured
PORT=0
NEXT_PORT=$((20000 + RANDOM % 9000))
SERVER_LIFETIME=900   # no server outlives this, whatever happens to this script

cleanup() {
    stop_server 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { [ "$(ss -Hltn "sport = :$1" 2>/dev/null | wc -l)" -eq 0 ]; }
pick_port() {
    PORT=$NEXT_PORT
    while ! port_free "$PORT"; do PORT=$((PORT + 1)); done
    NEXT_PORT=$((PORT + 1))
    [ "$NEXT_PORT" -ge 32000 ] && NEXT_PORT=20000
    return 0
}

# Waits until `want` listening sockets are on $PORT (5 s at most).
wait_listening() {
    local want=$1 i
    for i in $(seq 100); do
        [ "$(ss -Hltn "sport = :$PORT" 2>/dev/null | wc -l)" -ge "$want" ] && return 0
        sleep 0.05
    done
    log "server did not start listening on $PORT"; return 1
}

# The real server started by a `timeout` wrapper.
child_of() {
    local i c
    for i in $(seq 100); do
        c=$(pgrep -P "$1" | head -n1 || true)
        [ -n "$c" ] && { echo "$c"; return 0; }
        sleep 0.02
    done
    return 1
}

# The scale cell's Redis (courant's nodes share history and events through
# it): a loopback redis-server on a free port, no persistence.
REDIS_PID=""; REDIS_URL=""
start_redis() {
    local rp=$((32100 + RANDOM % 900)) i
    while ! port_free "$rp"; do rp=$((rp + 1)); done
    timeout -s KILL $SERVER_LIFETIME redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no \
        >"$WORK/redis.log" 2>&1 &
    TOP_PIDS+=("$!"); REDIS_PID=$(child_of "$!")
    REAL_PIDS+=("$REDIS_PID")
    for i in $(seq 50); do redis-cli -p "$rp" ping >/dev/null 2>&1 && break; sleep 0.1; done
    REDIS_URL="redis://127.0.0.1:$rp"
}

# start_server KIND N [single]: one process when N fits in one (or `single`),
# else ceil(N / PER_PROC) processes on one port.
start_server() {
    local kind=$1 n=$2 single=${3:-}
    local procs=$(( (n + PER_PROC - 1) / PER_PROC ))
    [ "$procs" -lt 1 ] && procs=1
    [ -n "$single" ] && procs=1
    pick_port
    TOP_PIDS=(); REAL_PIDS=(); SERVER_PIDS=""
    local i t c
    local bin=./build/courant extra=()
    [ "$kind" = "$BASE_NAME" ] && { bin=./$BASE_BIN; kind=courant; }
    if [ "$kind" = courant+redis ]; then # several nodes on one port, sharing one Redis
        start_redis
        extra=(--redis "$REDIS_URL"); kind=courant; [ "$procs" -lt 2 ] && procs=2
    fi
    case $kind in
    courant)
        if [ "$procs" -eq 1 ]; then
            timeout -s KILL $SERVER_LIFETIME $bin --listen 127.0.0.1:$PORT --workers "$WORKERS" \
                --heartbeat 0 --log-level warn 2>>"$WORK/courant.log" &
            t=$!; TOP_PIDS+=("$t"); SERVER_PIDS=$(child_of "$t"); REAL_PIDS+=("$SERVER_PIDS")
            wait_listening "$WORKERS"
        else
            for i in $(seq "$procs"); do
                timeout -s KILL $SERVER_LIFETIME $bin --listen 127.0.0.1:$PORT --reuse-port --workers 1 \
                    --heartbeat 0 --log-level warn "${extra[@]}" 2>>"$WORK/courant.log" &
                t=$!; TOP_PIDS+=("$t"); c=$(child_of "$t"); REAL_PIDS+=("$c")
                SERVER_PIDS=${SERVER_PIDS:+$SERVER_PIDS,}$c
            done
            wait_listening "$procs"
            [ -n "$REDIS_PID" ] && SERVER_PIDS="$SERVER_PIDS,$REDIS_PID" # its CPU is the deployment's
        fi ;;
    floor)
        if [ "$procs" -eq 1 ]; then
            timeout -s KILL $SERVER_LIFETIME ./build/bench/floor --listen 127.0.0.1:$PORT --threads "$WORKERS" \
                --max-seconds $SERVER_LIFETIME 2>>"$WORK/floor.log" &
            t=$!; TOP_PIDS+=("$t"); SERVER_PIDS=$(child_of "$t"); REAL_PIDS+=("$SERVER_PIDS")
            wait_listening "$WORKERS"
        else
            for i in $(seq "$procs"); do
                timeout -s KILL $SERVER_LIFETIME ./build/bench/floor --listen 127.0.0.1:$PORT --threads 1 \
                    --max-seconds $SERVER_LIFETIME 2>>"$WORK/floor.log" &
                t=$!; TOP_PIDS+=("$t"); c=$(child_of "$t"); REAL_PIDS+=("$c")
                SERVER_PIDS=${SERVER_PIDS:+$SERVER_PIDS,}$c
            done
            wait_listening "$procs"
        fi ;;
    nchan)
        local workers=$WORKERS dir=$WORK/nginx-$PORT
        [ "$procs" -gt 1 ] && workers=$procs
        [ -n "$single" ] && workers=1
        nchan_conf "$dir" "$workers" ""
        timeout -s KILL $SERVER_LIFETIME nginx -p "$dir" -c "$dir/nginx.conf" 2>>"$WORK/nginx.log" &
        t=$!; TOP_PIDS+=("$t")
        local master; master=$(child_of "$t"); REAL_PIDS+=("$master")
        wait_listening "$workers"
        local w
        for i in $(seq 100); do
            w=$(pgrep -P "$master" | paste -sd, || true)
            [ "$(echo "$w" | tr ',' '\n' | grep -c .)" -ge "$workers" ] && break
            sleep 0.05
        done
        SERVER_PIDS="$master,$w" ;;
    esac
    sleep 0.3 # let the servers settle before the "before" RSS sample
}

stop_server() {
    local p i alive
    for p in "${REAL_PIDS[@]:-}"; do
        [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true
    done
    for i in $(seq 50); do
        alive=0
        for p in "${TOP_PIDS[@]:-}"; do
            [ -n "$p" ] && kill -0 "$p" 2>/dev/null && alive=1
        done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for p in ${SERVER_PIDS//,/ } "${TOP_PIDS[@]:-}"; do
        [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
    done
    for p in "${TOP_PIDS[@]:-}"; do
        [ -n "$p" ] && { wait "$p"; } 2>/dev/null || true   # quiet about the self-check's SIGKILL
    done
    TOP_PIDS=(); REAL_PIDS=(); SERVER_PIDS=""; REDIS_PID=""
}

# loadgen KIND N LABELS ARGS...: appends its RESULT lines to $RAW (the
# baseline speaks courant's protocol; its lines say target=courant@<rev>).
loadgen() {
    local kind=$1 n=$2 labels=$3; shift 3
    local rc=0 target=$kind
    [ "$kind" = "$BASE_NAME" ] || [ "$kind" = courant+redis ] && target=courant
    timeout -s KILL 400 ./build/bench/loadgen --target "$target" --port "$PORT" -n "$n" --pids "$SERVER_PIDS" \
        --per-proc $PER_PROC --size $EVENT_BYTES --labels "$labels" "$@" 2>>"$WORK/loadgen.log" |
        sed "s/ target=$target / target=$kind /" >>"$RAW" || rc=$?
    [ "$rc" -ne 0 ] && log "loadgen $kind n=$n exited $rc (see the held/loss columns)"
    return 0
}

in_list() { local x; for x in $2; do [ "$x" = "$1" ] && return 0; done; return 1; }

# ---- the run ------------------------------------------------------------------------
ensure_packages
build
build_baseline
: >"$RAW"
log "$( [ "$QUICK" = 1 ] && echo QUICK || echo full ) matrix, $REPS repetitions, $CORES cores; raw results in $RAW"

# BENCH_ONLY=matrix,pipeline,oneproc,scale,max,connect,redis,h2,tls,attack (default: all, and the
# self-check, which always runs): a subset while working on one of them
# (pipeline runs inside the matrix, at N=1,000).
want() { [ -z "${BENCH_ONLY:-}" ] || [[ ",$BENCH_ONLY," == *",$1,"* ]]; }

# 1. The loss accounting must see a server that dies mid-run.
log "self-check: killing courant in the middle of a rate phase must show loss"
start_server courant 200
for p in "${TOP_PIDS[@]}"; do disown "$p"; done   # no "Killed" job notice for the SIGKILL below
( sleep 2.5; for p in ${SERVER_PIDS//,/ }; do kill -9 "$p" 2>/dev/null; done ) &
killer=$!
loadgen courant 200 "cell=selfcheck rep=1" --rate $RATE --rate-events 50 --timeout 5
wait "$killer" 2>/dev/null || true
stop_server

# 2. The matrix: idle memory, 10 events/s latency, burst throughput.
ALL_N=$(echo $FANOUT_N $MEM_N | tr ' ' '\n' | sort -n | uniq | tr '\n' ' ')
PIPE_N=1000 # the pipelining publisher's cell (2b)
want matrix && for rep in $(seq "$REPS"); do
    for n in $ALL_N; do
        args=()
        if in_list "$n" "$FANOUT_N"; then
            burst=$(( BURST_DELIVERIES / n ))
            [ "$n" -le 100 ] && burst=$(( burst / 2 ))   # stays under courant's --max-pending-bytes
            args=(--rate $RATE --rate-events $RATE_EVENTS --burst-events $burst --inflight 8 --timeout 30)
        fi
        for kind in $SERVERS; do
            log "rep $rep/$REPS: $kind, $n subscribers"
            start_server "$kind" "$n"
            loadgen "$kind" "$n" "cell=matrix rep=$rep" "${args[@]}"
            stop_server
            # 2b. A pipelining publisher: one connection with 8 requests in
            # flight, right after the same server's 8 connections with one
            # each (so their ratio compares minutes of the same noise).
            if [ "$n" = "$PIPE_N" ] && want pipeline; then
                log "rep $rep/$REPS: $kind, $n subscribers, one publish connection, 8 pipelined"
                start_server "$kind" "$n"
                loadgen "$kind" "$n" "cell=pipeline rep=$rep" --burst-events $(( BURST_DELIVERIES / n )) \
                    --inflight 8 --pub-conns 1 --timeout 30
                stop_server
            fi
        done
    done
done

# 3. One process: how many subscribers does a single server process hold
#    under the 20,000-descriptor cap? (asks for 19,990)
want oneproc && for rep in $(seq "$CAP_REPS"); do
    for kind in courant nchan; do
        log "rep $rep/$CAP_REPS: $kind, one process, 19990 subscribers asked"
        start_server "$kind" 19990 single
        loadgen "$kind" 19990 "cell=oneproc rep=$rep" --connect-timeout 30
        stop_server
    done
done

# 3b. Fan-out at scale: SCALE_N subscribers, courant as ceil(N/18,000)
#     --reuse-port processes sharing events and history through one Redis,
#     nchan as as many workers (shared memory). Latency at 1 and 10 events/s,
#     a burst, memory per subscriber; one repetition (it is long).
if [ "$SCALE_N" -gt 0 ] && want scale; then
    for kind in courant+redis nchan; do
        log "$kind, $SCALE_N subscribers (fan-out at scale)"
        start_server "$kind" "$SCALE_N"
        loadgen "$kind" "$SCALE_N" "cell=scale rep=1" --connect-timeout 150 --rate 1 --rate-events 10 \
            --rate2 10 --rate2-events 50 --burst-events 20 --inflight 8 --timeout 60
        stop_server
    done
fi

# 4. The largest number of subscribers courant holds: processes on one port.
if [ "$MAX_N" -gt 0 ] && want max; then
    log "courant, $MAX_N subscribers over $(( (MAX_N + PER_PROC - 1) / PER_PROC )) processes"
    start_server courant "$MAX_N"
    loadgen courant "$MAX_N" "cell=max rep=1" --connect-timeout 150
    stop_server
fi

ELAPSED=$(( $(date +%s) - BENCH_START ))
# RESULTS.md is the matrix's: a BENCH_ONLY run of the other parts keeps it.
if want matrix || want oneproc || want scale || want max; then
    log "measurements done in ${ELAPSED}s; writing $OUT/RESULTS.md and $OUT/results.png"
    cp "$RAW" "$OUT/results.raw"
    python3 bench/report.py --raw "$RAW" --out "$OUT" --quick "$QUICK" --elapsed "$ELAPSED" \
        --reps "$REPS" --cores "$CORES" --rate "$RATE" --rate-events "$RATE_EVENTS" \
        --event-bytes "$EVENT_BYTES" --fanout-n "$FANOUT_N" --mem-n "$MEM_N" --max-n "$MAX_N" \
        --servers "$SERVERS" --scale-n "$SCALE_N"
fi

# ---- connects per second, many alternating fresh servers -----------------------------
if want connect; then
    log "connect rate: bench/connect.sh -> $OUT/RESULTS-connect.md"
    CMD="bench/connect.sh 1000 $([ "$QUICK" = 1 ] && echo 5 || echo 15); bench/connect.sh 10000 $([ "$QUICK" = 1 ] && echo 2 || echo 5)"
    {
        echo "# Connects per second: courant against nginx + nchan"
        echo
        echo "Generated by \`make bench\` on $(date -u '+%Y-%m-%d %H:%M UTC'), courant at commit $(git rev-parse --short HEAD)."
        echo "Each repetition starts a fresh courant (\`--workers 2\`) and a fresh nginx + nchan (2 workers, bench/nchan.sh),"
        echo "connects N subscribers with bench/loadgen (256 connects in flight, one generator process) and stops the server;"
        echo "the ratio is taken within each repetition. The matrix in RESULTS.md measures the same thing 3 times per cell;"
        echo "1,000 connects take 25-40 ms, so more samples are needed to say which is faster. Commands: \`$CMD\`."
        echo
    } >"$OUT/RESULTS-connect.md"
    if [ "$QUICK" = 1 ]; then reps1=5 reps2=2; else reps1=15 reps2=5; fi
    CONNECT_BENCH_MD="$OUT/RESULTS-connect.md" ./bench/connect.sh 1000 "$reps1" || log "bench/connect.sh failed (see above)"
    CONNECT_BENCH_MD="$OUT/RESULTS-connect.md" ./bench/connect.sh 10000 "$reps2" || log "bench/connect.sh failed (see above)"
fi

# ---- across nodes on Redis, beside a single node (one run) -------------------------
if want redis; then
    log "cross-node cells on Redis: bench/redis.sh -> $OUT/RESULTS-redis.md"
    BENCH_OUT="$OUT" ./bench/redis.sh || log "bench/redis.sh failed (see above)"
fi

if want h2; then
    log "HTTP/2 cells: bench/h2.sh -> $OUT/RESULTS-h2.md"
    BENCH_OUT="$OUT" ./bench/h2.sh || log "bench/h2.sh failed (see above)"
fi

# ---- HTTPS: courant over TLS beside nginx + nchan over TLS ---------------------------
if want tls; then
    log "TLS cells: bench/tls.sh -> $OUT/RESULTS-tls.md"
    QUICK="$QUICK" BENCH_OUT="$OUT" ./bench/tls.sh || log "bench/tls.sh failed (see above)"
fi

# ---- honest latency under each attack of the hostile-clients issue (one run) ---------
if want attack; then
    log "under attack: bench/attack.sh -> $OUT/RESULTS-attack.md"
    QUICK="$QUICK" BENCH_OUT="$OUT" ./bench/attack.sh || log "bench/attack.sh failed (see above)"
fi
