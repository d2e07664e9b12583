"""One --jollyjet run: a shipped deployment with its real plugins, from an
empty Redis.

What is measured, and how:
  - time to handle all, events/s (max rate): a stream run starts when
    evhost's group first reads (XINFO GROUPS polled every 5 ms) and ends
    when every entry is read and acknowledged -- done by both plugins, or
    dead-lettered. A Pub/Sub run starts as the load generator starts and
    ends when evhost has finished (handled or dead-lettered) or refused
    every event, by /metrics polled every 110 ms (evhost reuses a snapshot
    for 100 ms), the end interpolated between the last two polls.
  - p50/p99 end-to-end (fixed rates): evh_e2e_probe, from the load
    generator's send time to the later of the product plugin's notification
    and the audit plugin's stream copy (bench/e2e_probe.c says why those).
  - CPU µs per event, evhost's and redis-server's: their threads' CPU time
    (/proc/PID/task/*/schedstat) over the run, over the events sent.
    Redis's includes serving the load generator (and the probe).
  - Redis commands per event: INFO commandstats before and after, less the
    calls of the other clients, known by count (the load generator's
    PUBLISH/XADD, the probe's SUBSCRIBE and XREADs, the runner's INFO and
    XINFO); evhost's own start-up commands count in a stream run at max
    rate (its "before" is taken before evhost starts), and so do the
    XINFO GROUPS + XPENDING a /metrics scrape of a stream makes (at most 2
    per 100 ms).
"""
import json
import os
import signal
import subprocess
import time

from . import measures
from .jollyjet_scenarios import (AUDIT_STREAM_KEY, GROUP, NOTIFICATIONS, PRODUCT_CHANNEL, deployment_config,
                                 deployment_env, redis_name)
from .ops_load import ops_address
from .procs import cpu_ns, wait_until
from .redis import RedisError

POLL_S = 0.11  # /metrics: just over evhost's 100 ms snapshot reuse, so every poll is fresh
STALL_S = 60.0  # no progress for this long: the run ends with what it has


class JollyRunner:
    def __init__(self, args, redis, workdir):
        self.args, self.redis, self.workdir = args, redis, workdir
        self.bin = os.path.abspath(os.path.join(args.build_dir, "bin"))  # evhost runs in the run's folder
        self.key = redis_name(PRODUCT_CHANNEL)

    def _loadgen(self, s, run_id, rate):
        cmd = [os.path.join(self.bin, "evh_loadgen"), "--port", str(self.redis.port), "--mode",
               "publish" if s["transport"] == "pubsub" else "xadd", "--target", self.key, "--count", str(s["count"]),
               "--rate", str(rate), "--run-id", run_id]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        if out.returncode != 0:
            raise RuntimeError(f"evh_loadgen failed ({out.returncode}): {out.stderr.strip()}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def _group(self):
        """The consumer group's XINFO GROUPS fields, or None before it exists."""
        self.xinfo_calls += 1
        try:
            for g in self.redis.r.cmd("XINFO", "GROUPS", self.key):
                fields = dict(zip(g[::2], g[1::2]))
                if fields.get("name") == GROUP:
                    return fields
        except RedisError:
            pass
        return None

    def _snapshot(self, pid):
        return dict(t=time.monotonic(), evhost=cpu_ns(pid), redis=cpu_ns(self.redis.proc.pid))

    def run(self, s, rep):
        r = self.redis.r
        r.cmd("FLUSHALL")  # every run from an empty Redis: no read model, marks or dead letters left over
        self.xinfo_calls = 0
        run_id = f"jj-{s['deployment']}-{s['rate']}-{s['fsync']}{'-slow' if s['slow_fsync_us'] else ''}-{rep}"
        state = os.path.abspath(os.path.join(self.workdir, run_id))  # evhost runs in it
        os.makedirs(state, exist_ok=True)
        conf = os.path.join(state, "evhost.yaml")
        with open(conf, "w") as f:
            f.write(deployment_config(s))
        log_path = os.path.join(state, "evhost.log")
        result = dict(scenario=s["name"], rep=rep, log=os.path.relpath(log_path, self.workdir))
        prefilled = s["kind"] == "jj-max" and s["transport"] == "stream"
        if prefilled:
            result["loadgen"] = self._loadgen(s, run_id, 0)
            r.cmd("XGROUP", "CREATE", self.key, GROUP, "0")  # from the first entry (evhost would start at $)
        obuf_before = self.redis.obuf_disconnects()
        # The stream runs at max rate read from evhost's start: their "before" is now.
        calls_before = measures.command_calls(r) if prefilled else None
        log = open(log_path, "w")
        proc = subprocess.Popen([os.path.join(self.bin, "evhost"), "--config", conf, "--ops-listen", "127.0.0.1:0"],
                                stdout=log, stderr=subprocess.STDOUT, cwd=state,
                                env=deployment_env(s, self.redis.port, state, self.args.build_dir))
        probe = None
        try:
            address = ops_address(log_path)
            if prefilled:
                before, t_end = self._drain_stream(s, proc)
            else:
                wait_until("evhost ready", lambda: self._ready(address), 30, proc)
                time.sleep(1.0)  # settle
                calls_before = measures.command_calls(r)
                if s["kind"] == "jj-rate":
                    probe = self._start_probe(s, state)
                before = self._snapshot(proc.pid)
                counts_before = measures.event_counts(address, PRODUCT_CHANNEL)
                result["loadgen"] = self._loadgen(s, run_id, s["rate"])
                t_end = self._wait_finished(s, address, counts_before)
            after = self._snapshot(proc.pid)
            calls_after = measures.command_calls(r)  # before evhost's shutdown and the probe's last XREADs
            time.sleep(POLL_S)
            counts = measures.event_counts(address, PRODUCT_CHANNEL)
            if probe is not None:
                result["probe"] = self._stop_probe(probe)
        finally:
            if probe is not None and probe.poll() is None:
                probe.kill()
                probe.wait()
            proc.send_signal(signal.SIGTERM)
            try:
                result["exit_code"] = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                result["exit_code"] = proc.wait()
            log.close()
        result["obuf_disconnects"] = self.redis.obuf_disconnects() - obuf_before
        return self._figures(s, result, before, after, t_end, counts, calls_before, calls_after, prefilled)

    def _ready(self, address):
        import http.client
        try:
            c = http.client.HTTPConnection(*address, timeout=5)
            c.request("GET", "/readyz")
            ok = c.getresponse().status == 200
            c.close()
            return ok
        except OSError:
            return False

    def _drain_stream(self, s, proc):
        """Waits for evhost's first read of the pre-filled stream, then for
        every entry (and the load generator's end sentinel) to be read and
        acknowledged. Returns the snapshot at the start and the end time."""
        before, start = None, self._snapshot(proc.pid)
        last_progress, last_read = time.monotonic(), -1
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"evhost exited with {proc.returncode} during the run")
            snap = self._snapshot(proc.pid)
            g = self._group()
            read = int(g.get("entries-read") or 0) if g else 0  # Redis 7: entries delivered to the group
            if before is None:
                if read == 0:
                    start = snap
                else:
                    before = start  # the last poll that saw nothing read yet
            if before is not None and read >= s["count"] + 1 and int(g["pending"]) == 0:
                return before, time.monotonic()
            now = time.monotonic()
            if read != last_read:
                last_progress, last_read = now, read
            elif now - last_progress > STALL_S:
                raise RuntimeError(f"the stream drain stalled at {read} entries read")
            time.sleep(0.005)

    def _wait_finished(self, s, address, counts_before):
        """Polls /metrics until every event is finished or refused; returns
        the interpolated time the last one was."""
        prev_t, prev_n = time.monotonic(), 0
        last_progress = prev_t
        while True:
            time.sleep(POLL_S)
            c = measures.event_counts(address, PRODUCT_CHANNEL)
            t = time.monotonic()
            n = (c["finished"] - counts_before["finished"]) + (c["refused"] - counts_before["refused"])
            if n >= s["count"]:
                if n > prev_n:
                    return prev_t + (t - prev_t) * (s["count"] - prev_n) / (n - prev_n)
                return t
            if n != prev_n:
                last_progress = t
            elif t - last_progress > STALL_S:
                return None  # lost: what never arrives (Redis cut the subscriber off, say)
            prev_t, prev_n = t, n

    def _start_probe(self, s, state):
        ready = os.path.join(state, "probe.ready")
        cmd = [os.path.join(self.bin, "evh_e2e_probe"), "--port", str(self.redis.port), "--count", str(s["count"]),
               "--notifications", NOTIFICATIONS, "--audit-stream", redis_name(AUDIT_STREAM_KEY), "--ready-file",
               ready, "--timeout", "3600"]
        err = open(os.path.join(state, "probe.log"), "w")
        probe = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        err.close()
        wait_until("evh_e2e_probe", lambda: os.path.exists(ready), 20, probe)
        return probe

    def _stop_probe(self, probe):
        time.sleep(0.2)  # the last copies on their way
        probe.send_signal(signal.SIGTERM)
        out, _ = probe.communicate(timeout=60)
        if probe.returncode != 0:
            raise RuntimeError(f"evh_e2e_probe exited with {probe.returncode}")
        return json.loads(out.strip().splitlines()[-1])

    def _figures(self, s, result, before, after, t_end, counts, calls_before, calls_after, prefilled):
        n = s["count"]
        finished = counts["finished"]
        result["finished"] = finished
        result["refused"] = counts["refused"]
        result["dead_lettered"] = counts["dead_letters"]
        result["lost"] = max(0, n - finished - counts["refused"])
        result["seconds"] = (t_end - before["t"]) if t_end is not None else None
        result["events_per_s"] = n / result["seconds"] if result["seconds"] else 0.0
        result["evhost_cpu_us_per_event"] = (after["evhost"] - before["evhost"]) / 1e3 / n
        result["redis_cpu_us_per_event"] = (after["redis"] - before["redis"]) / 1e3 / n
        others = {"info": 1, "xinfo|groups": self.xinfo_calls}
        if not prefilled:
            others["publish" if s["transport"] == "pubsub" else "xadd"] = n + 1  # the events and the sentinel
        probe = result.get("probe")
        if probe:
            others["subscribe"] = 1
            others["xread"] = probe["xreads"]
            result["latency_us"] = probe["end_to_end"]
        calls = measures.command_delta(calls_before, calls_after, others)
        result["redis_commands"] = calls
        result["redis_usec"] = measures.command_usec_delta(calls_before, calls_after, calls)
        result["redis_commands_per_event"] = sum(calls.values()) / n
        return result
