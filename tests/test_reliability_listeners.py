"""Hostile listeners: raising, stopped and slow ones hold up nobody.

A well-behaved listener registered next to them still gets every event, in order per job,
as soon as it happens: its lag behind the job's own state change stays small even while a
slow listener takes a second per event.
"""

from __future__ import annotations

import threading
import time

import pykka

from .conftest import Recorder, submit
from .reliability.figures import record_figure

VALID = (["pending", "processing", "completed"], ["pending", "completed"])


class TimedRecorder(Recorder):
    """Records when each update arrived (wall clock, like ``updated_at``)."""

    def __init__(self) -> None:
        super().__init__()
        self.lags: list[float] = []

    def __call__(self, message) -> None:
        self.lags.append(time.time() - message.updated_at)
        super().__call__(message)


def test_a_good_listener_gets_every_event_in_order_undelayed_by_raising_stopped_and_slow_ones(make_manager, sim):
    manager = make_manager()
    release = threading.Event()
    slow_seen: list[str] = []
    raised = {"n": 0}
    errors = [ValueError("listener bug"), KeyboardInterrupt(), SystemExit(3), MemoryError(), GeneratorExit()]

    raised_cond = threading.Condition()

    def raising(update):
        with raised_cond:
            raised["n"] += 1
            raised_cond.notify_all()
        raise errors[raised["n"] % len(errors)]

    def slow(update):
        slow_seen.append(update.job_id)
        release.wait(1.0)  # a second per event (released at the end, so teardown is quick)

    class Crashing(pykka.ThreadingActor):
        """An actor listener whose handler raises: pykka kills it at the first event."""

        def on_receive(self, message):
            raise RuntimeError("window crashed")

    class Window(pykka.ThreadingActor):
        def __init__(self):
            super().__init__()
            self.seen = 0

        def on_receive(self, message):
            self.seen += 1

    stopped = Window.start()
    crashing = Crashing.start()
    good = TimedRecorder()
    for listener in (raising, slow, stopped, crashing, good):
        manager.add_listener(listener)
    jobs = submit(manager, sim, 10, duration=30.0)
    assert good.wait_for(lambda r: len(r.updates) >= 5)
    stopped.stop()  # a window closed mid-stream
    jobs.update(submit(manager, sim, 10, prefix="second", duration=30.0))

    try:
        assert good.wait_for(lambda r: r.terminal_count() == len(jobs), timeout=20)
        by_job = good.by_job()
        assert sorted(by_job) == sorted(jobs)
        bad = {job_id: seen for job_id, seen in by_job.items() if seen not in VALID}
        assert not bad, f"events missing or out of order: {bad}"
        for job_id in jobs:
            attempts = [u.attempts for u in good.updates if u.job_id == job_id]
            assert attempts == sorted(attempts)
        with raised_cond:
            heard_all = raised_cond.wait_for(lambda: raised["n"] == len(good.updates), 10)
        assert heard_all, "the raising listener was dropped or starved"
        assert len(slow_seen) < len(good.updates), "the slow listener was not actually behind"
        worst = max(good.lags)
        assert worst < 0.5, f"the good listener lagged {worst:.2f} s behind a state change"
        assert manager.stats()["listeners_dropped"] >= 2  # the stopped and the crashed windows
        assert not crashing.is_alive()
    finally:
        release.set()
    record_figure("listeners", {"events_checked": len(good.updates), "worst_lag_s": round(worst, 3),
                                "raises_swallowed": raised["n"]})


def test_a_stopped_or_raising_listener_never_stops_the_tree(make_manager, sim):
    manager = make_manager()
    good = Recorder()

    def exits(update):
        raise SystemExit("a host callback calling sys.exit must not stop every actor")

    manager.add_listener(exits)
    manager.add_listener(good)
    jobs = submit(manager, sim, 5)
    assert good.wait_for(lambda r: r.terminal_count() == len(jobs))
    assert manager.poller_ref().is_alive()
    assert manager.remove_listener(exits) is True
    more = submit(manager, sim, 5, prefix="more")
    assert good.wait_for(lambda r: r.terminal_count() == len(jobs) + len(more))
