"""CheckPool: the bounded set of threads that run status checks.

The poller decides *when* a job is checked; the pool runs the blocking HTTP call on one of
``max_in_flight`` daemon threads and tells the job's actor the outcome. The pool outlives
poller restarts, so it is the authority on which jobs are being checked right now: a job is
never checked twice at once, whichever poller asked.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

import pykka
import structlog

from .errors import AuthError, RateLimitedError
from .messages import _ApplyCheck, _ProfilePause
from .runtime import Runtime

log = structlog.get_logger("actors.checks")


class CheckPool:
    """Runs ``client.check`` calls in parallel, at most ``max_in_flight`` at once."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Condition()
        self._in_flight: set[str] = set()
        self._accepting = True
        self._threads = [
            threading.Thread(target=self._work, name=f"veo-check-{i}", daemon=True)
            for i in range(runtime.config.max_in_flight)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def capacity(self) -> int:
        """How many checks may run at once."""
        return len(self._threads)

    def in_flight(self) -> int:
        """How many checks are running or queued now."""
        with self._lock:
            return len(self._in_flight)

    def is_checking(self, job_id: str) -> bool:
        """True while a check of ``job_id`` runs or waits for a thread."""
        with self._lock:
            return job_id in self._in_flight

    def submit(self, job_id: str, operation_name: str, profile_id: str, job_ref: pykka.ActorRef) -> bool:
        """Queue a check; False when that job is already being checked or the pool is full/closed."""
        with self._lock:
            if (
                not self._accepting
                or job_id in self._in_flight
                or len(self._in_flight) >= len(self._threads)
            ):
                return False
            self._in_flight.add(job_id)
        self._queue.put((job_id, operation_name, profile_id, job_ref))
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Block until no check is in flight (True) or ``timeout`` passes (False)."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._in_flight, timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Refuse new checks, let running ones finish (up to ``timeout``), stop the threads."""
        with self._lock:
            self._accepting = False
        idle = self.wait_idle(timeout)
        for _ in self._threads:
            self._queue.put(None)
        return idle

    def _work(self) -> None:
        """Runs on a check thread: one blocking check at a time."""
        runtime = self._runtime
        while True:
            item = self._queue.get()
            if item is None:
                return
            job_id, operation_name, profile_id, job_ref = item
            started = runtime.clock()
            try:
                outcome: Any = runtime.client.check(operation_name, profile_id=profile_id)
            except Exception as exc:
                outcome = exc
            except BaseException as exc:  # never let a check thread die
                outcome = RuntimeError(f"{type(exc).__name__} raised by the status client")
            runtime.metrics.incr("api_calls")
            if isinstance(outcome, Exception):
                runtime.metrics.incr(f"api_errors.{type(outcome).__name__}")
            if isinstance(outcome, (RateLimitedError, AuthError)):
                retry_after = getattr(outcome, "retry_after", None)
                runtime.tell("poller", _ProfilePause(profile_id, retry_after, type(outcome).__name__))
            try:
                job_ref.tell(_ApplyCheck(outcome, started))
            except pykka.ActorDeadError:
                log.info("check_result_dropped", job_id=job_id, reason="job actor gone")
            finally:
                with self._lock:
                    self._in_flight.discard(job_id)
                    self._lock.notify_all()
