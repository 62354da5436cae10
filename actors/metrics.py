"""Thread-safe counters and gauges shared by the tree (read by ``manager.stats()``).

Any thread may write; a lock keeps every update whole. Nothing here does I/O.
"""

from __future__ import annotations

import threading
from collections import Counter


#: Upper bounds (seconds) of the histogram buckets, as Prometheus cumulates them.
BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, float("inf"))


class Histogram:
    """Observations of one duration: count, sum, and counts per bucket (not cumulative)."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * len(BUCKETS)

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                self.buckets[i] += 1
                break

    def copy(self) -> Histogram:
        other = Histogram()
        other.count, other.total, other.buckets = self.count, self.total, list(self.buckets)
        return other


class Metrics:
    """Counters (monotonic), gauges (last value) and histograms of one polling tree."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: Counter[str] = Counter()
        self._gauges: dict[str, float] = {}
        self._histograms: dict[str, Histogram] = {}

    def observe(self, name: str, value: float) -> None:
        """Add one observation to histogram ``name``."""
        with self._lock:
            histogram = self._histograms.get(name)
            if histogram is None:
                histogram = self._histograms[name] = Histogram()
            histogram.observe(value)

    def histograms(self) -> dict[str, Histogram]:
        """A copy of every histogram."""
        with self._lock:
            return {name: h.copy() for name, h in self._histograms.items()}

    def incr(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to counter ``name``."""
        with self._lock:
            self._counters[name] += amount

    def set_gauge(self, name: str, value: float) -> None:
        """Record the current value of gauge ``name``."""
        with self._lock:
            self._gauges[name] = value

    def get(self, name: str) -> float:
        """The counter's or gauge's value (0 when never set)."""
        with self._lock:
            if name in self._gauges:
                return self._gauges[name]
            return self._counters[name]

    def snapshot(self) -> dict[str, float]:
        """Every counter and gauge, copied."""
        with self._lock:
            return {**self._counters, **self._gauges}
