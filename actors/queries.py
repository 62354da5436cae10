"""Read-only queries over the job table for the command line, the dashboard and the exporter.

Every function takes an opened :class:`~actors.store.JobStore` and reads on the calling
thread with a connection of its own (opened and closed here when the thread had none), the
way the store's own reads do. Driver errors become :class:`~actors.errors.StoreError`.
Nothing here writes.
"""

from __future__ import annotations

from typing import Any, Callable

import peewee

from .errors import StoreError
from .messages import COMPLETED, FAILED, KINDS, PENDING, PROCESSING
from .store import LIVE, JobRecord, JobStore

STATUSES = (PENDING, PROCESSING, COMPLETED, FAILED)


def _read(store: JobStore, fn: Callable[[], Any]) -> Any:
    db = store.database
    opened = db.is_closed()
    try:
        if opened:
            db.connect(reuse_if_open=True)
        return fn()
    except peewee.PeeweeException as exc:
        if not db.is_closed() and store.is_postgres:
            db.close()
        raise StoreError(f"database read failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if opened and not db.is_closed():
            db.close()


def count_by_status_and_kind(store: JobStore) -> dict[tuple[str, str], int]:
    """``(status, kind) -> count`` with every known status and kind present (zero when none)."""
    Job = store.Job

    def read() -> dict[tuple[str, str], int]:
        counts = {(status, kind): 0 for status in STATUSES for kind in KINDS}
        query = Job.select(Job.status, Job.kind, peewee.fn.COUNT(Job.job_id)).group_by(Job.status, Job.kind)
        for status, kind, n in query.tuples():
            counts[(status, kind)] = n
        return counts

    return _read(store, read)


def completed_since(store: JobStore, since: float) -> int:
    """How many jobs turned completed at or after ``since`` (by their ``updated_at``)."""
    Job = store.Job
    return _read(
        store,
        lambda: Job.select().where((Job.status == COMPLETED) & (Job.updated_at >= since)).count(),
    )


def finished_since(store: JobStore, since: float) -> int:
    """How many jobs turned terminal (completed or failed) at or after ``since``."""
    Job = store.Job
    return _read(
        store,
        lambda: Job.select().where(Job.status.in_([COMPLETED, FAILED]) & (Job.updated_at >= since)).count(),
    )


def oldest_live(store: JobStore, limit: int = 5) -> list[JobRecord]:
    """The live jobs waiting longest (oldest ``created_at`` first)."""
    Job = store.Job
    return _read(
        store,
        lambda: [
            store.to_record(row)
            for row in Job.select().where(Job.status.in_(LIVE)).order_by(Job.created_at, Job.job_id).limit(limit)
        ],
    )


def recently_updated(store: JobStore, limit: int = 8) -> list[JobRecord]:
    """The jobs whose rows changed last (newest ``updated_at`` first)."""
    Job = store.Job
    return _read(
        store,
        lambda: [
            store.to_record(row)
            for row in Job.select().order_by(Job.updated_at.desc(), Job.job_id).limit(limit)
        ],
    )


def select_jobs(
    store: JobStore,
    *,
    statuses: list[str] | None = None,
    kinds: list[str] | None = None,
    limit: int | None = None,
) -> list[JobRecord]:
    """Jobs filtered by status and kind, oldest first (at most ``limit`` when given)."""
    Job = store.Job

    def read() -> list[JobRecord]:
        query = Job.select().order_by(Job.created_at, Job.job_id)
        if statuses:
            query = query.where(Job.status.in_(statuses))
        if kinds:
            query = query.where(Job.kind.in_(kinds))
        if limit:
            query = query.limit(limit)
        return [store.to_record(row) for row in query]

    return _read(store, read)
