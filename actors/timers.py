"""Timers for actors: pykka has none, so these threads tell actors when time has passed.

A :class:`Ticker` runs on its own daemon thread and tells its actor a message every
``interval`` seconds, skipping a beat when the previous one has not been handled yet (a slow
actor never builds a backlog of ticks). It ends when stopped or when its actor is dead.
"""

from __future__ import annotations

import threading
from typing import Any

import pykka


class Ticker:
    """Tells ``ref`` the same ``message`` every ``interval`` seconds (runs its own thread)."""

    def __init__(self, ref: pykka.ActorRef, interval: float, message: Any, *, name: str) -> None:
        self._ref = ref
        self._interval = interval
        self._message = message
        self._stop = threading.Event()
        self._handled = threading.Event()
        self._handled.set()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Ticker:
        """Start ticking (returns self)."""
        self._thread.start()
        return self

    def handled(self) -> None:
        """The actor calls this when it has handled a tick, so the next one may be sent."""
        self._handled.set()

    def stop(self) -> None:
        """Stop ticking; returns at once (the thread ends within one interval)."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if not self._handled.is_set():
                continue
            self._handled.clear()
            try:
                self._ref.tell(self._message)
            except pykka.ActorDeadError:
                return


def call_later(delay: float, ref: pykka.ActorRef, message: Any) -> threading.Timer:
    """Tell ``ref`` ``message`` after ``delay`` seconds (a dead actor is ignored)."""

    def fire() -> None:
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            pass

    timer = threading.Timer(delay, fire)
    timer.daemon = True
    timer.start()
    return timer
