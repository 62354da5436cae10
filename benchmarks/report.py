"""Writes RESULTS.md, results.json and the PNG plots from one run's figures."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from benchmarks.common import fmt

PEER_LABELS = {"tree": "tree (this project)", "host-thread": "host-thread polling", "sdk-loop": "SDK docs' loop"}


def _med(row: dict[str, Any], key: str) -> float:
    value = row.get(key)
    return value["median"] if isinstance(value, dict) else float("nan")


def _ratio(a: float, b: float) -> str:
    if not b or b != b or a != a:
        return "-"
    return f"{a / b:.2f}x"


def plots(results: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    det = results.get("detection")
    if det:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for name in ("reference", "sdk-loop", "api-core", "oracle", "adaptive"):
            r = det[name]
            ax.scatter(r["calls_per_job"], r["delay"]["mean"], s=60, label=name)
            ax.annotate(name, (r["calls_per_job"], r["delay"]["mean"]), textcoords="offset points", xytext=(6, 4))
        ax.set_xlabel("API calls per job")
        ax.set_ylabel("mean detection delay (simulated s)")
        ax.set_title("Calls per job against detection delay")
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=-1)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "detection.png", dpi=110)
        plt.close(fig)
        made.append("detection.png")
    table = results.get("table")
    if table and table["rows"]:
        fig, axes = plt.subplots(1, 3, figsize=(13, 4.0))
        for peer in PEER_LABELS:
            rows = [r for r in table["rows"] if r["peer"] == peer and r["repeats"]]
            ns = [r["n"] for r in rows]
            axes[0].plot(ns, [_med(r, "lag_p99_ms") for r in rows], marker="o", label=PEER_LABELS[peer])
            axes[1].plot(ns, [_med(r, "lag_max_ms") for r in rows], marker="o", label=PEER_LABELS[peer])
            axes[2].plot(ns, [_med(r, "rss_growth_mb") for r in rows], marker="o", label=PEER_LABELS[peer])
        for ax, title in zip(axes, ("host stall p99 (ms)", "host stall max (ms)", "RSS growth (MB)")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("jobs")
            ax.set_title(title)
            ax.grid(alpha=0.3)
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(out / "table.png", dpi=110)
        plt.close(fig)
        made.append("table.png")
    return made


def _table_md(table: dict[str, Any]) -> list[str]:
    lines = ["| jobs | peer | runs | scale | wall (s) | stall p50 / p99 / max (ms) | RSS growth (MB) | CPU host / pollers (s) | calls | calls/job | calls per cycle mean / max |",
             "|---:|---|---:|---:|---:|---|---:|---|---:|---:|---|"]
    for r in table["rows"]:
        note = f" ({r['timed_out']} timed out)" if r.get("timed_out") else ""
        note += f" ({r['errors']} failed)" if r.get("errors") else ""
        wall = r["wall_s"]
        lines.append(
            f"| {r['n']:,} | {r['peer']}{note} | {r['repeats']} | {r['scale']:g} | {fmt(wall['median'])} [{fmt(wall['min'])}-{fmt(wall['max'])}] "
            f"| {fmt(_med(r, 'lag_p50_ms'), 2)} / {fmt(_med(r, 'lag_p99_ms'))} / {fmt(_med(r, 'lag_max_ms'), 0)} "
            f"[max {fmt(r['lag_max_ms']['min'], 0)}-{fmt(r['lag_max_ms']['max'], 0)}] "
            f"| {fmt(_med(r, 'rss_growth_mb'))} | {fmt(_med(r, 'cpu_host_s'), 2)} / {fmt(_med(r, 'cpu_threads_s'), 2)} "
            f"| {fmt(_med(r, 'calls'), 0)} | {fmt(_med(r, 'calls_per_job'), 2)} | {fmt(_med(r, 'calls_per_cycle_mean'))} / {fmt(_med(r, 'calls_per_cycle_max'), 0)} |")
    return lines


def _ratios_md(table: dict[str, Any]) -> list[str]:
    lines = ["| jobs | stall p99: host-thread / tree | stall max: host-thread / tree | stall max: SDK loop / tree | RSS: SDK loop / tree | CPU total: SDK loop / tree | calls: SDK loop / tree |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    by = {(r["n"], r["peer"]): r for r in table["rows"]}
    for n in sorted({r["n"] for r in table["rows"]}):
        tree, host, sdk = by.get((n, "tree")), by.get((n, "host-thread")), by.get((n, "sdk-loop"))
        if not tree or not host or not sdk:
            continue
        cpu = lambda r: _med(r, "cpu_host_s") + _med(r, "cpu_threads_s")  # noqa: E731
        lines.append(f"| {n:,} | {_ratio(_med(host, 'lag_p99_ms'), _med(tree, 'lag_p99_ms'))} "
                     f"| {_ratio(_med(host, 'lag_max_ms'), _med(tree, 'lag_max_ms'))} "
                     f"| {_ratio(_med(sdk, 'lag_max_ms'), _med(tree, 'lag_max_ms'))} "
                     f"| {_ratio(_med(sdk, 'rss_growth_mb'), _med(tree, 'rss_growth_mb'))} "
                     f"| {_ratio(cpu(sdk), cpu(tree))} | {_ratio(_med(sdk, 'calls'), _med(tree, 'calls'))} |")
    return lines


def write(results: dict[str, Any], out: Path) -> Path:
    """Write results.json, the plots and RESULTS.md into ``out``; returns the RESULTS.md path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=_json_default, allow_nan=True))
    images = plots(results, out)
    meta = results["meta"]
    md = [
        "# Benchmarks",
        "",
        f"Generated by `python benchmarks/run.py{' ' + meta['mode_flag'] if meta['mode_flag'] else ''}` on {meta['date']} "
        f"({meta['machine']}; Python {meta['python']}), in {meta['elapsed_s']:.0f} s. Every figure is in "
        "`results.json`. All runs use the simulated Veo server on loopback with **compressed time**: "
        "durations are Veo-like (log-normal, 11 s minimum, 90 s median, 360 s maximum) divided by the "
        "time scale given with each section; delays below are converted back to simulated seconds "
        "unless marked real. This machine is shared and noisy: read the ratios, not the absolute times.",
        "",
    ]
    md += meta.get("notes_top", [])
    head, md = md, []
    det = results.get("detection")
    if det:
        s, g = det["settings"], det["goal"]
        md += [
            "## 2. Detection efficiency: fewer calls, sooner news",
            "",
            f"{s['n']} jobs per schedule, the same durations for every schedule (seeded server), time scale {s['scale']:g} "
            f"(1 real s = {s['scale']:g} simulated s). Adaptive: a warm-up batch of {s['warmup']} jobs, then a new manager "
            "on the same database (its history loaded from the job table) measures the batch. Tree runs use the "
            "reference defaults (10 s ticks, 10 s x 1.5 backoff capped at 60 s) with the per-cycle cap and the "
            "check pool raised so they do not bind. Delay = listener receive time - server finish time.",
            "",
            "| schedule | calls/job | delay mean (s) | p50 | p95 | max | of which server-side mean (s) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name in ("reference", "sdk-loop", "api-core", "oracle", "adaptive"):
            r = det[name]
            d = r["delay"]
            md.append(f"| {name}{' (computed)' if r.get('computed') else ''} | {r['calls_per_job']:.2f} | {fmt(d['mean'])} | {fmt(d['p50'])} "
                      f"| {fmt(d['p95'])} | {fmt(d['max'])} | {fmt(r['server_delay']['mean'])} |")
        verdict = "**met**" if g["met"] else "**not met**"
        md += [
            "",
            f"Adaptive against reference: **{g['calls_saved'] * 100:.0f}% fewer calls per job** "
            f"({det['adaptive']['calls_per_job']:.2f} vs {det['reference']['calls_per_job']:.2f}), mean delay x{g['mean_delay_ratio']:.2f}, "
            f"p95 delay x{g['p95_delay_ratio']:.2f}. Goal (>= 40% fewer calls, mean and p95 delay no worse): {verdict}.",
            "Learned check ages for a generation (simulated s, no jitter): "
            + ", ".join(f"{a * s['scale']:.0f}" for a in det["adaptive"]["ladder_generation"]) + ".",
            "",
        ]
        md += det.get("notes", [])
        if "detection.png" in images:
            md += ["![calls per job against mean detection delay](detection.png)", ""]
    detection_md, md = md, []
    table = results.get("table")
    if table:
        md += [
            "## 1. The reference table: this project against its peers",
            "",
            "Each run is a fresh process playing the host; the simulated server runs in the benchmark's process. "
            "The host thread runs a 1 ms sleep loop while the jobs are watched; its lateness is the *stall*. "
            "CPU is split into the host thread's own CPU time and everything else in the process (the polling "
            "threads). Tree and host-thread polling use the reference schedule (10 s ticks, 10 s x 1.5 capped at "
            "60 s, in compressed time); their per-cycle cap is raised to the job count and the tree's check pool "
            "to min(jobs, 256) threads (the poller starts at most one pool's worth of checks per tick). The SDK loop is the real google-genai client "
            "(`client.operations.get`) on one thread per job, sleeping 10 s (compressed). A cycle is 10 "
            "simulated seconds. Brackets give the range over the repeats; other cells the median.",
            "",
        ]
        md += _table_md(table)
        md += ["", "Ratios (medians):", ""] + _ratios_md(table) + [""]
        md += table.get("notes", []) + _table_notes(table) + [""]
        if "table.png" in images:
            md += ["![host stall and memory against job count](table.png)", ""]
    md = head + md + detection_md
    ceil = results.get("ceilings")
    if ceil:
        rate = ceil["checks_per_second"]
        md += [
            "## 3. Ceilings",
            "",
            "| figure | value | goal |",
            "|---|---:|---|",
            f"| checks/s sustained by the tree ({rate['jobs']} never-finishing jobs, {rate['max_in_flight']} check threads, every cap raised; server in its own process) "
            f"| {rate['tree']['checks_per_s']:.0f} | >= 1,000: {'met' if rate['met'] else '**not met**'} |",
            f"| CPU per check, whole tree process | {rate['tree']['cpu_us_per_check']:.0f} us | |",
            f"| bare HTTP client alone, same threads | {rate['bare_client']['checks_per_s']:.0f} checks/s, {rate['bare_client']['cpu_us_per_check']:.0f} us CPU each | (bound) |",
        ]
        for cold in ceil["cold_start"]:
            md.append(f"| cold start, {cold['jobs']:,} pending jobs in SQLite: `initialize()` / every job scheduled "
                      f"| {cold['initialize_s']:.2f} s / {cold['all_scheduled_s']:.2f} s (+{cold['rss_growth_mb']:.0f} MB) | |")
        crash = ceil["crash"]
        md.append(f"| poller `Crash` -> first check by its successor (p50 of {len(crash['trials'])}; time scale {crash['scale']:g}) "
                  f"| {crash['crash_to_check']['p50'] * 1000:.0f} ms real (max {crash['crash_to_check']['max'] * 1000:.0f}) "
                  f"| restart_delay {crash['restart_delay_s'] * 1000:.0f} ms + up to one tick ({crash['tick_interval_s'] * 1000:.0f} ms) |")
        fan = ceil["fan_out"]
        md.append(f"| fan-out to {fan['listeners']} listeners ({fan['deliveries']:,} deliveries): latency p50 / p99 "
                  f"| {fan['latency_ms']['p50']:.1f} / {fan['latency_ms']['p99']:.1f} ms | |")
        md += [""] + ceil.get("notes", []) + _ceiling_notes(ceil)
    md += meta.get("notes_bottom", [])
    path = out / "RESULTS.md"
    path.write_text("\n".join(md) + "\n")
    return path


def _table_notes(table: dict[str, Any]) -> list[str]:
    """Reading the table: what each figure shows and where a peer wins."""
    notes = [
        "- **Host stall.** Host-thread polling blocks the host for a whole cycle of checks, so its *max* "
        "stall grows with the jobs due in one cycle; its p50/p99 stay low because most 1 ms sleeps fall "
        "between cycles. The tree and the SDK loop never block the host thread, but their polling threads "
        "compete with it for the GIL, which shows as a few ms at p99.",
        "- **Wall time** includes starting the jobs: the tree stores each job and starts its actor before "
        "`add_to_polling` returns (the `submit_s` figure in results.json), which dominates at 1,000+ jobs.",
        "- **Calls.** The SDK loop checks every 10 s whatever the job, about 2.5x the calls of the reference "
        "schedule; under load its threads fall behind (fewer calls per job, later news). Calls per cycle "
        "show its bursts against the tree's capped cycles.",
        "- **1,000 and 10,000 jobs** use a lower compression (time scale 20 and 10) and one run each. Even so, "
        "starting 10,000 jobs takes longer than many compressed durations, so many jobs were already done at "
        "their first check (calls/job below the ~4.3 the reference schedule needs): compare those rows for "
        "stall, memory and CPU, not for calls. Host-thread polling needed fewer calls there only because it "
        "fell behind: its host thread was blocked for up to the max stall shown.",
    ]
    for row in table["rows"]:
        if row.get("timed_out") or row.get("errors"):
            notes.append(f"- {row['peer']} at {row['n']:,} jobs: {row.get('timed_out', 0)} run(s) hit the time limit "
                         f"and {row.get('errors', 0)} failed; its figures cover the jobs finished by then.")
    return notes


def _ceiling_notes(ceil: dict[str, Any]) -> list[str]:
    """What bounds each ceiling, derived from the figures themselves."""
    notes = []
    rate = ceil["checks_per_second"]
    tree, bare = rate["tree"], rate["bare_client"]
    if not rate["met"]:
        cores = 2
        notes.append(
            f"- **Checks per second: goal not met** ({tree['checks_per_s']:.0f}/s against 1,000/s). It is CPU-bound: "
            f"{tree['cpu_us_per_check']:.0f} us of CPU per check, and the process used "
            f"{tree.get('cpu_cores_busy', float('nan')):.2f} cores: the GIL keeps the tree's Python on one core, so "
            f"1 s / {tree['cpu_us_per_check']:.0f} us = ~{1e6 / tree['cpu_us_per_check']:.0f} checks/s is the bound "
            f"(~{cores * 1e6 / tree['cpu_us_per_check']:.0f}/s even if both cores could be used). The bare HTTP client alone (requests, same server "
            f"in another process, no tree) already costs {bare['cpu_us_per_check']:.0f} us per check and tops out at "
            f"{bare['checks_per_s']:.0f}/s, so about {min(1.0, bare['cpu_us_per_check'] / tree['cpu_us_per_check']) * 100:.0f}% "
            "of each check is the HTTP client itself; the rest is the tree's own work per check (a store "
            "write per attempt, committed in groups on the writer thread, three actor messages and their "
            "thread switches, the schedule and metrics). Veo's quotas are orders of magnitude below either figure, so the tree is still not "
            "the bottleneck in practice; batching checks per profile (`check_many`) or a cheaper HTTP stack "
            "would raise the ceiling.")
    crash = ceil["crash"]
    notes.append(
        f"- **Poller crash to next check** is bounded by design by `restart_delay` "
        f"({crash['restart_delay_s'] * 1000:.0f} ms here): the restarted poller runs its first cycle at once "
        f"(not one `tick_interval`, {crash['tick_interval_s'] * 1000:.0f} ms here, later) and staggers the "
        "overdue checks over one tick. At the reference defaults that is about 2 s.")
    colds = ceil["cold_start"]
    if colds:
        big = colds[-1]
        notes.append(
            f"- **Cold start** is bounded by starting one OS thread per job actor (pykka `ThreadingActor`): "
            f"{big['all_scheduled_s'] / max(1, big['jobs']) * 1e3:.2f} ms and "
            f"{big['rss_growth_mb'] * 1024 / max(1, big['jobs']):.0f} KB per job at {big['jobs']:,} jobs.")
    return notes


def main(argv: list[str]) -> int:
    """Re-render RESULTS.md and the plots from a results.json: ``python -m benchmarks.report DIR``."""
    out = Path(argv[0]) if argv else Path(__file__).resolve().parent
    results = json.loads((out / "results.json").read_text())
    write(results, out)
    return 0


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
