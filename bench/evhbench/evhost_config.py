"""The evhost config of one bench-plugin run."""
import os

from .names import CHANNEL, ENVIRONMENT, MAX_IN_FLIGHT, RESULT_KEY


def evhost_config(port, transport, plugins, workdir, plugin_path="bench", work_us=0, ops_listen="127.0.0.1:0",
                  tls_ca=None, signing_key=None, window_ms=0):
    """The evhost YAML for one run: k bench plugin instances on one route
    (over TLS to `port` when tls_ca is given; each splitting its latencies
    by window_ms windows of sending time when given)."""
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
                  f"      work_us: {work_us}"] + ([f"      window_ms: {window_ms}"] if window_ms else [])
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
