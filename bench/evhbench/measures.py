"""What the --jollyjet runs read off evhost and Redis: evhost's event counts
from /metrics, Redis's per-command call counts from INFO commandstats."""
import http.client
import re

# A sample line of the text format: name{labels} value
_SAMPLE = re.compile(r'^([a-z_]+)(?:\{([^}]*)\})? (\S+)$', re.M)


def event_counts(address, channel):
    """evhost's counts so far, from one GET /metrics: messages received on
    `channel`, its events finished (handled or dead-lettered by every plugin
    they were routed to: the latency histogram's count), events refused
    before any plugin (overloaded, ...), dead-letter entries made."""
    c = http.client.HTTPConnection(*address, timeout=10)
    try:
        c.request("GET", "/metrics")
        r = c.getresponse()
        body = r.read().decode("utf-8", "replace")
        if r.status != 200:
            raise RuntimeError(f"GET /metrics answered {r.status}")
    finally:
        c.close()
    label = f'channel="{channel}"'
    out = dict(received=0, finished=0, refused=0, dead_letters=0)
    for name, labels, value in _SAMPLE.findall(body):
        if name == "evhost_messages_received_total" and label in labels:
            out["received"] = int(float(value))
        elif name == "evhost_event_latency_seconds_count" and label in labels:
            out["finished"] = int(float(value))
        elif name == "evhost_ingest_refused_total":
            out["refused"] += int(float(value))
        elif name == "evhost_dead_letters_total":
            out["dead_letters"] += int(float(value))
    return out


def command_calls(r):
    """{command: (calls, usec)} from INFO commandstats (commands a script
    runs are counted too, under their own names, and their time is also in
    the script's)."""
    out = {}
    for line in r.cmd("INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_"):
            name, fields = line[len("cmdstat_"):].split(":", 1)
            values = dict(f.split("=", 1) for f in fields.split(",") if "=" in f)
            out[name] = (int(values.get("calls", 0)), int(float(values.get("usec", 0))))
    return out


def command_delta(before, after, not_evhosts):
    """Calls made between two command_calls() snapshots, less those of other
    clients known by count ({command: calls}); commands at 0 left out."""
    out = {}
    for name, (calls, _) in after.items():
        n = calls - before.get(name, (0, 0))[0] - not_evhosts.get(name, 0)
        if n > 0:
            out[name] = n
    return out


def command_usec_delta(before, after, evhosts_calls):
    """Redis's time in evhost's commands between two command_calls()
    snapshots ({command: usec}), for the commands of command_delta()'s
    result: a command other clients sent too is counted in proportion to
    evhost's share of its calls."""
    out = {}
    for name, n in evhosts_calls.items():
        calls = after[name][0] - before.get(name, (0, 0))[0]
        usec = after[name][1] - before.get(name, (0, 0))[1]
        out[name] = usec * n / calls if calls > 0 else 0
    return out
