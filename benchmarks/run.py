"""Run every benchmark and write RESULTS.md, results.json and the plots.

    python benchmarks/run.py            # the full run (well under an hour)
    python benchmarks/run.py --quick    # a few minutes
    python benchmarks/run.py --smoke --out DIR   # seconds: tiny sizes, for the test suite
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: (table rows as (jobs, repeats, time scale), detection (n, warmup, scale), ceilings options)
MODES = {
    "full": {"table": [(10, 2, 50.0), (50, 2, 50.0), (100, 2, 50.0), (200, 2, 50.0), (1000, 1, 20.0), (10000, 1, 10.0)],
             "detection": (200, 200, 10.0), "cold": (1000, 10000), "rate_s": 5.0, "crash": 5, "run_timeout": 200.0},
    "quick": {"table": [(10, 1, 50.0), (100, 1, 50.0), (1000, 1, 20.0)],
              "detection": (100, 100, 20.0), "cold": (1000,), "rate_s": 3.0, "crash": 3, "run_timeout": 120.0},
    "smoke": {"table": [(4, 1, 1000.0)], "detection": (6, 6, 1000.0), "cold": (20,), "rate_s": 0.3, "crash": 1,
              "run_timeout": 20.0, "ceilings": {"crash_scale": 100.0, "fan_listeners": 5, "fan_jobs": 5,
                                                 "rate_jobs": 20}},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    group.add_argument("--smoke", action="store_true", help="tiny sizes (seconds), for the test suite")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output directory")
    parser.add_argument("--only", choices=("table", "detection", "ceilings"), action="append",
                        help="run only these sections (repeatable)")
    args = parser.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    settings = MODES[mode]
    sections = set(args.only or ("table", "detection", "ceilings"))

    from benchmarks import ceilings, detection, report, table
    from benchmarks.common import quiet_logs

    quiet_logs()
    started = time.monotonic()
    log = lambda text: print(text, flush=True)  # noqa: E731
    log(f"benchmarks ({mode}): compressed time, scales given per section; output in {args.out}")
    results: dict = {}
    if "detection" in sections:
        n, warmup, scale = settings["detection"]
        log(f"detection: {n} jobs per schedule, time scale {scale:g} (1 real s = {scale:g} simulated s)")
        results["detection"] = detection.measure(n=n, warmup=warmup, scale=scale, log=log,
                                                 timeout=max(30.0, 500.0 / scale))
    if "ceilings" in sections:
        log("ceilings")
        results["ceilings"] = ceilings.measure(quick=mode != "full", log=log, cold_sizes=settings["cold"],
                                               rate_seconds=settings["rate_s"], crash_trials=settings["crash"],
                                               **settings.get("ceilings", {}))
    if "table" in sections:
        log("table: " + ", ".join(f"{n} jobs x{reps} at time scale {scale:g}" for n, reps, scale in settings["table"]))
        results["table"] = table.measure(settings["table"], log=log, run_timeout=settings["run_timeout"])
    results["meta"] = {
        "mode": mode, "mode_flag": "" if mode == "full" else f"--{mode}",
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "python": platform.python_version(), "elapsed_s": time.monotonic() - started,
        "sections": sorted(sections),
    }
    path = report.write(results, args.out)
    log(f"wrote {path} in {results['meta']['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
