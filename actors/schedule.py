"""Pure poll-time policies: how long a job waits before its next check.

No I/O, no actors, no clock: every function maps (attempts, settings) to seconds, so the
schedule is tested alone and reused by benchmarks.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from .config import PollingConfig


def backoff_delay(attempts: int, config: PollingConfig) -> float:
    """Seconds to wait before the next check of a job that has had ``attempts`` checks.

    ``attempts=0`` gives ``initial_backoff`` (the wait before the first check); every
    attempt multiplies the delay by ``backoff_multiplier`` up to ``max_backoff``:
    10, 15, 22.5, 33.75, 50.625, 60, 60, ... with the defaults.
    """
    if attempts < 0:
        raise ValueError(f"attempts must be >= 0, got {attempts}")
    if config.backoff_multiplier == 1:
        return min(config.initial_backoff, config.max_backoff)
    # Compare in log space so that large attempt counts never overflow a float.
    log_delay = math.log(config.initial_backoff) + attempts * math.log(config.backoff_multiplier)
    if log_delay >= math.log(config.max_backoff):
        return config.max_backoff
    return math.exp(log_delay)


def stagger(count: int, start: float, window: float) -> list[float]:
    """Spread ``count`` due times evenly over ``[start, start + window)``.

    Used after a restart so that every overdue job does not fire in the same cycle.
    """
    if count <= 0:
        return []
    step = window / count
    return [start + i * step for i in range(count)]


class ReferenceSchedule:
    """The reference design's policy: exponential backoff per job (thread-safe, stateless).

    Every schedule policy offers the same three calls; the job actors call them from their own
    threads, so implementations must be thread-safe.
    """

    def __init__(self, config: PollingConfig) -> None:
        self.config = config

    def next_delay(self, kind: str, created_at: float, attempts: int, now: float) -> float:
        """Seconds from ``now`` to the next check of a job that has had ``attempts`` checks."""
        return backoff_delay(attempts, self.config)

    def observe(self, kind: str, created_at: float, pending_seen_at: float, done_at: float) -> None:
        """Learn from one finished job (it was still pending at ``pending_seen_at``)."""

    def load(self, records: Iterable[Any]) -> None:
        """Learn from finished jobs read from the store at start."""
