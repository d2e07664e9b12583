"""--cluster: evhost on a 3-master Redis Cluster against one redis-server, at
the same load, with three stream channels (one on each master under the
cluster), each routed to its own bench plugin instance:

- drain: each stream pre-filled with N events by evh_loadgen (on its key's
  master), drained by one evhost; the figure is events handled per second,
  from evhost's start to every group having read and acknowledged
  everything (XINFO GROUPS: lag 0, pending 0);
- paced: evhost started on empty streams, then one evh_loadgen per stream
  XADDing at RATE/3 events/s for the same seconds, all three at once; the
  figures are each bench instance's end-to-end latency (the envelope's
  timestamp, taken by the load generator as it sends, to the plugin's call),
  p50 and p99 -- the worst of the three streams is reported.

Every process it starts is stopped, also on failure.
"""
import json
import os
import shutil
import statistics
import subprocess
import time

from .procs import free_port, wait_until
from .redis import Redis

MASTERS = 3
STREAMS = 3


def _start_node(workdir, cluster):
    port = free_port()
    d = os.path.join(workdir, f"node-{port}")
    os.makedirs(d)
    args = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
            "--dir", d, "--logfile", os.path.join(d, "redis.log")]
    if cluster:
        args += ["--cluster-enabled", "yes", "--cluster-config-file", os.path.join(d, "nodes.conf"),
                 "--cluster-port", str(free_port()), "--cluster-node-timeout", "2000"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        try:
            Redis(port, timeout=1).cmd("PING")
            return True
        except OSError:
            return False

    wait_until(f"redis-server :{port}", up, 10, proc)
    return port, proc


def _cluster_ok(ports):
    for p in ports:
        info = Redis(p, timeout=2).cmd("CLUSTER", "INFO")
        if "cluster_state:ok" not in info:
            return False
    return True


def _owner(ports, key):
    """The port of the master owning `key` (CLUSTER KEYSLOT, CLUSTER SLOTS)."""
    r = Redis(ports[0])
    slot = r.cmd("CLUSTER", "KEYSLOT", key)
    for start, end, master, *_ in r.cmd("CLUSTER", "SLOTS"):
        if start <= slot <= end:
            return master[1]
    raise RuntimeError(f"no master owns slot {slot}")


def _keys(ports, cluster):
    """The stream channels' logical names, one per master under a cluster
    (the first s<i> whose key, bench:s<i>, lands there)."""
    if not cluster:
        return [f"s{i}" for i in range(STREAMS)]
    keys, owners = [], set()
    i = 0
    while len(keys) < STREAMS:
        owner = _owner(ports, f"bench:s{i}")
        if owner not in owners:
            owners.add(owner)
            keys.append(f"s{i}")
        i += 1
    return keys


def _config(ports, cluster, keys, workdir, result_key):
    lines = ["environment: bench", "redis:"]
    if cluster:
        lines += ["  cluster: {nodes: [" + ", ".join(f"127.0.0.1:{p}" for p in ports) + "]}"]
    else:
        lines += ["  host: 127.0.0.1", f"  port: {ports[0]}"]
    lines += ["plugins:"]
    for i in range(len(keys)):  # one per stream: each its own latency histogram
        lines += [f"  b{i}:", "    path: bench", "    config:", f"      tag: b{i}", f"      result_key: {result_key}",
                  "      work_us: 0"]
    lines += ["channels:"]
    for i, k in enumerate(keys):
        lines += [f"  {k}:", "    transport: stream",
                  "    stream: {group: bench, consumer: c1, count: 1000, start: beginning}",
                  "    routes:", "      - events: \"*\"", f"        plugins: [b{i}]"]
    lines += ["limits:", "  max_in_flight: 20000", "dead_letter:",
              f"  fallback_file: {os.path.join(workdir, 'dead-letter.jsonl')}", "ops:", '  listen: ""', ""]
    return "\n".join(lines)


def _drained(ports, cluster, stream_keys):
    for key in stream_keys:
        port = _owner(ports, key) if cluster else ports[0]
        try:
            groups = Redis(port, timeout=2).cmd("XINFO", "GROUPS", key)
        except Exception:  # noqa: BLE001 -- not created yet
            return False
        if not groups:
            return False
        g = dict(zip(groups[0][0::2], groups[0][1::2]))
        if g.get("pending") != 0 or g.get("lag") not in (0, None) or g.get("entries-read") in (None, 0):
            return False
    return True


def _loadgen(args, port, key, count, rate):
    return [os.path.join(args.build_dir, "bin", "evh_loadgen"), "--port", str(port), "--mode", "xadd", "--target", key,
            "--count", str(count), "--rate", str(rate)]


def _groups_created(ports, cluster, stream_keys):
    for key in stream_keys:
        try:
            if not Redis(_owner(ports, key) if cluster else ports[0], timeout=2).cmd("XINFO", "GROUPS", key):
                return False
        except Exception:  # noqa: BLE001 -- the stream is not there yet
            return False
    return True


def _results(ports, cluster, result_key, want):
    """The bench instances' result lines (one per BENCH_END), once `want` are
    there; each must have handled every event it was sent, or the figures
    mean nothing."""
    r = Redis(_owner(ports, result_key) if cluster else ports[0])
    wait_until("the bench plugin's results", lambda: r.cmd("LLEN", result_key) >= want, 120)
    lines = [json.loads(line) for line in r.cmd("LRANGE", result_key, "0", "-1")]
    r.cmd("DEL", result_key)
    for line in lines:
        if line["received"] != line["sent"]:
            raise RuntimeError(f"bench instance {line['tag']} handled {line['received']} of {line['sent']} events")
    return lines


def _run_once(args, workdir, cluster, ports, count, rate=0):
    """One run: a drain of `count` pre-filled events per stream (rate 0;
    returns events/s), or `count` events per stream sent at `rate` events/s
    in all while evhost runs (returns the result lines)."""
    keys = _keys(ports, cluster)
    stream_keys = [f"bench:{k}" for k in keys]  # the environment prefix
    ports_of = [_owner(ports, key) if cluster else ports[0] for key in stream_keys]
    for key, port in zip(stream_keys, ports_of):
        Redis(port).cmd("DEL", key)
        if rate == 0:
            out = subprocess.run(_loadgen(args, port, key, count, 0), capture_output=True, text=True, timeout=300)
            if out.returncode != 0:
                raise RuntimeError(f"evh_loadgen failed: {out.stderr.strip()}")
    result_key = "bench:result:" + ("cluster" if cluster else "single")
    Redis(_owner(ports, result_key) if cluster else ports[0]).cmd("DEL", result_key)
    path = os.path.join(workdir, "evhost.yaml")
    with open(path, "w") as f:
        f.write(_config(ports, cluster, keys, workdir, result_key))
    log = open(os.path.join(workdir, "evhost.log"), "w")
    started = time.monotonic()
    proc = subprocess.Popen([os.path.join(args.build_dir, "bin", "evhost"), "--config", path], stdout=log,
                            stderr=subprocess.STDOUT)
    gens = []
    try:
        if rate == 0:
            wait_until("evhost draining the streams", lambda: _drained(ports, cluster, stream_keys), 300, proc)
            seconds = time.monotonic() - started
        else:
            wait_until("evhost's consumer groups", lambda: _groups_created(ports, cluster, stream_keys), 60, proc)
            gens = [subprocess.Popen(_loadgen(args, port, key, count, rate / len(stream_keys)),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                    for key, port in zip(stream_keys, ports_of)]
            for g in gens:
                _, err = g.communicate(timeout=600)
                if g.returncode != 0:
                    raise RuntimeError(f"evh_loadgen failed: {err.strip()}")
            return _results(ports, cluster, result_key, len(stream_keys))
    finally:
        for g in gens:
            if g.poll() is None:
                g.kill()
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    received = sum(line["received"] for line in _results(ports, cluster, result_key, len(stream_keys)))
    if received != STREAMS * count:
        raise RuntimeError(f"the bench plugin handled {received} events of {STREAMS * count}")
    return STREAMS * (count + 1) / seconds  # each stream's events and its BENCH_END


def run_cluster(args, out):
    """Runs both set-ups args.reps times; writes out/cluster.md; returns 0."""
    count = 20000 if args.quick else 1000000
    seconds = 1 if args.quick else 10
    paced_rates = (3000,) if args.quick else (30000, 90000)
    workdir = os.path.join(out, "runs")
    results = {"one node": [], "3-master cluster": []}
    paced = {}  # (set-up, rate) -> [(worst p50, worst p99) per run]
    for cluster, name in ((False, "one node"), (True, "3-master cluster")):
        procs, ports = [], []
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        try:
            for _ in range(MASTERS if cluster else 1):
                port, proc = _start_node(workdir, cluster)
                ports.append(port)
                procs.append(proc)
            if cluster:
                subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
                                "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True,
                               timeout=60)
                wait_until("cluster_state:ok", lambda: _cluster_ok(ports), 60)
            for rep in range(args.reps):
                rate = _run_once(args, workdir, cluster, ports, count)
                results[name].append(rate)
                print(f"{name}, run {rep + 1}: {rate:,.0f} events/s", flush=True)
                for total in paced_rates:
                    lines = _run_once(args, workdir, cluster, ports, int(total / STREAMS * seconds), total)
                    worst = (max(line["latency_us"]["p50"] for line in lines),
                             max(line["latency_us"]["p99"] for line in lines))
                    paced.setdefault((name, total), []).append(worst)
                    print(f"{name}, run {rep + 1}, {total:,} events/s for {seconds} s: p50 {worst[0]:,.0f} µs, "
                          f"p99 {worst[1]:,.0f} µs (worst stream)", flush=True)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=30)
    lines = ["| set-up | events/s (median) | runs |", "| --- | ---: | --- |"]
    for name, rates in results.items():
        lines.append(f"| {name} | {statistics.median(rates):,.0f} | {', '.join(f'{r:,.0f}' for r in rates)} |")
    lines += ["", f"| set-up | events/s (3 streams, {seconds} s) | p50 µs (median) | p99 µs (median) | p99 of each run |",
              "| --- | ---: | ---: | ---: | --- |"]
    for (name, total), runs in paced.items():
        lines.append(f"| {name} | {total:,} | {statistics.median(r[0] for r in runs):,.0f} | "
                     f"{statistics.median(r[1] for r in runs):,.0f} | {', '.join(f'{r[1]:,.0f}' for r in runs)} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "cluster.md"), "w") as f:
        f.write(text)
    print(text)
    return 0
