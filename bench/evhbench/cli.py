"""evhost's benchmark runner: throughput, latency and memory against the
plain hiredis + libuv limit, on a private redis-server.

Called by scripts/bench (which installs what is missing and builds first).
Every scenario runs --reps times (3 by default); the report gives medians with
min-max. Each run starts a fresh evhost (or reference subscriber), waits until
it is subscribed, measures its idle RSS, runs the load generator, collects the
benchmark plugin's JSON lines from Redis (RPUSH bench:results), reads evhost's
peak RSS (VmHWM), counts Redis's output-buffer disconnects and stops evhost
with SIGTERM.

Writes DIR/results.json (every run, every figure), DIR/results.md (the
table), DIR/latency.dat + DIR/latency.gp and, when gnuplot is installed,
DIR/latency.png. Standard library only.
"""
import argparse
import datetime
import http.client
import json
import os
import shutil
import subprocess
import sys

from . import jollyjet_report, report
from .jollyjet_runner import JollyRunner
from .jollyjet_scenarios import jollyjet_scenarios, slow_fsync_library
from .cluster import run_cluster
from .procs import pin_loop_cpus
from .redis import Redis, RedisError, RedisServer
from .runner import Runner
from .scenarios import scenarios


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", required=True, help="evhost build folder (with bin/evhost, bin/evh_loadgen, ...)")
    ap.add_argument("--out", required=True, help="folder for results.json, results.md, latency.png and logs")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each scenario (default 3)")
    ap.add_argument("--quick", action="store_true", help="small runs (20,000 events, 1 s), to check the tooling")
    ap.add_argument("--only", default="", help="run only scenarios whose name contains this text")
    ap.add_argument("--name", action="append", default=[],
                    help="run only the scenario of exactly this name (repeatable; with --only, both must match)")
    ap.add_argument("--scrape-path", default="/metrics",
                    help="with --ops-load, what the scraping variants GET (e.g. /healthz, to tell the cost of "
                         "the HTTP traffic from that of a metrics scrape; their names stay as they are)")
    ap.add_argument("--tls", action="store_true",
                    help="also run the 1-plugin max-rate and latency scenarios with evhost over TLS")
    ap.add_argument("--signed", action="store_true",
                    help="also run the 1-plugin max-rate and latency scenarios on a signed channel")
    ap.add_argument("--ops-load", action="store_true",
                    help="also run 1-plugin scenarios with /metrics scraped every 100 ms, with 1,000 idle and "
                         "slowloris ops connections, and with the ops listener off")
    ap.add_argument("--jollyjet", action="store_true",
                    help="instead, run the shipped JollyJet deployments (config/jollyjet.yaml, "
                         "config/examples/durable.yaml) with their real plugins: max rate and fixed rates, audit "
                         "fsync always / never / on a slow disk")
    ap.add_argument("--cluster", action="store_true",
                    help="instead, drain three pre-filled streams, then pace them at fixed rates, on one "
                         "redis-server and on a private 3-master Redis Cluster (events/s, p50/p99; "
                         "bench/evhbench/cluster.py)")
    ap.add_argument("--pin-loop", action="store_true",
                    help="evhost's event-loop thread alone on the first CPU, everything else (Redis, the load "
                         "generator, the scraper, evhost's other threads) on the others: a deployment whose "
                         "scraper is on another machine, on a machine of two cores")
    args = ap.parse_args()
    if args.reps < 1:
        ap.error("--reps must be at least 1")
    if args.pin_loop:
        if args.jollyjet or args.cluster:
            ap.error("--pin-loop pins one evhost of the default set: give it without --jollyjet or --cluster")
        try:
            args.loop_cpu, others = pin_loop_cpus()
        except ValueError as e:
            ap.error(str(e))
        # This process first, then every process and thread it starts.
        os.sched_setaffinity(0, others)
        args.other_cpus = others
    if args.cluster:
        if args.jollyjet or args.tls or args.signed or args.ops_load:
            ap.error("--cluster runs its own set: give no other mode with it")
        os.makedirs(args.out, exist_ok=True)
        return run_cluster(args, args.out)
    for exe in ("evhost", "evh_loadgen", "evh_ref_sub") + (("evh_e2e_probe",) if args.jollyjet else ()):
        if not os.access(os.path.join(args.build_dir, "bin", exe), os.X_OK):
            ap.error(f"{exe} not found in {args.build_dir}/bin: build first")
    if args.jollyjet and not os.path.exists(slow_fsync_library(args.build_dir)):
        ap.error(f"{slow_fsync_library(args.build_dir)} not found: build first")
    if args.jollyjet and (args.tls or args.signed or args.ops_load):
        ap.error("--jollyjet runs its own set: give --tls, --signed and --ops-load without it")
    os.makedirs(args.out, exist_ok=True)
    workdir = os.path.join(args.out, "runs")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)

    if args.jollyjet:
        every, make_runner, write_results = jollyjet_scenarios(args.quick), JollyRunner, jollyjet_report.write_results
    else:
        every, make_runner, write_results = (scenarios(args.quick, args.ops_load, args.tls, args.signed), Runner,
                                              report.write_results)
    specs = [s for s in every if args.only in s["name"] and (not args.name or s["name"] in args.name)]
    for s in specs:
        if s.get("scrape_ms"):
            s["scrape_path"] = args.scrape_path
    if not specs:
        ap.error(f"no scenario matches --only {args.only!r} and --name {args.name!r}")
    redis = RedisServer(workdir, tls=args.tls)
    started = datetime.datetime.now(datetime.timezone.utc)
    runs_by_scenario = {s["name"]: [] for s in specs}
    failures = []
    try:
        runner = make_runner(args, redis, workdir)
        # Repetitions interleave (all scenarios once, then again) so that a
        # slow minute of the machine does not land on one scenario only.
        for rep in range(1, args.reps + 1):
            for s in specs:
                label = f"[{rep}/{args.reps}] {s['name']}"
                try:
                    r = runner.run(s, rep)
                except (RuntimeError, RedisError, OSError, subprocess.TimeoutExpired, json.JSONDecodeError,
                        http.client.HTTPException) as e:
                    failures.append(f"{label}: {e}")
                    print(f"{label}: FAILED: {e}", file=sys.stderr, flush=True)
                    # A reply may still be on its way: talk to Redis afresh.
                    redis.r.close()
                    redis.r = Redis(redis.port)
                    continue
                r["spec"] = s
                runs_by_scenario[s["name"]].append(r)
                lat = r.get("latency_us")
                print(f"{label}: {r['events_per_s']:,.0f} events/s, lost {r['lost']}, "
                      f"obuf disconnects {r['obuf_disconnects']}"
                      + (f", p50 {lat['p50']:.0f} µs, p99 {lat['p99']:.0f} µs" if lat and lat['p50'] is not None
                         else ""),
                      file=sys.stderr, flush=True)
        redis_version = redis.version()
    finally:
        redis.stop()

    runs_by_scenario = {k: v for k, v in runs_by_scenario.items() if v}
    write_results(args, started, redis_version, runs_by_scenario, failures)
    return 1 if failures else 0
