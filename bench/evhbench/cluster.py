"""--cluster: evhost on a 3-master Redis Cluster against one redis-server, at
the same load: three streams, each pre-filled with N events by evh_loadgen
(on its key's master), drained by one evhost with the bench plugin; the
figure is events handled per second, from evhost's start to every group
having read and acknowledged everything (XINFO GROUPS: lag 0, pending 0).

Only throughput: the p99 at a fixed rate against a cluster is not measured
here (docs/benchmarks.md says so). Every process it starts is stopped, also
on failure.
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
    lines += ["plugins:", "  b1:", "    path: bench", "    config:", "      tag: b1", f"      result_key: {result_key}",
              "      work_us: 0", "channels:"]
    for k in keys:
        lines += [f"  {k}:", "    transport: stream",
                  "    stream: {group: bench, consumer: c1, count: 1000, start: beginning}",
                  "    routes:", "      - events: \"*\"", "        plugins: [b1]"]
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


def _run_once(args, workdir, cluster, ports, count):
    keys = _keys(ports, cluster)
    stream_keys = [f"bench:{k}" for k in keys]  # the environment prefix
    for key in stream_keys:
        port = _owner(ports, key) if cluster else ports[0]
        Redis(port).cmd("DEL", key)
        out = subprocess.run([os.path.join(args.build_dir, "bin", "evh_loadgen"), "--port", str(port), "--mode",
                              "xadd", "--target", key, "--count", str(count), "--rate", "0"],
                             capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"evh_loadgen failed: {out.stderr.strip()}")
    result_key = "bench:result:" + ("cluster" if cluster else "single")
    path = os.path.join(workdir, "evhost.yaml")
    with open(path, "w") as f:
        f.write(_config(ports, cluster, keys, workdir, result_key))
    log = open(os.path.join(workdir, "evhost.log"), "w")
    started = time.monotonic()
    proc = subprocess.Popen([os.path.join(args.build_dir, "bin", "evhost"), "--config", path], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        wait_until("evhost draining the streams", lambda: _drained(ports, cluster, stream_keys), 300, proc)
        seconds = time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    # The bench plugin's result lines (one per BENCH_END) count what it
    # handled: every event, or the figure means nothing.
    r = Redis(_owner(ports, result_key) if cluster else ports[0])
    received = sum(json.loads(line)["received"] for line in r.cmd("LRANGE", result_key, "0", "-1"))
    r.cmd("DEL", result_key)
    if received != STREAMS * count:
        raise RuntimeError(f"the bench plugin handled {received} events of {STREAMS * count}")
    return STREAMS * (count + 1) / seconds  # each stream's events and its BENCH_END


def run_cluster(args, out):
    """Runs both set-ups args.reps times; writes out/cluster.md; returns 0."""
    count = 20000 if args.quick else 1000000
    workdir = os.path.join(out, "runs")
    results = {"one node": [], "3-master cluster": []}
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
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=30)
    lines = ["| set-up | events/s (median) | runs |", "| --- | ---: | --- |"]
    for name, rates in results.items():
        lines.append(f"| {name} | {statistics.median(rates):,.0f} | {', '.join(f'{r:,.0f}' for r in rates)} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "cluster.md"), "w") as f:
        f.write(text)
    print(text)
    return 0
