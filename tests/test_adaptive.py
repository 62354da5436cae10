"""The adaptive poll schedule: pure unit tests (no I/O, no actors, no sleeping)."""

from __future__ import annotations

import math
import random
import threading
from dataclasses import replace

import pytest

import actors
from actors.adaptive import AdaptiveSchedule
from actors.runtime import make_schedule
from actors.schedule import ReferenceSchedule, backoff_delay
from actors.store import JobRecord

KIND = "generation"


def uniform_history(schedule: AdaptiveSchedule, count: int, lo: float, hi: float, *, kind: str = KIND, width: float = 0.0) -> None:
    """Observe ``count`` completions spread evenly over ages [lo, hi] (each censored to ``width``)."""
    for i in range(count):
        age = lo + (hi - lo) * (i + 0.5) / count
        schedule.observe(kind, 1000.0, 1000.0 + age - width, 1000.0 + age)


def record(job_id: str, *, kind: str = KIND, status: str = "completed", created: float = 0.0,
           pending: float = 0.0, checked: float = 0.0, updated: float = 0.0) -> JobRecord:
    return JobRecord(
        job_id=job_id, kind=kind, prompt_id="p", profile_id="a",
        operation_name="models/veo/operations/x", scene_id=None, status=status, attempts=3,
        backoff=0.0, next_due_at=0.0, video_url=None, video_uris=(), error=None,
        not_found_streak=0, created_at=created, updated_at=updated,
        last_checked_at=checked, pending_seen_at=pending,
    )


@pytest.fixture
def config() -> actors.PollingConfig:
    return actors.PollingConfig()


def test_make_schedule_picks_the_adaptive_policy(config):
    assert isinstance(make_schedule(replace(config, schedule="adaptive")), AdaptiveSchedule)
    assert isinstance(make_schedule(config), ReferenceSchedule)


def test_without_history_it_is_the_reference_backoff(config):
    schedule = AdaptiveSchedule(config, rng=random.Random(1))
    for attempts in range(12):
        assert schedule.next_delay(KIND, 0.0, attempts, 5.0 * attempts) == backoff_delay(attempts, config)
    assert schedule.quantile(KIND, 0.5) is None and schedule.cdf(KIND, 10.0) is None
    assert not schedule.learned(KIND)


def test_below_min_history_it_stays_reference_then_switches(config):
    schedule = AdaptiveSchedule(config, rng=random.Random(1), min_history=10, jitter=0.0)
    uniform_history(schedule, 9, 200.0, 300.0)
    assert schedule.next_delay(KIND, 0.0, 0, 0.0) == backoff_delay(0, config)
    uniform_history(schedule, 1, 250.0, 250.0)
    assert schedule.learned(KIND)
    # Everything finishes after 200 s: the first check waits as long as allowed.
    assert schedule.next_delay(KIND, 0.0, 0, 0.0) == config.max_backoff


def test_history_is_per_kind(config):
    schedule = AdaptiveSchedule(config, min_history=5, jitter=0.0)
    uniform_history(schedule, 20, 100.0, 200.0, kind="upscale")
    assert schedule.learned("upscale") and not schedule.learned(KIND)
    assert schedule.next_delay(KIND, 0.0, 2, 0.0) == backoff_delay(2, config)


def test_learns_the_distribution_from_censored_intervals(config):
    schedule = AdaptiveSchedule(config, min_history=10, jitter=0.0)
    # Completions spread evenly over ages 100..200, each known to within 10 s.
    uniform_history(schedule, 200, 110.0, 200.0, width=10.0)
    assert schedule.cdf(KIND, 99.0) == 0.0
    assert schedule.cdf(KIND, 201.0) == 1.0
    assert schedule.quantile(KIND, 0.5) == pytest.approx(150.0, abs=1.0)
    assert schedule.cdf(KIND, 150.0) == pytest.approx(0.5, abs=0.01)
    # Done ages spread over 110..200, each pending 10 s before: mass on 100..200 with ramps
    # at both ends, flat in between, so F(x) = (x - 105) / 90 there.
    assert schedule.quantile(KIND, 0.25) == pytest.approx(127.5, abs=0.5)
    # The CDF is non-decreasing and the quantile inverts it.
    ages = [100.0 + i for i in range(101)]
    values = [schedule.cdf(KIND, a) for a in ages]
    assert values == sorted(values)
    for p in (0.1, 0.3, 0.7, 0.9):
        assert schedule.cdf(KIND, schedule.quantile(KIND, p)) == pytest.approx(p, abs=1e-6)


def test_checks_are_placed_at_conditional_quantiles():
    config = actors.PollingConfig(max_backoff=1000.0)
    schedule = AdaptiveSchedule(config, min_history=10, jitter=0.0, target=0.5)
    uniform_history(schedule, 400, 100.0, 300.0)
    # A new job: the first check at the median age.
    assert schedule.next_delay(KIND, 0.0, 0, 0.0) == pytest.approx(200.0, abs=1.0)
    # Pending at age 200 (half are done): next check where half of the rest are done.
    assert schedule.next_delay(KIND, 0.0, 1, 200.0) == pytest.approx(50.0, abs=1.0)
    # The absolute clock does not matter, only the age.
    assert schedule.next_delay(KIND, 5000.0, 1, 5200.0) == pytest.approx(50.0, abs=1.0)
    ladder = schedule.ladder(KIND, limit=4)
    assert ladder[:2] == pytest.approx([200.0, 250.0], abs=1.0)
    assert ladder == sorted(ladder)


def test_a_higher_target_spaces_checks_further_apart():
    config = actors.PollingConfig(max_backoff=1000.0)
    low = AdaptiveSchedule(config, min_history=10, jitter=0.0, target=0.3)
    high = AdaptiveSchedule(config, min_history=10, jitter=0.0, target=0.6)
    for schedule in (low, high):
        uniform_history(schedule, 200, 50.0, 250.0)
    assert len([a for a in low.ladder(KIND) if a < 250]) > len([a for a in high.ladder(KIND) if a < 250])


def test_delays_stay_within_floor_and_cap(config):
    schedule = AdaptiveSchedule(config, rng=random.Random(5), min_history=10, jitter=0.5)
    rng = random.Random(9)
    for _ in range(300):
        age = rng.lognormvariate(math.log(90), 0.6)
        schedule.observe(KIND, 0.0, age * 0.7, age)
    for i in range(2000):
        age = rng.uniform(0.0, 2000.0)
        delay = schedule.next_delay(KIND, 100.0, i % 40, 100.0 + age)
        assert schedule.floor <= delay <= config.max_backoff
    # Older than every completion seen: the reference cap, never more.
    assert schedule.next_delay(KIND, 0.0, 5, 10_000.0) == config.max_backoff
    # Dense completions just ahead: never below the floor.
    tight = AdaptiveSchedule(config, min_history=5, jitter=0.0)
    uniform_history(tight, 50, 30.0, 30.001)
    assert tight.next_delay(KIND, 0.0, 3, 29.9999) == tight.floor == config.initial_backoff / 10


def test_jitter_spreads_delays_but_is_seeded():
    config = actors.PollingConfig(max_backoff=1000.0)
    delays = []
    for seed in (1, 1, 2):
        schedule = AdaptiveSchedule(config, rng=random.Random(seed), min_history=10, jitter=0.1)
        uniform_history(schedule, 100, 100.0, 300.0)
        delays.append([schedule.next_delay(KIND, 0.0, 0, 0.0) for _ in range(50)])
    assert delays[0] == delays[1] != delays[2]
    assert len(set(delays[0])) > 40
    median = AdaptiveSchedule(config, min_history=10, jitter=0.0)
    uniform_history(median, 100, 100.0, 300.0)
    center = median.next_delay(KIND, 0.0, 0, 0.0)
    assert all(0.9 * center - 1e-9 <= d <= 1.1 * center + 1e-9 for d in delays[0])


def test_bad_observations_are_ignored(config):
    schedule = AdaptiveSchedule(config, min_history=1)
    schedule.observe(KIND, 100.0, 150.0, 120.0)  # done before last seen pending
    schedule.observe(KIND, 100.0, 100.0, 100.0)  # done at age 0
    schedule.observe(KIND, 100.0, 100.0, float("nan"))
    assert schedule.history_size(KIND) == 0
    schedule.observe(KIND, 100.0, 50.0, 180.0)  # pending before creation: clipped to age 0
    assert schedule.history_size(KIND) == 1
    assert schedule.quantile(KIND, 0.5) == pytest.approx(40.0)


def test_window_keeps_the_newest(config):
    schedule = AdaptiveSchedule(config, min_history=10, window=50, jitter=0.0)
    uniform_history(schedule, 50, 300.0, 310.0)
    uniform_history(schedule, 50, 100.0, 110.0)
    assert schedule.history_size(KIND) == 50
    assert schedule.quantile(KIND, 0.5) == pytest.approx(105.0, abs=1.0)


def test_load_rebuilds_history_from_completed_records(config):
    observed = AdaptiveSchedule(config, min_history=10, jitter=0.0)
    records = []
    for i in range(40):
        created = 1000.0 + i
        pending, done = created + 60.0 + i, created + 90.0 + i
        observed.observe(KIND, created, pending, done)
        records.append(record(f"j{i}", created=created, pending=pending, checked=done, updated=done + 0.5))
    records.append(record("failed", status="failed", created=0.0, pending=1.0, checked=2.0))
    restarted = AdaptiveSchedule(config, min_history=10, jitter=0.0)
    restarted.load(reversed(records))
    assert restarted.history_size(KIND) == 40
    for p in (0.1, 0.5, 0.9):
        assert restarted.quantile(KIND, p) == pytest.approx(observed.quantile(KIND, p))
    assert restarted.ladder(KIND, limit=5) == observed.ladder(KIND, limit=5)


def test_load_fills_in_unknown_times(config):
    schedule = AdaptiveSchedule(config, min_history=2, jitter=0.0)
    # pending_seen_at 0: pending since creation; last_checked_at 0: done at updated_at.
    schedule.load([record("a", created=10.0, updated=110.0), record("b", created=10.0, updated=110.0)])
    assert schedule.history_size(KIND) == 2
    assert schedule.quantile(KIND, 0.5) == pytest.approx(50.0)


def test_is_thread_safe(config):
    schedule = AdaptiveSchedule(config, rng=random.Random(3), min_history=20, window=100_000)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            barrier.wait()
            for i in range(500):
                age = rng.uniform(20.0, 200.0)
                kind = KIND if i % 2 else "upscale"
                schedule.observe(kind, 0.0, age - 5.0, age)
                delay = schedule.next_delay(kind, 0.0, i % 10, rng.uniform(0.0, 300.0))
                assert schedule.floor <= delay <= config.max_backoff
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert schedule.history_size(KIND) + schedule.history_size("upscale") == 8 * 500


def test_rejects_bad_settings(config):
    for kwargs in ({"target": 0.0}, {"target": 1.0}, {"jitter": 1.0}, {"min_history": 0},
                   {"window": 5, "min_history": 10}, {"floor": 0.0}):
        with pytest.raises(ValueError):
            AdaptiveSchedule(config, **kwargs)


def test_beats_the_reference_on_veo_like_durations(config):
    """A pure simulation of the goal: far fewer calls, no longer mean delay, same cap."""
    rng = random.Random(11)

    def draw() -> float:
        return min(360.0, max(11.0, rng.lognormvariate(math.log(90.0), 0.6)))

    def run(schedule, jobs: int) -> tuple[float, float]:
        calls = delays = 0.0
        for _ in range(jobs):
            done_at = draw()
            age, attempts, last = schedule.next_delay(KIND, 0.0, 0, 0.0), 1, 0.0
            while age < done_at:
                last = age
                age += schedule.next_delay(KIND, 0.0, attempts, age)
                attempts += 1
            schedule.observe(KIND, 0.0, last, age)
            calls += attempts
            delays += age - done_at
        return calls / jobs, delays / jobs

    ref_calls, ref_delay = run(ReferenceSchedule(config), 3000)
    adaptive = AdaptiveSchedule(config, rng=random.Random(2))
    run(adaptive, 300)  # warm-up: the first 30 are reference, the rest learn
    calls, delay = run(adaptive, 3000)
    assert calls <= 0.6 * ref_calls
    assert delay <= ref_delay
