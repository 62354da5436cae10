"""A hypothesis state machine drives the tree and checks its invariants after every step.

Steps: add a job, let ticks pass, complete a job (the server finishes it now), fail a job
(cancel it, or finish one the server fails), crash the poller, crash a job actor, restart the
manager. After every step, once the tree has caught up:

- every job is either live with exactly one actor, or terminal with none;
- a terminal job never changes again;
- the poller's schedule covers exactly the live jobs;
- a job the server has finished ends as the server decided.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import pykka
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

import actors
from actors.job import JobActor
from actors.messages import Crash
from actors.poller import _ScheduleQuery

from .reliability.configs import patient
from .reliability.figures import record_figure

SCALE = 1000.0
OUTCOMES = {"success": "completed", "failed": "failed", "filtered": "failed"}
COUNTS = {"steps": 0, "examples": 0, "crashes": 0, "restarts": 0}


def config() -> actors.PollingConfig:
    return patient(SCALE, rescan_interval=0.05, restart_window=0.5)


class TreeMachine(RuleBasedStateMachine):
    sim: actors.VeoSimulator  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="veo-sm-")
        self.url = f"sqlite:///{os.path.join(self.dir, 'jobs.db')}"
        self.manager = self._start()
        self.jobs: dict[str, str] = {}  # job id -> operation name
        self.finished: set[str] = set()  # the server has finished these (outcome decided)
        self.cancelled: set[str] = set()
        self.terminal: dict[str, tuple] = {}  # job id -> its terminal row, first seen
        COUNTS["examples"] += 1

    def _start(self) -> actors.PollingManager:
        client = actors.GeminiVeoClient(api_key="k", base_url=self.sim.base_url)
        return actors.PollingManager(self.url, client, config()).initialize()

    def teardown(self) -> None:
        try:
            self.manager.shutdown(timeout=5)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _pick(self, index: int, pool) -> str:
        ordered = sorted(pool)
        return ordered[index % len(ordered)]

    def _open(self) -> set[str]:
        """Jobs nothing has ended yet, by the model alone (preconditions must not hang on timing)."""
        return set(self.jobs) - self.finished - self.cancelled

    # -- rules -------------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        COUNTS["steps"] += 1

    @rule(outcome=st.sampled_from(sorted(OUTCOMES)), soon=st.booleans())
    def add(self, outcome: str, soon: bool) -> None:
        COUNTS["steps"] += 1
        job_id = f"sm-{len(self.jobs)}"
        name = self.sim.create_operation(duration=40.0 if soon else 100_000.0, outcome=outcome)
        kind = "generation" if len(self.jobs) % 2 else "upscale"
        assert self.manager.add_to_polling(job_id, "p", kind, "acct", name) is True
        self.jobs[job_id] = name
        if soon:
            self.finished.add(job_id)

    @rule(ticks=st.integers(1, 5))
    def tick(self, ticks: int) -> None:
        COUNTS["steps"] += 1
        time.sleep(ticks * self.manager.config.tick_interval)  # letting time pass is the step

    @precondition(lambda self: self._open())
    @rule(index=st.integers(0, 1000))
    def complete(self, index: int) -> None:
        COUNTS["steps"] += 1
        job_id = self._pick(index, self._open())
        self.sim.finish_now(self.jobs[job_id])
        self.finished.add(job_id)

    @precondition(lambda self: self._open())
    @rule(index=st.integers(0, 1000))
    def fail(self, index: int) -> None:
        COUNTS["steps"] += 1
        job_id = self._pick(index, self._open())
        assert self.manager.cancel(job_id, "cancelled by the state machine") is True
        self.cancelled.add(job_id)

    @rule()
    def crash_poller(self) -> None:
        COUNTS["steps"] += 1
        ref = self.manager.poller_ref()
        if ref is not None:
            try:
                ref.tell(Crash())
                COUNTS["crashes"] += 1
            except pykka.ActorDeadError:
                pass

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 1000))
    def crash_job(self, index: int) -> None:
        COUNTS["steps"] += 1
        live = self.manager.live_jobs()
        if not live:
            return
        ref = pykka.ActorRegistry.get_by_urn(live[self._pick(index, live)])
        if ref is not None:
            try:
                ref.tell(Crash())
                COUNTS["crashes"] += 1
            except pykka.ActorDeadError:
                pass

    @rule()
    def restart_manager(self) -> None:
        COUNTS["steps"] += 1
        COUNTS["restarts"] += 1
        assert self.manager.shutdown(timeout=5) is True
        self.manager = self._start()

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def tree_matches_the_store(self) -> None:
        deadline = time.monotonic() + 15
        while True:
            problem, rows = self._check_once()
            if problem is None:
                break
            assert time.monotonic() < deadline, problem
            time.sleep(0.005)  # the tree catches up asynchronously (restarts, finishing actors)
        for job_id, row in rows.items():
            if row[0] in ("completed", "failed"):
                first = self.terminal.setdefault(job_id, row)
                assert row == first, f"terminal {job_id} changed: {first} -> {row}"
                if job_id in self.cancelled:
                    assert row[0] == "failed"
                elif job_id in self.finished:
                    assert row[0] == OUTCOMES[self.sim.outcome(self.jobs[job_id])]
                else:
                    raise AssertionError(f"{job_id} ended ({row[0]}) before the server finished it")
        assert set(rows) == set(self.jobs), "a job vanished or appeared"

    def _check_once(self):
        rows = {r.job_id: (r.status, r.error, r.video_url) for r in self.manager.store.jobs()}
        live = {job_id for job_id, row in rows.items() if row[0] in ("pending", "processing")}
        owners = self.manager.live_jobs()
        if set(owners) != live:
            return f"actors {sorted(owners)} != live rows {sorted(live)}", rows
        running: dict[str, list[str]] = {}
        for ref in pykka.ActorRegistry.get_by_class(JobActor):
            actor = ref._actor_weakref()  # the job id lives on the actor; a test may look
            if actor is not None and ref.is_alive():
                running.setdefault(actor.key, []).append(ref.actor_urn)
        for job_id in live:
            if running.get(job_id) != [owners[job_id]]:
                return f"{job_id} has actors {running.get(job_id)}, owner {owners[job_id]}", rows
        poller = self.manager.poller_ref()
        if poller is None:
            return "no poller (restarting)", rows
        try:
            schedule = poller.ask(_ScheduleQuery(), timeout=5)
        except (pykka.ActorDeadError, pykka.Timeout) as exc:
            return f"poller unavailable: {type(exc).__name__}", rows
        if set(schedule) != live:
            return f"schedule {sorted(schedule)} != live {sorted(live)}", rows
        return None, rows


def test_the_tree_keeps_its_invariants_under_random_steps(sim):
    TreeMachine.sim = sim
    started = time.monotonic()
    run_state_machine_as_test(
        TreeMachine,
        settings=settings(
            max_examples=int(os.environ.get("VEO_STATE_EXAMPLES", "25")), stateful_step_count=25,
            deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    record_figure("state_machine", {**COUNTS, "seconds": round(time.monotonic() - started, 1)})
