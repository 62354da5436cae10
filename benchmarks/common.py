"""Small measuring tools shared by the benchmarks: statistics, CPU, memory, a host stall probe.

Nothing here knows about the tree; every function is safe from any thread.
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import threading
import time
from typing import Any, Iterable

#: Veo-like durations, in simulated seconds (the simulator's defaults, restated for reports).
VEO_DURATIONS = {"min": 11.0, "median": 90.0, "max": 360.0, "sigma": 0.6}


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; NaN for no values."""
    data = sorted(values)
    if not data:
        return float("nan")
    if len(data) == 1:
        return data[0]
    rank = (len(data) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


def summary(values: Iterable[float]) -> dict[str, float]:
    """count, mean, p50, p95, p99, max of ``values``."""
    data = list(values)
    if not data:
        return {"count": 0, "mean": float("nan"), "p50": float("nan"), "p95": float("nan"),
                "p99": float("nan"), "max": float("nan")}
    return {"count": len(data), "mean": statistics.fmean(data), "p50": percentile(data, 50),
            "p95": percentile(data, 95), "p99": percentile(data, 99), "max": max(data)}


def spread(values: Iterable[float]) -> dict[str, float]:
    """Median and range of repeated measurements of one figure."""
    data = [v for v in values if v == v]
    if not data:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": statistics.median(data), "min": min(data), "max": max(data), "n": len(data)}


def process_cpu() -> float:
    """CPU seconds (user + system) of this whole process, dead threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_bytes() -> int:
    """Resident set size of this process now."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class StallProbe:
    """The host's main loop: sleep 1 ms, measure how late it wakes (call from the host thread).

    ``step()`` does one iteration and records the lag (seconds beyond the 1 ms asked for); it
    samples the RSS every ``rss_every`` steps so the peak is known.
    """

    def __init__(self, interval: float = 0.001, rss_every: int = 100) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self.rss_every = rss_every
        self.rss_peak = rss_bytes()
        self._last = time.perf_counter()

    def reset(self) -> None:
        self._last = time.perf_counter()

    def step(self) -> None:
        time.sleep(self.interval)
        now = time.perf_counter()
        self.lags.append(max(0.0, now - self._last - self.interval))
        self._last = now
        if len(self.lags) % self.rss_every == 0:
            self.rss_peak = max(self.rss_peak, rss_bytes())

    def mark(self) -> None:
        """Forget the time spent since the last step (host work the probe must not count)."""
        self._last = time.perf_counter()

    def result(self) -> dict[str, float]:
        lags_ms = [lag * 1000.0 for lag in self.lags]
        return {"lag_p50_ms": percentile(lags_ms, 50), "lag_p99_ms": percentile(lags_ms, 99),
                "lag_max_ms": max(lags_ms) if lags_ms else float("nan"), "samples": len(lags_ms)}


class CallLog:
    """Thread-safe record of when API calls started (monotonic seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.times: list[float] = []

    def hit(self) -> None:
        now = time.monotonic()
        with self._lock:
            self.times.append(now)

    def __len__(self) -> int:
        with self._lock:
            return len(self.times)

    def per_cycle(self, cycle: float, start: float | None = None) -> dict[str, float]:
        """Calls per window of ``cycle`` seconds: mean over windows with calls, and the max."""
        with self._lock:
            times = sorted(self.times)
        if not times:
            return {"mean": 0.0, "max": 0.0}
        origin = times[0] if start is None else start
        counts: dict[int, int] = {}
        for t in times:
            index = int((t - origin) // cycle)
            counts[index] = counts.get(index, 0) + 1
        return {"mean": statistics.fmean(counts.values()), "max": float(max(counts.values()))}


class CountingClient:
    """Wraps a StatusClient: counts (and times) every check, otherwise transparent."""

    def __init__(self, inner: Any, calls: CallLog | None = None) -> None:
        self.inner = inner
        self.calls = calls if calls is not None else CallLog()

    def check(self, operation_name: str, *, profile_id: str | None = None) -> Any:
        self.calls.hit()
        return self.inner.check(operation_name, profile_id=profile_id)

    def close(self) -> None:
        self.inner.close()


def fmt(value: Any, digits: int = 1) -> str:
    """A number for a table (NaN as a dash)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def quiet_logs() -> None:
    """Only warnings and errors from the tree's structured logs (benchmarks print their own)."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
