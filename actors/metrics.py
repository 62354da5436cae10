"""Thread-safe counters and gauges shared by the tree (read by ``manager.stats()``).

Any thread may write; a lock keeps every update whole. Nothing here does I/O.
"""

from __future__ import annotations

import threading
from collections import Counter


class Metrics:
    """Counters (monotonic) and gauges (last value) of one polling tree."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: Counter[str] = Counter()
        self._gauges: dict[str, float] = {}

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
