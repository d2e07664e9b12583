"""Processes for the benchmark runs: free ports, waiting until ready, and
what /proc says of a process (RSS, CPU time)."""
import os
import socket
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
