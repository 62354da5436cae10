"""JobActor: one job's state machine.

pending -> processing -> completed | failed. The actor counts attempts, keeps the backoff,
and reacts to each check's outcome. Every transition is written to the store (and the write
confirmed) before it is broadcast; a write that fails is not announced, and the job is
checked again later. A job that reaches a terminal state tells the poller to drop it and
stops itself.

Every method runs on the job's own actor thread, except ``__init__`` (the supervisor's).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import structlog

from .base import SupervisedActor
from .clients.base import OperationStatus
from .errors import (
    AuthError,
    OperationNotFoundError,
    PermanentApiError,
    RateLimitedError,
    StoreError,
)
from .messages import COMPLETED, Alert, FAILED, PROCESSING, _ApplyCheck, _Publish, _Reschedule, _Retire, _Track, _Untrack
from .runtime import Runtime
from .schedule import backoff_delay
from .store import JobRecord

log = structlog.get_logger("actors.job")

_DOWNLOAD_TRIES = 3


class JobActor(SupervisedActor):
    """Owns one live job: applies check outcomes, persists, announces, reschedules."""

    role = "job"

    def __init__(self, runtime: Runtime, record: JobRecord, *, announce: bool) -> None:
        super().__init__(runtime, key=record.job_id)
        self.record = record
        self._announce = announce
        self._download_failures = 0

    def setup(self) -> None:
        record = self.record
        self.runtime.tell("broadcaster", _Publish(record.to_update(), relay=self._announce))
        if self._announce:
            log.info("job_added", job_id=record.job_id, kind=record.kind, due_in=max(0.0, record.next_due_at - self.runtime.clock()))
        self.runtime.tell(
            "poller",
            _Track(record.job_id, record.operation_name, record.profile_id, record.next_due_at, self.actor_ref),
        )

    def teardown(self, crashed: bool) -> None:
        # A crashed job is restarted and tracked anew by its successor.
        self.runtime.tell("poller", _Untrack(self.record.job_id))

    def handle(self, message: Any) -> Any:
        if isinstance(message, _ApplyCheck):
            self._apply(message.outcome)
            return None
        if isinstance(message, _Retire):
            self._adopt_final_row()
            return None
        return super().handle(message)

    def _adopt_final_row(self) -> None:
        """The row was finished by someone else: announce what it says, once, and stop.

        Only this actor announces its job's terminal state, so no listener hears it twice.
        """
        row = self.runtime.store.get(self.record.job_id)
        if row is None or row.live:
            return
        if self.record.live:
            self.record = row
            self.runtime.tell("broadcaster", _Publish(row.to_update()))
            log.info("job_finished_elsewhere", job_id=row.job_id, status=row.status, error=row.error)
        self._finish()

    # -- the state machine ------------------------------------------------------------------

    def _apply(self, outcome: Any) -> None:
        config = self.runtime.config
        now = self.runtime.clock()
        old = self.record
        job_id = old.job_id
        if isinstance(outcome, (RateLimitedError, AuthError)):
            # The account is throttled or refused, not the job: no attempt is burned. The
            # shared throttle holds the profile; the poller checks again when it allows.
            if now - old.created_at < config.job_deadline:
                log.info("check_deferred", job_id=job_id, reason=type(outcome).__name__)
                self._reschedule(now)
                return
            outcome = None  # past its deadline: fall through and fail it

        attempts = old.attempts + 1
        changes: dict[str, Any] = {"attempts": attempts, "not_found_streak": 0, "last_checked_at": now}
        if isinstance(outcome, OperationStatus):
            if outcome.done:
                if outcome.succeeded:
                    changes.update(video_uris=outcome.video_uris, video_url=outcome.video_uris[0])
                    if self._download(outcome, changes):
                        changes["status"] = COMPLETED
                elif outcome.error is not None:
                    code = f" (code {outcome.error_code})" if outcome.error_code is not None else ""
                    changes.update(status=FAILED, error=f"{outcome.error}{code}")
                else:
                    changes.update(status=FAILED, error="operation finished without a video or an error")
        elif isinstance(outcome, OperationNotFoundError):
            streak = old.not_found_streak + 1
            changes["not_found_streak"] = streak
            if streak >= config.not_found_limit:
                changes.update(status=FAILED, error="operation not found or expired")
        elif isinstance(outcome, PermanentApiError):
            changes.update(status=FAILED, error=f"the API refused the check: {outcome}")
        else:
            log.warning("check_failed", job_id=job_id, attempt=attempts, error=type(outcome).__name__)

        if "status" not in changes:
            if now - old.created_at >= config.job_deadline:
                changes.update(status=FAILED, error=f"deadline exceeded: not done {config.job_deadline:g} s after it was added")
            elif attempts >= config.max_attempts:
                changes.update(status=FAILED, error=f"gave up after {attempts} attempts (max_attempts={config.max_attempts})")
            else:
                delay = max(0.0, self.runtime.schedule.next_delay(old.kind, old.created_at, attempts, now))
                changes.update(status=PROCESSING, backoff=delay, next_due_at=now + delay, pending_seen_at=now)
                log.info("poll_backoff", job_id=job_id, attempt=attempts, delay=delay)

        new = replace(old, updated_at=now, **changes)
        try:
            stored = self.runtime.store.save_progress(job_id, updated_at=now, **changes).result(
                timeout=max(config.ask_timeout, 30.0)
            )
        except (StoreError, TimeoutError) as exc:
            # Nothing is announced that is not stored: keep the old state, check again later.
            log.error("job_save_failed", job_id=job_id, error=str(exc))
            self.runtime.metrics.incr("store_errors")
            self.runtime.tell(
                "supervisor",
                Alert("store_failed", f"a job's state could not be saved: {exc}", {"job_id": job_id}, at=now),
            )
            self._reschedule(now + backoff_delay(old.attempts, config))
            return
        if not stored:
            # The row is terminal already (or gone): another writer decided. Stand down.
            self._adopt_final_row()
            self._finish()
            return
        self.record = new
        if new.status != old.status:
            self.runtime.tell("broadcaster", _Publish(new.to_update()))
        if new.live:
            self._reschedule(new.next_due_at)
            return
        metrics = self.runtime.metrics
        metrics.observe("job_duration", now - new.created_at)
        if new.status == COMPLETED:
            log.info("job_completed", job_id=job_id, attempts=attempts, waited=now - new.created_at)
            metrics.incr("jobs_completed")
            pending_seen_at = old.pending_seen_at or old.created_at
            self.runtime.schedule.observe(new.kind, new.created_at, pending_seen_at, now)
            if old.last_checked_at > 0:
                # The video was finished somewhere between the last two checks.
                metrics.observe("detection_delay_bound", now - old.last_checked_at)
        else:
            log.info("job_failed", job_id=job_id, attempts=attempts, error=new.error)
            self.runtime.metrics.incr("jobs_failed")
        self._finish()

    def _download(self, outcome: OperationStatus, changes: dict[str, Any]) -> bool:
        """Fetch the videos into ``download_dir`` if set; False to try again on a later check.

        A download that keeps failing never fails the job: after ``_DOWNLOAD_TRIES`` tries
        the job completes without a local copy (the URIs stay on the row).
        """
        directory = self.runtime.config.download_dir
        if directory is None:
            return True
        from .downloads import download_videos

        job_id = self.record.job_id
        try:
            paths = download_videos(
                self.runtime.client, outcome.video_uris, directory, job_id, self.record.profile_id
            )
        except PermanentApiError as exc:
            # Retrying will not help (no download support, too large, not https): keep the URIs.
            self.runtime.metrics.incr("download_failures")
            log.warning("download_skipped", job_id=job_id, error=type(exc).__name__)
            return True
        except Exception as exc:
            self._download_failures += 1
            self.runtime.metrics.incr("download_failures")
            log.warning("download_failed", job_id=job_id, tries=self._download_failures, error=type(exc).__name__)
            return self._download_failures >= _DOWNLOAD_TRIES
        changes["video_path"] = paths[0] if paths else None
        log.info("video_downloaded", job_id=job_id, files=len(paths))
        return True

    def _reschedule(self, due_at: float) -> None:
        if not self.runtime.tell("poller", _Reschedule(self.record.job_id, due_at)):
            log.debug("reschedule_unsent", job_id=self.record.job_id, reason="no poller now")

    def _finish(self) -> None:
        if self.stop_reason == "finished":
            return
        self.stop_reason = "finished"
        self.actor_ref.stop(block=False)
