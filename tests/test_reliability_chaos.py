"""Process killed: the polling service survives SIGKILL at random moments, over and over.

The service runs as a separate process (``tests/reliability/service.py``) on a SQLite file,
against the simulated server in this process, which decides every operation's outcome up
front. The test kills it with SIGKILL at seeded random moments (restarting it each time),
adds jobs while it runs, and checks at every step and at the end that no job vanished, no
terminal row ever changed, every job ended as the server decided, and no run's listener heard
a job complete twice.

``VEO_CHAOS_LONG=1`` runs a longer variant (more jobs, more kills, slower time) outside CI;
``VEO_CHAOS_SEED`` picks another seed (a failure names its seed, so it reproduces).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from collections import Counter

import pytest

import actors
from actors.store import JobRecord, JobStore

from .reliability.figures import record_figure
from .reliability.process import ServiceProcess

LONG = os.environ.get("VEO_CHAOS_LONG") == "1"
SEED = int(os.environ.get("VEO_CHAOS_SEED", "4"))
JOBS = 1000 if LONG else 300
KILLS = 100 if LONG else 24
TIME_SCALE = 10.0 if LONG else 30.0
BATCHES = 3  # jobs arrive in this many batches: before the first run, then while runs go on
SERVICE_CONFIG = {
    "job_deadline": 1e7,  # the deadline is not under test here: no job may fail by it
    "max_checks_per_cycle": 50,
    "max_in_flight": 20,
    "rescan_interval": 0.5,
}

_COLUMNS = (
    "job_id, status, attempts, video_url, video_uris, error, updated_at, kind, prompt_id, "
    "profile_id, operation_name, scene_id, created_at"
)


def snapshot(path: str) -> dict[str, tuple]:
    """Every row, read through a connection of our own (not the store's code)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return {row[0]: row for row in conn.execute(f"SELECT {_COLUMNS} FROM veo_jobs")}
    finally:
        conn.close()


def new_record(job_id: str, index: int, operation: str, now: float) -> JobRecord:
    first_check = 10.0 / TIME_SCALE
    return JobRecord(
        job_id=job_id, kind="generation" if index % 2 == 0 else "upscale",
        prompt_id=f"prompt-{index}", profile_id=f"profile-{index % 4}", operation_name=operation,
        scene_id=None if index % 5 == 0 else f"scene-{index % 7}", status="pending", attempts=0,
        backoff=first_check, next_due_at=now + first_check, video_url=None, video_uris=(),
        error=None, not_found_streak=0, created_at=now, updated_at=now,
    )


class TerminalWatch:
    """Remembers each terminal row the first time it is seen and fails if it ever changes."""

    def __init__(self) -> None:
        self.first_seen: dict[str, tuple] = {}
        self.known: set[str] = set()
        self.snapshots = 0

    def check(self, rows: dict[str, tuple], context: str) -> None:
        self.snapshots += 1
        vanished = self.known - set(rows)
        assert not vanished, f"{context}: jobs vanished: {sorted(vanished)[:5]}"
        self.known |= set(rows)
        for job_id, row in rows.items():
            if row[1] in ("completed", "failed"):
                first = self.first_seen.setdefault(job_id, row)
                assert row == first, f"{context}: terminal row of {job_id} changed: {first} -> {row}"


@pytest.mark.timeout(1800 if LONG else 240)
def test_sigkill_at_random_moments_loses_no_job_and_changes_no_terminal_state(tmp_path):
    rng = random.Random(SEED)
    path = str(tmp_path / "chaos.db")
    url = f"sqlite:///{path}"
    watch = TerminalWatch()
    runs: list[ServiceProcess] = []
    operations: dict[str, str] = {}
    kills = killed_ready = 0
    started = time.monotonic()
    with actors.VeoSimulator(
        time_scale=TIME_SCALE, seed=SEED, failed_share=0.1, filtered_share=0.1
    ) as sim:
        host = JobStore(url)  # the host app adding jobs from its own process
        host.open()
        per_batch = JOBS // BATCHES
        batch_after_kill = {0: 0}
        batch_after_kill.update({KILLS * b // BATCHES: b for b in range(1, BATCHES)})

        def add_batch(batch: int) -> None:
            count = per_batch if batch < BATCHES - 1 else JOBS - per_batch * (BATCHES - 1)
            for i in range(count):
                index = len(operations)
                job_id = f"chaos-{index:04d}"
                operations[job_id] = sim.create_operation(duration=None)
                record = new_record(job_id, index, operations[job_id], time.time())
                created, _ = host.insert_job(record).result(30)
                assert created

        try:
            add_batch(0)
            for kill in range(KILLS):
                run = ServiceProcess.runner(url, sim.base_url, time_scale=TIME_SCALE, config=SERVICE_CONFIG)
                runs.append(run)
                if kill in batch_after_kill and kill:
                    run.wait_ready(30)
                    add_batch(batch_after_kill[kill])  # while the service runs: it adopts them
                # Half the kills land anywhere (start-up included), half in a running tree.
                if rng.random() < 0.5:
                    assert run.wait_ready(30), f"seed {SEED}: run {kill} never got ready\n{run.diagnostics()}"
                delay = rng.uniform(0.05, 2.5)
                time.sleep(delay)  # the random moment is the point: there is no event to wait for
                watch.check(snapshot(path), f"seed {SEED}, before kill {kill}")
                ready = any(e["event"] == "ready" for e in run.events)
                code = run.kill()
                assert code == -signal.SIGKILL, f"seed {SEED}: run {kill} ended by itself ({code})\n{run.diagnostics()}"
                kills += 1
                killed_ready += ready
                watch.check(snapshot(path), f"seed {SEED}, after kill {kill}")

            final = ServiceProcess.runner(url, sim.base_url, time_scale=TIME_SCALE, config=SERVICE_CONFIG)
            runs.append(final)
            assert final.wait_ready(30), final.diagnostics()
            deadline = time.monotonic() + (1200 if LONG else 120)
            while True:
                rows = snapshot(path)
                watch.check(rows, f"seed {SEED}, final run")
                if all(row[1] in ("completed", "failed") for row in rows.values()):
                    break
                assert time.monotonic() < deadline, (
                    f"seed {SEED}: jobs still live: {Counter(r[1] for r in rows.values())}\n"
                    + final.diagnostics()
                )
                time.sleep(0.2)  # polling another process's database: no event crosses over
            final.signal(signal.SIGTERM)
            assert final.finish(30) == 0, final.diagnostics()
        finally:
            host.close()
            for run in runs:
                run.stop_if_running()

        rows = snapshot(path)
        watch.check(rows, f"seed {SEED}, at the end")
        assert sorted(rows) == sorted(operations), f"seed {SEED}: jobs vanished or appeared"
        for job_id, name in operations.items():
            status, video_url, error = rows[job_id][1], rows[job_id][3], rows[job_id][5]
            outcome = sim.outcome(name)
            expected = "completed" if outcome == "success" else "failed"
            assert status == expected, f"seed {SEED}: {job_id} is {status}, the server said {outcome}"
            if outcome == "success":
                assert video_url and name.rsplit("/", 1)[1] in video_url
            elif outcome == "filtered":
                assert "filter" in error.lower()
            else:
                assert error

    heard_total: Counter = Counter()
    for number, run in enumerate(runs):
        completions = run.completions()
        twice = {job_id: n for job_id, n in completions.items() if n > 1}
        assert not twice, f"seed {SEED}: run {number} heard these complete more than once: {twice}"
        heard_total.update(completions)
        for update in run.updates():
            assert update["status"] == rows[update["job_id"]][1], f"seed {SEED}: wrong status heard {update}"
    assert max(heard_total.values(), default=0) <= 1, "a completion was announced by two runs"
    assert kills >= 20

    finals = Counter(row[1] for row in rows.values())
    record_figure("chaos", {
        "seed": SEED, "jobs": JOBS, "kills": kills, "kills_of_a_running_tree": killed_ready,
        "runs": len(runs), "completed": finals["completed"], "failed": finals["failed"],
        "snapshots_checked": watch.snapshots, "completions_heard": sum(heard_total.values()),
        "jobs_lost": JOBS - len(rows), "seconds": round(time.monotonic() - started, 1),
    })
