"""Section 1: the reference table, this project against its peers, in one run.

For each job count and each peer (see :mod:`benchmarks.peers`) a fresh child process plays the
host application while this process serves the simulated Veo API on loopback. Rows are
repeated; the report gives the median and the spread of every figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import actors
from benchmarks.common import spread
from benchmarks.peers import PEERS

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("wall_s", "wall_sim_s", "submit_s", "lag_p50_ms", "lag_p99_ms", "lag_max_ms", "rss_growth_mb",
           "cpu_host_s", "cpu_threads_s", "calls", "calls_per_job")


def run_child(args: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one peer in a fresh interpreter; returns its JSON result (or an error record)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.peers", json.dumps(args)], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**args, "error": f"killed after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {**args, "error": (proc.stderr or proc.stdout)[-800:]}
    return json.loads(lines[-1])


def measure(sizes: list[tuple[int, int, float]], *, log: Callable[[str], None] = print,
            run_timeout: float = 240.0) -> dict[str, Any]:
    """``sizes``: (jobs, repeats, time scale) rows. Returns every run and per-row summaries."""
    runs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for n, repeats, scale in sizes:
        for peer in PEERS:
            results = []
            for rep in range(repeats):
                with actors.VeoSimulator(time_scale=scale, seed=1000 + rep) as sim:
                    started = time.monotonic()
                    result = run_child({"peer": peer, "n": n, "scale": scale, "base_url": sim.base_url,
                                        "timeout": run_timeout, "rep": rep}, timeout=run_timeout + 120)
                    result["server_requests"] = sim.request_count
                    result["server_max_concurrency"] = sim.max_concurrency
                    result["run_s"] = time.monotonic() - started
                result["rep"] = rep
                runs.append(result)
                results.append(result)
                if "error" in result:
                    log(f"  table n={n} {peer} rep {rep}: ERROR {result['error'][-200:]}")
                else:
                    log(f"  table n={n:>5} {peer:<11} rep {rep}: wall {result['wall_s']:.1f}s "
                        f"stall p99 {result['lag_p99_ms']:.1f}ms max {result['lag_max_ms']:.0f}ms "
                        f"calls/job {result['calls_per_job']:.2f} rss +{result['rss_growth_mb']:.0f}MB"
                        f"{' TIMED OUT' if result.get('timed_out') else ''}")
            good = [r for r in results if "error" not in r]
            row = {"n": n, "peer": peer, "scale": scale, "repeats": len(good), "errors": len(results) - len(good),
                   "timed_out": sum(1 for r in good if r.get("timed_out"))}
            for figure in FIGURES:
                row[figure] = spread(r[figure] for r in good)
            row["calls_per_cycle_mean"] = spread(r["calls_per_cycle"]["mean"] for r in good)
            row["calls_per_cycle_max"] = spread(r["calls_per_cycle"]["max"] for r in good)
            rows.append(row)
    return {"runs": runs, "rows": rows}
