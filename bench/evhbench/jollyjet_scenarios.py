"""The --jollyjet scenario set: JollyJet's shipped deployments with their real
plugins (product, audit, dlq) instead of the bench plugin.

  durable  config/examples/durable.yaml: product events through a stream and
           the consumer group jollyjet-product, routed to product and audit
           with idempotency; dead letters to the dlq plugin
  pubsub   config/jollyjet.yaml, the default: the same routes on Pub/Sub,
           without idempotency

Each at max rate (50,000 PRODUCT_CREATED: for the stream, pre-filled and
then drained; for Pub/Sub, published as fast as the load generator can) and
at 5,000/s and 20,000/s, with the audit plugin's fsync "always" (as shipped),
"never", and "always" on a slow disk (bench/slow_fsync.c preloaded into
evhost: 2 ms more per fsync).

The shipped files are run as they are, with their own environment variables
(EVH_ENV=bench, REDIS_PORT, EVH_STATE_DIR, EVH_CONSUMER); the only edits are
the audit plugin's `fsync` and, in the fixed-rate runs, its `stream:` copy,
which is where evh_e2e_probe sees the audit plugin finish an event (see
bench/e2e_probe.c). Each edit fails loudly if the file no longer has the
shape it expects.
"""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENVIRONMENT = "bench"
PRODUCT_CHANNEL = "jollyjet:events:product"  # the logical name; Redis's is bench:jollyjet:events:product
NOTIFICATIONS = f"{ENVIRONMENT}:jollyjet:events:notifications"
AUDIT_STREAM_KEY = "jollyjet:audit"  # as config/examples/production.yaml names it
GROUP = "jollyjet-product"  # durable.yaml's consumer group
SLOW_FSYNC_US = 2000

DEPLOYMENTS = {
    "durable": dict(config="config/examples/durable.yaml", transport="stream"),
    "pubsub": dict(config="config/jollyjet.yaml", transport="pubsub"),
}

# (label, audit fsync mode, extra µs per fsync through the shim or 0)
AUDIT_VARIANTS = (
    ("audit fsync always", "always", 0),
    ("audit fsync never", "never", 0),
    (f"audit fsync always, slow disk (+{SLOW_FSYNC_US / 1000:g} ms per fsync)", "always", SLOW_FSYNC_US),
)


def jollyjet_scenarios(quick):
    n_max = 2000 if quick else 50000
    seconds = 1 if quick else 5
    out = []
    for deployment, d in DEPLOYMENTS.items():
        for label, fsync, slow_us in AUDIT_VARIANTS:
            common = dict(deployment=deployment, config=d["config"], transport=d["transport"], fsync=fsync,
                          slow_fsync_us=slow_us, subscriber="evhost", plugins=0)
            load = "pre-filled stream drained" if d["transport"] == "stream" else "published at max rate"
            out.append(dict(common, kind="jj-max", rate=0, count=n_max,
                            name=f"jollyjet {deployment}, {n_max:,} {load}, {label}"))
            for rate in (5000, 20000):
                out.append(dict(common, kind="jj-rate", rate=rate, count=rate * seconds,
                                name=f"jollyjet {deployment}, {rate:,}/s, {label}"))
    return out


def redis_name(logical):
    return f"{ENVIRONMENT}:{logical}"


def deployment_config(spec):
    """The text of the spec's shipped config with the audit plugin's settings
    for this run."""
    path = os.path.join(ROOT, spec["config"])
    with open(path) as f:
        text = f.read()
    keys = {"fsync": spec["fsync"]}
    if spec["kind"] == "jj-rate":
        keys["stream"] = f"{{key: {AUDIT_STREAM_KEY}, maxlen: 10000000}}"
    return set_plugin_config(text, "audit", keys, spec["config"])


def set_plugin_config(text, plugin, keys, where):
    """Sets keys of plugins.<plugin>.config in a config laid out as the
    shipped ones are (two spaces per level): a key already there is
    replaced, a missing one added at the top of `config:` (made when
    absent)."""
    lines = text.split("\n")
    try:
        top = lines.index("plugins:")
        start = lines.index(f"  {plugin}:", top)
    except ValueError:
        raise RuntimeError(f"{where}: no plugins.{plugin} block to set {', '.join(keys)} in") from None
    end = start + 1
    while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
        end += 1
    block = lines[start + 1:end]
    if "    config:" not in block:
        block.insert(0, "    config:")
    at = block.index("    config:")
    for key, value in keys.items():
        pattern = re.compile(rf"^      {re.escape(key)}:")
        found = [i for i, line in enumerate(block) if pattern.match(line)]
        line = f"      {key}: {value}"
        if found:
            block[found[0]] = line
        else:
            block.insert(at + 1, line)
    return "\n".join(lines[:start + 1] + block + lines[end:])


def deployment_env(spec, port, state_dir, build_dir):
    """evhost's environment: the shipped files' variables pointed at this
    run, and the slow-disk shim when the spec asks for it."""
    env = dict(os.environ)
    for k in ("REDIS_PASSWORD", "REDIS_PASSWORD_FILE", "REDIS_HOST", "REDIS_USERNAME", "LD_PRELOAD",
              "RETRY_MAX_ATTEMPTS", "RETRY_BASE_DELAY", "CIRCUIT_BREAKER_THRESHOLD", "CIRCUIT_BREAKER_TIMEOUT",
              "LOG_LEVEL", "LOG_FORMAT", "DEBUG_EVENTS"):
        env.pop(k, None)
    env.update(EVH_ENV=ENVIRONMENT, REDIS_HOST="127.0.0.1", REDIS_PORT=str(port), EVH_STATE_DIR=state_dir,
               EVH_CONSUMER="bench-1")
    if spec["slow_fsync_us"]:
        env["LD_PRELOAD"] = slow_fsync_library(build_dir)
        env["EVH_SLOW_FSYNC_US"] = str(spec["slow_fsync_us"])
    return env


def slow_fsync_library(build_dir):
    return os.path.join(os.path.abspath(build_dir), "lib", "bench", "libevh_slow_fsync.so")
