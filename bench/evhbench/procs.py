"""Processes for the benchmark runs: free ports, waiting until ready, what
/proc says of a process (RSS, CPU time), and CPU pinning (--pin-loop)."""
import os
import socket
import threading
import time


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


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def pin_loop_cpus():
    """(the loop's CPU, the others) for --pin-loop: the lowest CPU this
    process may use for evhost's event loop, the rest for everything else.
    Raises ValueError with fewer than two."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise ValueError(f"--pin-loop needs two CPUs or more; this process may use {len(cpus)}")
    return cpus[0], set(cpus[1:])


class LoopPinner:
    """Keeps evhost's event-loop thread (its main thread: the thread id is
    the process id) on one CPU and its other threads on the rest, every
    100 ms while it runs: threads started later (a worker, a reload's) are
    moved too. The benchmark runner itself, Redis and the load generator
    were started on the rest (cli.py), so the loop has its CPU alone --
    a scraper, the ops thread and Redis no longer take turns with it."""

    def __init__(self, pid, loop_cpu, others):
        self.pid, self.loop_cpu, self.others = pid, loop_cpu, others
        self.stopping = threading.Event()
        self._pin()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _pin(self):
        try:
            tids = os.listdir(f"/proc/{self.pid}/task")
        except OSError:
            return  # gone
        for tid in tids:
            try:
                os.sched_setaffinity(int(tid), {self.loop_cpu} if int(tid) == self.pid else self.others)
            except OSError:
                pass  # a thread that ended meanwhile

    def _run(self):
        while not self.stopping.wait(0.1):
            self._pin()

    def stop(self):
        """Stops pinning; returns the CPUs each thread was allowed as it
        stopped ({"loop": "0", "others": ["1", ...]}, /proc's
        Cpus_allowed_list), for the run's record."""
        self.stopping.set()
        self.thread.join()
        seen = {"loop": None, "others": []}
        try:
            tids = sorted(int(t) for t in os.listdir(f"/proc/{self.pid}/task"))
        except OSError:
            return seen
        for tid in tids:
            cpus = proc_task_status(self.pid, tid, "Cpus_allowed_list")
            if tid == self.pid:
                seen["loop"] = cpus
            elif cpus is not None:
                seen["others"].append(cpus)
        return seen


def proc_task_status(pid, tid, field):
    """A field of /proc/PID/task/TID/status as text, or None."""
    try:
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None
