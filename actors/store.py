"""JobStore: the only code that touches the database.

One table of jobs, kept with peewee. SQLite (WAL, busy timeout) is the embedded default;
the same code runs on PostgreSQL so several processes can share one job table.

Threads: every write goes through one writer thread (callers get a
:class:`concurrent.futures.Future`), so SQLite never sees two writers of ours at once; the
queue is drained on :meth:`JobStore.close` and a caller after that gets :class:`StoreError`,
never a hang. Reads run on the calling thread with its own connection (peewee keeps one per
thread). Driver errors are translated into :class:`StoreError` here, once, kept on
``__cause__``; a full database or disk is a :class:`StoreFullError` (nothing of the failed
write is kept: its transaction is rolled back). Terminal writes are fenced: a completed or
failed row never changes again.

Faults the writer rides out: a SQLite write lock held elsewhere (retried for up to
``_WRITE_RETRY_FOR`` seconds), and a dropped PostgreSQL connection (reconnected, the write
run again). Reads on a thread without a connection open one for the call and close it.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import peewee
import structlog
from playhouse.db_url import connect as connect_url

from .errors import ConfigurationError, InvalidJobError, JobConflictError, StoreError, StoreFullError
from .messages import COMPLETED, FAILED, PENDING, PROCESSING, StatusUpdate

log = structlog.get_logger("actors.store")

LIVE = (PENDING, PROCESSING)
_CONTEXT = ("kind", "prompt_id", "profile_id", "operation_name", "scene_id")
_GROUP_MAX = 256  # writes committed together at most
_WRITE_RETRY_FOR = 120.0  # seconds a locked SQLite database is waited for before failing


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job row, as read from the store."""

    job_id: str
    kind: str
    prompt_id: str
    profile_id: str
    operation_name: str
    scene_id: str | None
    status: str
    attempts: int
    backoff: float
    next_due_at: float
    video_url: str | None
    video_uris: tuple[str, ...]
    error: str | None
    not_found_streak: int
    created_at: float
    updated_at: float
    last_checked_at: float = 0.0
    video_path: str | None = None
    pending_seen_at: float = 0.0

    @property
    def live(self) -> bool:
        """True while the job is pending or processing."""
        return self.status in LIVE

    def context(self) -> tuple:
        """What identifies the job's work: adding it again must give the same context."""
        return tuple(getattr(self, name) for name in _CONTEXT)

    def to_update(self) -> StatusUpdate:
        """The record as the update listeners receive."""
        return StatusUpdate(
            job_id=self.job_id,
            kind=self.kind,
            status=self.status,
            attempts=self.attempts,
            video_url=self.video_url,
            error=self.error,
            prompt_id=self.prompt_id,
            profile_id=self.profile_id,
            operation_name=self.operation_name,
            scene_id=self.scene_id,
            updated_at=self.updated_at,
            video_uris=self.video_uris,
            video_path=self.video_path,
        )


class _JobRow(peewee.Model):
    job_id = peewee.CharField(primary_key=True, max_length=255)
    kind = peewee.CharField(max_length=32)
    prompt_id = peewee.CharField(max_length=255)
    profile_id = peewee.CharField(max_length=255)
    operation_name = peewee.CharField(max_length=512)
    scene_id = peewee.CharField(max_length=255, null=True)
    status = peewee.CharField(max_length=16, index=True)
    attempts = peewee.IntegerField(default=0)
    backoff = peewee.FloatField(default=0.0)
    next_due_at = peewee.DoubleField(default=0.0)
    video_url = peewee.TextField(null=True)
    video_uris = peewee.TextField(default="[]")
    error = peewee.TextField(null=True)
    not_found_streak = peewee.IntegerField(default=0)
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()
    last_checked_at = peewee.DoubleField(default=0.0)
    video_path = peewee.TextField(null=True)
    pending_seen_at = peewee.DoubleField(default=0.0)

    class Meta:
        table_name = "veo_jobs"


def open_database(database: str | peewee.Database) -> peewee.Database:
    """A peewee Database from a URL (``sqlite:///path``, ``postgresql://...``) or as given."""
    if isinstance(database, peewee.Database):
        return database
    if not isinstance(database, str) or not database.strip():
        raise ConfigurationError("database must be a database URL or a peewee Database")
    if database.startswith("sqlite:"):
        path = database.split(":///", 1)[1] if ":///" in database else ""
        if not path or path == ":memory:" or path.startswith("file::memory:"):
            raise ConfigurationError(
                "an in-memory SQLite database cannot be shared between threads: "
                "give a file, e.g. sqlite:///veo3-jobs.db"
            )
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise ConfigurationError(f"the database's directory does not exist: {directory}")
        return peewee.SqliteDatabase(
            path,
            pragmas={"journal_mode": "wal", "busy_timeout": 5000, "synchronous": "normal"},
            timeout=5,
        )
    try:
        return connect_url(database)
    except Exception as exc:  # an unknown scheme or a malformed URL
        raise ConfigurationError(f"unsupported database URL scheme: {database.split(':', 1)[0]!r}") from exc


def _unstorable(exc: Exception) -> InvalidJobError:
    """A value the driver cannot send (a lone surrogate; NUL on PostgreSQL): the caller's input."""
    return InvalidJobError(f"the database cannot hold a value given: {type(exc).__name__}: {exc}"[:300])


def _chain_text(exc: BaseException) -> str:
    """The messages of ``exc`` and of the errors it arose from, lowercased.

    SQLite rolls a transaction back itself on some errors (a full database): peewee's own
    ROLLBACK then fails with "no transaction is active", which hides the real cause in
    ``__context__``.
    """
    texts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        texts.append(str(exc).lower())
        exc = exc.__cause__ or exc.__context__
    return " | ".join(texts)


def _is_locked(exc: BaseException) -> bool:
    text = _chain_text(exc)
    return "locked" in text or "busy" in text


def _is_full(exc: BaseException) -> bool:
    text = _chain_text(exc)
    return "database or disk is full" in text or "disk full" in text or "no space left" in text


class JobStore:
    """The job table, behind one small set of calls (any thread may call them)."""

    def __init__(self, database: str | peewee.Database, *, clock: Callable[[], float] = time.time):
        self._db = open_database(database)
        self._clock = clock
        self.Job = self._bound_model()
        self._queue: queue.Queue = queue.Queue()
        self._closed = threading.Event()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def database(self) -> peewee.Database:
        """The peewee Database this store writes to."""
        return self._db

    @property
    def is_postgres(self) -> bool:
        """True when the table lives in PostgreSQL."""
        return isinstance(self._db, peewee.PostgresqlDatabase)

    def _bound_model(self) -> type[_JobRow]:
        db = self._db

        class Job(_JobRow):
            class Meta:
                database = db
                table_name = "veo_jobs"

        return Job

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Create the table if needed and start the writer thread (idempotent)."""
        with self._lock:
            if self._writer is not None:
                return
            try:
                with self._db.connection_context():
                    self._db.create_tables([self.Job], safe=True)
            except peewee.PeeweeException as exc:
                raise StoreError(f"cannot open the job table: {type(exc).__name__}: {exc}") from exc
            self._closed.clear()
            self._writer = threading.Thread(target=self._write_loop, name="veo-store-writer", daemon=True)
            self._writer.start()

    def close(self, timeout: float = 10.0) -> None:
        """Finish every queued write, stop the writer, close this thread's connection."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            self._closed.set()
            self._queue.put(None)
            writer.join(timeout)
        self._fail_pending()
        if not self._db.is_closed():
            self._db.close()

    def _fail_pending(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[1].set_exception(StoreError("the job store is closed"))

    # -- the writer thread -----------------------------------------------------------------

    def _submit(self, fn: Callable[[], Any], *, group: bool = True) -> Future:
        future: Future = Future()
        if self._writer is None or self._closed.is_set():
            future.set_exception(StoreError("the job store is closed"))
            return future
        self._queue.put((fn, future, group))
        return future

    def _write_loop(self) -> None:
        """Runs on the writer thread: writes in submission order, committed in groups.

        Writes queued together share one transaction (each in its own savepoint, so one
        refused write does not undo the others): a commit per group, not per write, is what
        lets one writer keep up with hundreds of checks per second.
        """
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            while item[2] and len(batch) < _GROUP_MAX:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                if not item[2]:
                    self._run_group(batch)
                    batch = [item]
                    break
                batch.append(item)
            self._run_group(batch)
        if not self._db.is_closed():
            self._db.close()

    def _run_group(self, batch: list) -> None:
        batch = [(fn, future) for fn, future, _ in batch if future.set_running_or_notify_cancel()]
        if len(batch) > 1:
            try:
                outcomes = self._run_write(lambda: [self._in_savepoint(fn) for fn, _ in batch])
            except Exception:
                outcomes = None  # the group failed as a whole: run each alone, for its own answer
            if outcomes is not None:
                for (_, future), (ok, value) in zip(batch, outcomes):
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
                return
        for fn, future in batch:
            try:
                future.set_result(self._run_write(fn))
            except BaseException as exc:  # never let the writer die: the caller gets it
                future.set_exception(exc if isinstance(exc, Exception) else StoreError(repr(exc)))

    def _in_savepoint(self, fn: Callable[[], Any]) -> tuple[bool, Any]:
        """Run one write of a group; its own refusal is its answer, not the group's."""
        try:
            with self._db.atomic():
                return True, fn()
        except (InvalidJobError, StoreError) as exc:
            return False, exc
        except (UnicodeError, ValueError) as exc:
            return False, _unstorable(exc)

    def _run_write(self, fn: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + _WRITE_RETRY_FOR
        delay = 0.01
        reconnects = 0
        while True:
            try:
                with self._db.atomic():
                    return fn()
            except (InvalidJobError, StoreError):  # JobConflictError included
                raise
            except (UnicodeError, ValueError) as exc:
                raise _unstorable(exc) from exc
            except (peewee.OperationalError, peewee.InterfaceError) as exc:
                if _is_full(exc):
                    log.error("store_full", error=str(exc))
                    raise StoreFullError(
                        "the database or its disk is full: the write was rolled back"
                    ) from exc
                if _is_locked(exc) and time.monotonic() < deadline:
                    log.warning("store_locked_retry", delay=delay)
                    time.sleep(delay)  # the writer thread waits; nobody else is blocked
                    delay = min(delay * 2, 1.0)
                    continue
                if self.is_postgres and reconnects < 3:
                    reconnects += 1
                    log.warning("store_reconnect", attempt=reconnects, error=type(exc).__name__)
                    if not self._db.is_closed():
                        try:
                            self._db.close()
                        except peewee.PeeweeException:
                            pass
                    time.sleep(0.05 * reconnects)
                    continue
                raise StoreError(f"database write failed: {type(exc).__name__}: {exc}") from exc
            except peewee.PeeweeException as exc:
                raise StoreError(f"database write failed: {type(exc).__name__}: {exc}") from exc

    # -- writes (return futures) -----------------------------------------------------------

    def run_write(self, fn: Callable[[peewee.Database], Any]) -> Future:
        """Run ``fn(database)`` on the writer thread in a transaction (tools, tests, upkeep).

        The writer's connection is the one every write uses, so per-connection settings made
        here (e.g. SQLite's ``PRAGMA max_page_count``) apply to the store's own writes.
        """
        return self._submit(lambda: fn(self._db), group=False)

    def insert_job(self, record: JobRecord) -> Future:
        """Insert a new job; the future gives ``(created, existing_record)``.

        ``created`` is False when the job id was already stored with the same context (a
        no-op); a different context raises :class:`JobConflictError` and stores nothing.
        """

        def write() -> tuple[bool, JobRecord]:
            row = self.Job.get_or_none(self.Job.job_id == record.job_id)
            if row is not None:
                existing = self.to_record(row)
                if existing.context() != record.context():
                    raise JobConflictError(
                        f"job {record.job_id!r} is already known with a different context"
                    )
                return False, existing
            self.Job.insert(**self._row_values(record)).execute()
            return True, record

        return self._submit(write)

    def save_progress(self, job_id: str, **changes: Any) -> Future:
        """Update a live job's row; the future gives True, or False if it is terminal/gone.

        The fence (``status`` is still live) makes a terminal state final: a late or
        duplicate writer cannot overwrite it.
        """
        values = dict(changes)
        if "video_uris" in values:
            values["video_uris"] = json.dumps(list(values["video_uris"]))
        values.setdefault("updated_at", self._clock())

        def write() -> bool:
            query = self.Job.update(**values).where(
                (self.Job.job_id == job_id) & (self.Job.status.in_(LIVE))
            )
            return query.execute() == 1

        return self._submit(write)

    def reset_job(self, job_id: str, *, next_due_at: float, backoff: float) -> Future:
        """Put a failed job back to pending with no attempts (``retry``).

        The future gives True, or False when the job is unknown or not failed.
        """

        def write() -> bool:
            query = self.Job.update(
                status=PENDING, attempts=0, backoff=backoff, next_due_at=next_due_at,
                error=None, video_url=None, video_uris="[]", video_path=None,
                not_found_streak=0, updated_at=self._clock(),
            ).where((self.Job.job_id == job_id) & (self.Job.status == FAILED))
            return query.execute() == 1

        return self._submit(write)

    def cancel_job(self, job_id: str, reason: str = "cancelled") -> Future:
        """Fail a live job with ``reason`` (``cancel``); False when unknown or terminal."""
        return self.save_progress(job_id, status=FAILED, error=reason)

    # -- reads (run on the calling thread) --------------------------------------------------

    def _read(self, fn: Callable[[], Any]) -> Any:
        opened = self._db.is_closed()
        try:
            if opened:
                self._db.connect(reuse_if_open=True)
            return fn()
        except (UnicodeError, ValueError) as exc:
            raise _unstorable(exc) from exc
        except peewee.PeeweeException as exc:
            if not self._db.is_closed() and self.is_postgres:
                self._db.close()  # a dropped server connection: the next read reconnects
            raise StoreError(f"database read failed: {type(exc).__name__}: {exc}") from exc
        finally:
            if opened and not self._db.is_closed():
                self._db.close()

    def get(self, job_id: str) -> JobRecord | None:
        """The job's row, or None when it is not stored."""

        def read() -> JobRecord | None:
            row = self.Job.get_or_none(self.Job.job_id == job_id)
            return None if row is None else self.to_record(row)

        return self._read(read)

    def live_jobs(self) -> list[JobRecord]:
        """Every pending or processing job, soonest due first."""
        return self._read(
            lambda: [
                self.to_record(row)
                for row in self.Job.select()
                .where(self.Job.status.in_(LIVE))
                .order_by(self.Job.next_due_at, self.Job.job_id)
            ]
        )

    def live_job_ids(self) -> set[str]:
        """The ids of every pending or processing job (cheap: one column, no records)."""
        return self._read(
            lambda: {job_id for (job_id,) in self.Job.select(self.Job.job_id).where(self.Job.status.in_(LIVE)).tuples()}
        )

    def jobs(self, statuses: Iterable[str] | None = None) -> list[JobRecord]:
        """Every job (or those with the given statuses), oldest first."""

        def read() -> list[JobRecord]:
            query = self.Job.select().order_by(self.Job.created_at, self.Job.job_id)
            if statuses is not None:
                query = query.where(self.Job.status.in_(list(statuses)))
            return [self.to_record(row) for row in query]

        return self._read(read)

    def count_by_status(self) -> dict[str, int]:
        """How many jobs are in each status (every status present, zero when none)."""

        def read() -> dict[str, int]:
            counts = {PENDING: 0, PROCESSING: 0, COMPLETED: 0, FAILED: 0}
            query = self.Job.select(self.Job.status, peewee.fn.COUNT(self.Job.job_id).alias("n"))
            for row in query.group_by(self.Job.status).tuples():
                counts[row[0]] = row[1]
            return counts

        return self._read(read)

    # -- conversions -----------------------------------------------------------------------

    @staticmethod
    def to_record(row: _JobRow) -> JobRecord:
        """A row of ``store.Job`` as an immutable :class:`JobRecord`."""
        return JobRecord(
            job_id=row.job_id, kind=row.kind, prompt_id=row.prompt_id,
            profile_id=row.profile_id, operation_name=row.operation_name,
            scene_id=row.scene_id, status=row.status, attempts=row.attempts,
            backoff=row.backoff, next_due_at=row.next_due_at, video_url=row.video_url,
            video_uris=tuple(json.loads(row.video_uris or "[]")), error=row.error,
            not_found_streak=row.not_found_streak, created_at=row.created_at,
            updated_at=row.updated_at, last_checked_at=row.last_checked_at,
            video_path=row.video_path, pending_seen_at=row.pending_seen_at,
        )

    @staticmethod
    def _row_values(record: JobRecord) -> dict[str, Any]:
        values = {name: getattr(record, name) for name in JobRecord.__slots__}
        values["video_uris"] = json.dumps(list(record.video_uris))
        return values
