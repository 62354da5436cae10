"""Rate budgets per profile: token buckets, Retry-After pauses, adaptive rates, auth holds.

Quotas are per account, so every budget here is per ``profile_id``. :class:`ProfileThrottle`
is shared by the poller (which asks :meth:`ProfileThrottle.admit` before each check) and the
check threads (which report each answer), and it outlives poller restarts, so a Retry-After
pause survives a crash. A lock makes every call safe from any thread; time comes in as an
argument, so tests drive it with any clock.

Refused credentials hold a profile until :meth:`ProfileThrottle.resume` (new credentials)
or until a probe check, let through every six pauses, succeeds.

Adaptive throttling: every 429 halves the profile's rate (down to 1/32 of its base) and
pauses it for the server's Retry-After, or for an exponentially growing delay when the server
gave none; every success climbs the rate back by a tenth of the base.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .config import PollingConfig

_MIN_FACTOR = 1 / 32
_STEP_UP = 0.1


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


@dataclass
class _Profile:
    factor: float = 1.0
    paused_until: float = 0.0
    auth_hold: bool = False
    rate_limited_streak: int = 0
    bucket: TokenBucket | None = None
    probe_at: float = 0.0


class ProfileThrottle:
    """Every profile's budget (shared by the poller and the check threads)."""

    def __init__(self, config: PollingConfig) -> None:
        self._config = config
        self._explicit_rate = config.profile_rate_limit
        # With no explicit limit, adaptive steps are taken from the poller's own ceiling.
        self._base_rate = config.profile_rate_limit or (
            config.max_checks_per_cycle / config.tick_interval
        )
        self._probe_interval = 6 * max(config.tick_interval, config.default_retry_after)
        self._lock = threading.Lock()
        self._profiles: dict[str, _Profile] = {}

    def _get(self, profile_id: str) -> _Profile:
        state = self._profiles.get(profile_id)
        if state is None:
            state = self._profiles[profile_id] = _Profile()
        return state

    # -- the poller ------------------------------------------------------------------------

    def admit(self, profile_id: str, now: float) -> float | None:
        """Take one check from the profile's budget: None when admitted, else when to retry."""
        with self._lock:
            state = self._get(profile_id)
            if state.auth_hold:
                # Held: let one check through now and then, so credentials that a provider
                # rotates by itself (a token function) are noticed without the host's help.
                if now >= state.probe_at:
                    state.probe_at = now + self._probe_interval
                    return None
                return min(state.probe_at, now + self._probe_interval)
            if state.paused_until > now:
                return state.paused_until
            if self._explicit_rate is None and state.factor >= 1.0:
                return None
            rate = self._base_rate * state.factor
            if state.bucket is None:
                state.bucket = TokenBucket.full(rate, now)
            elif state.bucket.rate != rate:
                state.bucket.rate = rate
                state.bucket.burst = max(1.0, rate)
            if state.bucket.try_take(now):
                return None
            return state.bucket.next_available(now)

    # -- the check threads -----------------------------------------------------------------

    def on_success(self, profile_id: str) -> None:
        """An answer came back: the profile's rate climbs back towards its base."""
        with self._lock:
            state = self._get(profile_id)
            state.rate_limited_streak = 0
            state.auth_hold = False
            if state.factor < 1.0:
                factor = state.factor + _STEP_UP
                state.factor = 1.0 if factor > 1.0 - 1e-9 else factor

    def on_rate_limited(self, profile_id: str, retry_after: float | None, now: float) -> float:
        """A 429: halve the rate and pause the profile; returns the pause in seconds."""
        with self._lock:
            state = self._get(profile_id)
            state.rate_limited_streak += 1
            state.factor = max(_MIN_FACTOR, state.factor / 2)
            if retry_after is None:
                retry_after = min(
                    self._config.default_retry_after * 2 ** min(state.rate_limited_streak - 1, 20),
                    self._config.max_backoff * 10,
                )
            state.paused_until = max(state.paused_until, now + retry_after)
            return retry_after

    def on_auth_failed(self, profile_id: str, now: float) -> bool:
        """Credentials refused: hold the profile; True when it was not held already."""
        with self._lock:
            state = self._get(profile_id)
            newly = not state.auth_hold
            state.auth_hold = True
            if newly:
                state.probe_at = now + self._probe_interval
            return newly

    def resume(self, profile_id: str) -> bool:
        """Lift an auth hold and any pause (new credentials); True if it was held or paused."""
        with self._lock:
            state = self._get(profile_id)
            was = state.auth_hold or state.paused_until > 0
            state.auth_hold = False
            state.paused_until = 0.0
            return was

    def snapshot(self) -> dict[str, dict[str, float | bool]]:
        """Each known profile's rate factor, pause end and auth hold (for stats)."""
        with self._lock:
            return {
                profile: {"rate_factor": s.factor, "paused_until": s.paused_until, "auth_hold": s.auth_hold}
                for profile, s in self._profiles.items()
            }
