"""Pure rate budgets: a token bucket per profile and Retry-After pauses.

The poller owns one :class:`ProfileBudgets`; nothing here sleeps or spawns threads. Time
comes in as an argument, so tests drive it with any clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    """At most ``rate`` takes per second on average, bursts up to ``burst``."""

    rate: float
    burst: float
    tokens: float
    updated_at: float

    @classmethod
    def full(cls, rate: float, now: float, burst: float | None = None) -> TokenBucket:
        """A bucket that may spend ``burst`` (default: one second's worth, at least 1) now."""
        size = max(1.0, rate if burst is None else burst)
        return cls(rate=rate, burst=size, tokens=size, updated_at=now)

    def _refill(self, now: float) -> None:
        if now > self.updated_at:
            self.tokens = min(self.burst, self.tokens + (now - self.updated_at) * self.rate)
            self.updated_at = now

    def try_take(self, now: float) -> bool:
        """Spend one token if there is one."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def next_available(self, now: float) -> float:
        """The earliest time at which :meth:`try_take` can succeed."""
        self._refill(now)
        if self.tokens >= 1.0:
            return now
        return now + (1.0 - self.tokens) / self.rate


class ProfileBudgets:
    """Per-profile rate limits and pauses (quotas are per account, so budgets are too)."""

    def __init__(self, rate: float | None) -> None:
        self._rate = rate
        self._buckets: dict[str, TokenBucket] = {}
        self._paused_until: dict[str, float] = {}

    def pause(self, profile_id: str, until: float) -> None:
        """Hold every check of ``profile_id`` until ``until`` (a later pause wins)."""
        if until > self._paused_until.get(profile_id, 0.0):
            self._paused_until[profile_id] = until

    def paused_until(self, profile_id: str, now: float) -> float | None:
        """The end of the profile's pause, or None when it is not paused at ``now``."""
        until = self._paused_until.get(profile_id)
        if until is None:
            return None
        if until <= now:
            del self._paused_until[profile_id]
            return None
        return until

    def admit(self, profile_id: str, now: float) -> float | None:
        """Take a check from the profile's budget: None when admitted, else when to retry."""
        until = self.paused_until(profile_id, now)
        if until is not None:
            return until
        if self._rate is None:
            return None
        bucket = self._buckets.get(profile_id)
        if bucket is None:
            bucket = self._buckets[profile_id] = TokenBucket.full(self._rate, now)
        if bucket.try_take(now):
            return None
        return bucket.next_available(now)
