"""What the --jollyjet runs come to: medians (min-max) per scenario, the
table, Redis's commands per event by command, results.json/.md."""
import json
import os
import statistics

from .report import machine


def _stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return dict(median=statistics.median(values), min=min(values), max=max(values))


def summarize(runs_by_scenario):
    summary = []
    for name, runs in runs_by_scenario.items():
        s = runs[0]["spec"]
        row = dict(scenario=name, kind=s["kind"], deployment=s["deployment"], transport=s["transport"],
                   rate=s["rate"], count=s["count"], fsync=s["fsync"], slow_fsync_us=s["slow_fsync_us"],
                   reps=len(runs))
        for key in ("seconds", "events_per_s", "evhost_cpu_us_per_event", "redis_cpu_us_per_event",
                    "redis_commands_per_event"):
            row[key] = _stats([r.get(key) for r in runs])
        if any(r.get("latency_us") for r in runs):
            row["latency_us"] = {p: _stats([(r.get("latency_us") or {}).get(p) for r in runs])
                                 for p in ("p50", "p99", "p999", "max")}
        commands = sorted({c for r in runs for c in r["redis_commands"]})
        row["redis_commands_by_command"] = {
            c: statistics.median(r["redis_commands"].get(c, 0) / s["count"] for r in runs) for c in commands}
        row["redis_us_by_command"] = {
            c: statistics.median((r.get("redis_usec") or {}).get(c, 0) / s["count"] for r in runs) for c in commands}
        for key in ("dead_lettered", "refused", "lost", "obuf_disconnects"):
            row[key + "_per_run"] = [r.get(key, 0) for r in runs]
        summary.append(row)
    return summary


def _cell(d, fmt):
    if not d:
        return "—"
    if d["min"] == d["max"]:
        return fmt(d["median"])
    return f"{fmt(d['median'])} ({fmt(d['min'])}–{fmt(d['max'])})"


def table(summary):
    def f_rate(v):
        return f"{v / 1000:.1f}k" if v >= 10000 else f"{v:.0f}"

    def f_us(v):  # a backlog's latency runs to seconds: thousands separated
        return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"

    def f2(v):
        return f"{v:.2f}"

    hdr = ("| scenario | time s | events/s | p50 µs | p99 µs | evhost CPU µs/event | redis CPU µs/event "
           "| Redis cmds/event | dead-lettered | lost | obuf disc. |")
    out = [hdr, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in summary:
        lat = row.get("latency_us") or {}
        at_max = row["kind"] == "jj-max"
        out.append("| " + " | ".join([
            row["scenario"], _cell(row["seconds"], f2) if at_max else "—",
            _cell(row["events_per_s"], f_rate) if at_max else "—",
            _cell(lat.get("p50"), f_us), _cell(lat.get("p99"), f_us),
            _cell(row["evhost_cpu_us_per_event"], f2), _cell(row["redis_cpu_us_per_event"], f2),
            _cell(row["redis_commands_per_event"], f2),
            "/".join(str(x) for x in row["dead_lettered_per_run"]),
            "/".join(str(x) for x in row["lost_per_run"]),
            "/".join(str(x) for x in row["obuf_disconnects_per_run"]),
        ]) + " |")
    return "\n".join(out)


def commands_table(summary):
    """Calls per event and Redis's µs per event in them (INFO commandstats'
    usec: the time in the command itself; a script's includes the commands
    it runs, which are listed under their own names as well)."""
    out = ["| scenario | evhost's Redis commands per event, by command: calls (Redis µs in them), medians |",
           "| --- | --- |"]
    for row in summary:
        by = row["redis_commands_by_command"]
        us = row.get("redis_us_by_command") or {}
        cells = ", ".join(f"{c} {v:.2f} ({us.get(c, 0):.2f} µs)" for c, v in sorted(by.items(), key=lambda kv: -kv[1])
                          if v >= 0.005)
        out.append(f"| {row['scenario']} | {cells or '—'} |")
    return "\n".join(out)


def write_results(args, started, redis_version, runs_by_scenario, failures):
    summary = summarize(runs_by_scenario)
    meta = dict(date=started.isoformat(timespec="seconds"), redis=redis_version, reps=args.reps, quick=args.quick,
                jollyjet=True, machine=machine())
    doc = dict(meta=meta, summary=summary, failures=failures,
               runs=[{k: v for k, v in r.items() if k != "spec"} for runs in runs_by_scenario.values()
                     for r in runs])
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    md = [f"evhost JollyJet benchmark (--jollyjet), {meta['date']}, commit {meta['machine']['commit']}, "
          f"{meta['machine']['cpus']} CPUs ({meta['machine']['cpu']}), Redis {redis_version}; medians of "
          f"{args.reps} runs (min–max); dead-lettered, lost and obuf disconnects per run. Time and events/s at "
          "max rate only; p50/p99 end-to-end at fixed rates only (docs/benchmarks.md says how each is measured).",
          "", table(summary), "", commands_table(summary)]
    if failures:
        md += ["", "Failed runs:", ""] + [f"- {x}" for x in failures]
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    print(f"\nwrote {args.out}/results.json, results.md")
