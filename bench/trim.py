#!/usr/bin/env python3
"""What stream trimming costs, at the shipped trim_maxlen (1,000,000, from
config/examples/durable.yaml): a stream of ENTRIES (1,100,000) entries is
consumed by evhost through a consumer group (the bench plugin, no work) and
trimmed every 10 s; the runner reports evhost's peak RSS (VmHWM), its RSS
at the end, the longest command in Redis's SLOWLOG and the stream's length.

  bench/trim.py --evhost build/bin/evhost --plugin-dir build/lib/evhost/plugins
                [--entries 1100000] [--seconds 35]

Figures, not assertions: docs/benchmarks/issue11-bounded-replies-and-trim.md
("Trimming a long stream"). Standard library only (the RESP client and
process helpers are bench/evhbench's).
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evhbench.procs import proc_status, wait_until  # noqa: E402
from evhbench.redis import RedisServer  # noqa: E402

KEY = "bench:bench:events"


def config(port, workdir):
    return "\n".join([
        "environment: bench",
        f"redis: {{host: 127.0.0.1, port: {port}}}",
        "plugins:",
        "  b1: {path: bench, config: {tag: b1, result_key: bench:results}}",
        "channels:",
        "  bench:events:",
        "    transport: stream",
        "    stream: {group: bench, consumer: bench-1, count: 100, trim_maxlen: 1000000, trim_interval_ms: 10000}",
        "    routes: [{events: [PRODUCT_CREATED], plugins: [b1]}]",
        f"dead_letter: {{fallback_file: {os.path.join(workdir, 'dead-letter.jsonl')}}}",
        "",
    ])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evhost", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--loadgen", default=None, help="evh_loadgen (default: next to --evhost)")
    ap.add_argument("--entries", type=int, default=1100000)
    ap.add_argument("--seconds", type=float, default=35.0, help="how long evhost runs after the stream is full")
    args = ap.parse_args()
    loadgen = args.loadgen or os.path.join(os.path.dirname(args.evhost), "evh_loadgen")
    with tempfile.TemporaryDirectory(prefix="evh-trim-") as work:
        redis = RedisServer(work)
        try:
            redis.r.cmd("CONFIG", "SET", "slowlog-log-slower-than", "1000")  # 1 ms
            subprocess.run([loadgen, "--port", str(redis.port), "--mode", "xadd", "--target", KEY, "--count",
                            str(args.entries)], check=True, stdout=subprocess.DEVNULL)
            redis.r.cmd("SLOWLOG", "RESET")
            cfg = os.path.join(work, "evhost.yaml")
            with open(cfg, "w") as f:
                f.write(config(redis.port, work))
            log = open(os.path.join(work, "evhost.log"), "w")
            proc = subprocess.Popen([args.evhost, "--config", cfg, "--plugin-dir", args.plugin_dir], stdout=log,
                                    stderr=subprocess.STDOUT)
            try:
                wait_until("evhost", lambda: proc_status(proc.pid, "VmRSS") is not None, 10, proc)
                start = time.monotonic()
                while time.monotonic() - start < args.seconds:
                    if proc.poll() is not None:
                        raise RuntimeError(f"evhost exited with {proc.returncode}")
                    time.sleep(0.2)
                hwm = proc_status(proc.pid, "VmHWM")
                rss = proc_status(proc.pid, "VmRSS")
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
                log.close()
            slow = redis.r.cmd("SLOWLOG", "GET", "1000")
            worst = max(slow, key=lambda e: e[2]) if slow else None
            pending = redis.r.cmd("XPENDING", KEY, "bench")[0]
            length = redis.r.cmd("XLEN", KEY)
            print(f"entries added:         {args.entries}")
            print(f"evhost VmHWM:          {hwm / 1e6:.1f} MB")
            print(f"evhost VmRSS at end:   {rss / 1e6:.1f} MB")
            if worst:
                cmd = " ".join(a.decode() if isinstance(a, bytes) else str(a) for a in worst[3][:6])
                print(f"slowest command:       {worst[2] / 1000:.1f} ms ({cmd} ...), {len(slow)} over 1 ms")
                by_name = {}
                for e in slow:
                    name = (e[3][0].decode() if isinstance(e[3][0], bytes) else str(e[3][0])).upper()
                    by_name[name] = max(by_name.get(name, 0), e[2])
                print("slowest per command:   " +
                      ", ".join(f"{n} {us / 1000:.1f} ms" for n, us in sorted(by_name.items(), key=lambda x: -x[1])))
            else:
                print("slowest command:       none over 1 ms")
            print(f"stream length at end:  {length} (pending {pending})")
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
