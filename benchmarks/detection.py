"""Section 2: detection efficiency. API calls per job against detection delay, per schedule.

Every schedule watches the same jobs: each run uses a simulator seeded alike, so the k-th
operation takes the same Veo-like duration everywhere (log-normal, 11 s min, 90 s median,
360 s max, compressed by ``scale``). Detection delay = the moment the host hears the job is
done (a listener's receive time, or the peer's loop noticing) minus the moment the simulated
server finished it, in simulated seconds. Calls per job = GETs the server got for it.

- reference and adaptive run through the real tree (PollingManager, SQLite), with the per-cycle
  cap and the check pool raised so that neither binds; adaptive first gets a warm-up batch on
  the same database, then a *new* manager on that database measures a second batch (its
  history comes back from the job table at start, as after a restart);
- the SDK docs' loop (google-genai, 10 s sleep) and google-api-core's LRO default
  (1 s x 1.5 capped at 20 s, full jitter) run on one thread per job;
- the oracle (one call exactly at completion) is computed: 1 call, zero delay.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import actors
from benchmarks.common import quiet_logs, summary
from benchmarks.peers import API_KEY, api_core_job, sdk_loop_job

SCHEDULES = ("reference", "sdk-loop", "api-core", "oracle", "adaptive")


class _Waiter:
    def __init__(self, n: int) -> None:
        self.n = n
        self.times: dict[str, float] = {}
        self._cond = threading.Condition()

    def done(self, key: str) -> None:
        now = time.monotonic()
        with self._cond:
            self.times.setdefault(key, now)
            self._cond.notify_all()

    def wait(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.times) >= self.n, timeout)


def _collect(sim: actors.VeoSimulator, names: list[str], heard: dict[str, float], scale: float) -> dict[str, Any]:
    calls, delays, server_delays = [], [], []
    for name in names:
        calls.append(sim.poll_count(name))
        finish = sim.finish_time(name)
        if name in heard:
            delays.append((heard[name] - finish) * scale)
        first = sim.first_poll_after_done(name)
        if first is not None:
            server_delays.append((first - finish) * scale)
    return {"jobs": len(names), "heard": len(heard), "calls_per_job": sum(calls) / max(1, len(names)),
            "delay": summary(delays), "server_delay": summary(server_delays),
            "delays": [round(d, 3) for d in delays]}


def _tree_batch(db: str, schedule: str, n: int, scale: float, seed: int, timeout: float) -> tuple[dict[str, Any], Any]:
    config = actors.PollingConfig(schedule=schedule, max_checks_per_cycle=100_000, max_in_flight=max(32, n),
                                  ask_timeout=60.0).scaled(scale)
    with actors.VeoSimulator(time_scale=scale, seed=seed) as sim:
        client = actors.GeminiVeoClient(api_key=API_KEY, base_url=sim.base_url)
        manager = actors.PollingManager(database=db, client=client, config=config)
        manager.initialize()
        learned = {kind: manager.runtime.schedule.history_size(kind)
                   for kind in ("generation", "upscale")} if schedule == "adaptive" else {}
        waiter = _Waiter(n)
        by_job: dict[str, str] = {}

        def listener(update: Any) -> None:
            if update.status == "completed":
                waiter.done(by_job[update.job_id])

        manager.add_listener(listener)
        names = []
        prefix = f"s{seed}"
        for i in range(n):
            name = sim.create_operation()
            job_id = f"{prefix}-{i}"
            by_job[job_id] = name
            names.append(name)
            manager.add_to_polling(job_id, f"p{i}", "generation" if i % 2 == 0 else "upscale", "bench", name)
        waiter.wait(timeout)
        schedule_obj = manager.runtime.schedule
        manager.shutdown(timeout=30)
        result = _collect(sim, names, {k: v for k, v in waiter.times.items()}, scale)
        result["history_at_start"] = learned
        return result, schedule_obj


def _thread_peer(kind: str, n: int, scale: float, seed: int, timeout: float) -> dict[str, Any]:
    with actors.VeoSimulator(time_scale=scale, seed=seed) as sim:
        waiter = _Waiter(n)
        names = [sim.create_operation() for _ in range(n)]
        threads = []
        if kind == "sdk-loop":
            from google import genai

            client = genai.Client(api_key=API_KEY, http_options={"base_url": sim.base_url, "api_version": "v1beta"})
            for name in names:
                threads.append(threading.Thread(target=sdk_loop_job, args=(client, name, 10.0 / scale, waiter.done),
                                                daemon=True))
        else:
            client = actors.GeminiVeoClient(api_key=API_KEY, base_url=sim.base_url)
            check: Callable[[str], Any] = client.check
            for i, name in enumerate(names):
                threads.append(threading.Thread(target=api_core_job, args=(check, name, random.Random(seed * 7919 + i)),
                                                kwargs={"scale": scale, "on_done": waiter.done}, daemon=True))
        for thread in threads:
            thread.start()
        waiter.wait(timeout)
        for thread in threads:
            thread.join(timeout=1.0)
        return _collect(sim, names, dict(waiter.times), scale)


def measure(*, n: int, warmup: int, scale: float, seed: int = 42, timeout: float = 120.0,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every schedule on the same ``n`` job durations; returns figures per schedule."""
    quiet_logs()
    workdir = Path(tempfile.mkdtemp(prefix="veo-detect-"))
    results: dict[str, Any] = {}
    results["reference"], _ = _tree_batch(f"sqlite:///{workdir}/reference.db", "reference", n, scale, seed, timeout)
    for peer in ("sdk-loop", "api-core"):
        results[peer] = _thread_peer(peer, n, scale, seed, timeout)
    results["oracle"] = {"jobs": n, "heard": n, "calls_per_job": 1.0, "delay": summary([0.0] * n),
                         "server_delay": summary([0.0] * n), "delays": [], "computed": True}
    adaptive_db = f"sqlite:///{workdir}/adaptive.db"
    warm, _ = _tree_batch(adaptive_db, "adaptive", warmup, scale, seed + 1, timeout)
    results["adaptive"], schedule = _tree_batch(adaptive_db, "adaptive", n, scale, seed, timeout)
    results["adaptive"]["warmup"] = {k: v for k, v in warm.items() if k != "delays"}
    results["adaptive"]["ladder_generation"] = [round(a, 2) for a in schedule.ladder("generation", limit=8)]
    results["adaptive"]["ladder_upscale"] = [round(a, 2) for a in schedule.ladder("upscale", limit=8)]
    for name in SCHEDULES:
        r = results[name]
        log(f"  detection {name:<9}: calls/job {r['calls_per_job']:.2f}  delay mean {r['delay']['mean']:.1f}s "
            f"p95 {r['delay']['p95']:.1f}s (heard {r['heard']}/{r['jobs']})")
    ref, ada = results["reference"], results["adaptive"]
    results["goal"] = {
        "calls_ratio": ada["calls_per_job"] / ref["calls_per_job"],
        "calls_saved": 1.0 - ada["calls_per_job"] / ref["calls_per_job"],
        "mean_delay_ratio": ada["delay"]["mean"] / ref["delay"]["mean"],
        "p95_delay_ratio": ada["delay"]["p95"] / ref["delay"]["p95"],
    }
    goal = results["goal"]
    goal["met"] = goal["calls_saved"] >= 0.40 and goal["mean_delay_ratio"] <= 1.0 and goal["p95_delay_ratio"] <= 1.0
    results["settings"] = {"n": n, "warmup": warmup, "scale": scale, "seed": seed}
    return results
