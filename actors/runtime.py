"""Runtime: what every actor of one tree shares, and where each finds the others now.

The supervisor replaces children when they crash, so actors never keep each other's refs:
they read the current one here. Refs are swapped under a lock; reading is safe from any
thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import pykka

from .clients.base import StatusClient
from .config import PollingConfig
from .metrics import Metrics
from .store import JobStore


@dataclass
class Runtime:
    """The shared parts of one polling tree (built by the manager, read by every actor)."""

    config: PollingConfig
    store: JobStore
    client: StatusClient
    clock: Callable[[], float]
    schedule: Any = None
    throttle: Any = None
    metrics: Metrics = field(default_factory=Metrics)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _refs: dict[str, pykka.ActorRef] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.schedule is None:
            self.schedule = make_schedule(self.config)
        if self.throttle is None:
            from .throttle import ProfileThrottle

            self.throttle = ProfileThrottle(self.config)

    def set_ref(self, role: str, ref: pykka.ActorRef | None) -> None:
        """Publish the current actor for ``role`` (None: there is none now)."""
        with self._lock:
            if ref is None:
                self._refs.pop(role, None)
            else:
                self._refs[role] = ref

    def ref(self, role: str) -> pykka.ActorRef | None:
        """The current actor for ``role``, or None."""
        with self._lock:
            return self._refs.get(role)

    def tell(self, role: str, message: object) -> bool:
        """Tell the current ``role`` actor; False when there is none or it is dead."""
        ref = self.ref(role)
        if ref is None:
            return False
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            return False
        return True


def make_schedule(config: PollingConfig) -> Any:
    """The poll-time policy ``config.schedule`` names (see :mod:`actors.schedule`)."""
    if config.schedule == "adaptive":
        from .adaptive import AdaptiveSchedule

        return AdaptiveSchedule(config)
    from .schedule import ReferenceSchedule

    return ReferenceSchedule(config)
