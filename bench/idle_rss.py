#!/usr/bin/env python3
"""idle_rss.py - courant's memory per idle subscriber.

Starts build/courant on a loopback port, opens N /events streams (default
10,000), waits until every one has received its response head, and reports
the server's RSS before and after, as KiB per subscriber. Bounded: gives up
after 60 s. Until `make bench` (bench/) lands, this is the measurement the
foundation issue asks for.

    python3 bench/idle_rss.py [N] [path/to/courant]
"""
import os, resource, selectors, socket, subprocess, sys, threading, time

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    binary = sys.argv[2] if len(sys.argv) > 2 else "build/courant"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--heartbeat", "0"],
                            stderr=subprocess.PIPE, text=True)
    port = None
    for line in proc.stderr:
        if "listening on http://" in line:
            port = int(line.split("listening on http://")[1].split("/")[0].rsplit(":", 1)[1])
        if "courant ready" in line:
            break
    # keep draining the server's log so it can never block on a full pipe
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    time.sleep(0.3)
    before = rss_kib(proc.pid)
    sel = selectors.DefaultSelector()
    socks, pending, deadline = [], {}, time.time() + 60
    req = b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
    for i in range(n):
        s = socket.socket()
        s.connect(("127.0.0.1", port))
        s.sendall(req)
        s.setblocking(False)
        socks.append(s)
        pending[s] = b""
        sel.register(s, selectors.EVENT_READ)
        if i % 500 == 499:  # drain as we go so the accept queue never overflows
            for key, _ in sel.select(0):
                pass
    done = 0
    while done < n and time.time() < deadline:
        for key, _ in sel.select(1):
            s = key.fileobj
            data = s.recv(4096)
            pending[s] += data
            if b"\r\n\r\n" in pending[s]:
                sel.unregister(s)
                done += 1
    time.sleep(0.5)
    after = rss_kib(proc.pid)
    proc.terminate()
    proc.wait(timeout=10)
    for s in socks:
        s.close()
    print(f"subscribers={done}/{n} rss_before_kib={before} rss_after_kib={after} "
          f"kib_per_subscriber={(after - before) / max(done, 1):.3f}")
    sys.exit(0 if done == n else 1)

if __name__ == "__main__":
    main()
