#!/usr/bin/env bash
# bench/tls.sh - courant over TLS beside Debian's nginx + nchan over TLS,
# configured alike, and courant's cleartext figures beside the commit this
# branch started from (no regression). Part of `make bench` (bench/run.sh
# calls it last); alone:
#
#   bench/tls.sh               full: idle memory at 3,000 and 10,000 subscribers,
#                              fan-out at 1,000 and 10,000, handshakes/s, 3 reps
#   QUICK=1 bench/tls.sh       one rep, 3,000 idle and fan-out at 1,000 (about 2 minutes)
#
# Both servers get the same self-signed ECDSA P-256 certificate made here,
# TLS 1.2 + 1.3, Mozilla's "intermediate" TLS 1.2 ciphers and TLS 1.3 suites
# in the same order, server preference, X25519/P-256/P-384, session tickets
# (no session cache), 2 workers. Clients: bench/loadgen.c --tls (full
# handshake per subscriber, TLS 1.3, ALPN http/1.1) and `openssl s_time`
# (handshakes/s, -new and -reuse, two in parallel).
#
# Env: QUICK=1; BENCH_REPS (default 3, QUICK 1); BENCH_OUT (default bench/);
# BENCH_BASELINE (git revision for the cleartext comparison, default the
# merge base with main; "none" skips it).
# Writes $BENCH_OUT/RESULTS-tls.md and prints it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/nchan.sh # nchan_conf

QUICK=${QUICK:-0}
OUT=${BENCH_OUT:-bench}
WORKERS=$(nproc)
EVENT_BYTES=100
if [ "$QUICK" = 1 ]; then
    REPS=${BENCH_REPS:-1}; MEM_N="3000"; FANOUT_N="1000"; HS_SECONDS=3; BURST_DELIVERIES=500000
else
    REPS=${BENCH_REPS:-3}; MEM_N="3000 10000"; FANOUT_N="1000 10000"; HS_SECONDS=5; BURST_DELIVERIES=2000000
fi
BASELINE=${BENCH_BASELINE:-$(git merge-base HEAD main 2>/dev/null || echo none)}
START=$(date +%s)
log() { echo "bench/tls: $*" >&2; }

# ---- packages and builds -------------------------------------------------------------
NCHAN_SO=""
for d in /usr/lib/nginx/modules /usr/share/nginx/modules; do
    [ -e "$d/ngx_nchan_module.so" ] && NCHAN_SO="$d/ngx_nchan_module.so"
done
if ! command -v nginx >/dev/null || [ -z "$NCHAN_SO" ] || ! command -v openssl >/dev/null; then
    log "installing nginx-light libnginx-mod-nchan openssl"
    apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends \
        nginx-light libnginx-mod-nchan openssl >/dev/null
    [ -s /run/nginx.pid ] && { nginx -s quit 2>/dev/null || true; sleep 1; }  # no system nginx
    NCHAN_SO=/usr/lib/nginx/modules/ngx_nchan_module.so
fi
make -s build/courant
mkdir -p build/bench
if [ ! -x build/bench/loadgen ] || [ bench/loadgen.c -nt build/bench/loadgen ]; then
    gcc -std=gnu11 -O2 -g -Wall -Wextra -Wshadow -D_GNU_SOURCE -Isrc -o build/bench/loadgen bench/loadgen.c \
        src/sse.c -lm -lssl -lcrypto
fi

WORK=$(mktemp -d /tmp/courant-tls-bench.XXXXXX)
RAW=$WORK/raw
: >"$RAW"
TOP_PIDS=(); REAL_PIDS=(); SERVER_PIDS=""; PORT=0
NEXT_PORT=$((32000 + RANDOM % 8000))
cleanup() { stop_server 2>/dev/null || true; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

BASE_BIN=""
if [ "$BASELINE" != none ]; then
    log "building the baseline $BASELINE (cleartext comparison)"
    mkdir -p "$WORK/base"
    git archive "$BASELINE" | tar -x -C "$WORK/base"
    if nice make -s -C "$WORK/base" -j2 build/courant >"$WORK/base.log" 2>&1; then
        BASE_BIN=$WORK/base/build/courant
    else
        log "baseline build failed; skipping the cleartext comparison"; tail -5 "$WORK/base.log" >&2
    fi
fi

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/key.pem" -out "$WORK/cert.pem" \
    -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
chmod 600 "$WORK/key.pem"

# ---- servers -------------------------------------------------------------------------
pick_port() {
    PORT=$NEXT_PORT
    while [ "$(ss -Hltn "sport = :$PORT" | wc -l)" -gt 0 ]; do PORT=$((PORT + 1)); done
    NEXT_PORT=$((PORT + 1)); [ "$NEXT_PORT" -ge 40000 ] && NEXT_PORT=32000
    return 0
}
wait_listening() {
    for _ in $(seq 200); do
        [ "$(ss -Hltn "sport = :$PORT" | wc -l)" -ge "$1" ] && return 0
        sleep 0.05
    done
    log "no listener on $PORT"; tail -n 5 "$WORK"/nginx.log "$WORK"/nginx-$PORT/error.log "$WORK"/courant.log 2>/dev/null >&2
    return 1
}
child_of() {
    for _ in $(seq 100); do
        local c; c=$(pgrep -P "$1" | head -n1 || true)
        [ -n "$c" ] && { echo "$c"; return 0; }
        sleep 0.02
    done
    return 1
}

# nginx + nchan over TLS: the same ciphers, curves and ticket policy as courant.
nchan_tls_conf() { # dir
    nchan_conf "$1" "$WORKERS" "ssl " "\
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
    ssl_conf_command Options PrioritizeChaCha;
    ssl_prefer_server_ciphers on;
    ssl_ecdh_curve X25519:prime256v1:secp384r1;
    ssl_session_tickets on;
    ssl_session_cache off;
" "\
        location = /healthz { return 200 \"ok\\n\"; }
"
}

# start_server courant|nchan|courant-clear|baseline-clear
start_server() {
    pick_port
    TOP_PIDS=(); REAL_PIDS=(); SERVER_PIDS=""
    local t
    case $1 in
    courant|courant-clear|baseline-clear)
        local bin=./build/courant tlsargs=(--tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem")
        [ "$1" = baseline-clear ] && bin=$BASE_BIN
        [ "$1" != courant ] && tlsargs=()
        timeout -s KILL 900 "$bin" --listen 127.0.0.1:$PORT --workers "$WORKERS" --heartbeat 0 --log-level warn \
            "${tlsargs[@]}" 2>>"$WORK/courant.log" &
        t=$!; TOP_PIDS+=("$t"); SERVER_PIDS=$(child_of "$t"); REAL_PIDS+=("$SERVER_PIDS")
        wait_listening "$WORKERS" ;;
    nchan)
        nchan_tls_conf "$WORK/nginx-$PORT"
        timeout -s KILL 900 nginx -p "$WORK/nginx-$PORT" -c "$WORK/nginx-$PORT/nginx.conf" 2>>"$WORK/nginx.log" &
        t=$!; TOP_PIDS+=("$t")
        local master w; master=$(child_of "$t"); REAL_PIDS+=("$master")
        wait_listening "$WORKERS"
        for _ in $(seq 100); do
            w=$(pgrep -P "$master" | paste -sd, || true)
            [ "$(echo "$w" | tr ',' '\n' | grep -c .)" -ge "$WORKERS" ] && break
            sleep 0.05
        done
        SERVER_PIDS="$master,$w" ;;
    esac
    sleep 0.3
}
stop_server() {
    local p
    for p in "${REAL_PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 50); do
        local alive=0
        for p in "${TOP_PIDS[@]:-}"; do [ -n "$p" ] && kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for p in ${SERVER_PIDS//,/ } "${TOP_PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    for p in "${TOP_PIDS[@]:-}"; do [ -n "$p" ] && { wait "$p"; } 2>/dev/null || true; done
    TOP_PIDS=(); REAL_PIDS=(); SERVER_PIDS=""
}

loadgen() { # kind n labels args...
    local kind=$1 n=$2 labels=$3; shift 3
    local target=$kind tls=(--tls)
    case $kind in nchan) target=nchan ;; *) target=courant ;; esac
    case $kind in *-clear) tls=() ;; esac
    timeout -s KILL 400 ./build/bench/loadgen --target $target --port "$PORT" -n "$n" --pids "$SERVER_PIDS" \
        --size $EVENT_BYTES --labels "kind=$kind $labels" "${tls[@]}" "$@" >>"$RAW" 2>>"$WORK/loadgen.log" ||
        log "loadgen $kind n=$n exited non-zero (see the held/loss columns)"
}

cpu_of() { # sum of utime+stime ticks over $SERVER_PIDS
    local sum=0 p
    for p in ${SERVER_PIDS//,/ }; do
        sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$sum"
}

# handshakes KIND MODE(-new|-reuse) REP: two s_time clients in parallel.
handshakes() {
    local kind=$1 mode=$2 rep=$3 c0 c1 t0 t1 total=0 i pids=()
    c0=$(cpu_of); t0=$(date +%s.%N)
    for i in 1 2; do
        timeout 60 openssl s_time -connect 127.0.0.1:$PORT $mode -time "$HS_SECONDS" -www /healthz >"$WORK/st.$i" 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}" 2>/dev/null || true
    t1=$(date +%s.%N); c1=$(cpu_of)
    for i in 1 2; do
        total=$((total + $(grep -oE '^[0-9]+ connections in [0-9]+ real' "$WORK/st.$i" | awk '{print $1}' | head -1 || echo 0)))
    done
    echo "RESULT kind=$kind cell=handshake rep=$rep mode=${mode#-} connections=$total wall_s=$(awk "BEGIN{print $t1 - $t0}") server_cpu_ticks=$((c1 - c0)) hz=$(getconf CLK_TCK)" >>"$RAW"
}

# ---- the run -------------------------------------------------------------------------
ALL_N=$(echo $MEM_N $FANOUT_N | tr ' ' '\n' | sort -n | uniq | tr '\n' ' ')
KINDS="courant nchan"
[ -n "$BASE_BIN" ] && KINDS="$KINDS courant-clear baseline-clear"
log "$( [ "$QUICK" = 1 ] && echo QUICK || echo full ): $REPS reps, n = $ALL_N, kinds: $KINDS"
for rep in $(seq "$REPS"); do
    for n in $ALL_N; do
        args=()
        if echo " $FANOUT_N " | grep -q " $n "; then
            args=(--rate 10 --rate-events 30 --burst-events $((BURST_DELIVERIES / n)) --inflight 8 --timeout 30)
        fi
        for kind in $KINDS; do
            log "rep $rep/$REPS: $kind, $n subscribers"
            start_server "$kind"
            if [ "$kind" = courant ]; then
                curl -sk "https://127.0.0.1:$PORT/metrics" >"$WORK/m0" || true
            fi
            loadgen "$kind" "$n" "cell=matrix rep=$rep" --connect-timeout 60 "${args[@]}"
            if [ "$kind" = courant ]; then
                curl -sk "https://127.0.0.1:$PORT/metrics" >"$WORK/m1" || true
                d=$(( $(grep '^courant_deliveries_total ' "$WORK/m1" | awk '{print $2}') - $(grep '^courant_deliveries_total ' "$WORK/m0" | awk '{print $2}') ))
                r=$(( $(grep '^courant_tls_records_total ' "$WORK/m1" | awk '{print $2}') - $(grep '^courant_tls_records_total ' "$WORK/m0" | awk '{print $2}') ))
                echo "RESULT kind=courant cell=records rep=$rep n=$n deliveries=$d records=$r" >>"$RAW"
            fi
            stop_server
        done
    done
    for kind in courant nchan; do
        log "rep $rep/$REPS: $kind, handshakes for ${HS_SECONDS}s (full, then resumed)"
        start_server "$kind"
        handshakes "$kind" -new "$rep"
        handshakes "$kind" -reuse "$rep"
        stop_server
    done
done

ELAPSED=$(( $(date +%s) - START ))
mkdir -p "$OUT"
python3 - "$RAW" "$OUT/RESULTS-tls.md" "$QUICK" "$REPS" "$ELAPSED" "$BASELINE" "$(git rev-parse --short HEAD)" "$FANOUT_N" "$MEM_N" <<'PY'
import statistics, sys, time
raw, out, quick, reps, elapsed, baseline, head, fan_n, mem_n = sys.argv[1:]
rows = []
for line in open(raw):
    if line.startswith('RESULT'):
        rows.append(dict(kv.split('=', 1) for kv in line.split()[1:] if '=' in kv))
def sel(**k):
    return [r for r in rows if all(r.get(a) == str(b) for a, b in k.items())]
def med(vals):
    vals = [v for v in vals if v is not None]
    if not vals: return None
    return statistics.median(vals), min(vals), max(vals)
def fmt(m, d=1):
    if m is None: return 'n/a'
    f = lambda v: f'{v:,.{d}f}'
    return f(m[0]) if len(set(m)) == 1 or m[1] == m[2] else f'{f(m[0])} ({f(m[1])}–{f(m[2])})'
def per_rep(kind, cell, n, phase, key, fn=float):
    return {r['rep']: fn(r[key]) for r in sel(kind=kind, cell=cell, n=n, phase=phase) if key in r}
def ratio(a, b):
    v = [a[k] / b[k] for k in a if k in b and b[k]]
    return med(v)
lines = [f'# courant over TLS beside nginx + nchan over TLS', '',
         f'Generated by `bench/tls.sh` ({"QUICK=1, " if quick == "1" else ""}{reps} repetition(s); values are median (min–max)) '
         f'on {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, courant at {head}, {elapsed} s. '
         'Ratios are taken inside each repetition (the servers ran back to back), then summarized.', '']
lines += ['| metric | courant TLS | nginx+nchan TLS | courant/nchan |', '|---|---:|---:|---:|']
for n in mem_n.split():
    c = per_rep('courant', 'matrix', n, 'idle', 'kib_per_sub'); x = per_rep('nchan', 'matrix', n, 'idle', 'kib_per_sub')
    ch = per_rep('courant', 'matrix', n, 'idle', 'held'); xh = per_rep('nchan', 'matrix', n, 'idle', 'held')
    lines.append(f'| KiB per idle subscriber, N={int(n):,} (held {fmt(med(list(ch.values())),0)} / {fmt(med(list(xh.values())),0)}) | {fmt(med(list(c.values())),2)} | {fmt(med(list(x.values())),2)} | {fmt(ratio(c, x),2)}× |')
for n in fan_n.split():
    for key, label, d in [('deliveries_per_s', 'burst deliveries/s', 0), ('p99_us', 'burst p99 µs', 0), ('server_cpu_pct', 'burst server CPU %', 0)]:
        c = per_rep('courant', 'matrix', n, 'burst', key); x = per_rep('nchan', 'matrix', n, 'burst', key)
        lines.append(f'| {label}, N={int(n):,} | {fmt(med(list(c.values())),d)} | {fmt(med(list(x.values())),d)} | {fmt(ratio(c, x),2)}× |')
    c = per_rep('courant', 'matrix', n, 'burst', 'loss'); x = per_rep('nchan', 'matrix', n, 'burst', 'loss')
    lines.append(f'| burst loss, N={int(n):,} (max over reps) | {max(c.values()) if c else "n/a"} | {max(x.values()) if x else "n/a"} | |')
    c = per_rep('courant', 'matrix', n, 'rate', 'p50_us'); x = per_rep('nchan', 'matrix', n, 'rate', 'p50_us')
    lines.append(f'| latency p50 µs at 10 events/s, N={int(n):,} | {fmt(med(list(c.values())),0)} | {fmt(med(list(x.values())),0)} | {fmt(ratio(c, x),2)}× |')
for mode, label in [('new', 'full'), ('reuse', 'resumed')]:
    def hs(kind):
        return {r['rep']: int(r['connections']) / float(r['wall_s']) for r in sel(kind=kind, cell='handshake', mode=mode) if float(r['wall_s']) > 0}
    def cpu(kind):
        return {r['rep']: 1e6 * int(r['server_cpu_ticks']) / int(r['hz']) / max(1, int(r['connections'])) for r in sel(kind=kind, cell='handshake', mode=mode)}
    c, x = hs('courant'), hs('nchan')
    lines.append(f'| {label} handshakes/s (2 × `openssl s_time -{mode}`) | {fmt(med(list(c.values())),0)} | {fmt(med(list(x.values())),0)} | {fmt(ratio(c, x),2)}× |')
    c, x = cpu('courant'), cpu('nchan')
    lines.append(f'| server CPU µs per {label} handshake | {fmt(med(list(c.values())),0)} | {fmt(med(list(x.values())),0)} | {fmt(ratio(c, x),2)}× |')
rec = sel(kind='courant', cell='records')
if rec:
    lines += ['', '**Events per TLS record** (courant, from `/metrics`: deliveries / records over the whole cell):', '']
    for n in sorted({r['n'] for r in rec}, key=int):
        v = [int(r['deliveries']) / max(1, int(r['records'])) for r in rec if r['n'] == n and int(r['deliveries'])]
        if v:
            lines.append(f'- N={int(n):,}: {fmt(med(v),1)} events per record')
if sel(kind='baseline-clear'):
    lines += ['', f'**Cleartext, this branch beside {baseline[:10]} (its base)**', '',
              '| metric | this branch | base | branch/base |', '|---|---:|---:|---:|']
    for n in sorted({r['n'] for r in sel(kind='courant-clear')}, key=int):
        for phase, key, label, d in [('idle', 'kib_per_sub', 'KiB per idle subscriber', 2), ('burst', 'deliveries_per_s', 'burst deliveries/s', 0), ('rate', 'p50_us', 'latency p50 µs', 0)]:
            c = per_rep('courant-clear', 'matrix', n, phase, key); b = per_rep('baseline-clear', 'matrix', n, phase, key)
            if c:
                lines.append(f'| {label}, N={int(n):,} | {fmt(med(list(c.values())),d)} | {fmt(med(list(b.values())),d)} | {fmt(ratio(c, b),2)}× |')
open(out, 'w').write('\n'.join(lines) + '\n')
print('\n'.join(lines))
PY
log "wrote $OUT/RESULTS-tls.md (raw: $OUT/results-tls.raw)"
cp "$RAW" "$OUT/results-tls.raw"
