"""The host applications measured in the reference table (section 1), one per process run.

Three ways for a host to watch ``n`` Veo jobs, each started through the simulated server's
real start endpoint and then watched until every one is terminal:

- ``tree``: this project (a PollingManager, the supervision tree, SQLite);
- ``host-thread``: the reference schedule run on the host's main thread (the reference's
  "before"): every tick the due jobs are checked one by one, blocking the host;
- ``sdk-loop``: the SDK docs' loop, one thread per job, ``while not done: sleep(10); get()``,
  with the real google-genai client pointed at the simulator.

Meanwhile the host thread runs a 1 ms sleep loop whose lag is the host's stall. Run as
``python -m benchmarks.peers '{json args}'``; prints one JSON line of results. Each run gets
its own process so that memory and CPU figures are not polluted by earlier runs.

Also here: the per-job polling loops of the detection peers (the SDK loop and
google-api-core's default LRO retry), run on their own threads by ``detection.py``.
"""

from __future__ import annotations

import heapq
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import requests

MODEL = "veo-3.0-generate-001"
API_KEY = "bench-key"
PEERS = ("tree", "host-thread", "sdk-loop")


def start_operation(session: requests.Session, base_url: str) -> str:
    """Start one video job on the (simulated) server; returns the operation name."""
    reply = session.post(
        f"{base_url}/v1beta/models/{MODEL}:predictLongRunning",
        headers={"x-goog-api-key": API_KEY},
        json={"instances": [{"prompt": "a benchmark"}]},
        timeout=30,
    )
    reply.raise_for_status()
    return reply.json()["name"]


# -- detection peers (threads, one per job) ----------------------------------------------------


def sdk_loop_job(client: Any, name: str, interval: float, on_done: Callable[[str], None],
                 on_call: Callable[[], None] | None = None) -> None:
    """The SDK docs' loop for one job: sleep ``interval``, get, until done (a thread body)."""
    from google.genai import types

    operation = types.GenerateVideosOperation(name=name)
    while not operation.done:
        time.sleep(interval)
        if on_call is not None:
            on_call()
        try:
            operation = client.operations.get(operation)
        except Exception:  # noqa: BLE001 - the docs' loop has no error handling; keep going
            continue
    on_done(name)


def api_core_job(check: Callable[[str], Any], name: str, rng: random.Random, *, scale: float,
                 on_done: Callable[[str], None], initial: float = 1.0, multiplier: float = 1.5,
                 maximum: float = 20.0) -> None:
    """google-api-core's default LRO polling for one job (a thread body).

    Checks at once, then sleeps a full-jitter delay: uniform(0, d) with d = 1 s x 1.5^k capped
    at 20 s (simulated seconds, divided by ``scale``).
    """
    delay = initial
    while True:
        try:
            if check(name).done:
                break
        except Exception:  # noqa: BLE001 - a transient error is retried like a pending answer
            pass
        time.sleep(rng.uniform(0.0, delay) / scale)
        delay = min(delay * multiplier, maximum)
    on_done(name)


# -- the reference-table peers (one per process) -----------------------------------------------


class _Finish:
    """Counts terminal jobs; remembers when the last one was seen."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.last = 0.0
        self.event = threading.Event()
        self._lock = threading.Lock()

    def done(self, *_: Any) -> None:
        with self._lock:
            self.count += 1
            self.last = time.monotonic()
            if self.count >= self.n:
                self.event.set()


def _run_tree(args: dict[str, Any], probe: Any, calls: Any, finish: _Finish) -> dict[str, Any]:
    import actors
    from benchmarks.common import CountingClient

    scale, n = args["scale"], args["n"]
    config = actors.PollingConfig(max_checks_per_cycle=max(10, n), max_in_flight=min(max(10, n), 256),
                                    ask_timeout=60.0).scaled(scale)
    workdir = tempfile.mkdtemp(prefix="veo-bench-")
    client = CountingClient(actors.GeminiVeoClient(api_key=API_KEY, base_url=args["base_url"]), calls)
    manager = actors.PollingManager(database=f"sqlite:///{workdir}/jobs.db", client=client, config=config)
    manager.initialize()

    def listener(update: Any) -> None:
        if update.terminal:
            finish.done()

    manager.add_listener(listener)
    session = requests.Session()
    for i in range(n):
        name = start_operation(session, args["base_url"])
        kind = "generation" if i % 2 == 0 else "upscale"
        manager.add_to_polling(f"job-{i}", f"prompt-{i}", kind, "profile-a", name)
    submitted = time.monotonic()
    probe.reset()
    deadline = submitted + args["timeout"]
    while not finish.event.is_set() and time.monotonic() < deadline:
        probe.step()
    stats = manager.stats()
    stop_started = time.monotonic()
    manager.shutdown(timeout=30)
    return {"submitted_at": submitted, "shutdown_s": time.monotonic() - stop_started,
            "tree_api_calls": stats.get("api_calls", 0)}


def _run_host_thread(args: dict[str, Any], probe: Any, calls: Any, finish: _Finish) -> dict[str, Any]:
    import actors
    from actors.schedule import backoff_delay
    from benchmarks.common import CountingClient

    scale, n = args["scale"], args["n"]
    config = actors.PollingConfig(max_checks_per_cycle=max(10, n)).scaled(scale)
    client = CountingClient(actors.GeminiVeoClient(api_key=API_KEY, base_url=args["base_url"]), calls)
    session = requests.Session()
    heap: list[tuple[float, int, str, int]] = []
    for i in range(n):
        name = start_operation(session, args["base_url"])
        heapq.heappush(heap, (time.monotonic() + config.initial_backoff, i, name, 0))
    submitted = time.monotonic()
    probe.reset()
    deadline = submitted + args["timeout"]
    next_tick = submitted + config.tick_interval
    while finish.count < n and time.monotonic() < deadline:
        probe.step()
        now = time.monotonic()
        if now < next_tick:
            continue
        next_tick = max(next_tick + config.tick_interval, now)
        started = 0
        while heap and heap[0][0] <= now and started < config.max_checks_per_cycle:
            _, i, name, attempts = heapq.heappop(heap)
            started += 1
            try:
                done = client.check(name).done
            except Exception:  # noqa: BLE001 - retried on the schedule
                done = False
            attempts += 1
            if done:
                finish.done()
            else:
                heapq.heappush(heap, (time.monotonic() + backoff_delay(attempts, config), i, name, attempts))
    client.close()
    return {"submitted_at": submitted}


def _run_sdk_loop(args: dict[str, Any], probe: Any, calls: Any, finish: _Finish) -> dict[str, Any]:
    from google import genai

    scale, n = args["scale"], args["n"]
    client = genai.Client(api_key=API_KEY, http_options={"base_url": args["base_url"], "api_version": "v1beta"})
    session = requests.Session()
    threads = []
    for _ in range(n):
        name = start_operation(session, args["base_url"])
        thread = threading.Thread(target=sdk_loop_job, args=(client, name, 10.0 / scale, finish.done, calls.hit),
                                  daemon=True)
        thread.start()
        threads.append(thread)
    submitted = time.monotonic()
    probe.reset()
    deadline = submitted + args["timeout"]
    while not finish.event.is_set() and time.monotonic() < deadline:
        probe.step()
    return {"submitted_at": submitted}


RUNNERS = {"tree": _run_tree, "host-thread": _run_host_thread, "sdk-loop": _run_sdk_loop}


def run(args: dict[str, Any]) -> dict[str, Any]:
    """One measured run of one peer (call in a fresh process: it measures the process)."""
    from benchmarks.common import CallLog, StallProbe, process_cpu, quiet_logs, rss_bytes

    quiet_logs()

    # Import everything a peer needs before the baseline, so imports are not counted.
    import actors  # noqa: F401
    from google import genai  # noqa: F401
    from google.genai import types  # noqa: F401

    probe = StallProbe()
    calls = CallLog()
    finish = _Finish(args["n"])
    rss0 = rss_bytes()
    cpu0, host0, t0 = process_cpu(), time.thread_time(), time.monotonic()
    extra = RUNNERS[args["peer"]](args, probe, calls, finish)
    cpu1, host1 = process_cpu(), time.thread_time()
    end = finish.last if finish.count >= args["n"] else time.monotonic()
    cycle = 10.0 / args["scale"]
    result = {
        "peer": args["peer"], "n": args["n"], "scale": args["scale"],
        "completed": finish.count, "timed_out": finish.count < args["n"],
        "submit_s": extra["submitted_at"] - t0,
        "wall_s": end - t0,
        "wall_sim_s": (end - t0) * args["scale"],
        **probe.result(),
        "rss_growth_mb": (max(probe.rss_peak, rss_bytes()) - rss0) / 2**20,
        "cpu_host_s": host1 - host0,
        "cpu_threads_s": max(0.0, (cpu1 - cpu0) - (host1 - host0)),
        "cpu_total_s": cpu1 - cpu0,
        "calls": len(calls),
        "calls_per_job": len(calls) / args["n"],
        "calls_per_cycle": calls.per_cycle(cycle, start=extra["submitted_at"]),
    }
    result.update({k: v for k, v in extra.items() if k not in ("submitted_at",)})
    return result


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    args = json.loads(argv[0])
    print(json.dumps(run(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
