"""CheckPool: the bounded set of threads that run status checks.

The poller decides *when* a job is checked; the pool runs the blocking HTTP call on one of
``max_in_flight`` daemon threads and tells the job's actor the outcome. The pool outlives
poller restarts, so it is the authority on which jobs are being checked right now: a job is
never checked twice at once, whichever poller asked.

When the client offers ``check_many`` (see :class:`~actors.clients.base.BatchStatusClient`),
the poller hands over several jobs of one profile at once and one call checks them all.

Each answer also feeds the shared :class:`~actors.throttle.ProfileThrottle`: a 429 pauses and
slows the profile, refused credentials hold it and raise an alert, a success speeds it up.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from .errors import AuthError, RateLimitedError, TransientApiError
from .messages import Alert, _ApplyCheck
from .runtime import Runtime

log = structlog.get_logger("actors.checks")


@dataclass(frozen=True, slots=True)
class CheckRequest:
    """One job to check: its id, operation, profile and the actor to tell."""

    job_id: str
    operation_name: str
    profile_id: str
    job_ref: pykka.ActorRef


class CheckPool:
    """Runs status checks in parallel, at most ``max_in_flight`` jobs at once."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Condition()
        self._in_flight: set[str] = set()
        self._accepting = True
        self.batching = callable(getattr(runtime.client, "check_many", None))
        self._threads = [
            threading.Thread(target=self._work, name=f"veo-check-{i}", daemon=True)
            for i in range(runtime.config.max_in_flight)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def capacity(self) -> int:
        """How many jobs may be in flight at once."""
        return len(self._threads)

    def in_flight(self) -> int:
        """How many jobs are being checked or wait for a thread now."""
        with self._lock:
            return len(self._in_flight)

    def is_checking(self, job_id: str) -> bool:
        """True while a check of ``job_id`` runs or waits for a thread."""
        with self._lock:
            return job_id in self._in_flight

    def submit(self, request: CheckRequest) -> bool:
        """Queue one check; False when that job is being checked or the pool is full/closed."""
        return self.submit_batch([request]) == 1

    def submit_batch(self, requests: list[CheckRequest]) -> int:
        """Queue checks of one profile as a single call (one per job without ``check_many``).

        Returns how many of ``requests`` (taken in order) were accepted.
        """
        accepted: list[CheckRequest] = []
        with self._lock:
            for request in requests:
                if not self._accepting or len(self._in_flight) >= len(self._threads):
                    break
                if request.job_id in self._in_flight:
                    continue
                self._in_flight.add(request.job_id)
                accepted.append(request)
        if self.batching and accepted:
            self._queue.put(accepted)
        else:
            for request in accepted:
                self._queue.put([request])
        return len(accepted)

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

    # -- check threads ---------------------------------------------------------------------

    def _work(self) -> None:
        """Runs on a check thread: one blocking call at a time."""
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            started = self._runtime.clock()
            try:
                outcomes = self._call(batch)
            except BaseException as exc:  # never let a check thread die
                outcomes = {r.job_id: _as_exception(exc) for r in batch}
            for request in batch:
                self._deliver(request, outcomes[request.job_id], started)

    def _call(self, batch: list[CheckRequest]) -> dict[str, Any]:
        client = self._runtime.client
        profile_id = batch[0].profile_id
        self._runtime.metrics.incr("api_calls")
        if len(batch) > 1 or self.batching:
            try:
                answers = client.check_many([r.operation_name for r in batch], profile_id=profile_id)
            except Exception as exc:
                answers = {r.operation_name: exc for r in batch}
            missing = TransientApiError("the batch answer did not mention this operation")
            return {r.job_id: answers.get(r.operation_name, missing) for r in batch}
        request = batch[0]
        try:
            return {request.job_id: client.check(request.operation_name, profile_id=profile_id)}
        except Exception as exc:
            return {request.job_id: exc}

    def _deliver(self, request: CheckRequest, outcome: Any, started: float) -> None:
        runtime = self._runtime
        try:
            self._account(request.profile_id, outcome)
            request.job_ref.tell(_ApplyCheck(outcome, started))
        except pykka.ActorDeadError:
            log.info("check_result_dropped", job_id=request.job_id, reason="job actor gone")
        except Exception:
            log.exception("check_delivery_failed", job_id=request.job_id)
        finally:
            with self._lock:
                self._in_flight.discard(request.job_id)
                self._lock.notify_all()
        runtime.metrics.incr("checks_done")

    def _account(self, profile_id: str, outcome: Any) -> None:
        runtime = self._runtime
        throttle = runtime.throttle
        if not isinstance(outcome, Exception):
            throttle.on_success(profile_id)
            return
        runtime.metrics.incr(f"api_errors.{type(outcome).__name__}")
        if isinstance(outcome, RateLimitedError):
            pause = throttle.on_rate_limited(profile_id, outcome.retry_after, runtime.clock())
            log.warning("profile_rate_limited", profile_id=profile_id, pause=pause)
        elif isinstance(outcome, AuthError):
            if throttle.on_auth_failed(profile_id, runtime.clock()):
                runtime.tell(
                    "supervisor",
                    Alert(
                        "credentials_refused",
                        f"the API refused the credentials of profile {profile_id!r}; its jobs "
                        "are paused until new credentials are supplied",
                        {"profile_id": profile_id, "status_code": outcome.status_code},
                        at=runtime.clock(),
                    ),
                )


def _as_exception(exc: BaseException) -> Exception:
    if isinstance(exc, Exception):
        return exc
    return RuntimeError(f"{type(exc).__name__} raised by the status client")
