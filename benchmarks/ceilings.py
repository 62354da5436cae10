"""Section 3: ceilings of the tree (checks per second, cold start, crash recovery, fan-out).

Each measurement builds its own tree on a fresh SQLite file. For checks per second the
simulated server runs in a process of its own so that its CPU is not charged to the tree.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import requests

import actors
from actors.messages import COMPLETED, PENDING
from actors.store import JobRecord, JobStore
from benchmarks.common import CountingClient, percentile, process_cpu, quiet_logs, rss_bytes, summary
from benchmarks.peers import API_KEY, start_operation
from benchmarks.simserver import simulator_process

NEVER = {"min_duration": 1e9, "median_duration": 1e9, "max_duration": 1e9}


def _db(tag: str) -> str:
    return f"sqlite:///{Path(tempfile.mkdtemp(prefix=f'veo-{tag}-')) / 'jobs.db'}"


def _wait(predicate: Callable[[], bool], timeout: float, step: float = 0.002) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def checks_per_second(*, jobs: int = 200, seconds: float = 5.0, in_flight: int = 16) -> dict[str, Any]:
    """The tree's sustained check rate with every cap out of the way, and CPU per check.

    Also measures the bare HTTP client alone (``in_flight`` threads calling ``check`` in a loop)
    on the same server, which bounds what the tree can reach.
    """
    config = actors.PollingConfig(
        tick_interval=0.002, initial_backoff=0.001, max_backoff=0.001, backoff_multiplier=1.0,
        max_checks_per_cycle=100_000, max_in_flight=in_flight, max_attempts=10**9,
        job_deadline=1e9, ask_timeout=60.0,
    )
    with simulator_process(time_scale=1.0, **NEVER) as base_url:
        session = requests.Session()
        names = [start_operation(session, base_url) for _ in range(jobs)]
        # The bare client: how fast can `in_flight` threads check at all?
        client = actors.GeminiVeoClient(api_key=API_KEY, base_url=base_url)
        stop = threading.Event()
        counts = [0] * in_flight

        def hammer(k: int) -> None:
            i = k
            while not stop.is_set():
                client.check(names[i % len(names)])
                counts[k] += 1
                i += in_flight

        cpu0, t0 = process_cpu(), time.monotonic()
        threads = [threading.Thread(target=hammer, args=(k,), daemon=True) for k in range(in_flight)]
        for thread in threads:
            thread.start()
        time.sleep(seconds / 2)
        stop.set()
        for thread in threads:
            thread.join()
        raw_elapsed, raw_cpu = time.monotonic() - t0, process_cpu() - cpu0
        raw = {"checks_per_s": sum(counts) / raw_elapsed, "cpu_us_per_check": raw_cpu / sum(counts) * 1e6}
        client.close()

        counting = CountingClient(actors.GeminiVeoClient(api_key=API_KEY, base_url=base_url))
        manager = actors.PollingManager(database=_db("rate"), client=counting, config=config)
        manager.initialize()
        for i, name in enumerate(names):
            manager.add_to_polling(f"r-{i}", f"p-{i}", "generation", "bench", name)
        time.sleep(min(1.0, seconds))  # warm up
        c0, cpu0, t0 = len(counting.calls), process_cpu(), time.monotonic()
        time.sleep(seconds)
        c1, cpu1, t1 = len(counting.calls), process_cpu(), time.monotonic()
        stats = manager.stats()
        manager.shutdown(timeout=30)
    checks = c1 - c0
    tree = {"checks_per_s": checks / (t1 - t0), "cpu_us_per_check": (cpu1 - cpu0) / max(1, checks) * 1e6,
            "cpu_cores_busy": (cpu1 - cpu0) / (t1 - t0), "store_errors": stats.get("store_errors", 0)}
    return {"jobs": jobs, "seconds": seconds, "max_in_flight": in_flight, "tree": tree, "bare_client": raw,
            "goal_checks_per_s": 1000, "met": tree["checks_per_s"] >= 1000}


def cold_start(count: int) -> dict[str, Any]:
    """Time to rehydrate ``count`` pending jobs from SQLite and have every one scheduled."""
    db = _db("cold")
    store = JobStore(db)
    store.open()
    now = time.time()
    futures = []
    for i in range(count):
        record = JobRecord(
            job_id=f"c-{i}", kind="generation", prompt_id=f"p-{i}", profile_id="bench",
            operation_name=f"models/veo-3.0-generate-001/operations/cold{i}", scene_id=None,
            status=PENDING, attempts=0, backoff=10.0, next_due_at=now + 3600.0, video_url=None,
            video_uris=(), error=None, not_found_streak=0, created_at=now, updated_at=now,
        )
        futures.append(store.insert_job(record))
    for future in futures:
        future.result(timeout=120)
    store.close()
    with actors.VeoSimulator() as sim:
        config = actors.PollingConfig(ask_timeout=120.0)
        rss0 = rss_bytes()
        t0 = time.monotonic()
        manager = actors.PollingManager(database=db, client=actors.GeminiVeoClient(api_key=API_KEY, base_url=sim.base_url),
                                        config=config)
        manager.initialize()
        t_init = time.monotonic() - t0
        scheduled = _wait(lambda: manager.runtime.metrics.get("schedule_depth") >= count, timeout=300, step=0.01)
        t_sched = time.monotonic() - t0
        rss = rss_bytes() - rss0
        t1 = time.monotonic()
        manager.shutdown(timeout=120)
        t_stop = time.monotonic() - t1
    return {"jobs": count, "initialize_s": t_init, "all_scheduled_s": t_sched, "scheduled": scheduled,
            "rss_growth_mb": rss / 2**20, "shutdown_s": t_stop}


def crash_to_next_check(*, trials: int = 5, scale: float = 10.0, jobs: int = 20) -> dict[str, Any]:
    """Time from telling the poller Crash to the first check started by its successor."""
    config = actors.PollingConfig(initial_backoff=10.0, max_backoff=10.0, ask_timeout=30.0).scaled(scale)
    results = []
    with actors.VeoSimulator(time_scale=1.0, **NEVER) as sim:
        counting = CountingClient(actors.GeminiVeoClient(api_key=API_KEY, base_url=sim.base_url))
        manager = actors.PollingManager(database=_db("crash"), client=counting, config=config)
        manager.initialize()
        for i in range(jobs):
            manager.add_to_polling(f"k-{i}", f"p-{i}", "generation", "bench", sim.create_operation())
        time.sleep(2 * config.tick_interval)
        for _ in range(trials):
            old = manager.runtime.ref("poller")
            t_crash = time.monotonic()
            old.tell(actors.Crash())
            _wait(lambda: manager.runtime.ref("poller") not in (None, old), timeout=60, step=0.0005)
            t_restart = time.monotonic()
            _wait(lambda: counting.calls.times and counting.calls.times[-1] > t_restart, timeout=60, step=0.0005)
            first = next((t for t in counting.calls.times if t > t_restart), float("nan"))
            results.append({"crash_to_restart_s": t_restart - t_crash, "restart_to_check_s": first - t_restart,
                            "crash_to_check_s": first - t_crash})
            time.sleep(3 * config.tick_interval)
        manager.shutdown(timeout=30)
    total = [r["crash_to_check_s"] for r in results]
    return {"trials": results, "scale": scale, "restart_delay_s": config.restart_delay,
            "tick_interval_s": config.tick_interval, "crash_to_check": summary(total),
            "crash_to_check_sim_s_p50": percentile(total, 50) * scale}


def fan_out(*, listeners: int = 100, jobs: int = 100, scale: float = 1000.0) -> dict[str, Any]:
    """Delivery latency of status updates to ``listeners`` callables (update -> callable runs)."""
    config = actors.PollingConfig(ask_timeout=60.0).scaled(scale)
    latencies: list[float] = []
    lock = threading.Lock()
    done = threading.Event()
    finished = [0]

    def make(index: int) -> Callable[[Any], None]:
        def listener(update: Any) -> None:
            now = time.monotonic()
            with lock:
                latencies.append(now - update.updated_at)
                if index == 0 and update.status == COMPLETED:
                    finished[0] += 1
                    if finished[0] >= jobs:
                        done.set()
        return listener

    with actors.VeoSimulator(time_scale=scale, seed=5) as sim:
        manager = actors.PollingManager(database=_db("fanout"), client=actors.GeminiVeoClient(api_key=API_KEY, base_url=sim.base_url),
                                        config=config, clock=time.monotonic)
        manager.initialize()
        for i in range(listeners):
            manager.add_listener(make(i))
        t0 = time.monotonic()
        for i in range(jobs):
            manager.add_to_polling(f"f-{i}", f"p-{i}", "generation", "bench", sim.create_operation(outcome="success"))
        done.wait(120)
        elapsed = time.monotonic() - t0
        time.sleep(0.2)
        manager.shutdown(timeout=30)
    with lock:
        ms = [x * 1000 for x in latencies]
    return {"listeners": listeners, "jobs": jobs, "deliveries": len(ms), "elapsed_s": elapsed,
            "latency_ms": summary(ms)}


def measure(*, quick: bool, log: Callable[[str], None] = print, cold_sizes: tuple[int, ...] = (1000, 10000),
            rate_seconds: float = 5.0, crash_trials: int = 5, crash_scale: float = 10.0,
            fan_listeners: int = 100, fan_jobs: int = 100, rate_jobs: int = 200) -> dict[str, Any]:
    """Every ceiling; the keyword arguments shrink them (``--quick``, ``--smoke``)."""
    quiet_logs()
    out: dict[str, Any] = {}
    out["checks_per_second"] = rate = checks_per_second(seconds=rate_seconds, jobs=rate_jobs)
    log(f"  ceilings: {rate['tree']['checks_per_s']:.0f} checks/s ({rate['tree']['cpu_us_per_check']:.0f} us CPU each); "
        f"bare client {rate['bare_client']['checks_per_s']:.0f}/s")
    out["cold_start"] = []
    for count in cold_sizes:
        cold = cold_start(count)
        out["cold_start"].append(cold)
        log(f"  ceilings: cold start {count} jobs: initialize {cold['initialize_s']:.2f}s, all scheduled {cold['all_scheduled_s']:.2f}s")
    out["crash"] = crash = crash_to_next_check(trials=crash_trials, scale=crash_scale)
    log(f"  ceilings: crash -> next check p50 {crash['crash_to_check']['p50'] * 1000:.0f} ms "
        f"(restart_delay {crash['restart_delay_s'] * 1000:.0f} ms)")
    out["fan_out"] = fan = fan_out(listeners=fan_listeners, jobs=fan_jobs)
    log(f"  ceilings: fan-out to {fan['listeners']} listeners p50 {fan['latency_ms']['p50']:.1f} ms p99 {fan['latency_ms']['p99']:.1f} ms")
    return out
