"""What a set of runs comes to: the summary (medians, min-max), the table,
the issue's goals read off the figures, the latency plot, the machine."""
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys

from .names import MAX_IN_FLIGHT


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
        windowed = [r["windows_us"] for r in runs if r.get("windows_us")]
        if windowed:
            # Loaded (odd) against quiet (even) windows of the same run; the
            # change is the median of the runs' own changes.
            row["windows_us"] = {}
            for p in ("p50", "p99", "p999"):
                even = [w["even"][p] for w in windowed]
                odd = [w["odd"][p] for w in windowed]
                row["windows_us"][p] = dict(
                    even=statistics.median(even), odd=statistics.median(odd),
                    change=statistics.median([o / e - 1 for o, e in zip(odd, even) if e > 0]))
        neighbours = [c for r in runs if r.get("per_window") for c in neighbour_changes(r["per_window"])]
        if neighbours:
            row["per_window_p99_change"] = dict(median=statistics.median(neighbours), pairs=len(neighbours))
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


# A window of fewer events is left out of the comparison of neighbours:
# its p99 rests on a handful of them (a run's first and last windows).
MIN_WINDOW_EVENTS = 1000


def neighbour_changes(per_window):
    """Each loaded (odd) window's p99 against each of its quiet neighbours'
    (windows k-1 and k+1), as relative changes: two comparisons per loaded
    window instead of one per run. One neighbour at a time, not their mean:
    the ratio of two windows alike is as likely above 1 as below, so the
    median of the changes is 0 when the load costs nothing (against a mean
    of two, which is less spread than one window, it would not be)."""
    by_index = {i: (n, p99) for i, n, p99 in per_window["windows"]}
    out = []
    for k, (n, p99) in by_index.items():
        if k % 2 == 0 or n < MIN_WINDOW_EVENTS:
            continue
        for j in (k - 1, k + 1):
            side = by_index.get(j)
            if side is not None and side[0] >= MIN_WINDOW_EVENTS and side[1] > 0:
                out.append(p99 / side[1] - 1)
    return out


def windows_table(summary):
    """The runs whose load acted in odd windows only: each percentile in the
    quiet (even) and loaded (odd) windows, and the median of the runs' own
    changes. Empty without such runs."""
    rows = [r for r in summary if r.get("windows_us")]
    if not rows:
        return ""
    out = ["| scenario (windows) | p50 µs quiet → loaded | p99 µs quiet → loaded | p99.9 µs quiet → loaded "
           "| p99, each loaded window against each quiet neighbour: median change (pairs) |",
           "| --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        w = r["windows_us"]
        n = r.get("per_window_p99_change")
        out.append("| " + " | ".join([r["scenario"]] + [
            f"{w[p]['even']:.0f} → {w[p]['odd']:.0f} ({w[p]['change'] * 100:+.1f} %)" for p in ("p50", "p99", "p999")
        ] + [f"{n['median'] * 100:+.1f} % ({n['pairs']})" if n else "—"]) + " |")
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
        f.write(f"""# gnuplot script written by bench/run.py (evhbench/report.py)
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


def write_results(args, started, redis_version, runs_by_scenario, failures):
    """Writes results.json, results.md and the plot into args.out, and prints
    the table."""
    summary = summarize(runs_by_scenario)
    goals = verdicts(summary)
    meta = dict(date=started.isoformat(timespec="seconds"), redis=redis_version, reps=args.reps, quick=args.quick,
                machine=machine(), pin_loop=getattr(args, "pin_loop", False))
    doc = dict(meta=meta, summary=summary, goals=goals, failures=failures,
               runs=[{k: v for k, v in r.items() if k != "spec"} for runs in runs_by_scenario.values()
                     for r in runs])
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    md = [f"evhost benchmark, {meta['date']}, commit {meta['machine']['commit']}, {meta['machine']['cpus']} CPUs "
          f"({meta['machine']['cpu']}), Redis {redis_version}; medians of {args.reps} runs (min–max); "
          "lost and obuf disconnects per run." +
          (" The subscriber's loop alone on a CPU (--pin-loop)." if meta["pin_loop"] else ""), "", table(summary), ""]
    if windows_table(summary):
        md += ["Within runs, quiet (even) against loaded (odd) windows; the change is the median of the runs' own:",
               "", windows_table(summary), ""]
    md += ["| goal | figure | met |", "| --- | ---: | --- |"]
    md += [f"| {g['goal']} | {g['figure']} | "
           f"{'—' if g['met'] is None else 'yes' if g['met'] else '**no**'} |" for g in goals]
    if failures:
        md += ["", "Failed runs:", ""] + [f"- {x}" for x in failures]
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    png = plot(summary, args.out, f"{meta['date'][:10]}, {meta['machine']['cpus']} CPUs, Redis {redis_version}")
    print("\n".join(md))
    print(f"\nwrote {args.out}/results.json, results.md" + (", latency.png" if png else ""))
