"""PollingManager: the host-facing, thread-safe handle on one polling tree.

It is not an actor. Any host thread may call it; every call waits at most
``config.ask_timeout`` for an actor or the store's writer and never waits on the network.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable

import peewee
import pykka
import structlog

from .broadcaster import CallableListener, Registration
from .clients.base import StatusClient
from .config import PollingConfig
from .errors import ConfigurationError, InvalidJobError, NotRunningError, PollingError, StoreError
from .messages import COMPLETED, PENDING
from .runtime import Runtime
from .store import JobRecord, JobStore
from .validation import check_id, check_job
from .supervisor import Supervisor, _AddJob, _LiveJobs, _Register, _RetireJob, _Shutdown, _Unregister

log = structlog.get_logger("actors.manager")

class PollingManager:
    """Starts, feeds and stops one supervision tree (call from any host thread)."""

    def __init__(
        self,
        database: str | peewee.Database = "sqlite:///veo3-jobs.db",
        client: StatusClient | None = None,
        config: PollingConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if client is None or not callable(getattr(client, "check", None)):
            raise ConfigurationError("client must be a StatusClient (an object with .check())")
        if config is not None and not isinstance(config, PollingConfig):
            raise ConfigurationError("config must be a PollingConfig")
        self.config = config or PollingConfig()
        self.client = client
        self.store = JobStore(database, clock=clock)
        self.runtime = Runtime(self.config, self.store, client, clock)
        self._supervisor: pykka.ActorRef | None = None
        self._listeners: dict[int, tuple[Any, pykka.ActorRef]] = {}
        self._lock = threading.RLock()
        self._state = "new"
        self._early: list[tuple[Registration, bool]] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def initialize(self) -> PollingManager:
        """Open the store, start the tree and restore every pending job (idempotent)."""
        with self._lock:
            if self._state == "running":
                return self
            if self._state == "stopped":
                raise NotRunningError("this manager was shut down; create a new one")
            self.store.open()
            try:
                self.runtime.schedule.load(self.store.jobs([COMPLETED]))
                self._supervisor = Supervisor.start(self.runtime, tuple(self._early))
                self._early = []
            except Exception:
                self.store.close()
                raise
            self._state = "running"
            log.info("manager_started", live_jobs=len(self._live()))
            return self

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop polling, let checks in flight land, persist everything, stop every actor.

        Returns True when everything stopped cleanly within ``timeout`` seconds.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or math.isnan(timeout):
            raise ConfigurationError(f"timeout must be a number of seconds, got {timeout!r:.40}")
        timeout = min(max(float(timeout), 0.0), 86_400.0)  # longer waits overflow lock timers
        with self._lock:
            if self._state != "running":
                self._state = "stopped"
                for _, owned in self._listeners.values():
                    if owned is not None:
                        owned.stop(block=False)
                self._listeners, self._early = {}, []
                return True
            self._state = "stopped"
            supervisor, self._supervisor = self._supervisor, None
            listeners, self._listeners = list(self._listeners.values()), {}
        deadline = time.monotonic() + timeout
        clean = False
        try:
            clean = bool(supervisor.ask(_Shutdown(timeout), timeout=timeout + 1.0))
        except (pykka.Timeout, pykka.ActorDeadError) as exc:
            log.error("shutdown_incomplete", error=type(exc).__name__)
        try:
            supervisor.stop(block=True, timeout=max(0.1, deadline - time.monotonic()))
        except (pykka.Timeout, pykka.ActorDeadError):
            clean = False
        for _, ref in listeners:
            if ref is not None:
                try:
                    ref.stop(block=False)
                except pykka.ActorDeadError:
                    pass
        self.store.close(timeout=max(0.1, deadline - time.monotonic()))
        try:
            self.client.close()
        except Exception:
            log.warning("client_close_failed")
        log.info("manager_stopped", clean=clean)
        return clean

    def __enter__(self) -> PollingManager:
        return self.initialize()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    # -- jobs -----------------------------------------------------------------------------------

    def add_to_polling(
        self,
        job_id: str,
        prompt_id: str,
        kind: str,
        profile_id: str,
        operation_name: str,
        scene_id: str | None = None,
    ) -> bool:
        """Store a job and start polling it. Returns False when it was already known.

        Raises :class:`InvalidJobError` for bad input and :class:`JobConflictError` when the id
        is known with a different context; in both cases nothing is stored.
        """
        check_job(job_id, prompt_id, kind, profile_id, operation_name, scene_id)
        supervisor = self._running()
        now = self.runtime.clock()
        first_due = now + self.runtime.schedule.next_delay(kind, now, 0, now)
        record = JobRecord(
            job_id=job_id, kind=kind, prompt_id=prompt_id, profile_id=profile_id,
            operation_name=operation_name, scene_id=scene_id, status=PENDING, attempts=0,
            backoff=first_due - now, next_due_at=first_due,
            video_url=None, video_uris=(), error=None, not_found_streak=0,
            created_at=now, updated_at=now,
        )
        created, stored = self._wait(self.store.insert_job(record))
        if stored.live:
            self._ask(supervisor, _AddJob(stored, announce=created))
        return created

    def retry(self, job_id: str) -> bool:
        """Put a failed job back to pending and poll it again; False if it is not failed."""
        check_id("job_id", job_id)
        supervisor = self._running()
        now = self.runtime.clock()
        reset = self.store.reset_job(
            job_id, next_due_at=now + self.config.initial_backoff, backoff=self.config.initial_backoff
        )
        if not self._wait(reset):
            return False
        record = self.store.get(job_id)
        if record is not None and record.live:
            self._ask(supervisor, _AddJob(record, announce=True))
        return True

    def cancel(self, job_id: str, reason: str = "cancelled") -> bool:
        """Fail a live job with ``reason`` and stop polling it; False if it is not live."""
        check_id("job_id", job_id)
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidJobError("reason must be a non-empty string")
        supervisor = self._running()
        if not self._wait(self.store.cancel_job(job_id, reason)):
            return False
        self._ask(supervisor, _RetireJob(job_id))
        return True

    def update_credentials(self, profile_id: str, secret: str) -> None:
        """Give a profile new credentials and resume its paused jobs.

        Works with clients whose ``credentials`` provider has a ``set`` method (the bundled
        clients do); other providers should be updated by the host, then call
        :meth:`resume_profile`.
        """
        check_id("profile_id", profile_id)
        if not isinstance(secret, str) or not secret:
            raise ConfigurationError("the new credentials must be a non-empty string")
        provider = getattr(self.client, "credentials", None)
        if provider is None or not callable(getattr(provider, "set", None)):
            raise ConfigurationError("this client's credentials cannot be replaced; update them and call resume_profile()")
        provider.set(profile_id, secret)
        self.resume_profile(profile_id)

    def resume_profile(self, profile_id: str) -> bool:
        """Lift a profile's hold (refused credentials) or pause; True if it was held or paused."""
        check_id("profile_id", profile_id)
        resumed = self.runtime.throttle.resume(profile_id)
        if resumed:
            log.info("profile_resumed", profile_id=profile_id)
        return resumed

    def get_job(self, job_id: str) -> JobRecord | None:
        """The job as stored now, or None when the id is unknown."""
        if not isinstance(job_id, str):
            raise InvalidJobError(f"job_id must be a string, got {type(job_id).__name__}")
        return self.store.get(job_id)

    def stats(self) -> dict[str, Any]:
        """Counts by status (from the store) and the tree's counters and gauges."""
        result: dict[str, Any] = dict(self.store.count_by_status())
        result.update(self.runtime.metrics.snapshot())
        for name in ("api_calls", "poller_restarts", "job_restarts", "alerts"):
            result.setdefault(name, 0)
        result["live_actors"] = len(self._live()) if self._state == "running" else 0
        result["profiles"] = self.runtime.throttle.snapshot()
        return result

    # -- listeners ------------------------------------------------------------------------------

    def add_listener(self, listener: Any, replay: bool = False, *, alerts: bool = False) -> None:
        """Register a pykka ActorRef (told every update) or a callable (called with each).

        ``replay`` first sends the current state of every live job; ``alerts`` also sends
        :class:`~actors.messages.Alert` messages. A listener added before :meth:`initialize`
        hears everything from the start (with ``replay``, every job the store restores).
        """
        with self._lock:
            early = self._state == "new"
        supervisor = None if early else self._running()
        if isinstance(listener, pykka.ActorRef):
            ref, owned = listener, None
        elif callable(listener):
            ref = owned = CallableListener.start(listener)
        else:
            raise ConfigurationError("a listener must be a pykka ActorRef or a callable")
        with self._lock:
            previous = self._listeners.get(id(listener))
            self._listeners[id(listener)] = (listener, owned)
            if early:
                self._early = [e for e in self._early if e[0].target is not listener]
                self._early.append((Registration(ref, alerts, listener), replay))
        if early:
            if previous is not None and previous[1] is not None:
                previous[1].stop(block=False)
            return
        try:
            self._ask(supervisor, _Register(Registration(ref, alerts, listener), replay))
        except PollingError:
            if owned is not None:
                owned.stop(block=False)
            raise
        if previous is not None and previous[1] is not None:
            self._ask(supervisor, _Unregister(previous[1]))
            previous[1].stop(block=False)

    def remove_listener(self, listener: Any) -> bool:
        """Stop relaying to ``listener``; returns False when it was not registered."""
        with self._lock:
            if self._state == "new":
                entry = self._listeners.pop(id(listener), None)
                self._early = [e for e in self._early if e[0].target is not listener]
                if entry is not None and entry[1] is not None:
                    entry[1].stop(block=False)
                return entry is not None
        supervisor = self._running()
        with self._lock:
            entry = self._listeners.pop(id(listener), None)
        if entry is None:
            return False
        ref = entry[1] if entry[1] is not None else listener
        self._ask(supervisor, _Unregister(ref))
        if entry[1] is not None:
            entry[1].stop(block=False)
        return True

    # -- tools -----------------------------------------------------------------------------------

    def poller_ref(self) -> pykka.ActorRef | None:
        """The current poller's ActorRef (it changes on every restart; None while restarting)."""
        self._running()
        return self.runtime.ref("poller")

    def live_jobs(self) -> dict[str, str]:
        """job id -> urn of the actor that owns it (for tests and tools)."""
        return self._live()

    def _live(self) -> dict[str, str]:
        return self._ask(self._running(), _LiveJobs())

    def _running(self) -> pykka.ActorRef:
        supervisor = self._supervisor
        if self._state != "running" or supervisor is None:
            raise NotRunningError("the manager is not running: call initialize() first")
        return supervisor

    def _ask(self, ref: pykka.ActorRef, message: Any) -> Any:
        try:
            return ref.ask(message, timeout=self.config.ask_timeout)
        except pykka.Timeout as exc:
            raise NotRunningError(f"the tree did not answer within {self.config.ask_timeout:g} s") from exc
        except pykka.ActorDeadError as exc:
            raise NotRunningError("the tree is not running") from exc

    def _wait(self, future: Any) -> Any:
        try:
            return future.result(timeout=max(self.config.ask_timeout, 30.0))
        except TimeoutError as exc:
            raise StoreError("the database did not answer in time") from exc
