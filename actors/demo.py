"""The demo: the whole tree against the simulated server, on an embedded SQLite file.

Runs on the caller's (main) thread; the tree runs on its own actor threads. It starts the
simulated server, submits generations and upscales through the server's start endpoint,
shows progress, crashes the poller once midway to show the restart, and prints a summary.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass

import requests

from .clients.gemini import GeminiVeoClient
from .config import PollingConfig
from .manager import PollingManager
from .messages import Crash, StatusUpdate
from .simulator import VeoSimulator

_DEMO_KEY = "demo-key-not-a-secret"


@dataclass
class DemoResult:
    """What the demo measured."""

    jobs: int
    completed: int
    failed: int
    api_calls: int
    poller_restarts: int
    wall_time: float
    database: str


class _Progress:
    """Counts terminal updates as the broadcaster relays them (runs on a listener thread)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.completed = 0
        self.failed = 0
        self.done = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, update: StatusUpdate) -> None:
        if not isinstance(update, StatusUpdate) or not update.terminal:
            return
        with self._lock:
            if update.status == "completed":
                self.completed += 1
            else:
                self.failed += 1
            if self.completed + self.failed >= self.total:
                self.done.set()

    @property
    def finished(self) -> int:
        with self._lock:
            return self.completed + self.failed


def run_demo(
    *,
    jobs: int = 100,
    time_scale: float = 30.0,
    database: str,
    seed: int = 1,
    failed_share: float = 0.03,
    filtered_share: float = 0.03,
    out=sys.stdout,
    timeout: float = 300.0,
) -> DemoResult:
    """Run the demo and return its figures (prints progress to ``out``)."""
    if jobs < 1:
        raise ValueError("--jobs must be at least 1")
    if not time_scale > 0:
        raise ValueError("--time-scale must be positive")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(database + suffix):
            os.remove(database + suffix)
    config = PollingConfig(ask_timeout=10.0, max_in_flight=10).scaled(time_scale)
    started = time.monotonic()
    with VeoSimulator(
        time_scale=time_scale, seed=seed, api_key=_DEMO_KEY,
        failed_share=failed_share, filtered_share=filtered_share,
    ) as sim:
        client = GeminiVeoClient(api_key=_DEMO_KEY, base_url=sim.base_url)
        manager = PollingManager(database=f"sqlite:///{database}", client=client, config=config)
        progress = _Progress(jobs)
        manager.initialize()
        try:
            manager.add_listener(progress)
            print(
                f"demo: {jobs} jobs, time compressed {time_scale:g}x "
                f"(a 90 s video takes {90 / time_scale:.1f} s), database {database}",
                file=out,
            )
            with requests.Session() as http:
                for i in range(jobs):
                    kind = "generation" if i % 3 else "upscale"
                    model = "veo-3.0-generate-001" if kind == "generation" else "veo-3.0-fast-generate-001"
                    answer = http.post(
                        f"{sim.base_url}/v1beta/models/{model}:predictLongRunning",
                        json={"instances": [{"prompt": f"scene {i}"}]},
                        headers={"x-goog-api-key": _DEMO_KEY},
                        timeout=10,
                    )
                    answer.raise_for_status()
                    manager.add_to_polling(
                        f"job-{i:05d}", f"prompt-{i}", kind, "default", answer.json()["name"], f"scene-{i % 7}"
                    )
            bar = _ProgressBar(out, jobs) if _is_tty(out) else None
            try:
                crashed = False
                last_line = 0.0
                while not progress.done.wait(0.1):
                    now = time.monotonic()
                    if not crashed and progress.finished >= jobs // 2:
                        poller = manager.poller_ref()
                        if poller is not None:
                            poller.tell(Crash("demo: poller crashed on purpose"))
                            crashed = True
                            message = "demo: crashed the poller on purpose; the supervisor restarts it"
                            bar.log(message) if bar is not None else print(message, file=out)
                    if bar is not None:
                        bar.update(manager, progress)
                    elif now - last_line >= 1.0:
                        last_line = now
                        _print_progress(manager, progress, now - started, out)
                    if now - started > timeout:
                        raise TimeoutError(f"the demo did not finish within {timeout:g} s")
                if bar is not None:
                    bar.update(manager, progress)
                else:
                    _print_progress(manager, progress, time.monotonic() - started, out)
            finally:
                if bar is not None:
                    bar.close()
            stats = manager.stats()
        finally:
            manager.shutdown()
    result = DemoResult(
        jobs=jobs, completed=stats["completed"], failed=stats["failed"],
        api_calls=int(stats["api_calls"]), poller_restarts=int(stats["poller_restarts"]),
        wall_time=time.monotonic() - started, database=database,
    )
    print(
        f"summary: {result.completed} completed, {result.failed} failed (filtered or failed by the "
        f"server), {result.api_calls} API calls ({result.api_calls / jobs:.1f} per job), "
        f"{result.poller_restarts} poller restart(s), wall time {result.wall_time:.1f} s",
        file=out,
    )
    return result


def _is_tty(out) -> bool:
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


class _ProgressBar:
    """A rich progress bar for a terminal (runs on the demo's thread)."""

    def __init__(self, out, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]demo"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
            TimeElapsedColumn(), console=Console(file=out), transient=False,
        )
        self._task = self._progress.add_task("", total=total)
        self._progress.start()

    def update(self, manager: PollingManager, progress: _Progress) -> None:
        stats = manager.stats()
        self._progress.update(
            self._task, completed=progress.finished,
            description=(
                f"completed {progress.completed} failed {progress.failed} | api calls "
                f"{int(stats['api_calls'])} | restarts {int(stats['poller_restarts'])}"
            ),
        )

    def log(self, message: str) -> None:
        self._progress.console.print(message, highlight=False)

    def close(self) -> None:
        self._progress.stop()


def _print_progress(manager: PollingManager, progress: _Progress, elapsed: float, out) -> None:
    width = 30
    done = progress.finished
    filled = int(width * done / progress.total)
    stats = manager.stats()
    print(
        f"[{'#' * filled}{'.' * (width - filled)}] {done}/{progress.total} "
        f"completed {progress.completed} failed {progress.failed} | "
        f"api calls {int(stats['api_calls'])} | restarts {int(stats['poller_restarts'])} | {elapsed:5.1f} s",
        file=out,
        flush=True,
    )
