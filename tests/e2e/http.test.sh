#!/usr/bin/env bash
# HTTP behaviour of the foundation, with curl and raw sockets: seed parity
# headers, routes, limits and bad input, daemon behaviour.
source "$(dirname "$0")/lib.sh"

start_courant --demo --header-timeout 1 --max-header-bytes 1024 --max-event-bytes 4096 || exit 1

# --- seed parity --------------------------------------------------------------
hdrs=$(curl -s -N -D - -o /dev/null --max-time 1.5 "$BASE/events")
expect_match "GET /events is 200" "$hdrs" '^HTTP/1.1 200 OK'
expect_match "content type is text/event-stream" "$hdrs" $'Content-Type: text/event-stream\r'
expect_match "Cache-Control: no-cache" "$hdrs" $'Cache-Control: no-cache\r'
expect_match "X-Accel-Buffering: no" "$hdrs" $'X-Accel-Buffering: no\r'
expect_match "CORS allows any origin by default" "$hdrs" $'Access-Control-Allow-Origin: \\*\r'

body=$(curl -s -N --max-time 2.6 "$BASE/events")
ticks=$(printf '%s\n' "$body" | grep -cE '^data: [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$')
if [ "$ticks" -ge 2 ]; then ok "clock ticks every second ($ticks in 2.6 s)"; else not_ok "clock ticks every second" "got $ticks: $body"; fi
expect_match "each tick carries an id" "$body" '^id: urn:uuid:[0-9a-f-]{36}'
expect_match "stream opens with a comment" "$body" '^:'

pre=$(curl -s -i -X OPTIONS -H 'Origin: null' -H 'Access-Control-Request-Method: GET' \
      -H 'Access-Control-Request-Headers: last-event-id' "$BASE/events")
expect_match "OPTIONS preflight is answered 204" "$pre" '^HTTP/1.1 204'
expect_match "preflight allows Last-Event-ID" "$pre" 'Access-Control-Allow-Headers: .*Last-Event-ID'
expect_match "preflight allows GET" "$pre" 'Access-Control-Allow-Methods: .*GET'

# --- other routes ---------------------------------------------------------------
expect_eq "GET /healthz says ok" "$(curl -s "$BASE/healthz")" "ok"
expect_eq "unknown path is 404" "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/nope")" 404
expect_eq "wrong method is 405" "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$BASE/events")" 405
expect_match "405 names the allowed methods" "$(curl -s -i -X PUT "$BASE/healthz")" $'Allow: GET, HEAD\r'
expect_match "demo page is served at /" "$(curl -s "$BASE/")" '<html'
expect_match "demo script is served" "$(curl -s -i "$BASE/app.js")" 'Content-Type: text/javascript'
expect_match "metrics are Prometheus text" "$(curl -s "$BASE/metrics")" '^# TYPE courant_connections_open gauge'

# keep-alive: two requests over one connection
two=$(curl -s -v "$BASE/healthz" "$BASE/healthz" 2>&1)
expect_match "keep-alive reuses the connection" "$two" 'Re-using existing connection|Reusing existing connection'

# pipelined requests on one socket are answered in order
pipe=$(raw_request 127.0.0.1 "$PORT" 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' 2)
expect_match "pipelined requests answered in order" "$(printf '%s' "$pipe" | grep -E '^HTTP/1.1' | tr -d '\r' | tr '\n' ' ')" '^HTTP/1.1 200 OK HTTP/1.1 404 Not Found $'

# --- bad input -------------------------------------------------------------------
r=$(raw_request 127.0.0.1 "$PORT" 'GARBAGE\r\n\r\n')
expect_match "malformed request line is 400" "$r" '^HTTP/1.1 400 Bad Request'
expect_match "400 carries a plain-text reason" "$r" 'malformed request'
r=$(raw_request 127.0.0.1 "$PORT" 'GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n')
expect_match "space in a header name is 400" "$r" '^HTTP/1.1 400'
r=$(raw_request 127.0.0.1 "$PORT" 'GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n')
expect_match "obsolete line folding is 400" "$r" '^HTTP/1.1 400'
r=$(raw_request 127.0.0.1 "$PORT" 'GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n')
expect_match "Content-Length with Transfer-Encoding is 400" "$r" '^HTTP/1.1 400'
long=$(printf 'a%.0s' $(seq 1 1500))
r=$(raw_request 127.0.0.1 "$PORT" "GET /$long HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
expect_match "oversize request head is 431" "$r" '^HTTP/1.1 431'
r=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary "@-" "$BASE/.well-known/mercure" < <(head -c 5000 /dev/zero | tr '\0' 'a'))
expect_eq "oversize body is 413" "$r" 413
r=$(raw_request 127.0.0.1 "$PORT" 'POST /.well-known/mercure HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n')
expect_match "absurd Content-Length is refused" "$r" '^HTTP/1.1 (400|413)'

# slowloris: a head that never completes is cut after --header-timeout
t0=$(date +%s%N)
r=$(raw_request 127.0.0.1 "$PORT" 'GET /healthz HTTP/1.1\r\nHost: x\r\n' 4)
t1=$(date +%s%N)
expect_match "incomplete head times out with 408" "$r" '^HTTP/1.1 408'
ms=$(( (t1 - t0) / 1000000 ))
if [ "$ms" -lt 3500 ]; then ok "slow client cut within the timeout (${ms} ms)"; else not_ok "slow client cut within the timeout" "${ms} ms"; fi

grep -q 'refused 400' "$LOG" && ok "refusals are logged" || not_ok "refusals are logged" "no 'refused 400' in the log"
check "server still healthy after bad input" test "$(curl -s "$BASE/healthz")" = ok

# --- shutdown ---------------------------------------------------------------------
curl -s -N --max-time 10 "$BASE/events" >"$TMP/stream.out" 2>/dev/null &
cpid=$!
sleep 0.5
t0=$(date +%s%N)
stop_courant
t1=$(date +%s%N)
wait "$cpid"; crc=$?
expect_eq "SIGTERM exits 0" "$STOP_RC" 0
ms=$(( (t1 - t0) / 1000000 ))
if [ "$ms" -lt 4000 ]; then ok "SIGTERM stops within a few seconds (${ms} ms)"; else not_ok "SIGTERM stops quickly" "${ms} ms"; fi
expect_eq "open stream ended cleanly (curl exit 0, not a reset)" "$crc" 0

# --- daemon behaviour ----------------------------------------------------------------
out=$("$COURANT_BIN" --help)
for opt in listen workers demo max-connections header-timeout max-header-bytes max-event-bytes history heartbeat log-level; do
    printf '%s' "$out" | grep -q -- "--$opt" || { not_ok "--help lists --$opt"; continue; }
done
ok "--help lists the options"
err=$("$COURANT_BIN" --no-such-option 2>&1); rc=$?
if [ "$rc" -ne 0 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ]; then ok "bad option: one line, non-zero exit"; else not_ok "bad option" "rc=$rc: $err"; fi
err=$("$COURANT_BIN" --workers zero 2>&1); rc=$?
if [ "$rc" -ne 0 ] && printf '%s' "$err" | grep -q 'workers'; then ok "bad option value is named"; else not_ok "bad option value" "rc=$rc: $err"; fi

# a busy port (held by another program) is a one-line error
python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(30)' >"$TMP/busy" &
bpid=$!
for _ in $(seq 1 50); do [ -s "$TMP/busy" ] && break; sleep 0.1; done
bport=$(cat "$TMP/busy")
err=$("$COURANT_BIN" --listen "127.0.0.1:$bport" 2>&1); rc=$?
kill "$bpid" 2>/dev/null; wait "$bpid" 2>/dev/null
if [ "$rc" -ne 0 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && printf '%s' "$err" | grep -q 'in use'; then
    ok "busy port: one line, non-zero exit"; else not_ok "busy port" "rc=$rc: $err"; fi

# another courant on the same port is refused too, unless --reuse-port
start_courant || exit 1
err=$("$COURANT_BIN" --listen "127.0.0.1:$PORT" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && printf '%s' "$err" | grep -q 'in use'; then ok "a port held by another courant is busy"; else not_ok "port held by another courant" "rc=$rc: $err"; fi
first=$PID; firstport=$PORT
if start_courant --listen "127.0.0.1:$firstport" --reuse-port; then ok "--reuse-port joins the port"; stop_courant; else not_ok "--reuse-port joins the port"; fi
stop_courant "$first"

# environment variables configure it too
COURANT_WORKERS=1 COURANT_DEMO=1 start_courant || exit 1
grep -q 'courant ready: 1 workers' "$LOG" && ok "COURANT_WORKERS sets --workers" || not_ok "COURANT_WORKERS" "$(cat "$LOG")"
expect_match "COURANT_DEMO turns the demo on" "$(curl -s "$BASE/")" '<html'
stop_courant

# IPv6
if start_courant --listen '[::1]:0' --demo; then
    expect_eq "IPv6 listening works" "$(curl -s -g "${BASE}/healthz")" "ok"
    stop_courant
else
    not_ok "IPv6 listening works" "could not start on [::1]"
fi

# --max-connections: the connection past the cap gets 503
start_courant --max-connections 2 || exit 1
curl -s -N --max-time 3 "$BASE/events" >/dev/null & c1=$!
curl -s -N --max-time 3 "$BASE/events" >/dev/null & c2=$!
sleep 0.5
r=$(curl -s -i --max-time 2 "$BASE/healthz")
expect_match "past --max-connections the answer is 503" "$r" '^HTTP/1.1 503'
wait "$c1" "$c2"
sleep 0.3
expect_eq "after they close, connections are accepted again" "$(curl -s "$BASE/healthz")" ok
grep -q 'max-connections' "$LOG" && ok "the 503 is logged" || not_ok "the 503 is logged"
stop_courant
