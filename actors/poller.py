"""Poller: owns time and the API budget.

It keeps every live job's next due time in a heap (lazy deletion: an entry whose generation
is stale is skipped), wakes on its own :class:`~actors.timers.Ticker`, starts at most
``max_checks_per_cycle`` due checks per cycle on the shared :class:`~actors.checks.CheckPool`,
respects each profile's budget in the shared :class:`~actors.throttle.ProfileThrottle`,
and never checks a job that is already being checked. It holds nothing that cannot be
rebuilt: on start it reads the live jobs from the store, takes the job actors' refs from the
supervisor, and staggers overdue first checks over one tick so that a restart does not fire
them all at once.

Every method runs on the poller's own actor thread, except ``__init__`` (the supervisor's).
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from .base import SupervisedActor
from .checks import CheckPool, CheckRequest
from .messages import _Reschedule, _Tick, _Track, _Untrack
from .runtime import Runtime
from .schedule import stagger
from .timers import Ticker

log = structlog.get_logger("actors.poller")


@dataclass
class _Target:
    ref: pykka.ActorRef
    operation_name: str
    profile_id: str
    generation: int = 0


class Poller(SupervisedActor):
    """Decides which job is checked when; one incarnation at a time, restarted on crash."""

    role = "poller"

    def __init__(self, runtime: Runtime, pool: CheckPool, job_refs: dict[str, pykka.ActorRef]):
        super().__init__(runtime)
        self._pool = pool
        self._initial_refs = dict(job_refs)
        self._targets: dict[str, _Target] = {}
        self._heap: list[tuple[float, int, str, int]] = []
        self._seq = itertools.count()
        self._ticker = None

    # -- lifecycle --------------------------------------------------------------------------

    def setup(self) -> None:
        runtime = self.runtime
        runtime.set_ref("poller", self.actor_ref)  # first, so no reschedule is missed
        now = runtime.clock()
        overdue: list[tuple[float, str]] = []
        for record in runtime.store.live_jobs():
            ref = self._initial_refs.get(record.job_id)
            if ref is None:
                continue  # its actor is starting and will tell us itself
            self._targets[record.job_id] = _Target(ref, record.operation_name, record.profile_id)
            if record.next_due_at <= now:
                overdue.append((record.next_due_at, record.job_id))
            else:
                self._push(record.job_id, record.next_due_at)
        overdue.sort()
        window = runtime.config.tick_interval
        for (_, job_id), due in zip(overdue, stagger(len(overdue), now, window)):
            self._push(job_id, due)
        log.info("poller_started", jobs=len(self._targets), overdue=len(overdue))
        self._publish_depth()
        self._ticker = Ticker(
            self.actor_ref, runtime.config.tick_interval, _Tick(), name="veo-poller-ticker"
        ).start()
        self.actor_ref.tell(_Tick())  # the first cycle now, not one tick after a restart

    def teardown(self, crashed: bool) -> None:
        if self._ticker is not None:
            self._ticker.stop()
        if self.runtime.ref("poller") == self.actor_ref:
            self.runtime.set_ref("poller", None)

    # -- messages ---------------------------------------------------------------------------

    def handle(self, message: Any) -> Any:
        if isinstance(message, _Tick):
            try:
                self._cycle()
            finally:
                self._ticker.handled()
        elif isinstance(message, _Reschedule):
            if message.job_id in self._targets:
                self._push(message.job_id, message.due_at, bump=True)
        elif isinstance(message, _Track):
            target = self._targets.get(message.job_id)
            if target is not None and target.ref.actor_urn == message.ref.actor_urn:
                return None  # scheduled (and staggered) from its row in setup already
            if target is None:
                target = self._targets[message.job_id] = _Target(
                    message.ref, message.operation_name, message.profile_id
                )
            else:
                target.ref = message.ref
            self._push(message.job_id, message.due_at, bump=True)
        elif isinstance(message, _Untrack):
            self._targets.pop(message.job_id, None)
        elif isinstance(message, _ScheduleQuery):
            return self._schedule_snapshot()
        else:
            return super().handle(message)
        self._publish_depth()
        return None

    # -- the schedule -----------------------------------------------------------------------

    def _push(self, job_id: str, due_at: float, *, bump: bool = False) -> None:
        target = self._targets[job_id]
        if bump:
            target.generation += 1
        heapq.heappush(self._heap, (due_at, next(self._seq), job_id, target.generation))

    def _cycle(self) -> None:
        """Start the checks that are due, within the per-cycle cap and every budget."""
        runtime = self.runtime
        now = runtime.clock()
        limit = min(runtime.config.max_checks_per_cycle, self._pool.capacity - self._pool.in_flight())
        ready: dict[str, list[CheckRequest]] = {}
        deferred: list[tuple[str, float]] = []
        taken = 0
        while self._heap and self._heap[0][0] <= now and taken < limit:
            due_at, _, job_id, generation = heapq.heappop(self._heap)
            target = self._targets.get(job_id)
            if target is None or target.generation != generation:
                continue  # stale entry: the job was rescheduled or dropped
            if self._pool.is_checking(job_id):
                # Normally its result reschedules it; but that result may go to an actor that
                # died meanwhile (its successor is the one tracked now), so keep a place.
                deferred.append((job_id, now + runtime.config.tick_interval))
                continue
            retry_at = runtime.throttle.admit(target.profile_id, now)
            if retry_at is not None:
                deferred.append((job_id, retry_at))
                continue
            ready.setdefault(target.profile_id, []).append(
                CheckRequest(job_id, target.operation_name, target.profile_id, target.ref)
            )
            taken += 1
        started = 0
        for requests in ready.values():
            accepted = self._pool.submit_batch(requests)
            started += accepted
            deferred.extend((r.job_id, now) for r in requests[accepted:])
        for job_id, due_at in deferred:
            self._push(job_id, due_at)
        if started:
            runtime.metrics.incr("checks_started", started)
        runtime.metrics.incr("cycles")

    def _publish_depth(self) -> None:
        self.runtime.metrics.set_gauge("schedule_depth", len(self._targets))
        next_due = self._heap[0][0] if self._heap else float("nan")
        self.runtime.metrics.set_gauge("next_due_at", next_due)

    def _schedule_snapshot(self) -> dict[str, float]:
        """job_id -> the due time of its current heap entry (jobs being checked have none)."""
        due: dict[str, float] = {}
        for due_at, _, job_id, generation in self._heap:
            target = self._targets.get(job_id)
            if target is not None and target.generation == generation:
                due[job_id] = min(due_at, due.get(job_id, due_at))
        return {job_id: due.get(job_id, float("nan")) for job_id in self._targets}


@dataclass(frozen=True, slots=True)
class _ScheduleQuery:
    """Ask the poller which jobs it tracks and when each is due (tests and tools)."""
