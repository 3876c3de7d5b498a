#!/usr/bin/env python3
"""report.py - turns the RESULT lines of bench/run.sh into RESULTS.md,
results.png (gnuplot) and a table on stdout.

Each cell shows the median over the repetitions with min-max, for courant,
nchan and the floor. Ratios are taken inside each repetition (the three
servers ran back to back, under the same machine noise), then summarized
the same way.

    python3 bench/report.py --raw results.raw --out bench [...]
"""
import argparse, os, statistics, subprocess, sys, time

SERVERS = ["courant", "nchan", "floor"]  # --servers may add "courant@<rev>" (make bench BASELINE=<rev>)
BASE = None  # that baseline's name, when there is one


def parse(path):
    rows = []
    with open(path) as f:
        for line in f:
            if not line.startswith("RESULT "):
                continue
            d = {}
            for tok in line.split()[1:]:
                if "=" not in tok:
                    continue
                k, v = tok.split("=", 1)
                for conv in (int, float, str):
                    try:
                        d[k] = conv(v)
                        break
                    except ValueError:
                        pass
            rows.append(d)
    return rows


def pick(rows, **kw):
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]


def summary(vals):
    if not vals:
        return None
    return (statistics.median(vals), min(vals), max(vals))


def fmt_num(v, unit=""):
    if v is None:
        return "–"
    a = abs(v)
    if a >= 1e6:
        s = f"{v / 1e6:.2f}M"
    elif a >= 1e4:
        s = f"{v / 1e3:.0f}k"
    elif a >= 1e3:
        s = f"{v / 1e3:.1f}k"
    elif a >= 100:
        s = f"{v:.0f}"
    elif a >= 10:
        s = f"{v:.1f}"
    else:
        s = f"{v:.2f}"
    return s + unit


def fmt_sum(s, unit="", single=False):
    if s is None:
        return "–"
    med, lo, hi = s
    if single or lo == hi:
        return fmt_num(med, unit)
    return f"{fmt_num(med, unit)} ({fmt_num(lo)}–{fmt_num(hi)})"


def fmt_ratio(s):
    if s is None:
        return "–"
    med, lo, hi = s
    if lo == hi:
        return f"{med:.2f}×"
    return f"{med:.2f}× ({lo:.2f}–{hi:.2f})"


class Cell:
    """One line of the table: a metric of one phase at one N."""

    def __init__(self, rows, phase, n, key, scale=1.0, lower_better=True):
        self.per = {}
        self.by_rep = {}
        self.loss = {}
        for s in SERVERS:
            rs = pick(rows, cell="matrix", phase=phase, n=n, target=s)
            vals = [r[key] * scale for r in rs if key in r]
            self.per[s] = summary(vals)
            self.by_rep[s] = {r["rep"]: r[key] * scale for r in rs if key in r}
            self.loss[s] = max([r.get("loss", 0) for r in rs] or [0])
            if phase == "idle":
                self.loss[s] = max([1 - r["held"] / r["n"] for r in rs] or [0])
        self.lower_better = lower_better

    def ratio(self, other):
        a, b = self.by_rep["courant"], self.by_rep[other]
        rs = [a[k] / b[k] for k in a if k in b and b[k]]
        return summary(rs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", default="0")
    ap.add_argument("--elapsed", default="0")
    ap.add_argument("--reps", default="3")
    ap.add_argument("--cores", default="2")
    ap.add_argument("--rate", default="10")
    ap.add_argument("--rate-events", default="100")
    ap.add_argument("--event-bytes", default="100")
    ap.add_argument("--fanout-n", default="100 1000 10000")
    ap.add_argument("--mem-n", default="1000 10000 50000")
    ap.add_argument("--max-n", default="0")
    ap.add_argument("--servers", default="courant nchan floor")
    ap.add_argument("--scale-n", default="0")
    a = ap.parse_args()
    global SERVERS, BASE
    SERVERS = a.servers.split()
    BASE = next((s for s in SERVERS if s.startswith("courant@")), None)
    others = [s for s in SERVERS if s != "courant"]
    rows = parse(a.raw)
    fan = [int(x) for x in a.fanout_n.split()]
    mem = [int(x) for x in a.mem_n.split()]

    # (section, label, phase, n, key, scale, unit, lower is better)
    spec = []
    for n in mem:
        spec.append(("Memory (idle subscribers)", f"KiB per subscriber, N={n:,}", "idle", n, "kib_per_sub", 1, "", True))
    for n in mem:
        spec.append(("Memory (idle subscribers)", f"connects/s, N={n:,}", "idle", n, "connects_per_s", 1, "", False))
    for n in fan:
        spec.append((f"Latency at {a.rate} events/s", f"p50 ms, N={n:,}", "rate", n, "p50_us", 1e-3, "", True))
        spec.append((f"Latency at {a.rate} events/s", f"p99 ms, N={n:,}", "rate", n, "p99_us", 1e-3, "", True))
        spec.append((f"Latency at {a.rate} events/s", f"max ms, N={n:,}", "rate", n, "max_us", 1e-3, "", True))
    for n in fan:
        spec.append(("Throughput (burst, 8 publishes in flight)", f"deliveries/s, N={n:,}", "burst", n, "deliveries_per_s", 1, "", False))
    for n in fan:
        spec.append(("Throughput (burst, 8 publishes in flight)", f"events/s, N={n:,}", "burst", n, "events_per_s", 1, "", False))
    for n in fan:
        spec.append(("Throughput (burst, 8 publishes in flight)", f"burst p99 ms, N={n:,}", "burst", n, "p99_us", 1e-3, "", True))
    for n in fan:
        spec.append(("Throughput (burst, 8 publishes in flight)", f"publish round trip p50 ms, N={n:,}", "burst", n, "pub_rtt_p50_us", 1e-3, "", True))
    for n in fan:
        spec.append(("Throughput (burst, 8 publishes in flight)", f"KiB per subscriber after the burst, N={n:,}", "burst", n, "kib_after", 1, "", True))
    for n in fan:
        spec.append(("CPU during the burst", f"server CPU %, N={n:,}", "burst", n, "server_cpu_pct", 1, "", True))
    for n in fan:
        spec.append(("CPU during the burst", f"server CPU µs per 1k deliveries, N={n:,}", "burst", n, "cpu_per_kdeliv", 1, "", True))
    for n in fan:
        spec.append(("CPU during the burst", f"generator CPU %, N={n:,}", "burst", n, "gen_cpu_pct", 1, "", True))

    for r in rows:
        if r.get("phase") == "burst" and r.get("received"):
            r["cpu_per_kdeliv"] = r["server_cpu_s"] * 1e6 / (r["received"] / 1000)
        if r.get("phase") == "burst" and r.get("held"):
            r["kib_after"] = (r["rss_after_kib"] - r["rss_before_kib"]) / r["held"]

    cells = []
    for sec, label, phase, n, key, scale, unit, lb in spec:
        cells.append((sec, label, Cell(rows, phase, n, key, scale, lb)))

    lines = []
    lines.append("| metric | " + " | ".join(SERVERS) + " | " + " | ".join(f"courant/{o}" for o in others) + " |")
    lines.append("|---|" + "---:|" * (len(SERVERS) + len(others)))
    cur = None
    for sec, label, c in cells:
        if sec != cur:
            lines.append(f"| **{sec}** |" + " |" * (len(SERVERS) + len(others)))
            cur = sec
        vals = []
        for s in SERVERS:
            v = fmt_sum(c.per[s])
            if c.loss[s] > 0:
                v += f" **LOSS {100 * c.loss[s]:.3g}%**"
            vals.append(v)
        lines.append(f"| {label} | " + " | ".join(vals) + " | " + " | ".join(fmt_ratio(c.ratio(o)) for o in others) + " |")

    # loss summary per phase
    loss_lines = ["| phase | N | " + " | ".join(SERVERS) + " |", "|---|---:|" + "---:|" * len(SERVERS)]
    for phase in ("rate", "burst"):
        for n in fan:
            row = []
            for s in SERVERS:
                rs = pick(rows, cell="matrix", phase=phase, n=n, target=s)
                exp = sum(r["expected"] for r in rs)
                rec = sum(r["received"] for r in rs)
                row.append(f"{rec:,}/{exp:,}" + ("" if rec == exp else f" (**{100 * (1 - rec / exp):.3g}% lost**)") if exp else "–")
            loss_lines.append(f"| {phase} | {n:,} | " + " | ".join(row) + " |")

    # a pipelining publisher: one connection, 8 in flight, against 8 connections
    pipe = ["| server | 8 connections, 1 request each | 1 connection, 8 pipelined | pipelined / 8 connections |",
            "|---|---:|---:|---:|"]
    for s in SERVERS:
        many = {r["rep"]: r["deliveries_per_s"] for r in pick(rows, cell="matrix", phase="burst", n=1000, target=s)}
        one = {r["rep"]: r["deliveries_per_s"] for r in pick(rows, cell="pipeline", phase="burst", n=1000, target=s)}
        if not one:
            continue
        lost = max([r.get("loss", 0) for r in pick(rows, cell="pipeline", phase="burst", target=s)] or [0])
        ratio = summary([one[k] / many[k] for k in one if k in many and many[k]])
        pipe.append(f"| {s} | {fmt_sum(summary(list(many.values())))} | {fmt_sum(summary(list(one.values())))}"
                    + (f" **LOSS {100 * lost:.3g}%**" if lost > 0 else "") + f" | {fmt_ratio(ratio)} |")

    # fan-out at scale
    scale_rows = []
    for s in ("courant+redis", "nchan"):
        idle = pick(rows, cell="scale", target=s, phase="idle")
        if not idle:
            continue
        i = idle[0]
        ph = {p: (pick(rows, cell="scale", target=s, phase=p) or [{}])[0] for p in ("rate", "rate2", "burst")}
        def lat(r):
            if not r:
                return "–"
            out = f"{r['p50_us'] / 1e3:.1f} / {r['p99_us'] / 1e3:.1f}"
            return out + (f" **LOSS {100 * r['loss']:.3g}%**" if r.get("loss", 0) > 0 else "")
        b = ph["burst"]
        scale_rows.append(f"| {s} | {i['held']:,}/{i['n']:,} ({i['procs']} load processes) | {i['connects_per_s']:,.0f} | "
                     f"{i['kib_per_sub']:.2f} | {lat(ph['rate'])} | {lat(ph['rate2'])} | "
                     + (f"{fmt_num(b['deliveries_per_s'])} (p99 {b['p99_us'] / 1e3:.0f} ms)"
                        + (f" **LOSS {100 * b['loss']:.3g}%**" if b.get("loss", 0) > 0 else "") if b else "–") + " |")
    if scale_rows:
        scale_rows = ["| server | held | connects/s | KiB/sub | 1 event/s: p50 / p99 ms | 10 events/s: p50 / p99 ms | burst of 20 events: deliveries/s |",
                 "|---|---:|---:|---:|---:|---:|---:|"] + scale_rows

    # one process, largest held, self-check
    extra = []
    one = ["| server (one process) | asked | held (median, min–max) | refused/failed | KiB/sub |", "|---|---:|---:|---:|---:|"]
    for s in ("courant", "nchan"):
        rs = pick(rows, cell="oneproc", target=s, phase="idle")
        if rs:
            held = summary([r["held"] for r in rs])
            one.append(f"| {s} | {rs[0]['n']:,} | {held[0]:,.0f} ({held[1]:,.0f}–{held[2]:,.0f}) | "
                       f"{max(r['refused'] for r in rs):,}/{max(r['failed'] for r in rs):,} | "
                       f"{statistics.median([r['kib_per_sub'] for r in rs]):.2f} |")
    mx = pick(rows, cell="max", target="courant", phase="idle")
    sc = pick(rows, cell="selfcheck", phase="rate")

    def git(*args):
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:
            return ""
    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "src")
    rev += " (with uncommitted changes in src/)" if dirty else ""

    md = []
    md.append("# courant benchmark results\n")
    md.append(f"Generated by `{'make bench QUICK=1' if a.quick == '1' else 'make bench'}` on "
              f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {a.cores} cores, measurements took {int(a.elapsed) // 60} min "
              f"{int(a.elapsed) % 60} s, courant at commit {rev}. Each cell ran {a.reps} times; values are **median (min–max)**. "
              "Ratios are computed inside each repetition (courant, nchan and the floor ran back to back "
              "under the same machine noise), then summarized the same way. The machine is shared and noisy: "
              "trust the ratios more than the absolute numbers.\n")
    md.append("![results](results.png)\n")
    md.append("## Setup\n")
    md.append(f"- **courant**: `build/courant --workers {a.cores} --heartbeat 0 --log-level warn` (history 1000); "
              f"past 18,000 subscribers, ceil(N/18,000) processes with `--reuse-port --workers 1`.")
    md.append(f"- **nchan**: Debian nginx + libnginx-mod-nchan, `worker_processes {a.cores}` (ceil(N/18,000) past one process' "
              "worth), `worker_rlimit_nofile 20000`, `worker_connections 19990`, `listen ... reuseport`, "
              "`nchan_message_buffer_length 1000`, `nchan_message_timeout 0`, one `nchan_publisher` location "
              "and one `nchan_subscriber eventsource` location (`nchan_subscriber_first_message newest`).")
    md.append(f"- **floor** (`bench/floor.c`): {a.cores} threads, accepts the streams and `send()`s the same "
              "`data: ...\\n\\n` buffer to each (all events waiting in its inbox at once, one syscall per "
              "stream, epoll for EAGAIN). Minimal HTTP. No server can do less work.")
    md.append(f"- **load generator** (`bench/loadgen.c`): ceil(N/18,000) subscriber processes (epoll, source addresses "
              f"spread over 127.0.0.2–251), streams parsed with courant's `sse_parser`; events carry their "
              f"CLOCK_MONOTONIC send time and are {a.event_bytes} bytes of data; the publisher POSTs over "
              "keep-alive connections (courant/floor: form `topic=&data=`, nchan: raw body).")
    md.append(f"- **latency**: {a.rate_events} events at {a.rate}/s (one to four publish connections), publish-to-receive "
              "time over every delivery.")
    md.append("- **throughput**: a bounded burst of E events (E × N = 2M deliveries; 1M at N=100; half in QUICK), at most "
              "8 POSTs in flight, measured from the first publish to the last delivery; zero loss required.")
    md.append("- **loss**: expected deliveries = planned events × requested subscribers, so a refused subscriber, a failed "
              "publish or a missing delivery all count.\n")
    md.append("## Results\n")
    md.extend(lines)
    if len(pipe) > 2:
        md.append("\n## A pipelining publisher (N=1,000 burst)\n")
        md.append("The same burst published over one keep-alive connection with 8 requests pipelined "
                  "(`loadgen --pub-conns 1 --inflight 8`), run right after the same server's matrix cell with 8 "
                  "connections of one request each; ratios per repetition.\n")
        md.extend(pipe)
    if scale_rows:
        md.append(f"\n## Fan-out at scale ({int(a.scale_n):,} subscribers, one run)\n")
        md.append("courant as ceil(N/18,000) processes on one port (`--reuse-port --workers 1`), sharing events "
                  "and history through one loopback redis-server (`--redis`; Redis's CPU and memory counted with "
                  "courant's); nchan as as many nginx workers (shared memory). The load generator spreads the "
                  "subscribers over as many processes. Latency: 10 events at 1/s, then 50 at 10/s; then a burst "
                  "of 20 events, 8 publishes in flight. Zero loss required.\n")
        md.extend(scale_rows)
    md.append("\n## Deliveries (all repetitions)\n")
    md.extend(loss_lines)
    md.append("\n## Subscribers one process holds (20,000-descriptor cap)\n")
    md.extend(one)
    if mx:
        r = mx[0]
        md.append("\n## Largest number of subscribers courant held\n")
        md.append(f"{r['held']:,} of {r['n']:,} asked ({r['failed']:,} failed, {r['refused']:,} refused), over "
                  f"{r['procs']} courant processes sharing one port (`--reuse-port --workers 1`) and as many load "
                  f"generator processes; connected in {r['connect_s']:.1f} s ({r['connects_per_s']:,.0f}/s); "
                  f"server RSS {r['rss_before_kib'] / 1024:.0f} → {r['rss_idle_kib'] / 1024:.0f} MiB, "
                  f"{r['kib_per_sub']:.2f} KiB per subscriber. The ask is the bench's cap "
                  f"(BENCH_MAX_N), not a limit courant hit.\n")
    if sc:
        r = sc[0]
        ok = r["loss"] > 0
        md.append("\n## Loss accounting self-check\n")
        md.append(f"courant killed (SIGKILL) 2.5 s into a {r['events']}-event rate phase with {r['n']} subscribers: "
                  f"{r['pub_ok']} publishes accepted, {r['pub_fail']} failed, {r['received']:,}/{r['expected']:,} "
                  f"deliveries → loss {100 * r['loss']:.1f}% — **{'PASS' if ok else 'FAIL'}** (must be > 0).\n")
    md.append("\n## How to read it\n")
    md.append("- KiB per subscriber = (server RSS with N idle streams − RSS before) / N, RSS summed over every server process "
              "(nginx: master and workers; shared memory pages touched by several workers count in each). Kernel socket "
              "buffers are not in any RSS.")
    md.append("- The load generator shares the 2 cores with the server: *generator CPU %* near 100 % per subscriber "
              "process means the generator, not the server, set the pace; the floor shows that ceiling.")
    md.append("- Latency includes the generator reading N sockets in turn: at N=10,000 the last stream is read "
              "milliseconds after the first even for the floor.")
    md.append("- *publish round trip*: POST sent to answer read, during the burst. A server that answers late "
              "paces the publisher (8 in flight), so fewer events wait to go out together and each write carries fewer.")
    md.append("- *KiB per subscriber after the burst*: RSS once the burst was delivered, minus RSS before the "
              "subscribers came, per subscriber: what a burst leaves behind.")
    md.append("- Raw lines: `bench/results.raw` (one RESULT line per phase and run).")
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "RESULTS.md"), "w") as f:
        f.write("\n".join(md) + "\n")

    # ---- chart -------------------------------------------------------------------
    panels = [
        ("KiB per idle subscriber (log)", [(f"{n // 1000}k" if n >= 1000 else str(n), "idle", n, "kib_per_sub", 1) for n in mem], True),
        (f"p99 latency at {a.rate} ev/s, ms (log)", [(f"{n // 1000}k" if n >= 1000 else str(n), "rate", n, "p99_us", 1e-3) for n in fan], True),
        ("burst: deliveries/s, millions", [(f"{n // 1000}k" if n >= 1000 else str(n), "burst", n, "deliveries_per_s", 1e-6) for n in fan], False),
        ("burst: server CPU µs per 1k deliveries (log)", [(f"{n // 1000}k" if n >= 1000 else str(n), "burst", n, "cpu_per_kdeliv", 1) for n in fan], True),
    ]
    tmp = os.path.join(a.out, ".plot")
    os.makedirs(tmp, exist_ok=True)
    gp = ["set terminal pngcairo size 1400,900 font 'sans,10'",
          f"set output '{os.path.join(a.out, 'results.png')}'",
          f"set multiplot layout 2,2 title '{' vs '.join(SERVERS)} (median, whiskers min–max; x: subscribers)'",
          "set style data histograms", "set style histogram errorbars gap 1 lw 1",
          "set style fill solid 0.75 border -1", "set grid ytics", "set key top left",
          "set boxwidth 0.9"]
    for i, (title, cols, logy) in enumerate(panels):
        path = os.path.join(tmp, f"p{i}.dat")
        lows = []
        with open(path, "w") as f:
            for lab, phase, n, key, scale in cols:
                out = [lab]
                for s in SERVERS:
                    rs = pick(rows, cell="matrix", phase=phase, n=n, target=s)
                    sm = summary([r[key] * scale for r in rs if key in r]) or (0, 0, 0)
                    lows += [v for v in sm if v > 0]
                    out += [f"{v:.6g}" for v in sm]
                f.write(" ".join(out) + "\n")
        gp.append(f"set title \"{title}\"")
        gp.append("set logscale y" if logy else "unset logscale y")
        if logy and lows:
            gp.append(f"set yrange [{min(lows) / 2:.6g}:*]")
        else:
            gp.append("set yrange [0:*]")
        colors = {"courant": "#1f77b4", "nchan": "#ff7f0e", "floor": "#2ca02c"}
        parts = []
        for k, srv in enumerate(SERVERS):
            c0 = 2 + 3 * k
            using = f"{c0}:{c0 + 1}:{c0 + 2}" + (":xtic(1)" if k == 0 else "")
            src = "''" if k else f"'{path}'"
            parts.append(f"{src} using {using} title '{srv}' lc rgb '{colors.get(srv, '#9467bd')}'")
        gp.append("plot " + ", ".join(parts))
    gp.append("unset multiplot")
    gpf = os.path.join(tmp, "results.gp")
    with open(gpf, "w") as f:
        f.write("\n".join(gp) + "\n")
    try:
        r = subprocess.run(["gnuplot", gpf], capture_output=True, text=True)
        if r.returncode:
            print(r.stderr, file=sys.stderr)
    except FileNotFoundError:
        print("report.py: gnuplot missing, no chart (run.sh installs gnuplot-nox)", file=sys.stderr)
    subprocess.run(["rm", "-rf", tmp])

    print("\n".join(lines))
    print()
    print("\n".join(loss_lines))
    print()
    print("\n".join(one))
    if len(pipe) > 2:
        print()
        print("\n".join(pipe))
    if scale_rows:
        print()
        print("\n".join(scale_rows))
    if mx:
        print(f"\nlargest held: courant {mx[0]['held']:,}/{mx[0]['n']:,} over {mx[0]['procs']} processes, "
              f"{mx[0]['kib_per_sub']:.2f} KiB/subscriber")
    if sc:
        print(f"loss self-check: {'PASS' if sc[0]['loss'] > 0 else 'FAIL'} (loss {100 * sc[0]['loss']:.1f}% after killing the server)")
    print(f"\nwrote {os.path.join(a.out, 'RESULTS.md')} and {os.path.join(a.out, 'results.png')}")


if __name__ == "__main__":
    main()
