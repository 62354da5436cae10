"""Crash storms: the poller and the job actors crash again and again; nothing is lost.

The poller is told ``Crash`` every few ticks: the supervisor restarts it after
``restart_delay`` until more than ``restart_intensity`` restarts fall within
``restart_window``, then alerts (listeners with ``alerts=True`` hear an ``Alert``) and backs
the restarts off up to ``max_restart_delay``. When the storm ends, polling recovers and every
job completes, announced once. Job actors crashed over and over are restarted from their rows.
"""

from __future__ import annotations

import random
import time
from collections import Counter
import pykka
import structlog

import actors
from actors.messages import Crash

from .conftest import TIME_SCALE, Recorder, submit
from .reliability.configs import patient
from .reliability.figures import record_figure


def storm_config(**changes) -> actors.PollingConfig:
    values = dict(restart_delay=0.005, restart_intensity=4, restart_window=1.5, max_restart_delay=0.08)
    values.update(changes)
    return patient(TIME_SCALE, **values)


def wait_new_poller(manager, old, timeout: float = 10.0):
    """The next poller incarnation (restarts are timer-driven: poll for the swap)."""
    deadline = time.monotonic() + timeout
    while True:
        ref = manager.poller_ref()
        if ref is not None and ref is not old and ref.is_alive():
            return ref
        assert time.monotonic() < deadline, "the poller was not restarted"
        time.sleep(0.002)


def test_a_poller_crash_storm_alerts_backs_off_and_then_every_job_completes(make_manager, sim):
    config = storm_config()
    manager = make_manager(config_=config)
    recorder = Recorder()
    manager.add_listener(recorder, alerts=True)
    jobs = submit(manager, sim, 40, duration=200.0)
    crashes = 30
    with structlog.testing.capture_logs() as logs:
        ref = manager.poller_ref()
        for _ in range(crashes):
            time.sleep(3 * config.tick_interval)  # "every few ticks": the timing is the point
            ref.tell(Crash())
            ref = wait_new_poller(manager, ref)
    delays = [e["delay"] for e in logs if e["event"] == "poller_restart_scheduled"]

    assert recorder.wait_for(lambda r: r.terminal_count() == len(jobs), timeout=30)
    stats = manager.stats()
    assert stats["poller_restarts"] == crashes
    assert len(delays) == crashes
    # Within the intensity the normal delay; beyond it, backed off and capped.
    assert delays[: config.restart_intensity] == [config.restart_delay] * config.restart_intensity
    assert all(d > config.restart_delay for d in delays[config.restart_intensity:])
    assert max(delays) == config.max_restart_delay
    assert recorder.wait_for(lambda r: len(r.alerts) == stats["alerts"])
    # At least one page, at most one per restart beyond the limit (repeats may be folded).
    assert 1 <= stats["alerts"] <= crashes - config.restart_intensity
    assert {a.kind for a in recorder.alerts} == {"restart_intensity_exceeded"}
    completed = Counter(u.job_id for u in recorder.updates if u.status == "completed")
    assert sorted(completed) == sorted(jobs) and set(completed.values()) == {1}
    assert all(sim.max_concurrency_for(name) == 1 for name in jobs.values())
    record_figure("crash_storms", {"case": "poller storm", "crashes": crashes, "alerts": stats["alerts"]})


def test_restarts_within_the_intensity_limit_raise_no_alert(make_manager, sim):
    config = storm_config(restart_intensity=5, restart_window=60.0)
    manager = make_manager(config_=config)
    recorder = Recorder()
    manager.add_listener(recorder, alerts=True)
    jobs = submit(manager, sim, 10, duration=100.0)
    ref = manager.poller_ref()
    for _ in range(config.restart_intensity):
        ref.tell(Crash())
        ref = wait_new_poller(manager, ref)
    assert recorder.wait_for(lambda r: r.terminal_count() == len(jobs))
    assert manager.stats()["poller_restarts"] == config.restart_intensity
    assert manager.stats()["alerts"] == 0 and recorder.alerts == []
    ref.tell(Crash())  # one more within the window: now it is a storm
    assert recorder.wait_for(lambda r: len(r.alerts) == 1)
    assert recorder.alerts[0].kind == "restart_intensity_exceeded"
    record_figure("crash_storms", {"case": "intensity limit", "crashes": config.restart_intensity + 1})


def test_job_actors_crashed_over_and_over_are_restarted_from_their_rows(make_manager, sim):
    manager = make_manager(config_=patient(TIME_SCALE))
    recorder = Recorder()
    manager.add_listener(recorder)
    jobs = submit(manager, sim, 20, duration=10_000.0)
    assert recorder.wait_for(lambda r: sum(u.status == "processing" for u in r.updates) == 20)
    rng = random.Random(11)
    crashes = 60
    crashed: Counter = Counter()
    for _ in range(crashes):
        job_id = rng.choice(sorted(jobs))
        crashed[job_id] += 1
        urn = manager.live_jobs()[job_id]
        pykka.ActorRegistry.get_by_urn(urn).tell(Crash())
        deadline = time.monotonic() + 10
        while manager.live_jobs().get(job_id) in (None, urn):  # restarts are asynchronous
            assert time.monotonic() < deadline, f"{job_id} was not restarted"
            time.sleep(0.002)
    assert manager.stats()["job_restarts"] == crashes
    assert len(manager.live_jobs()) == 20
    for name in jobs.values():
        sim.finish_now(name)
    assert recorder.wait_for(lambda r: r.terminal_count() == 20)
    completed = Counter(u.job_id for u in recorder.updates if u.status == "completed")
    assert sorted(completed) == sorted(jobs) and set(completed.values()) == {1}
    for job_id, name in jobs.items():
        stored = manager.get_job(job_id)
        assert stored.status == "completed"
        # A check whose answer reached a crashed actor is dropped and simply done again.
        assert sim.poll_count(name) - crashed[job_id] <= stored.attempts <= sim.poll_count(name)
        assert sim.max_concurrency_for(name) == 1, f"{job_id} was checked twice at once"
    record_figure("crash_storms", {"case": "job actor storm", "crashes": crashes})


def test_poller_and_job_crashes_together_lose_no_job(make_manager, sim):
    config = storm_config()
    manager = make_manager(config_=config)
    recorder = Recorder()
    manager.add_listener(recorder)
    jobs = submit(manager, sim, 60)  # drawn durations: jobs finish during the storm
    rng = random.Random(5)
    crashes = 0
    while recorder.terminal_count() < len(jobs) and crashes < 200:
        live = manager.live_jobs()
        if rng.random() < 0.3:
            ref = manager.poller_ref()
            if ref is not None:
                ref.tell(Crash())
                crashes += 1
        elif live:
            actor = pykka.ActorRegistry.get_by_urn(live[rng.choice(sorted(live))])
            if actor is not None:
                try:
                    actor.tell(Crash())
                    crashes += 1
                except pykka.ActorDeadError:
                    pass  # it finished between the two calls
        time.sleep(rng.uniform(0.0, 4 * config.tick_interval))
    assert recorder.wait_for(lambda r: r.terminal_count() == len(jobs), timeout=30)
    completed = Counter(u.job_id for u in recorder.updates if u.status == "completed")
    assert sorted(completed) == sorted(jobs) and set(completed.values()) == {1}
    assert manager.stats()["completed"] == len(jobs)
    assert manager.live_jobs() == {}
    record_figure("crash_storms", {"case": "mixed storm", "crashes": crashes})
