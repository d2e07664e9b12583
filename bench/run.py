#!/usr/bin/env python3
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
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

RESULT_KEY = "bench:results"
CHANNEL = "bench:events"  # with environment "bench": the Redis name is bench:bench:events
ENVIRONMENT = "bench"
REDIS_NAME = f"{ENVIRONMENT}:{CHANNEL}"
OBUF_LOG_TEXT = "output buffer limits"
MAX_IN_FLIGHT = 10000  # evhost's default, written out  # Redis logs one such line per client it cuts off


# --------------------------------------------------------------------------
# A minimal RESP client (enough for DEL, INFO, PUBSUB, XINFO, BLPOP).
# --------------------------------------------------------------------------
class RedisError(Exception):
    pass


class Redis:
    def __init__(self, port, timeout=30.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RedisError("connection closed by redis-server")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RedisError("connection closed by redis-server")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RedisError(f"unexpected reply {line!r}")

    def cmd(self, *args):
        out = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = str(a).encode()
            out.append(f"${len(b)}\r\n".encode() + b + b"\r\n")
        self.sock.sendall(b"".join(out))
        reply = self._reply()
        if isinstance(reply, RedisError):
            raise reply
        return reply


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, pred, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode} before it was ready")
        if pred():
            return
        time.sleep(0.02)
    raise RuntimeError(f"{what}: not ready after {timeout} s")


def proc_status(pid, field):
    """A field of /proc/PID/status in bytes (VmRSS, VmHWM), or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_ns(pid):
    """CPU time (user + system) of every thread of PID so far, in ns, from
    /proc/PID/task/*/schedstat; None when the process is gone."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError):
        return None
    return total


def make_certs(workdir):
    """A CA and a server certificate for 127.0.0.1 (openssl CLI), for --tls."""
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    f = lambda name: os.path.join(workdir, name)  # noqa: E731
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f("ca.key"), "-out", f("ca.crt"), "-days",
            "2", "-subj", "/CN=bench CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f("server.key"), "-out", f("server.csr"), "-subj",
            "/CN=127.0.0.1")
    with open(f("san.ext"), "w") as out:
        out.write("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", f("server.csr"), "-CA", f("ca.crt"), "-CAkey", f("ca.key"), "-CAcreateserial",
            "-out", f("server.crt"), "-days", "2", "-extfile", f("san.ext"))
    return f("ca.crt"), f("server.crt"), f("server.key")


class RedisServer:
    def __init__(self, workdir, tls=False):
        self.port = free_port()
        self.log = os.path.join(workdir, "redis.log")
        tls_args = []
        self.tls_port, self.ca_file = None, None
        if tls:
            # A TLS port beside the plaintext one: evhost connects over TLS;
            # the load generator and the checks keep plaintext.
            self.tls_port = free_port()
            self.ca_file, cert, key = make_certs(workdir)
            tls_args = ["--tls-port", str(self.tls_port), "--tls-cert-file", cert, "--tls-key-file", key,
                        "--tls-ca-cert-file", self.ca_file, "--tls-auth-clients", "no"]
        # Redis's defaults, written out: a Pub/Sub subscriber more than 32 MB
        # behind (or 8 MB for 60 s) is disconnected.
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", workdir, "--logfile", self.log, "--client-output-buffer-limit", "pubsub 32mb 8mb 60", *tls_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                Redis(self.port, timeout=1).cmd("PING")
                return True
            except OSError:
                return False

        wait_until("redis-server", up, 10, self.proc)
        self.r = Redis(self.port)

    def version(self):
        for line in self.r.cmd("INFO", "server").splitlines():
            if line.startswith("redis_version:"):
                return line.split(":", 1)[1]
        return "?"

    def obuf_disconnects(self):
        """Output-buffer disconnects so far: INFO stats's counter where Redis
        has one (7.2+), else the lines of its log (7.0 has no counter)."""
        for line in self.r.cmd("INFO", "stats").splitlines():
            if line.startswith("client_output_buffer_limit_disconnections:"):
                return int(line.split(":", 1)[1])
        with open(self.log, errors="replace") as f:
            return sum(1 for line in f if OBUF_LOG_TEXT in line)

    def stop(self):
        self.r.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------
def scenarios(quick, ops_load=False, tls=False, signed=False):
    n_max = 20000 if quick else 200000
    seconds = 1 if quick else 5
    out = []
    for transport in ("pubsub", "stream"):
        out.append(dict(kind="max", transport=transport, subscriber="reference", plugins=0, rate=0, count=n_max))
        for k in (1, 3):
            out.append(dict(kind="max", transport=transport, subscriber="evhost", plugins=k, rate=0, count=n_max))
    for transport in ("pubsub", "stream"):
        for rate in (5000, 50000):
            # The reference measures latency too here (it only counts at max
            # rate): the floor a subscriber on this machine can reach.
            out.append(dict(kind="latency", transport=transport, subscriber="reference", plugins=0, rate=rate,
                            count=rate * seconds))
            for k in (1, 3):
                out.append(dict(kind="latency", transport=transport, subscriber="evhost", plugins=k, rate=rate,
                                count=rate * seconds))
    for s in out:
        who = "reference" if s["subscriber"] == "reference" else f"evhost {s['plugins']} plugin" + (
            "s" if s["plugins"] > 1 else "")
        load = "max rate" if s["rate"] == 0 else f"{s['rate']:,}/s"
        s["name"] = f"{s['transport']} {load}, {who}"
    # A burst into a plugin much slower than the publisher (it waits 100 µs
    # per event, like a database call, on the worker pool): what evhost
    # holds stays bounded by limits.max_in_flight -- a stream pauses reading,
    # Pub/Sub dead-letters the excess (reason overloaded).
    for transport in ("stream", "pubsub"):
        out.append(dict(kind="burst", transport=transport, subscriber="evhost", plugins=1, rate=0, count=n_max,
                        plugin_path="bench_blocking", work_us=100, sentinel_delay=2.0,
                        name=f"{transport} burst of {n_max:,}, slow plugin (waits 100 µs/event, blocking)"))
    if ops_load:
        out += ops_variants(out)
    if tls:
        out += tls_variants(out)
    if signed:
        out += signed_variants(out)
    return out


def signed_variants(base):
    """With --signed: the 1-plugin runs again on a signed channel (Standard
    Webhooks HMAC-SHA256, docs/signatures.md): the load generator signs each
    message; evhost verifies it and claims its id in Redis (SET NX GET PX)."""
    variants = []
    for s in base:
        if (s["subscriber"] == "evhost" and s["plugins"] == 1 and s["kind"] in ("max", "latency")
                and not s.get("tls") and not s.get("variant")):
            variants.append(dict(s, signed=True, variant="-signed", name=s["name"] + ", signed"))
    return variants


SIGNING_KEY = "whsec_YmVuY2gtc2lnbmluZy1rZXktYmVuY2gtc2lnbmluZy1rZXk="


def signing_key_file(workdir):
    """A key file private to its owner, as evhost requires."""
    path = os.path.join(workdir, "signing.key")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(SIGNING_KEY + "\n")
    return path


def tls_variants(base):
    """With --tls: the 1-plugin runs again with evhost connected over TLS
    (the load generator stays on plaintext)."""
    variants = []
    for s in base:
        if s["subscriber"] == "evhost" and s["plugins"] == 1 and s["kind"] in ("max", "latency"):
            v = dict(s, tls=True, variant="-tls", name=s["name"] + ", over TLS")
            variants.append(v)
    return variants


def ops_variants(base):
    """With --ops-load: what the ops listener costs event handling. The same
    runs with /metrics scraped every 100 ms, with 1,000 idle and slowloris
    connections held against the listener, and with the listener off."""
    variants = []
    by_name = {s["name"]: s for s in base}
    plans = [
        ("pubsub 50,000/s, evhost 1 plugin", dict(scrape_ms=100), ", /metrics scraped every 100 ms"),
        ("stream 50,000/s, evhost 1 plugin", dict(scrape_ms=100), ", /metrics scraped every 100 ms"),
        ("pubsub max rate, evhost 1 plugin", dict(scrape_ms=100), ", /metrics scraped every 100 ms"),
        ("pubsub 50,000/s, evhost 1 plugin", dict(idle_conns=1000), ", 1,000 idle/slowloris ops connections"),
        ("pubsub 50,000/s, evhost 1 plugin", dict(idle_conns=1000, reopen=True),
         ", 1,000 idle/slowloris ops connections, refused ones reopened every second"),
        ("pubsub max rate, evhost 1 plugin", dict(idle_conns=1000), ", 1,000 idle/slowloris ops connections"),
        ("pubsub max rate, evhost 1 plugin", dict(ops_off=True), ", ops listener off"),
        ("stream max rate, evhost 1 plugin", dict(ops_off=True), ", ops listener off"),
    ]
    for name, extra, suffix in plans:
        if name in by_name:
            v = dict(by_name[name], **extra)
            v["variant"] = "-" + "-".join(extra)
            v["name"] = name + suffix
            variants.append(v)
    return variants


def evhost_config(port, transport, plugins, workdir, plugin_path="bench", work_us=0, ops_listen="127.0.0.1:0",
                  tls_ca=None, signing_key=None):
    """The evhost YAML for one run: k bench plugin instances on one route
    (over TLS to `port` when tls_ca is given)."""
    names = [f"b{i + 1}" for i in range(plugins)]
    lines = [
        f"environment: {ENVIRONMENT}",
        "redis:",
        "  host: 127.0.0.1",
        f"  port: {port}",
    ]
    if tls_ca:
        lines += ["  tls:", f"    ca_file: {tls_ca}"]
    lines += ["plugins:"]
    for n in names:
        lines += [f"  {n}:", f"    path: {plugin_path}", "    config:", f"      tag: {n}", f"      result_key: {RESULT_KEY}",
                  f"      work_us: {work_us}"]
    lines += ["channels:", f"  {CHANNEL}:", f"    transport: {transport}"]
    if transport == "stream":
        lines += ["    stream:", "      group: bench", "      consumer: bench-1", "      count: 1000"]
    if signing_key:
        lines += ["    signature:", f"      keys: [{{id: bench, file: {signing_key}}}]"]
    lines += [
        "    routes:",
        "      - events: [PRODUCT_CREATED, BENCH_END]",
        f"        plugins: [{', '.join(names)}]",
        "limits:",
        f"  max_in_flight: {MAX_IN_FLIGHT}",
        "dead_letter:",
        f"  fallback_file: {os.path.join(workdir, 'dead-letter.jsonl')}",
        "ops:",
        f'  listen: "{ops_listen}"',  # any free port: never in the way of another evhost
        "",
    ]
    return "\n".join(lines)


class Runner:
    def __init__(self, args, redis, workdir):
        self.args = args
        self.redis = redis
        self.workdir = workdir
        self.bin = os.path.join(args.build_dir, "bin")

    def _clean(self):
        self.redis.r.cmd("DEL", RESULT_KEY, REDIS_NAME)

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
                wait_until("evh_ref_sub", lambda: os.path.exists(ready), 20, proc)
                time.sleep(0.3)
                result["rss_idle"] = proc_status(proc.pid, "VmRSS")
                cpu_before = cpu_ns(proc.pid)
                result["loadgen"] = self._loadgen(s, run_id)
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
                                          signing_key_file(self.workdir) if s.get("signed") else None))
                dl = os.path.join(self.workdir, "dead-letter.jsonl")
                dl_before = count_lines(dl)
                proc = subprocess.Popen([os.path.join(self.bin, "evhost"), "--config", conf],
                                        stdout=log, stderr=subprocess.STDOUT)
                try:
                    if s["transport"] == "pubsub":
                        wait_until("evhost", lambda: self.redis.r.cmd("PUBSUB", "NUMSUB", REDIS_NAME)[1] >= 1, 20,
                                   proc)
                    else:
                        wait_until("evhost", lambda: self._consumer_exists(), 20, proc)
                    ops_load = None
                    if s.get("scrape_ms") or s.get("idle_conns"):
                        ops_load = OpsLoad(ops_address(log_path), s.get("scrape_ms", 0), s.get("idle_conns", 0),
                                           s.get("reopen", False))
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
        result["obuf_disconnects"] = self.redis.obuf_disconnects() - obuf_before
        return result

    def _consumer_exists(self):
        try:
            return len(self.redis.r.cmd("XINFO", "CONSUMERS", REDIS_NAME, "bench")) >= 1
        except RedisError:
            return False


def ops_address(log_path, timeout=20):
    """(host, port) of the "ops listening on http://HOST:PORT" line in evhost's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log_path, errors="replace") as f:
            for line in f:
                at = line.find("ops listening on http://")
                if at >= 0:
                    host, port = line[at + len("ops listening on http://"):].strip().rsplit(":", 1)
                    return host.strip("[]"), int(port)
        time.sleep(0.1)
    raise RuntimeError(f"no ops listener line in {log_path}")


class OpsLoad:
    """Load on evhost's ops listener while a run goes on, from a thread: GET
    /metrics every scrape_ms (each timed), and/or idle_conns connections held
    open -- half idle, half slowloris (a header byte a second). The listener
    keeps 64 and closes the others at once; with reopen, those are opened
    again every second (4,680 connects in a 5 s run -- load on the client's
    side too, which shares the cores)."""

    def __init__(self, address, scrape_ms, idle_conns, reopen=False):
        import threading
        self.address, self.scrape_ms, self.idle_conns, self.reopen = address, scrape_ms, idle_conns, reopen
        self.scrapes, self.failures, self.reopened, self.closed = [], 0, 0, 0
        self.stopping = threading.Event()
        self.threads = []
        if scrape_ms:
            self.threads.append(threading.Thread(target=self._scrape, daemon=True))
        if idle_conns:
            self.threads.append(threading.Thread(target=self._hold, daemon=True))
        for t in self.threads:
            t.start()

    def _scrape(self):
        import http.client
        while not self.stopping.wait(self.scrape_ms / 1000):
            t0 = time.monotonic()
            try:
                c = http.client.HTTPConnection(*self.address, timeout=5)
                c.request("GET", "/metrics")
                r = c.getresponse()
                r.read()
                c.close()
                if r.status != 200:
                    self.failures += 1
                    continue
                self.scrapes.append((time.monotonic() - t0) * 1000)
            except OSError:
                self.failures += 1

    def _open(self, i):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(self.address)
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            return None
        return s

    def _hold(self):
        socks = [self._open(i) for i in range(self.idle_conns)]
        headed = set()  # slowloris sockets that have sent the start of a head
        while not self.stopping.wait(1.0):
            for i, s in enumerate(socks):
                alive = s is not None
                if alive:
                    try:
                        if s.recv(1, socket.MSG_PEEK) == b"":
                            alive = False
                    except BlockingIOError:
                        pass
                    except OSError:
                        alive = False
                if alive and i % 2 == 1:
                    try:  # slowloris: the start of a request head, then a byte a second
                        s.send(b"a" if i in headed else b"GET /metrics HTTP/1.1\r\nX-a: ")
                        headed.add(i)
                    except BlockingIOError:
                        pass
                    except OSError:
                        alive = False
                if not alive:
                    headed.discard(i)
                    if s is not None:
                        s.close()
                        self.closed += 1
                    socks[i] = self._open(i) if self.reopen else None
                    self.reopened += 1 if self.reopen else 0
        for s in socks:
            if s is not None:
                s.close()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=10)
        out = dict(scrapes=len(self.scrapes), failures=self.failures, reopened=self.reopened, closed=self.closed)
        if self.scrapes:
            out["scrape_ms_median"] = statistics.median(self.scrapes)
            out["scrape_ms_max"] = max(self.scrapes)
        return out


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------
def spread(values, fmt):
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt(med)
    return f"{fmt(med)} ({fmt(min(values))}–{fmt(max(values))})"


def summarize(runs_by_scenario):
    summary = []
    for name, runs in runs_by_scenario.items():
        s = runs[0]["spec"]
        row = dict(scenario=name, kind=s["kind"], transport=s["transport"], subscriber=s["subscriber"],
                   plugins=s["plugins"], rate=s["rate"], count=s["count"], reps=len(runs))

        def stats(key, sub=None):
            vals = [(r[key][sub] if sub else r[key]) for r in runs if r.get(key) is not None]
            if not vals:
                return None
            return dict(median=statistics.median(vals), min=min(vals), max=max(vals))

        row["events_per_s"] = stats("events_per_s")
        row["cpu_us_per_event"] = stats("cpu_us_per_event")
        if any(r.get("latency_us") for r in runs):
            row["latency_us"] = {p: stats("latency_us", p) for p in ("p50", "p99", "p999", "max")}
        if s["subscriber"] == "evhost":
            row["rss_idle_mb"] = stats("rss_idle")
            row["rss_peak_mb"] = stats("rss_peak")
            for k in ("rss_idle_mb", "rss_peak_mb"):
                if row[k]:
                    row[k] = {m: v / 1e6 for m, v in row[k].items()}
            row["dead_lettered_per_run"] = [r.get("dead_lettered", 0) for r in runs]
        row["lost_per_run"] = [r["lost"] for r in runs]
        row["obuf_disconnects_per_run"] = [r["obuf_disconnects"] for r in runs]
        summary.append(row)
    return summary


def table(summary):
    def f_rate(v):
        return f"{v / 1000:.0f}k" if v >= 10000 else f"{v:.0f}"

    def f_us(v):
        return f"{v:.0f}" if v >= 100 else f"{v:.1f}"

    def f_mb(v):
        return f"{v:.1f}"

    def f_cpu(v):
        return f"{v:.2f}"

    hdr = ("| scenario | events/s | CPU µs/event | p50 µs | p99 µs | p99.9 µs | max µs | RSS idle MB | RSS peak MB "
           "| lost | dead-lettered | obuf disc. |")
    out = [hdr, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in summary:
        def cell(d, fmt):
            return "—" if not d else (fmt(d["median"]) if d["min"] == d["max"] else
                                      f"{fmt(d['median'])} ({fmt(d['min'])}–{fmt(d['max'])})")
        lat = row.get("latency_us") or {}
        rate = cell(row["events_per_s"], f_rate) if row["kind"] != "latency" else "—"
        out.append("| " + " | ".join([
            row["scenario"], rate, cell(row.get("cpu_us_per_event"), f_cpu),
            cell(lat.get("p50"), f_us), cell(lat.get("p99"), f_us), cell(lat.get("p999"), f_us),
            cell(lat.get("max"), f_us),
            cell(row.get("rss_idle_mb"), f_mb), cell(row.get("rss_peak_mb"), f_mb),
            "/".join(str(x) for x in row["lost_per_run"]),
            "/".join(str(x) for x in row.get("dead_lettered_per_run", [])) or "—",
            "/".join(str(x) for x in row["obuf_disconnects_per_run"]),
        ]) + " |")
    return "\n".join(out)


def verdicts(summary):
    """The issue's goals, read off this run's figures."""
    by = {(r["kind"], r["transport"], r["subscriber"], r["plugins"], r["rate"]): r for r in summary}
    out = []
    for transport in ("pubsub", "stream"):
        ref = by.get(("max", transport, "reference", 0, 0))
        ev = by.get(("max", transport, "evhost", 1, 0))
        if ref and ev:
            pct = 100.0 * ev["events_per_s"]["median"] / ref["events_per_s"]["median"]
            out.append(dict(goal=f"{transport}: evhost (1 plugin) ≥ 90 % of the reference's events/s at max rate",
                            figure=f"{pct:.0f} %", met=pct >= 90.0))
    for (rate, bound) in ((50000, 1000.0), (5000, 500.0)):
        for transport in ("pubsub", "stream"):
            for k in (1, 3):
                r = by.get(("latency", transport, "evhost", k, rate))
                if r and r["latency_us"]["p99"]:
                    p99 = r["latency_us"]["p99"]["median"]
                    out.append(dict(goal=f"{transport} {rate:,}/s, {k} plugin{'s' if k > 1 else ''}: "
                                         f"p99 < {bound:.0f} µs",
                                    figure=f"{p99:.0f} µs", met=p99 < bound))
    # The loss goals are about the max-rate and latency runs; the
    # bursts into a slow plugin are reported below them, as figures.
    core = [r for r in summary if r["kind"] != "burst"]
    lost = sum(sum(r["lost_per_run"]) for r in core)
    disc = sum(sum(r["obuf_disconnects_per_run"]) for r in core)
    out.append(dict(goal="0 events lost in every max-rate and latency run", figure=str(lost), met=lost == 0))
    out.append(dict(goal="0 output-buffer disconnects in every max-rate and latency run", figure=str(disc),
                    met=disc == 0))
    idle = [r["rss_idle_mb"]["max"] for r in summary if r.get("rss_idle_mb")]
    if idle:
        out.append(dict(goal="evhost RSS idle < 20 MB", figure=f"{max(idle):.1f} MB", met=max(idle) < 20.0))
    for r in summary:
        if r["kind"] == "burst" and r.get("rss_peak_mb"):
            out.append(dict(goal=f"{r['transport']} burst: RSS peak with max_in_flight {MAX_IN_FLIGHT:,} "
                                 f"(lost / dead-lettered / disconnects per run)",
                            figure=f"{r['rss_peak_mb']['max']:.1f} MB ("
                                   + "/".join(str(x) for x in r["lost_per_run"]) + " / "
                                   + "/".join(str(x) for x in r["dead_lettered_per_run"]) + " / "
                                   + "/".join(str(x) for x in r["obuf_disconnects_per_run"]) + ")",
                            met=None))
    return out


def plot(summary, outdir, meta_line=""):
    rows = [r for r in summary if r["kind"] == "latency" and r.get("latency_us") and r["latency_us"]["p50"]]
    if not rows:
        return None
    dat = os.path.join(outdir, "latency.dat")
    with open(dat, "w") as f:
        f.write("# label p50 p99 p99.9 (µs, medians of the repetitions)\n")
        for r in rows:
            who = "reference" if r["subscriber"] == "reference" else f"evhost {r['plugins']}p"
            label = f"{r['transport']} {r['rate'] // 1000}k/s {who}"
            lat = r["latency_us"]
            f.write(f"\"{label}\" {lat['p50']['median']:.2f} {lat['p99']['median']:.2f} "
                    f"{lat['p999']['median']:.2f}\n")
    gp = os.path.join(outdir, "latency.gp")
    with open(gp, "w") as f:
        f.write(f"""# gnuplot script written by bench/run.py
set terminal pngcairo size 1280,600 font "sans,11"
set output "{os.path.join(outdir, 'latency.png')}"
set title "End-to-end latency, publish -> plugin handle() (medians of {rows[0]['reps']} runs; {meta_line})"
set ylabel "latency (µs, log scale)"
set logscale y
set yrange [10:20000]
set grid ytics
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -30 noenhanced font "sans,10"
set bmargin 7
set rmargin 9
set key top left
set style textbox opaque noborder
set arrow from graph 0, first 1000 to graph 1, first 1000 nohead dt 2 lw 2 lc rgb "#c0392b" front
set arrow from graph 0, first 500 to graph 1, first 500 nohead dt 3 lw 2 lc rgb "#e67e22" front
plot "{dat}" using 2:xtic(1) title "p50" lc rgb "#2e86c1", \\
     "" using 3 title "p99" lc rgb "#f39c12", \\
     "" using 4 title "p99.9" lc rgb "#8e44ad", \\
     NaN with lines dt 2 lw 2 lc rgb "#c0392b" title "p99 goal at 50,000/s: 1 ms", \\
     NaN with lines dt 3 lw 2 lc rgb "#e67e22" title "p99 goal at 5,000/s: 0.5 ms"
""")
    if shutil.which("gnuplot"):
        subprocess.run(["gnuplot", gp], check=True)
        return os.path.join(outdir, "latency.png")
    print("gnuplot is not installed: wrote latency.gp and latency.dat, no PNG", file=sys.stderr)
    return None


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    return dict(cpus=os.cpu_count(), cpu=cpu, kernel=platform.release(), commit=commit or "?")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", required=True, help="evhost build folder (with bin/evhost, bin/evh_loadgen, ...)")
    ap.add_argument("--out", required=True, help="folder for results.json, results.md, latency.png and logs")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each scenario (default 3)")
    ap.add_argument("--quick", action="store_true", help="small runs (20,000 events, 1 s), to check the tooling")
    ap.add_argument("--only", default="", help="run only scenarios whose name contains this text")
    ap.add_argument("--tls", action="store_true",
                    help="also run the 1-plugin max-rate and latency scenarios with evhost over TLS")
    ap.add_argument("--signed", action="store_true",
                    help="also run the 1-plugin max-rate and latency scenarios on a signed channel")
    ap.add_argument("--ops-load", action="store_true",
                    help="also run 1-plugin scenarios with /metrics scraped every 100 ms, with 1,000 idle and "
                         "slowloris ops connections, and with the ops listener off")
    args = ap.parse_args()
    if args.reps < 1:
        ap.error("--reps must be at least 1")
    for exe in ("evhost", "evh_loadgen", "evh_ref_sub"):
        if not os.access(os.path.join(args.build_dir, "bin", exe), os.X_OK):
            ap.error(f"{exe} not found in {args.build_dir}/bin: build first")
    os.makedirs(args.out, exist_ok=True)
    workdir = os.path.join(args.out, "runs")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)

    specs = [s for s in scenarios(args.quick, args.ops_load, args.tls, args.signed) if args.only in s["name"]]
    if not specs:
        ap.error(f"no scenario matches --only {args.only!r}")
    redis = RedisServer(workdir, tls=args.tls)
    started = datetime.datetime.now(datetime.timezone.utc)
    runs_by_scenario = {s["name"]: [] for s in specs}
    failures = []
    try:
        runner = Runner(args, redis, workdir)
        # Repetitions interleave (all scenarios once, then again) so that a
        # slow minute of the machine does not land on one scenario only.
        for rep in range(1, args.reps + 1):
            for s in specs:
                label = f"[{rep}/{args.reps}] {s['name']}"
                try:
                    r = runner.run(s, rep)
                except (RuntimeError, RedisError, OSError, subprocess.TimeoutExpired, json.JSONDecodeError) as e:
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
                      + (f", p50 {lat['p50']:.0f} µs, p99 {lat['p99']:.0f} µs" if lat else ""),
                      file=sys.stderr, flush=True)
        redis_version = redis.version()
    finally:
        redis.stop()

    runs_by_scenario = {k: v for k, v in runs_by_scenario.items() if v}
    summary = summarize(runs_by_scenario)
    goals = verdicts(summary)
    meta = dict(date=started.isoformat(timespec="seconds"), redis=redis_version, reps=args.reps, quick=args.quick,
                machine=machine())
    doc = dict(meta=meta, summary=summary, goals=goals, failures=failures,
               runs=[{k: v for k, v in r.items() if k != "spec"} for runs in runs_by_scenario.values()
                     for r in runs])
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    md = [f"evhost benchmark, {meta['date']}, commit {meta['machine']['commit']}, {meta['machine']['cpus']} CPUs "
          f"({meta['machine']['cpu']}), Redis {redis_version}; medians of {args.reps} runs (min–max); "
          "lost and obuf disconnects per run.", "", table(summary), "",
          "| goal | figure | met |", "| --- | ---: | --- |"]
    md += [f"| {g['goal']} | {g['figure']} | "
           f"{'—' if g['met'] is None else 'yes' if g['met'] else '**no**'} |" for g in goals]
    if failures:
        md += ["", "Failed runs:", ""] + [f"- {x}" for x in failures]
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    png = plot(summary, args.out, f"{meta['date'][:10]}, {meta['machine']['cpus']} CPUs, Redis {redis_version}")
    print("\n".join(md))
    print(f"\nwrote {args.out}/results.json, results.md" + (", latency.png" if png else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
