#!/usr/bin/env python3
"""What one GET /metrics costs on a large deployment: 100 plugin instances
routed 20 event types each (2,000 per-(plugin, type) series families'
worth of samples), on one Pub/Sub channel and one stream, against a private
redis-server.

Starts evhost on the generated config, waits until it is ready, then
scrapes /metrics --scrapes times, --gap-ms apart (longer than the 100 ms a
snapshot is reused, so every scrape is a fresh one), and prints the
client-side time of each (request sent to body read: the loop's collect and
the streams' Redis round trip, rendering on the ops thread, the transfer),
the size of the answer, evhost's own evhost_ops_scrape_seconds over those\nscrapes, and the CPU evhost's threads spent meanwhile (from /proc).

    bench/scrape_cost.py --build-dir build [--plugins 100] [--types 20]

Standard library only; reuses bench/evhbench's Redis helpers.
"""
import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evhbench import ops_load, procs  # noqa: E402
from evhbench.redis import RedisServer  # noqa: E402


def config(port, plugins, types):
    names = [f"p{i + 1}" for i in range(plugins)]
    events = ", ".join(f"TYPE_{t + 1}" for t in range(types))
    lines = ["environment: bench", "redis:", "  host: 127.0.0.1", f"  port: {port}", "plugins:"]
    for n in names:
        lines += [f"  {n}:", "    path: bench", "    config:", f"      tag: {n}", "      result_key: bench:results"]
    lines += ["channels:"]
    for ch, transport in (("events", "pubsub"), ("jobs", "stream")):
        lines += [f"  {ch}:", f"    transport: {transport}"]
        if transport == "stream":
            lines += ["    stream: {group: g, consumer: c1}"]
        lines += ["    routes:", f"      - events: [{events}]", f"        plugins: [{', '.join(names)}]"]
    lines += ["ops:", '  listen: "127.0.0.1:0"', ""]
    return "\n".join(lines)


def get(address, path):
    c = http.client.HTTPConnection(*address, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def scrape_seconds(text, name="evhost_ops_scrape_seconds"):
    """(sum, count) of histogram `name` in an exposition."""
    sums = {}
    for line in text.splitlines():
        for key in (name + "_sum", name + "_count"):
            if line.startswith(key + " "):
                sums[key] = float(line.split()[1])
    return sums.get(name + "_sum", 0.0), sums.get(name + "_count", 0.0)


def thread_cpu(pid):
    """CPU milliseconds (user + system) of each of the process's threads, by thread id."""
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) * tick_ms
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--plugins", type=int, default=100)
    ap.add_argument("--types", type=int, default=20)
    ap.add_argument("--scrapes", type=int, default=50)
    ap.add_argument("--gap-ms", type=int, default=150)
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="evh-scrape-")
    redis = RedisServer(workdir)
    conf = os.path.join(workdir, "evhost.yaml")
    with open(conf, "w") as f:
        f.write(config(redis.port, args.plugins, args.types))
    log_path = os.path.join(workdir, "evhost.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([os.path.join(args.build_dir, "bin", "evhost"), "--config", conf], stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        address = ops_load.ops_address(log_path)
        procs.wait_until("evhost ready", lambda: get(address, "/readyz")[0] == 200, 30, proc)
        times = []
        size = samples = 0
        first = get(address, "/metrics")[1].decode()
        own_before = scrape_seconds(first)
        collect_before = scrape_seconds(first, "evhost_ops_collect_cpu_seconds")
        cpu_before = thread_cpu(proc.pid)
        for _ in range(args.scrapes):
            time.sleep(args.gap_ms / 1000)
            t0 = time.monotonic()
            status, body = get(address, "/metrics")
            times.append((time.monotonic() - t0) * 1000)
            if status != 200:
                raise RuntimeError(f"GET /metrics answered {status}")
            size = len(body)
            samples = sum(1 for line in body.split(b"\n") if line and not line.startswith(b"#"))
        cpu_after = thread_cpu(proc.pid)
        own_after = scrape_seconds(body.decode())
        collect_after = scrape_seconds(body.decode(), "evhost_ops_collect_cpu_seconds")
        print("\n".join(l for l in body.decode().splitlines() if l.startswith("evhost_ops_collect_cpu_seconds"))) if os.environ.get("EVH_SCRAPE_TIMES") else None
        print("in order (ms):", " ".join(f"{t:.1f}" for t in times)) if os.environ.get("EVH_SCRAPE_TIMES") else None
        times.sort()
        print(f"{args.plugins} plugins x {args.types} event types, 1 Pub/Sub channel and 1 stream: "
              f"{samples:,} samples, {size / 1024:.0f} KiB per scrape")
        print(f"GET /metrics, {len(times)} scrapes {args.gap_ms} ms apart (client side, ms): "
              f"median {statistics.median(times):.2f}, p90 {times[int(0.9 * (len(times) - 1))]:.2f}, "
              f"max {times[-1]:.2f}")
        n = own_after[1] - own_before[1]
        if n > 0:
            print("evhost_ops_scrape_seconds (asking the loop to its answer, Redis included): mean "
                  f"{(own_after[0] - own_before[0]) / n * 1000:.2f} ms over these {n:.0f}")
        collects = collect_after[1] - collect_before[1]
        if collects > 0:
            print("evhost_ops_collect_cpu_seconds (the loop thread's CPU per collect): mean "
                  f"{(collect_after[0] - collect_before[0]) / collects * 1e6:.0f} µs over {collects:.0f}")
        loop_ms = (cpu_after.get(proc.pid, 0) - cpu_before.get(proc.pid, 0)) / len(times)
        other_ms = (sum(cpu_after.values()) - sum(cpu_before.values())) / len(times) - loop_ms
        print(f"evhost CPU per scrape (/proc, idle work included): loop thread {loop_ms:.2f} ms, "
              f"other threads {other_ms:.2f} ms")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
