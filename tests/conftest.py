"""Shared fixtures: compressed-time config, a simulated server, managers, recording listeners."""

from __future__ import annotations

import os
import threading
from collections import defaultdict

import pykka
import pytest
import structlog

import actors
from actors.messages import StatusUpdate

#: Simulated seconds per real second in end-to-end tests: 90 s jobs take 90 ms.
TIME_SCALE = 1000.0

POSTGRES_URL = os.environ.get("VEO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def stop_all_actors():
    """Every test ends with no actor left running."""
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=10)


@pytest.fixture(autouse=True)
def default_logging():
    """Every test starts with structlog's defaults, whatever an earlier test configured."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture
def config() -> actors.PollingConfig:
    """The reference defaults, compressed by TIME_SCALE (10 s ticks become 10 ms)."""
    return actors.PollingConfig(ask_timeout=10.0).scaled(TIME_SCALE)


@pytest.fixture
def sim():
    with actors.VeoSimulator(time_scale=TIME_SCALE, seed=7) as server:
        yield server


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture
def make_manager(sim, config, db_url):
    """Build managers (started) on the test's database; all are shut down afterwards."""
    made: list[actors.PollingManager] = []

    def make(*, database=None, config_=None, client=None) -> actors.PollingManager:
        manager = actors.PollingManager(
            database=database or db_url,
            client=client or actors.GeminiVeoClient(api_key="test-key", base_url=sim.base_url),
            config=config_ or config,
        )
        made.append(manager)
        return manager.initialize()

    yield make
    for manager in made:
        manager.shutdown(timeout=5)


class Recorder:
    """A listener callable that records every update and lets a test wait for conditions."""

    def __init__(self) -> None:
        self.updates: list[StatusUpdate] = []
        self.alerts: list[actors.Alert] = []
        self._cond = threading.Condition()

    def __call__(self, message) -> None:
        with self._cond:
            if isinstance(message, actors.Alert):
                self.alerts.append(message)
            else:
                self.updates.append(message)
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float = 20.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    def terminal(self) -> dict[str, StatusUpdate]:
        with self._cond:
            return {u.job_id: u for u in self.updates if u.terminal}

    def terminal_count(self) -> int:
        with self._cond:
            return sum(1 for u in self.updates if u.terminal)

    def by_job(self) -> dict[str, list[str]]:
        with self._cond:
            seen: dict[str, list[str]] = defaultdict(list)
            for update in self.updates:
                seen[update.job_id].append(update.status)
            return dict(seen)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def submit(manager, sim, count: int, *, prefix: str = "job", outcome=None, duration=None) -> dict[str, str]:
    """Start ``count`` operations on the simulator and add them; returns job_id -> operation."""
    jobs = {}
    for i in range(count):
        name = sim.create_operation(outcome=outcome, duration=duration)
        job_id = f"{prefix}-{i}"
        kind = "generation" if i % 2 == 0 else "upscale"
        manager.add_to_polling(job_id, f"prompt-{i}", kind, "profile-a", name, scene_id=f"scene-{i % 3}")
        jobs[job_id] = name
    return jobs
