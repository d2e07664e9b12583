"""The load scenarios: max rate and fixed rates, Pub/Sub and streams, the
reference and evhost with 1 or 3 bench plugins, bursts into a slow plugin,
and the --ops-load, --tls and --signed variants of them."""


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
    runs with /metrics scraped every 100 ms (throughout, or in odd 200 ms
    windows only: the even windows of the same run are its baseline), with 1,000
    idle and slowloris connections held against the listener, and with the
    listener off."""
    variants = []
    by_name = {s["name"]: s for s in base}
    plans = [
        ("pubsub 50,000/s, evhost 1 plugin", dict(scrape_ms=100), ", /metrics scraped every 100 ms"),
        # 30 s: a half-run's p99 rests on a few stalls, so a 5 s run's
        # halves differ by tens of percent either way.
        ("pubsub 50,000/s, evhost 1 plugin", dict(scrape_ms=100, window_ms=200, count=1500000),
         ", /metrics scraped every 100 ms in alternate 200 ms windows, 30 s"),
        ("stream 50,000/s, evhost 1 plugin", dict(scrape_ms=100, window_ms=200, count=1500000),
         ", /metrics scraped every 100 ms in alternate 200 ms windows, 30 s"),
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
