"""Broadcaster: relays every StatusUpdate to every listener, and keeps the live picture.

Listeners are pykka ActorRefs (told each update) or plain callables, which the manager wraps
in a :class:`CallableListener` actor of their own so that a slow or raising callable never
holds up the others. A listener that has died is dropped on the next send. The broadcaster
keeps the latest update of every live job, rebuilt from the store when it starts, so a
listener registered late can be replayed the current state.

A terminal state is relayed once: the job's actor announces it after its write, and the
supervisor may announce the same row again when a store rescan finds it terminal before the
finished actor has exited. The broadcaster remembers which jobs it announced terminal (the
most recent ``_FINISHED_MEMORY`` of them) and drops a repeat; a non-terminal update (a retry)
makes the job announceable again.

Every method runs on the broadcaster's actor thread, except ``__init__`` (the supervisor's)
and :class:`CallableListener`, which runs on its own thread.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import pykka
import structlog

from .base import SupervisedActor
from .messages import Alert, StatusUpdate, _Publish
from .runtime import Runtime

log = structlog.get_logger("actors.broadcaster")

#: How many terminal announcements are remembered to drop repeats (about 100 bytes each).
_FINISHED_MEMORY = 100_000


@dataclass(frozen=True)
class Registration:
    """One listener: its ref, whether it gets alerts, and the callable it wraps (if any)."""

    ref: pykka.ActorRef
    alerts: bool = False
    target: Any = None


@dataclass(frozen=True, slots=True)
class _AddListener:
    registration: Registration
    replay: bool


@dataclass(frozen=True, slots=True)
class _RemoveListener:
    ref: pykka.ActorRef


@dataclass(frozen=True, slots=True)
class _ListenerCount:
    pass


class Broadcaster(SupervisedActor):
    """Fans status updates and alerts out to the registered listeners."""

    role = "broadcaster"

    def __init__(self, runtime: Runtime, registrations: list[Registration]) -> None:
        super().__init__(runtime)
        self._listeners: list[Registration] = list(registrations)
        self._latest: dict[str, StatusUpdate] = {}
        self._finished: OrderedDict[str, str] = OrderedDict()

    def setup(self) -> None:
        for record in self.runtime.store.live_jobs():
            self._latest[record.job_id] = record.to_update()
        self.runtime.set_ref("broadcaster", self.actor_ref)

    def teardown(self, crashed: bool) -> None:
        if self.runtime.ref("broadcaster") == self.actor_ref:
            self.runtime.set_ref("broadcaster", None)

    def handle(self, message: Any) -> Any:
        if isinstance(message, _Publish):
            update = message.update
            if update.terminal:
                self._latest.pop(update.job_id, None)
                if self._finished.get(update.job_id) == update.status:
                    self.runtime.metrics.incr("repeats_dropped")
                    log.debug("terminal_repeat_dropped", job_id=update.job_id, status=update.status)
                    return None
                self._finished[update.job_id] = update.status
                self._finished.move_to_end(update.job_id)
                if len(self._finished) > _FINISHED_MEMORY:
                    self._finished.popitem(last=False)
            else:
                self._latest[update.job_id] = update
                self._finished.pop(update.job_id, None)
            if message.relay:
                self._send(update, alerts_only=False)
        elif isinstance(message, Alert):
            log.warning("alert", alert=message.kind, message=message.message)
            self._send(message, alerts_only=True)
        elif isinstance(message, _AddListener):
            self._listeners = [r for r in self._listeners if r.ref != message.registration.ref]
            self._listeners.append(message.registration)
            if message.replay:
                for update in sorted(self._latest.values(), key=lambda u: (u.updated_at, u.job_id)):
                    self._tell(message.registration, update)
            return len(self._listeners)
        elif isinstance(message, _RemoveListener):
            before = len(self._listeners)
            self._listeners = [r for r in self._listeners if r.ref != message.ref]
            return before != len(self._listeners)
        elif isinstance(message, _ListenerCount):
            return len(self._listeners)
        else:
            return super().handle(message)
        return None

    def _send(self, message: Any, *, alerts_only: bool) -> None:
        dead = [r for r in self._listeners if (r.alerts or not alerts_only) and not self._tell(r, message)]
        if dead:
            self._listeners = [r for r in self._listeners if r not in dead]
            self.runtime.metrics.incr("listeners_dropped", len(dead))
            log.info("listeners_dropped", count=len(dead))

    @staticmethod
    def _tell(registration: Registration, message: Any) -> bool:
        try:
            registration.ref.tell(message)
        except pykka.ActorDeadError:
            return False
        return True


class CallableListener(pykka.ThreadingActor):
    """Wraps a host callable as a listener; runs it on this actor's own thread.

    Whatever the callable raises is logged and swallowed (a ``BaseException`` included: it
    must not stop every actor in the process).
    """

    def __init__(self, callback: Callable[[Any], Any]) -> None:
        super().__init__()
        self.callback = callback

    def on_receive(self, message: Any) -> Any:
        try:
            self.callback(message)
        except BaseException as exc:  # noqa: BLE001 - a host callback must never kill the tree
            log.warning(
                "listener_raised",
                job_id=getattr(message, "job_id", None),
                error=f"{type(exc).__name__}: {exc}",
            )
        return None
