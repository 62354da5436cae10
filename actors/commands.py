"""The offline commands: ``add``, ``status``, ``retry`` and ``cancel``.

They start no tree: each opens the job store, does its work, and closes it. A running
``serve`` on the same database notices the changes on its next rescan of the store (every
``rescan_interval`` seconds): it adopts added or retried rows and retires cancelled ones.

Every failure a user can cause raises :class:`CommandError`, which carries the exit code
the command line returns (see :data:`EXIT_CODES`).
"""

from __future__ import annotations

import csv
import json
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Iterator, TextIO

from .config import PollingConfig
from .errors import ConfigurationError, InvalidJobError, JobConflictError, StoreError
from .messages import FAILED, PENDING
from .validation import check_job
from .store import JobRecord, JobStore

EXIT_OK = 0
EXIT_OTHER = 1
EXIT_USAGE = 2
EXIT_DATABASE = 3
EXIT_UNKNOWN_JOB = 4

#: What each exit code of ``python -m actors`` means.
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_OTHER: "another failure (e.g. retrying a job that is not failed)",
    EXIT_USAGE: "bad usage or configuration (bad URL, missing key, invalid job)",
    EXIT_DATABASE: "the database is unreachable",
    EXIT_UNKNOWN_JOB: "no such job",
}

_FIELDS = ("job_id", "prompt_id", "kind", "profile_id", "operation_name", "scene_id")


class CommandError(Exception):
    """A failure to report as one line on stderr with exit code ``code``."""

    def __init__(self, message: str, code: int = EXIT_OTHER) -> None:
        super().__init__(message)
        self.code = code


@contextmanager
def open_store(database: str, *, must_exist: bool = False) -> Iterator[JobStore]:
    """Open the job store at ``database`` for one command, and close it afterwards.

    ``must_exist`` refuses a SQLite file that does not exist yet (reading commands must not
    create an empty database by mistake). Raises :class:`CommandError` with exit code 2 for a
    bad URL and 3 for an unreachable database.
    """
    if must_exist and isinstance(database, str) and database.startswith("sqlite:") and ":///" in database:
        path = database.split(":///", 1)[1]
        if path and not path.startswith("file:") and path != ":memory:" and not os.path.exists(path):
            raise CommandError(f"no database at {path}", EXIT_DATABASE)
    try:
        store = JobStore(database)
    except ConfigurationError as exc:
        raise CommandError(f"bad database URL: {exc}", EXIT_USAGE) from exc
    try:
        store.open()
    except StoreError as exc:
        raise CommandError(f"database unreachable: {_cause(exc)}", EXIT_DATABASE) from exc
    try:
        yield store
    except StoreError as exc:
        raise CommandError(f"database error: {_cause(exc)}", EXIT_DATABASE) from exc
    finally:
        store.close()


def _cause(exc: BaseException) -> str:
    """One line saying what the driver said (first line only)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# -- add -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewJob:
    """One job to add, as given on the command line or in a file."""

    job_id: str
    prompt_id: str
    kind: str
    profile_id: str
    operation_name: str
    scene_id: str | None = None


def validate_job(fields: dict[str, Any]) -> NewJob:
    """Check one job the way the manager does; raises :class:`InvalidJobError`."""
    unknown = sorted(set(fields) - set(_FIELDS))
    if unknown:
        raise InvalidJobError(f"unknown field(s): {', '.join(unknown)}")
    values = {name: fields.get(name) for name in _FIELDS}
    if values["profile_id"] in (None, ""):
        values["profile_id"] = "default"
    if values["scene_id"] == "":
        values["scene_id"] = None
    check_job(**values)
    return NewJob(**values)


def read_jobs_file(stream: TextIO, fmt: str) -> list[NewJob]:
    """Read and validate every job of a JSON-lines (``jsonl``) or CSV (``csv``) file.

    Nothing is returned unless every row is valid: the first bad row raises
    :class:`InvalidJobError` naming its line. A job id given twice is refused too.
    """
    jobs: list[NewJob] = []
    rows: Iterable[tuple[int, Any]]
    if fmt == "jsonl":
        rows = _jsonl_rows(stream)
    elif fmt == "csv":
        reader = csv.DictReader(stream)
        if reader.fieldnames is None:
            return []
        rows = ((reader.line_num, {k: v for k, v in row.items() if k is not None}) for row in reader)
    else:
        raise ConfigurationError(f"unknown file format {fmt!r}: use jsonl or csv")
    seen: set[str] = set()
    for line, row in rows:
        if not isinstance(row, dict):
            raise InvalidJobError(f"line {line}: expected an object with the job's fields")
        try:
            job = validate_job(row)
        except InvalidJobError as exc:
            raise InvalidJobError(f"line {line}: {exc}") from exc
        if job.job_id in seen:
            raise InvalidJobError(f"line {line}: job id {job.job_id!r} is given twice")
        seen.add(job.job_id)
        jobs.append(job)
    return jobs


def _jsonl_rows(stream: TextIO) -> Iterator[tuple[int, Any]]:
    for number, text in enumerate(stream, start=1):
        if not text.strip():
            continue
        try:
            yield number, json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidJobError(f"line {number}: not JSON ({exc.msg})") from exc


def guess_format(path: str) -> str:
    """``csv`` for a ``.csv`` file, ``jsonl`` otherwise."""
    return "csv" if path.lower().endswith(".csv") else "jsonl"


def add_jobs(store: JobStore, jobs: list[NewJob], *, config: PollingConfig | None = None, now: float | None = None) -> tuple[int, int]:
    """Insert validated jobs as pending rows due now; returns ``(added, already_known)``.

    All or nothing for conflicts: when any job id is already stored with another context,
    :class:`JobConflictError` is raised before anything is written.
    """
    config = config or PollingConfig()
    now = time.time() if now is None else now
    records = [
        JobRecord(
            job_id=job.job_id, kind=job.kind, prompt_id=job.prompt_id, profile_id=job.profile_id,
            operation_name=job.operation_name, scene_id=job.scene_id, status=PENDING, attempts=0,
            backoff=config.initial_backoff, next_due_at=now, video_url=None, video_uris=(),
            error=None, not_found_streak=0, created_at=now, updated_at=now,
        )
        for job in jobs
    ]
    for record in records:
        existing = store.get(record.job_id)
        if existing is not None and existing.context() != record.context():
            raise JobConflictError(f"job {record.job_id!r} is already known with a different context")
    futures = [store.insert_job(record) for record in records]
    added = sum(1 for future in futures if future.result(timeout=60)[0])
    return added, len(records) - added


# -- retry and cancel ----------------------------------------------------------------------


def retry_job(store: JobStore, job_id: str, *, config: PollingConfig | None = None) -> JobRecord:
    """Put a failed job back to pending, due now; returns the stored row.

    Raises :class:`CommandError` (exit 4) for an unknown job, (exit 1) for one not failed.
    """
    config = config or PollingConfig()
    record = store.get(job_id)
    if record is None:
        raise CommandError(f"no job {job_id!r} in this database", EXIT_UNKNOWN_JOB)
    if record.status != FAILED:
        raise CommandError(f"job {job_id!r} is {record.status}: only failed jobs can be retried", EXIT_OTHER)
    if not store.reset_job(job_id, next_due_at=time.time(), backoff=config.initial_backoff).result(timeout=60):
        raise CommandError(f"job {job_id!r} changed meanwhile and was not retried", EXIT_OTHER)
    return store.get(job_id)


def cancel_job(store: JobStore, job_id: str, reason: str = "cancelled") -> JobRecord:
    """Fail a live job with ``reason``; returns the stored row.

    Raises :class:`CommandError` (exit 4) for an unknown job, (exit 1) for a finished one.
    """
    record = store.get(job_id)
    if record is None:
        raise CommandError(f"no job {job_id!r} in this database", EXIT_UNKNOWN_JOB)
    if not record.live:
        raise CommandError(f"job {job_id!r} is already {record.status}: nothing to cancel", EXIT_OTHER)
    if not store.cancel_job(job_id, reason).result(timeout=60):
        raise CommandError(f"job {job_id!r} finished meanwhile and was not cancelled", EXIT_OTHER)
    return store.get(job_id)


# -- status --------------------------------------------------------------------------------


def record_to_json(record: JobRecord) -> dict[str, Any]:
    """A job row as a JSON-ready dict (what ``status --json`` prints)."""
    data = asdict(record)
    data["video_uris"] = list(record.video_uris)
    return data
