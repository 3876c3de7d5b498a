#!/usr/bin/env bash
# Interop with real client libraries and raw HTTP/1.x: chunked stream
# framing (one chunk per event), close-delimited streams for HTTP/1.0, HEAD,
# the retry field without a blank line, the lastEventId alias, and Debian's
# python3-requests reading a stream with iter_lines() as events are
# published (a close-delimited stream stalled it until the next event's
# bytes filled its buffer).
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3 # Debian's, with Debian's python3-requests (scripts/setup.sh)

start_courant --retry 1500 --heartbeat 0 || exit 1
HUB="$BASE/.well-known/mercure"

# raw_stream VERSION: opens a stream with a raw socket, publishes one event,
# prints the bytes received (Python repr).
raw_stream() {
    "$PY" - "$PORT" "$1" <<'EOF'
import socket, subprocess, sys, time
port, version = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(f"GET /.well-known/mercure?topic=raw HTTP/{version}\r\nHost: x\r\n\r\n".encode())
time.sleep(0.3)
subprocess.run(["curl", "-s", "-d", "topic=raw", "-d", "id=r1", "-d", "data=hello",
                f"http://127.0.0.1:{port}/.well-known/mercure"], capture_output=True, check=True)
s.settimeout(0.5)
out = b""
try:
    while b"hello" not in out:
        d = s.recv(65536)
        if not d:
            break
        out += d
except socket.timeout:
    pass
print(repr(out))
EOF
}

r11=$(raw_stream 1.1)
expect_match "HTTP/1.1 stream is chunked" "$r11" 'Transfer-Encoding: chunked'
expect_match "first chunk is the comment, then retry without a blank line" "$r11" '\\r\\n\\r\\n2\\r\\n:\\n\\r\\nc\\r\\nretry: 1500\\n\\r\\n'
expect_match "one chunk per event, sized in hex" "$r11" '\\r\\n14\\r\\nid: r1\\ndata: hello\\n\\n\\r\\n'
r10=$(raw_stream 1.0)
if printf '%s' "$r10" | grep -q 'Transfer-Encoding'; then
    not_ok "HTTP/1.0 stream is close-delimited" "$r10"
else
    expect_match "HTTP/1.0 stream is close-delimited" "$r10" ':\\nretry: 1500\\nid: r1\\ndata: hello\\n\\n'
fi

head=$(curl -s -I "$HUB?topic=x")
expect_match "HEAD is answered like GET" "$head" '^HTTP/1.1 200'
expect_match "HEAD names the stream type" "$head" $'Content-Type: text/event-stream\r'
expect_match "HEAD has no body" "$head" $'Content-Length: 0\r'

# lastEventId (event-source-polyfill's spelling) resumes like lastEventID.
for i in 1 2 3; do curl -s -o /dev/null -d topic=alias -d id="a$i" -d data="d$i" "$HUB"; done
alias=$(curl -s -N --max-time 1 "$HUB?topic=alias&lastEventId=a1")
expect_match "lastEventId is an alias of lastEventID" "$alias" 'id: a2'
if printf '%s' "$alias" | grep -q 'id: a1'; then not_ok "lastEventId replays after the id" "$alias"; else ok "lastEventId replays after the id"; fi

# python3-requests: each event must arrive when it is published, not when
# the next one pushes it through a buffer.
py=$("$PY" - "$PORT" <<'EOF'
import json, subprocess, sys, threading, time
import requests
port = int(sys.argv[1])
url = f"http://127.0.0.1:{port}/.well-known/mercure"
lags = []
def publish():
    time.sleep(0.3)
    for i in range(3):
        t = time.monotonic()
        subprocess.run(["curl", "-s", "-d", "topic=py", "-d", f"data={t}", url], capture_output=True, check=True)
        time.sleep(0.5)
threading.Thread(target=publish, daemon=True).start()
with requests.get(url, params={"topic": "py"}, stream=True, timeout=5) as r:
    for line in r.iter_lines(decode_unicode=True):
        if line.startswith("data: "):
            lags.append(time.monotonic() - float(line[6:]))
            if len(lags) == 3:
                break
print(json.dumps(lags))
EOF
)
if [ -z "$py" ]; then
    not_ok "python3-requests iter_lines gets each event at once" "no output"
elif "$PY" -c "import json,sys; l=json.loads(sys.argv[1]); sys.exit(0 if len(l)==3 and max(l) < 0.25 else 1)" "$py"; then
    ok "python3-requests iter_lines gets each event at once (lags $py s)"
else
    not_ok "python3-requests iter_lines gets each event at once" "lags $py s (want < 0.25 s each)"
fi

