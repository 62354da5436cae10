"""AdaptiveSchedule: check a job when it has probably just finished, learned per kind.

The reference schedule backs off blindly (10, 15, 22.5, ... s), so with Veo's completion times
(11 s at the least, about 90 s typically) its first two or three checks are nearly always
wasted. This policy learns the distribution of completion ages per job kind from the jobs it
saw finish and places each check at the age where the job has, with probability ``target``,
finished since it was last seen pending:

    next age t  such that  P(T <= t | T > a) = target,   a = the job's age now

so checks are dense where completions are dense and sparse elsewhere, with a little jitter
so that jobs added together do not stay in lock step. Every delay is clamped to
``[floor, config.max_backoff]``: no job ever waits longer between two checks than under the
reference schedule, so the worst detection delay is no worse.

What it learns from: a finished job was still pending at age ``lo`` (its last unfinished check)
and done at age ``hi`` (the check that saw it done): its completion age lies in ``(lo, hi]``
(interval-censored). Each job adds a uniform mass over its interval; the estimated CDF is the
mean of those ramps, a piecewise-linear function built by one sweep over the sorted interval
ends. The history is the job table itself: :meth:`load` rebuilds it from completed rows at
start, so it survives restarts. With fewer than ``min_history`` observations of a kind the
policy is exactly the reference backoff for that kind.

Pure: no I/O, no actors, no clock (``now`` is passed in). Thread-safe: the job actors call
``next_delay`` and ``observe`` from their own threads; one lock guards the state.
"""

from __future__ import annotations

import bisect
import random
import threading
from collections import deque
from typing import Any, Iterable

from .config import PollingConfig
from .schedule import backoff_delay

#: Conditional probability of completion since the last check that a check aims for.
DEFAULT_TARGET = 0.42
#: Observations per kind needed before the learned schedule replaces the reference one.
DEFAULT_MIN_HISTORY = 30
#: Most recent observations kept per kind (older ones are forgotten: the API's speed drifts).
DEFAULT_WINDOW = 2000
#: Relative jitter on every learned delay (uniform in [1 - jitter, 1 + jitter]).
DEFAULT_JITTER = 0.1


class _Distribution:
    """The estimated completion-age CDF of one kind (piecewise linear, immutable once built)."""

    __slots__ = ("xs", "fs")

    def __init__(self, intervals: Iterable[tuple[float, float]]) -> None:
        events: list[tuple[float, float]] = []
        count = 0
        for lo, hi in intervals:
            width = hi - lo
            if width <= 0:
                # A point observation: a very steep ramp keeps the CDF continuous.
                width = max(abs(hi) * 1e-9, 1e-12)
                hi = lo + width
            events.append((lo, 1.0 / width))
            events.append((hi, -1.0 / width))
            count += 1
        events.sort()
        xs: list[float] = []
        fs: list[float] = []
        slope = 0.0
        mass = 0.0
        last = events[0][0] if events else 0.0
        for x, delta in events:
            mass += slope * (x - last)
            last = x
            slope += delta
            if xs and x == xs[-1]:
                continue
            xs.append(x)
            fs.append(mass)
        total = fs[-1] if fs and fs[-1] > 0 else 1.0
        # Normalise (the sweep accumulates float error) and keep it non-decreasing.
        running = 0.0
        for i, value in enumerate(fs):
            running = max(running, min(1.0, value / total))
            fs[i] = running
        if fs:
            fs[-1] = 1.0
        self.xs = xs
        self.fs = fs

    def cdf(self, age: float) -> float:
        xs, fs = self.xs, self.fs
        if not xs or age <= xs[0]:
            return 0.0
        if age >= xs[-1]:
            return 1.0
        i = bisect.bisect_right(xs, age)
        x0, x1, f0, f1 = xs[i - 1], xs[i], fs[i - 1], fs[i]
        return f0 + (f1 - f0) * (age - x0) / (x1 - x0)

    def quantile(self, p: float) -> float:
        xs, fs = self.xs, self.fs
        if not xs:
            return 0.0
        if p <= 0.0:
            return xs[0]
        if p >= 1.0:
            return xs[-1]
        i = bisect.bisect_left(fs, p)
        if i == 0:
            return xs[0]
        f0, f1, x0, x1 = fs[i - 1], fs[i], xs[i - 1], xs[i]
        if f1 <= f0:
            return x1
        return x0 + (x1 - x0) * (p - f0) / (f1 - f0)


class AdaptiveSchedule:
    """Learns completion ages per kind and checks at their conditional quantiles.

    Same calls as :class:`actors.schedule.ReferenceSchedule`; thread-safe.

    Args:
        config: the tree's settings (``max_backoff`` caps every delay; the reference backoff
            is the fallback).
        rng: a ``random.Random`` for the jitter (tests pass a seeded one).
        min_history: observations of a kind needed before its schedule is learned.
        target: conditional completion probability each check aims for (0 < target < 1):
            higher means fewer calls and longer detection delays.
        jitter: relative jitter of each learned delay (0 disables it).
        window: most recent observations kept per kind.
        floor: the smallest delay ever returned (default: a tenth of ``initial_backoff``).
    """

    def __init__(
        self,
        config: PollingConfig,
        *,
        rng: random.Random | None = None,
        min_history: int = DEFAULT_MIN_HISTORY,
        target: float = DEFAULT_TARGET,
        jitter: float = DEFAULT_JITTER,
        window: int = DEFAULT_WINDOW,
        floor: float | None = None,
    ) -> None:
        if not 0.0 < target < 1.0:
            raise ValueError(f"target must be in (0, 1), got {target!r}")
        if not 0.0 <= jitter < 1.0:
            raise ValueError(f"jitter must be in [0, 1), got {jitter!r}")
        if min_history < 1 or window < min_history:
            raise ValueError("need 1 <= min_history <= window")
        self.config = config
        self.min_history = min_history
        self.target = target
        self.jitter = jitter
        self.window = window
        self.floor = min(config.max_backoff, floor if floor is not None else config.initial_backoff / 10.0)
        if self.floor <= 0:
            raise ValueError("floor must be positive")
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._history: dict[str, deque[tuple[float, float]]] = {}
        self._seen: dict[str, int] = {}  # observations ever added per kind
        self._built: dict[str, tuple[int, _Distribution]] = {}  # kind -> (seen at build, dist)

    # -- the policy ----------------------------------------------------------------------------

    def next_delay(self, kind: str, created_at: float, attempts: int, now: float) -> float:
        """Seconds from ``now`` to the next check of a job of ``kind`` created at ``created_at``."""
        return self._delay(kind, created_at, attempts, now, self.jitter)

    def observe(self, kind: str, created_at: float, pending_seen_at: float, done_at: float) -> None:
        """Learn from one finished job: pending at ``pending_seen_at``, done at ``done_at``."""
        lo = max(0.0, pending_seen_at - created_at)
        hi = done_at - created_at
        if not hi >= lo or hi <= 0 or hi != hi:  # also rejects NaN
            return
        with self._lock:
            history = self._history.get(kind)
            if history is None:
                history = self._history[kind] = deque(maxlen=self.window)
            history.append((lo, hi))
            self._seen[kind] = self._seen.get(kind, 0) + 1

    def load(self, records: Iterable[Any]) -> None:
        """Learn from completed jobs read from the store (oldest first, so the window keeps the newest)."""
        rows = []
        for record in records:
            if getattr(record, "status", "completed") != "completed":
                continue
            created = record.created_at
            done = record.last_checked_at or record.updated_at
            pending = record.pending_seen_at or created
            rows.append((done, record.kind, created, pending))
        rows.sort(key=lambda row: row[0])
        for done, kind, created, pending in rows:
            self.observe(kind, created, pending, done)

    # -- introspection (tests, benchmarks) --------------------------------------------------

    def history_size(self, kind: str) -> int:
        """Observations of ``kind`` currently held."""
        with self._lock:
            return len(self._history.get(kind, ()))

    def learned(self, kind: str) -> bool:
        """True when ``kind`` has enough history to leave the reference schedule."""
        return self.history_size(kind) >= self.min_history

    def quantile(self, kind: str, p: float) -> float | None:
        """The ``p``-quantile of the learned completion age of ``kind`` (None: not learned)."""
        with self._lock:
            dist = self._distribution(kind)
            return None if dist is None else dist.quantile(p)

    def cdf(self, kind: str, age: float) -> float | None:
        """The learned P(completion age <= ``age``) of ``kind`` (None: not learned)."""
        with self._lock:
            dist = self._distribution(kind)
            return None if dist is None else dist.cdf(age)

    def ladder(self, kind: str, *, limit: int = 50) -> list[float]:
        """The check ages (no jitter) a job of ``kind`` would get if it never finished."""
        ages: list[float] = []
        age = 0.0
        for attempts in range(limit):
            age += self._delay(kind, 0.0, attempts, age, 0.0)
            ages.append(age)
        return ages

    def _delay(self, kind: str, created_at: float, attempts: int, now: float, jitter: float) -> float:
        with self._lock:
            dist = self._distribution(kind)
            if dist is None:
                return backoff_delay(attempts, self.config)
            age = max(0.0, now - created_at)
            done = dist.cdf(age)
            if done >= 1.0 - 1e-9:
                delay = self.config.max_backoff  # older than anything seen: reference cap
            else:
                delay = dist.quantile(done + self.target * (1.0 - done)) - age
                if jitter:
                    delay *= self._rng.uniform(1.0 - jitter, 1.0 + jitter)
        return min(self.config.max_backoff, max(self.floor, delay))

    # -- internals (lock held) --------------------------------------------------------------

    def _distribution(self, kind: str) -> _Distribution | None:
        history = self._history.get(kind)
        if history is None or len(history) < self.min_history:
            return None
        seen = self._seen[kind]
        built = self._built.get(kind)
        # Rebuild after 5% new observations (at least one): O(n log n), amortised cheaply.
        if built is None or seen - built[0] >= max(1, len(history) // 20):
            built = self._built[kind] = (seen, _Distribution(history))
        return built[1]
