"""Load on evhost's ops listener during a run (--ops-load): /metrics scraped
on a period, idle and slowloris connections held."""
import gzip
import os
import socket
import statistics
import threading
import time


def stand_aside():
    """Runs the calling thread under SCHED_IDLE: the CPU it gets is what
    evhost, Redis and the publisher leave. It stands for a client on another
    machine (Prometheus scrapes from elsewhere), which on 2 shared cores it
    cannot be; without it, the client's own CPU on those cores shows up as
    evhost's latency."""
    os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))


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
    /metrics (or `path`) every scrape_ms (each timed, on one kept-alive
    connection), and/or idle_conns connections held
    open -- half idle, half slowloris (a header byte a second). The listener
    keeps 64 and closes the others at once; with reopen, those are opened
    again every second (4,680 connects in a 5 s run -- load on the client's
    side too, which shares the cores). Both threads run under SCHED_IDLE
    (stand_aside). With window_ms, scrapes happen in odd windows of
    wall-clock time only (time_ns / window, as the bench plugin splits its
    latencies with the same window_ms): the even ones are the same run
    unscraped."""

    def __init__(self, address, scrape_ms, idle_conns, reopen=False, path="/metrics", window_ms=0):
        self.address, self.scrape_ms, self.idle_conns, self.reopen = address, scrape_ms, idle_conns, reopen
        self.path, self.window_ns = path, window_ms * 1000000
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
        """One connection kept open across scrapes, as Prometheus keeps
        its own (a new one only after a failure): a fresh TCP connection per
        scrape would charge evhost's ops thread an accept and a close each
        time, which a real scraper does not."""
        stand_aside()
        import http.client
        c = None
        while not self.stopping.wait(self.scrape_ms / 1000):
            if self.window_ns and (time.time_ns() // self.window_ns) % 2 == 0:
                continue
            t0 = time.monotonic()
            try:
                if c is None:
                    c = http.client.HTTPConnection(*self.address, timeout=5)
                # gzip asked for, as Prometheus asks (evhost answers
                # uncompressed: docs/metrics.md), and unpacked if it came.
                c.request("GET", self.path, headers={"Accept-Encoding": "gzip"})
                r = c.getresponse()
                body = r.read()
                if r.getheader("Content-Encoding") == "gzip":
                    gzip.decompress(body)
                if r.status != 200:
                    self.failures += 1
                    continue
                self.scrapes.append((time.monotonic() - t0) * 1000)
            except (OSError, http.client.HTTPException):
                self.failures += 1
                if c is not None:
                    c.close()
                c = None
        if c is not None:
            c.close()

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
        stand_aside()
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
