"""PollingConfig: every knob of the tree, validated once, immutable afterwards.

Defaults reproduce the reference design (10 s ticks, 10 checks per cycle, backoff 10 s x 1.5
capped at 60 s, 360 attempts, 2 s restart delay). Every duration is in seconds as a float and
may be set down to milliseconds, so tests and benchmarks run in compressed time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from .errors import ConfigurationError

SCHEDULES = ("reference", "adaptive")


def _positive_finite(value: object) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value) and value > 0
    except OverflowError:  # an int too large for a float
        return False


@dataclass(frozen=True)
class PollingConfig:
    """Settings of one polling tree (read by the supervisor, the poller and the job actors).

    Attributes:
        tick_interval: seconds between two poller cycles.
        initial_backoff: delay before a job's first check, and after its first attempt's start.
        backoff_multiplier: factor applied to the delay after every non-terminal attempt.
        max_backoff: cap on the delay between two checks of one job.
        max_checks_per_cycle: at most this many checks are started per cycle.
        max_attempts: a job still not done after this many checks is failed.
        restart_delay: seconds before the supervisor restarts a crashed poller.
        max_in_flight: status checks running at once (the check thread pool's size).
        request_timeout: seconds a status check may take (handed to clients that take one).
        restart_intensity: more poller restarts than this within ``restart_window`` raise an
            alert and make further restarts back off.
        restart_window: seconds over which restarts are counted.
        max_restart_delay: cap on the backed-off restart delay during a crash storm.
        ask_timeout: seconds any call of the manager waits for an actor before giving up.
        profile_rate_limit: checks per second allowed per profile (None: no limit).
        default_retry_after: pause of a profile after a 429 that gave no Retry-After.
        not_found_limit: consecutive 404 answers after which a job is failed as expired.
        job_deadline: seconds after it was added at which a live job is failed as expired.
        rescan_interval: seconds between scans of the store for jobs that other processes
            added, retried or cancelled.
        download_dir: when set, each completed job's video is downloaded into this directory
            and its path kept on the job.
        schedule: ``"reference"`` (exponential backoff) or ``"adaptive"`` (learns completion
            times per kind and checks at their quantiles).
    """

    tick_interval: float = 10.0
    initial_backoff: float = 10.0
    backoff_multiplier: float = 1.5
    max_backoff: float = 60.0
    max_checks_per_cycle: int = 10
    max_attempts: int = 360
    restart_delay: float = 2.0
    max_in_flight: int = 10
    request_timeout: float = 30.0
    restart_intensity: int = 5
    restart_window: float = 60.0
    max_restart_delay: float = 30.0
    ask_timeout: float = 10.0
    profile_rate_limit: float | None = None
    default_retry_after: float = 10.0
    not_found_limit: int = 2
    job_deadline: float = 1800.0
    rescan_interval: float = 2.0
    download_dir: str | None = None
    schedule: str = "reference"

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigurationError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.download_dir is not None and (not isinstance(self.download_dir, str) or not self.download_dir):
            raise ConfigurationError("download_dir must be a directory path or None")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("str", "str | None") or (f.name == "profile_rate_limit" and value is None):
                continue
            if f.type in ("int",):
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
                if not ok:
                    raise ConfigurationError(f"{f.name} must be an integer >= 1, got {value!r:.60}")
                continue
            ok = _positive_finite(value)
            if not ok:
                raise ConfigurationError(f"{f.name} must be a positive number, got {value!r:.60}")
        if self.backoff_multiplier < 1:
            raise ConfigurationError(
                f"backoff_multiplier must be >= 1, got {self.backoff_multiplier!r}"
            )
        if self.max_backoff < self.initial_backoff:
            raise ConfigurationError("max_backoff must be >= initial_backoff")

    def scaled(self, factor: float) -> PollingConfig:
        """Return a copy with every simulated duration divided by ``factor`` (compressed time).

        ``ask_timeout``, ``request_timeout`` and ``rescan_interval`` are real machine time
        and stay as they are.
        """
        changes = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("float", "float | None") and value is not None and f.name not in (
                "backoff_multiplier",
                "profile_rate_limit",
                "ask_timeout",
                "request_timeout",
                "rescan_interval",
            ):
                changes[f.name] = value / factor
        if self.profile_rate_limit is not None:
            changes["profile_rate_limit"] = self.profile_rate_limit * factor
        return PollingConfig(**{**self.__dict__, **changes})
