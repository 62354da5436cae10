"""The reference design's checklist, end to end through the public contract."""

from __future__ import annotations

import threading
import time

import pykka
import pytest
import requests
import structlog

import actors
from actors.messages import Crash
from actors.poller import Poller

from .conftest import TIME_SCALE, Recorder, submit


def served_uris(sim, name: str) -> list[str]:
    body = requests.get(f"{sim.base_url}/v1beta/{name}", headers={"x-goog-api-key": "k"}, timeout=5).json()
    samples = body["response"]["generateVideoResponse"]["generatedSamples"]
    return [sample["video"]["uri"] for sample in samples]


def test_ten_jobs_complete_with_the_video_uris_the_server_produced(make_manager, sim, recorder):
    manager = make_manager()
    manager.add_listener(recorder)
    jobs = submit(manager, sim, 10)

    assert recorder.wait_for(lambda r: r.terminal_count() == 10)
    polls = sum(sim.poll_count(name) for name in jobs.values())
    for job_id, name in jobs.items():
        final = recorder.terminal()[job_id]
        assert final.status == "completed"
        assert final.video_url == served_uris(sim, name)[0]
        stored = manager.get_job(job_id)
        assert stored.status == "completed" and stored.video_url == final.video_url
    stats = manager.stats()
    assert stats["completed"] == 10 and stats["pending"] == stats["processing"] == 0
    assert stats["api_calls"] == polls


def test_the_host_thread_stays_responsive_while_100_jobs_complete(make_manager, sim, recorder):
    manager = make_manager()
    manager.add_listener(recorder)
    submit(manager, sim, 100)
    worst_lag = 0.0
    while recorder.terminal_count() < 100:
        before = time.perf_counter()
        time.sleep(0.001)  # the probe: a host main loop doing 1 ms of waiting
        worst_lag = max(worst_lag, time.perf_counter() - before - 0.001)
        assert time.perf_counter() < before + 30, "jobs did not finish"
    assert all(u.status == "completed" for u in recorder.terminal().values())
    assert worst_lag < 0.25, f"the host thread stalled for {worst_lag * 1000:.0f} ms"


def test_a_crashed_poller_is_restarted_and_every_job_still_completes(make_manager, sim, recorder):
    manager = make_manager()
    manager.add_listener(recorder)
    submit(manager, sim, 30, duration=60.0)
    first = manager.poller_ref()
    assert recorder.wait_for(lambda r: any(u.status == "processing" for u in r.updates))
    first.tell(Crash())

    assert recorder.wait_for(lambda r: r.terminal_count() == 30)
    assert first.actor_stopped.is_set()
    assert manager.poller_ref() not in (None, first)
    assert manager.stats()["poller_restarts"] == 1
    assert all(u.status == "completed" for u in recorder.terminal().values())


def test_a_poller_that_fails_in_on_start_is_noticed_and_restarted(make_manager, sim, recorder, monkeypatch):
    manager = make_manager()
    manager.add_listener(recorder)
    submit(manager, sim, 5, duration=40.0)
    original = Poller.setup
    failures = []

    def setup_failing_once(self):
        if not failures:
            failures.append(self.actor_urn)
            raise RuntimeError("cannot start")
        original(self)

    monkeypatch.setattr(Poller, "setup", setup_failing_once)
    manager.poller_ref().tell(Crash())

    assert recorder.wait_for(lambda r: r.terminal_count() == 5)
    assert failures, "the restarted poller never ran on_start"
    assert manager.stats()["poller_restarts"] == 2


def test_an_explicitly_stopped_poller_is_restarted(make_manager, sim, recorder):
    manager = make_manager()
    manager.add_listener(recorder)
    submit(manager, sim, 5, duration=40.0)
    manager.poller_ref().stop(block=True, timeout=5)

    assert recorder.wait_for(lambda r: r.terminal_count() == 5)
    assert manager.stats()["poller_restarts"] == 1


def test_a_crashed_job_actor_is_restarted_from_its_row(make_manager, sim, recorder):
    manager = make_manager()
    manager.add_listener(recorder)
    submit(manager, sim, 3, duration=80.0)
    urn = manager.live_jobs()["job-1"]
    pykka.ActorRegistry.get_by_urn(urn).tell(Crash())

    assert recorder.wait_for(lambda r: r.terminal_count() == 3)
    assert manager.stats()["job_restarts"] == 1
    assert recorder.by_job()["job-1"][-1] == "completed"


def test_a_new_manager_resumes_every_pending_job_of_a_shut_down_one(make_manager, sim, config):
    first_listener, second_listener = Recorder(), Recorder()
    first = make_manager()
    first.add_listener(first_listener)
    jobs = submit(first, sim, 50, duration=150.0)
    assert first.shutdown(timeout=5)

    second = make_manager()
    assert len(second.live_jobs()) + second.stats()["completed"] == 50
    second.add_listener(second_listener)
    # Jobs that finished before the listener was registered are in the store, not in its log.
    before = {j for j in jobs if second.get_job(j).status == "completed"}
    heard = lambda: set(first_listener.terminal()) | set(second_listener.terminal())  # noqa: E731
    assert second_listener.wait_for(lambda r: heard() | before >= set(jobs))
    assert {j: second.get_job(j).status for j in jobs} == {j: "completed" for j in jobs}
    completed = [u.job_id for u in first_listener.updates + second_listener.updates if u.status == "completed"]
    assert len(completed) == len(set(completed)), "a job was reported complete twice"
    assert all(sim.max_concurrency_for(name) == 1 for name in jobs.values())


def test_backoff_grows_as_the_reference_schedule_and_stops_at_max_attempts(make_manager, sim, config, recorder):
    manager = make_manager(config_=actors.PollingConfig(max_attempts=8, ask_timeout=10.0).scaled(TIME_SCALE))
    manager.add_listener(recorder)
    with structlog.testing.capture_logs() as logs:
        submit(manager, sim, 1, duration=10_000.0)
        assert recorder.wait_for(lambda r: r.terminal_count() == 1)
    delays = [e["delay"] * TIME_SCALE for e in logs if e["event"] == "poll_backoff"]
    assert delays == pytest.approx([15.0, 22.5, 33.75, 50.625, 60.0, 60.0, 60.0])
    final = recorder.terminal()["job-0"]
    assert final.status == "failed" and final.attempts == 8
    assert "8 attempts" in final.error
    assert manager.get_job("job-0").error == final.error


def test_two_listeners_get_every_update_in_order_despite_a_raising_and_a_dead_one(make_manager, sim):
    manager = make_manager()
    first, second = Recorder(), Recorder()

    def raising(update):
        raise ValueError("listener bug")

    class Dead(pykka.ThreadingActor):
        pass

    dead = Dead.start()
    for listener in (raising, first, dead, second):
        manager.add_listener(listener)
    dead.stop()
    jobs = submit(manager, sim, 10)

    for recorder in (first, second):
        assert recorder.wait_for(lambda r: r.terminal_count() == 10)
        for job_id in jobs:
            assert recorder.by_job()[job_id] in (["pending", "processing", "completed"], ["pending", "completed"])
    assert first.by_job() == second.by_job()


def test_a_late_listener_is_replayed_the_live_jobs(make_manager, sim):
    manager = make_manager()
    submit(manager, sim, 4, duration=10_000.0)
    late = Recorder()
    manager.add_listener(late, replay=True)
    assert late.wait_for(lambda r: len(r.updates) >= 4)
    assert {u.job_id for u in late.updates} == {f"job-{i}" for i in range(4)}
    assert all(not u.terminal for u in late.updates)


def test_a_removed_listener_hears_nothing_more(make_manager, sim):
    manager = make_manager()
    kept, removed = Recorder(), Recorder()
    manager.add_listener(kept)
    manager.add_listener(removed)
    assert manager.remove_listener(removed) is True
    assert manager.remove_listener(removed) is False
    submit(manager, sim, 3)
    assert kept.wait_for(lambda r: r.terminal_count() == 3)
    assert removed.updates == []


def test_an_actor_ref_listener_is_told_each_update(make_manager, sim):
    got = []
    finished = threading.Event()

    class Window(pykka.ThreadingActor):
        def on_receive(self, message):
            got.append(message)
            if message.terminal:
                finished.set()

    manager = make_manager()
    manager.add_listener(Window.start())
    submit(manager, sim, 1)
    assert finished.wait(20)
    assert isinstance(got[-1], actors.StatusUpdate) and got[-1].status == "completed"


def test_failed_and_filtered_operations_end_failed_with_the_reason(make_manager, sim, recorder):
    manager = make_manager()
    manager.add_listener(recorder)
    failed = sim.create_operation(outcome="failed", duration=20)
    filtered = sim.create_operation(outcome="filtered", duration=20)
    manager.add_to_polling("f1", "p", "generation", "prof", failed)
    manager.add_to_polling("f2", "p", "upscale", "prof", filtered)
    assert recorder.wait_for(lambda r: r.terminal_count() == 2)
    final = recorder.terminal()
    assert final["f1"].status == final["f2"].status == "failed"
    assert final["f1"].error and final["f2"].error and "filtered" in final["f2"].error.lower()


def test_cancel_fails_a_live_job_once_and_retry_polls_it_again(make_manager, sim, recorder):
    manager = make_manager()
    manager.add_listener(recorder)
    jobs = submit(manager, sim, 2, duration=200.0)
    assert manager.cancel("job-0", "cancelled by the user") is True
    assert manager.cancel("job-0") is False
    assert recorder.wait_for(lambda r: r.terminal_count() == 2)
    assert recorder.terminal()["job-0"].error == "cancelled by the user"
    assert recorder.by_job()["job-0"].count("failed") == 1
    assert manager.retry("job-1") is False  # completed, not failed

    assert manager.retry("job-0") is True
    assert recorder.wait_for(lambda r: r.by_job()["job-0"][-1] == "completed")
    assert manager.get_job("job-0").video_url
    assert sim.max_concurrency_for(jobs["job-0"]) == 1


def test_a_row_inserted_by_another_process_is_adopted_on_the_next_rescan(make_manager, sim, config, db_url):
    import dataclasses

    from actors.store import JobStore

    manager = make_manager(config_=dataclasses.replace(config, rescan_interval=0.05))
    recorder = Recorder()
    manager.add_listener(recorder)
    other = JobStore(db_url)
    other.open()
    try:
        from actors.store import JobRecord

        now = time.time()
        record = JobRecord(
            job_id="foreign", kind="upscale", prompt_id="p", profile_id="acct",
            operation_name=sim.create_operation(duration=20), scene_id=None, status="pending",
            attempts=0, backoff=0.01, next_due_at=now, video_url=None, video_uris=(), error=None,
            not_found_streak=0, created_at=now, updated_at=now,
        )
        assert other.insert_job(record).result(5)[0]
    finally:
        other.close()
    assert recorder.wait_for(lambda r: r.terminal_count() == 1)
    history = recorder.by_job()["foreign"]
    assert history[0] == "pending" and history[-1] == "completed" and history.count("completed") == 1


def test_a_listener_added_before_initialize_hears_every_restored_job_from_the_start(make_manager, sim, config, db_url):
    first = make_manager()
    submit(first, sim, 20, duration=300.0)
    first.shutdown(timeout=5)
    from actors.store import JobStore

    store = JobStore(db_url)
    restored = {record.job_id for record in store.live_jobs()}
    assert restored, "every job finished before the restart: the test proves nothing"

    early = Recorder()
    second = actors.PollingManager(
        database=db_url, client=actors.GeminiVeoClient(api_key="k", base_url=sim.base_url), config=config
    )
    second.add_listener(early, replay=True)
    try:
        second.initialize()
        assert early.wait_for(lambda r: r.terminal_count() == len(restored))
        assert set(early.terminal()) == restored
        assert all(statuses[0] in ("pending", "processing") for statuses in early.by_job().values())
    finally:
        second.shutdown(timeout=5)


def test_a_listener_added_to_a_manager_never_started_is_stopped_with_it(db_url, sim, config):
    manager = actors.PollingManager(
        database=db_url, client=actors.GeminiVeoClient(api_key="k", base_url=sim.base_url), config=config
    )
    manager.add_listener(Recorder())
    assert len(pykka.ActorRegistry.get_all()) == 1
    assert manager.shutdown() is True
    assert pykka.ActorRegistry.get_all() == [] or all(
        ref.actor_stopped.wait(5) for ref in pykka.ActorRegistry.get_all()
    )
