"""One run of one scenario: start the subscriber (evhost or the reference),
wait until it is subscribed, measure its idle RSS, run the load generator,
collect the bench plugin's result lines, read peak RSS and CPU, count lost
events and output-buffer disconnects, stop it."""
import json
import os
import signal
import subprocess
import time

from .certs import signing_key_file
from .evhost_config import evhost_config
from .names import REDIS_NAME, RESULT_KEY
from .ops_load import OpsLoad, ops_address
from .procs import LoopPinner, count_lines, cpu_ns, proc_status, wait_until
from .redis import RedisError


class Runner:
    def __init__(self, args, redis, workdir):
        self.args = args
        self.redis = redis
        self.workdir = workdir
        self.bin = os.path.join(args.build_dir, "bin")

    def _clean(self):
        self.redis.r.cmd("DEL", RESULT_KEY, REDIS_NAME)

    def _pin(self, proc):
        """With --pin-loop, the subscriber's loop (its main thread) on a CPU
        of its own while it runs; None otherwise."""
        if not getattr(self.args, "pin_loop", False):
            return None
        return LoopPinner(proc.pid, self.args.loop_cpu, self.args.other_cpus)

    def _loadgen(self, s, run_id):
        mode = "publish" if s["transport"] == "pubsub" else "xadd"
        cmd = [os.path.join(self.bin, "evh_loadgen"), "--port", str(self.redis.port), "--mode", mode, "--target",
               REDIS_NAME, "--count", str(s["count"]), "--rate", str(s["rate"]), "--run-id", run_id,
               "--sentinel-delay", str(s.get("sentinel_delay", 0))]
        if s.get("signed"):
            cmd += ["--sign-key", signing_key_file(self.workdir)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"evh_loadgen failed ({out.returncode}): {out.stderr.strip()}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def run(self, s, rep):
        self._clean()
        run_id = f"{s['transport']}-{s['plugins']}-{s['rate']}{s.get('variant', '')}-{rep}"
        log_path = os.path.join(self.workdir, f"{run_id}.{s['subscriber']}.log")
        obuf_before = self.redis.obuf_disconnects()
        result = dict(scenario=s["name"], rep=rep, log=os.path.basename(log_path))
        with open(log_path, "w") as log:
            if s["subscriber"] == "reference":
                ready = os.path.join(self.workdir, f"{run_id}.ready")
                if os.path.exists(ready):
                    os.unlink(ready)
                cmd = [os.path.join(self.bin, "evh_ref_sub"), "--port", str(self.redis.port), "--mode",
                       "subscribe" if s["transport"] == "pubsub" else "stream", "--target", REDIS_NAME,
                       "--ready-file", ready] + (["--latency"] if s["kind"] == "latency" else [])
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
                pinner = self._pin(proc)
                try:
                    wait_until("evh_ref_sub", lambda: os.path.exists(ready), 20, proc)
                    time.sleep(0.3)
                    result["rss_idle"] = proc_status(proc.pid, "VmRSS")
                    cpu_before = cpu_ns(proc.pid)
                    result["loadgen"] = self._loadgen(s, run_id)
                except BaseException:
                    # Not left running (subscribed, and pinned) into the next run.
                    proc.kill()
                    proc.wait()
                    raise
                finally:
                    if pinner:  # while it still runs: it exits after the sentinel
                        result["pinned"] = pinner.stop()
                stdout = proc.stdout.read()
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                if proc.returncode != 0:
                    raise RuntimeError(f"evh_ref_sub exited with {proc.returncode}; see {log_path}")
                result["cpu_s"] = usage.ru_utime + usage.ru_stime - cpu_before / 1e9
                lines = [json.loads(stdout.strip().splitlines()[-1])]
                result["rss_peak"] = None  # gone by now; the reference's memory is not the point
            else:
                conf = os.path.join(self.workdir, f"{run_id}.yaml")
                with open(conf, "w") as f:
                    tls = s.get("tls", False)
                    f.write(evhost_config(self.redis.tls_port if tls else self.redis.port, s["transport"],
                                          s["plugins"], self.workdir, s.get("plugin_path", "bench"),
                                          s.get("work_us", 0), "" if s.get("ops_off") else "127.0.0.1:0",
                                          self.redis.ca_file if tls else None,
                                          signing_key_file(self.workdir) if s.get("signed") else None,
                                          s.get("window_ms", 0)))
                dl = os.path.join(self.workdir, "dead-letter.jsonl")
                dl_before = count_lines(dl)
                proc = subprocess.Popen([os.path.join(self.bin, "evhost"), "--config", conf],
                                        stdout=log, stderr=subprocess.STDOUT)
                pinner = self._pin(proc)
                try:
                    if s["transport"] == "pubsub":
                        wait_until("evhost", lambda: self.redis.r.cmd("PUBSUB", "NUMSUB", REDIS_NAME)[1] >= 1, 20,
                                   proc)
                    else:
                        wait_until("evhost", lambda: self._consumer_exists(), 20, proc)
                    ops_load = None
                    if s.get("scrape_ms") or s.get("idle_conns"):
                        ops_load = OpsLoad(ops_address(log_path), s.get("scrape_ms", 0), s.get("idle_conns", 0),
                                           s.get("reopen", False), s.get("scrape_path", "/metrics"),
                                           s.get("window_ms", 0))
                    time.sleep(1.0)  # settle: idle means subscribed and waiting
                    result["rss_idle"] = proc_status(proc.pid, "VmRSS")
                    cpu_before = cpu_ns(proc.pid)
                    try:
                        result["loadgen"] = self._loadgen(s, run_id)
                    finally:
                        if ops_load:
                            result["ops_load"] = ops_load.stop()
                    lines = []
                    for _ in range(s["plugins"]):
                        got = self.redis.r.cmd("BLPOP", RESULT_KEY, "60")
                        if got is None:
                            raise RuntimeError(f"no result from the bench plugin within 60 s; see {log_path}")
                        lines.append(json.loads(got[1]))
                    result["rss_peak"] = proc_status(proc.pid, "VmHWM")
                    result["cpu_s"] = (cpu_ns(proc.pid) - cpu_before) / 1e9
                finally:
                    if pinner:
                        result["pinned"] = pinner.stop()
                    proc.send_signal(signal.SIGTERM)
                    try:
                        result["exit_code"] = proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        result["exit_code"] = proc.wait()
                result["dead_lettered"] = count_lines(dl) - dl_before
        result["instances"] = lines
        sent = result["loadgen"]["sent"]
        received = min(x["received"] for x in lines)
        result["sent"] = sent
        result["received"] = received
        # Lost: neither handled nor dead-lettered (a dead-lettered event is
        # kept, and can be replayed with evhctl dlq).
        result["lost"] = sent - received - result.get("dead_lettered", 0)
        # The slowest instance sets the pace; the last one called sees the
        # whole chain's latency: report the worst of each.
        result["events_per_s"] = min(x["events_per_s"] for x in lines)
        # The subscriber's own cost, whoever set the pace (at max rate on 2
        # shared cores that is mostly the publisher): CPU time per event.
        result["cpu_us_per_event"] = result["cpu_s"] * 1e6 / received if received else None
        if "latency_us" in lines[0]:
            result["latency_us"] = {k: max(x["latency_us"][k] for x in lines) for k in lines[0]["latency_us"]}
        if "windows_us" in lines[0]:  # window_ms: the even (quiet) and odd (loaded) windows apart
            result["windows_us"] = {w: {k: max(x["windows_us"][w][k] for x in lines) for k in lines[0]["windows_us"][w]}
                                    for w in ("even", "odd")}
        if len(lines) == 1 and "per_window" in lines[0]:  # each window's count and p99
            result["per_window"] = lines[0]["per_window"]
        result["obuf_disconnects"] = self.redis.obuf_disconnects() - obuf_before
        return result

    def _consumer_exists(self):
        try:
            return len(self.redis.r.cmd("XINFO", "CONSUMERS", REDIS_NAME, "bench")) >= 1
        except RedisError:
            return False
