"""Graceful shutdown: SIGTERM / SIGINT on the service, ``manager.shutdown()`` in a host.

Checks in flight finish (or, past the timeout, are abandoned without touching the store),
every answer the server gave is persisted (a job's stored attempts equal the polls the server
counted for it), the process exits 0 within its timeout, and the next start resumes every job.
"""

from __future__ import annotations

import math
import signal
import sys
import time

import pytest

import actors
from actors.poller import _ScheduleQuery
from actors.store import JobRecord, JobStore

from .conftest import TIME_SCALE, Recorder
from .reliability.configs import patient
from .reliability.figures import record_figure
from .reliability.process import ServiceProcess, serve_cli_available

SCALE = 30.0


def add_rows(url: str, sim, count: int, *, long_share: float = 0.5) -> dict[str, str]:
    """Store ``count`` pending jobs as a host would (half finish soon, half much later)."""
    store = JobStore(url)
    store.open()
    jobs = {}
    try:
        now = time.time()
        for i in range(count):
            duration = 10_000.0 if i < count * long_share else 20.0 + i
            name = sim.create_operation(duration=duration)
            job_id = f"stop-{i:03d}"
            first = 10.0 / SCALE
            store.insert_job(JobRecord(
                job_id=job_id, kind="generation", prompt_id="p", profile_id="acct",
                operation_name=name, scene_id=None, status="pending", attempts=0, backoff=first,
                next_due_at=now + first, video_url=None, video_uris=(), error=None,
                not_found_streak=0, created_at=now, updated_at=now,
            )).result(30)
            jobs[job_id] = name
    finally:
        store.close()
    return jobs


def read_rows(url: str) -> dict[str, JobRecord]:
    store = JobStore(url)
    try:
        return {record.job_id: record for record in store.jobs()}
    finally:
        store.close()


def wait_until(predicate, timeout: float, what: str) -> None:
    """Poll a condition another process (or the server) changes: no event crosses over."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def start_service(kind: str, url: str, sim) -> ServiceProcess:
    if kind == "runner":
        return ServiceProcess.runner(url, sim.base_url, time_scale=SCALE, shutdown_timeout=10.0)
    return ServiceProcess([
        sys.executable, "-m", "actors", "serve", "--database", url, "--base-url", sim.base_url,
        "--time-scale", str(SCALE),
    ])


@pytest.fixture(scope="module")
def cli_available() -> bool:
    return serve_cli_available()


@pytest.mark.parametrize("kind", ["runner", "cli"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signalled_service_lets_checks_in_flight_land_and_exits_0(kind, signum, tmp_path, cli_available):
    if kind == "cli" and not cli_available:
        pytest.skip("python -m actors serve is not in this checkout")
    url = f"sqlite:///{tmp_path / 'svc.db'}"
    with actors.VeoSimulator(time_scale=SCALE, seed=3) as sim:
        jobs = add_rows(url, sim, 40)
        service = start_service(kind, url, sim)
        try:
            if kind == "runner":
                assert service.wait_ready(30), service.diagnostics()
            wait_until(lambda: sim.request_count >= 30, 30, "the service to poll")
            sim.latency = 1.0  # every check from now on is in flight for a second
            seen = sim.request_count
            wait_until(lambda: sim.request_count > seen, 10, "a check to be in flight")
            signalled = time.monotonic()
            service.signal(signum)
            code = service.finish(20)
            took = time.monotonic() - signalled
        finally:
            service.stop_if_running()
        assert code == 0, service.diagnostics()
        assert took >= 0.5, "the service did not wait for the check in flight"
        assert took < 10.0 + 3.0, f"exit took {took:.1f} s, more than its shutdown timeout"
        rows = read_rows(url)
        assert sorted(rows) == sorted(jobs)
        unpersisted = {
            job_id: (rows[job_id].attempts, sim.poll_count(name))
            for job_id, name in jobs.items() if rows[job_id].attempts != sim.poll_count(name)
        }
        assert not unpersisted, f"answers the server gave were not persisted: {unpersisted}"
        for job_id, name in jobs.items():
            if rows[job_id].status == "completed":
                assert sim.outcome(name) == "success"
    record_figure("shutdown", {"case": f"{signal.Signals(signum).name} ({kind})", "took": round(took, 2)})


def test_manager_shutdown_persists_every_answer_and_a_new_manager_finishes_every_job(make_manager, sim, db_url):
    first = make_manager(config_=patient(TIME_SCALE))
    early = Recorder()
    first.add_listener(early)
    names = {}
    for i in range(30):
        names[f"m-{i}"] = sim.create_operation(duration=10_000.0 if i % 2 else 30.0 + i)
        first.add_to_polling(f"m-{i}", "p", "generation", "acct", names[f"m-{i}"])
    assert early.wait_for(lambda r: sum(u.status == "processing" for u in r.updates) >= 10)
    sim.latency = 0.3
    seen = sim.request_count
    wait_until(lambda: sim.request_count > seen, 10, "a check to be in flight")
    started = time.monotonic()
    assert first.shutdown(timeout=5.0) is True
    assert time.monotonic() - started < 5.0
    sim.latency = 0.0
    assert first.stats()["live_actors"] == 0

    late = Recorder()
    rows = read_rows(db_url)  # before a new manager polls again
    for job_id, name in names.items():
        assert rows[job_id].attempts == sim.poll_count(name), f"{job_id}: an answer was not persisted"
    live = {job_id for job_id, r in rows.items() if r.live}
    second = make_manager(config_=patient(TIME_SCALE))
    assert set(second.live_jobs()) == live, "the new manager did not resume every live job"
    second.add_listener(late)
    for job_id in live:
        sim.finish_now(names[job_id])
    assert late.wait_for(lambda r: {u.job_id for u in r.updates if u.terminal} == live)
    heard = [u.job_id for u in early.updates + late.updates if u.status == "completed"]
    assert sorted(heard) == sorted(names), "a job was lost or announced complete twice"
    record_figure("shutdown", {"case": "manager.shutdown with checks in flight"})


def test_a_hung_check_is_abandoned_at_the_timeout_without_touching_the_store(make_manager, sim, config):
    manager = make_manager(config_=patient(TIME_SCALE))
    name = sim.create_operation(duration=10_000.0)
    manager.add_to_polling("hung", "p", "generation", "acct", name)
    sim.latency = 30.0  # the check hangs far past the shutdown timeout
    wait_until(lambda: sim.poll_count(name) >= 1, 10, "the check to start")
    started = time.monotonic()
    assert manager.shutdown(timeout=1.0) is False, "an abandoned check must be reported as unclean"
    assert time.monotonic() - started < 1.0 + 1.5, "shutdown overran its timeout"
    sim.latency = 0.0

    again = make_manager(config_=patient(TIME_SCALE))
    stored = again.get_job("hung")
    assert stored.live and stored.attempts == 0, "an abandoned check must not be half-written"
    recorder = Recorder()
    again.add_listener(recorder)
    sim.finish_now(name)
    assert recorder.wait_for(lambda r: "hung" in r.terminal())
    assert again.get_job("hung").status == "completed"
    record_figure("shutdown", {"case": "hung check past the shutdown timeout"})


def test_the_next_start_staggers_the_overdue_first_checks_over_one_tick(tmp_path, sim):
    url = f"sqlite:///{tmp_path / 'stagger.db'}"
    slow = patient(10.0)  # a 1 s tick, to see the spread
    jobs = add_rows(url, sim, 40, long_share=1.0)
    overdue_by = time.time() + 1.0
    wait_until(lambda: time.time() > overdue_by, 5, "every job to be overdue")
    manager = actors.PollingManager(
        url, actors.GeminiVeoClient(api_key="k", base_url=sim.base_url), slow
    ).initialize()
    try:
        started = time.time()
        holder = {}

        def tracked_all() -> bool:
            holder["due"] = manager.poller_ref().ask(_ScheduleQuery(), timeout=5)
            return len(holder["due"]) == len(jobs)

        wait_until(tracked_all, 10, "the poller to track every job")
        due = sorted(v for v in holder["due"].values() if not math.isnan(v))
        window = slow.tick_interval
        assert len(due) >= len(jobs) - slow.max_checks_per_cycle
        assert due[0] >= started - 0.05, "overdue checks kept their stale due times"
        assert due[-1] - due[0] >= window * 0.5, "the overdue checks were not spread over a tick"
        assert due[-1] <= started + window + 0.1
    finally:
        manager.shutdown(timeout=5)
