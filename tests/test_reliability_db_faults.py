"""Database faults: a held write lock, a full database, a dropped PostgreSQL connection.

Whatever the database does, nothing is announced before it is stored (a listener reads the
row back through a connection of its own as each update arrives), nothing is lost, and the
tree carries on when the fault passes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections import Counter

import peewee
import psycopg2
import pytest
import structlog

import actors
from actors.store import StoreFullError

from .conftest import POSTGRES_URL, TIME_SCALE, Recorder
from .reliability.configs import patient
from .reliability.figures import record_figure
from .test_store import _require_or_skip

BUSY_TIMEOUT_MS = 200
_RANK = {"pending": 0, "processing": 1, "completed": 2, "failed": 2}


class StoredFirstRecorder(Recorder):
    """A Recorder that checks, as each update arrives, that the store already holds it."""

    def __init__(self, read_status) -> None:
        super().__init__()
        self.read_status = read_status
        self.unstored: list[tuple[str, str, str | None]] = []

    def __call__(self, message) -> None:
        if isinstance(message, actors.StatusUpdate):
            stored = self.read_status(message.job_id)
            # The row may already be further on (the job moved while we read), never behind.
            if stored is None or _RANK[stored] < _RANK[message.status] or (
                message.terminal and stored != message.status
            ):
                self.unstored.append((message.job_id, message.status, stored))
        super().__call__(message)


def sqlite_status_reader(path: str):
    def read(job_id: str) -> str | None:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            row = conn.execute("SELECT status FROM veo_jobs WHERE job_id = ?", (job_id,)).fetchone()
            return None if row is None else row[0]
        finally:
            conn.close()

    return read


def short_busy_sqlite(path: str) -> peewee.SqliteDatabase:
    """The store's SQLite settings, with a busy timeout short enough to outlast in a test."""
    return peewee.SqliteDatabase(
        path, pragmas={"journal_mode": "wal", "busy_timeout": BUSY_TIMEOUT_MS, "synchronous": "normal"},
        timeout=BUSY_TIMEOUT_MS / 1000,
    )


def add_jobs(manager, sim, count: int, *, prefix: str, duration: float = 10_000.0) -> dict[str, str]:
    jobs = {}
    for i in range(count):
        jobs[f"{prefix}-{i}"] = sim.create_operation(duration=duration)
        manager.add_to_polling(f"{prefix}-{i}", "p", "generation", "acct", jobs[f"{prefix}-{i}"])
    return jobs


def test_updates_wait_for_a_write_lock_held_past_the_busy_timeout_and_land(make_manager, sim, tmp_path):
    path = str(tmp_path / "locked.db")
    manager = make_manager(database=short_busy_sqlite(path), config_=patient(TIME_SCALE))
    recorder = StoredFirstRecorder(sqlite_status_reader(path))
    manager.add_listener(recorder, alerts=True)
    jobs = add_jobs(manager, sim, 20, prefix="lock")
    assert recorder.wait_for(lambda r: sum(u.status == "processing" for u in r.updates) == 20)

    holder = sqlite3.connect(path, timeout=5, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held far past the busy timeout
    held_for = 8 * BUSY_TIMEOUT_MS / 1000
    added = {}
    with structlog.testing.capture_logs() as logs:
        for name in jobs.values():
            sim.finish_now(name)
        late_name = sim.create_operation(duration=20.0)
        adder = threading.Thread(
            target=lambda: added.setdefault("result", manager.add_to_polling("lock-late", "p", "upscale", "acct", late_name))
        )
        adder.start()
        locked_until = time.monotonic() + held_for
        while time.monotonic() < locked_until:
            assert recorder.terminal_count() == 0, "a completion was announced while it could not be stored"
            time.sleep(0.01)
        assert "result" not in added, "add_to_polling returned before its row could be written"
        holder.execute("COMMIT")
        holder.close()
        adder.join(30)
        assert added["result"] is True
        jobs["lock-late"] = late_name
        assert recorder.wait_for(lambda r: r.terminal_count() == len(jobs))
    assert any(e["event"] == "store_locked_retry" for e in logs), "the writer never met the lock"
    assert recorder.unstored == [], f"announced before stored: {recorder.unstored[:5]}"
    assert {u.job_id for u in recorder.updates if u.status == "completed"} == set(jobs)
    assert manager.stats()["completed"] == len(jobs)
    assert recorder.alerts == [] and manager.stats().get("store_errors", 0) == 0
    record_figure("db_faults", {"case": "write lock held past busy timeout", "held_s": held_for})


def test_a_full_database_gives_a_clear_error_and_an_alert_and_recovers_uncorrupted(make_manager, sim, tmp_path):
    path = str(tmp_path / "full.db")
    manager = make_manager(database=f"sqlite:///{path}", config_=patient(TIME_SCALE))
    store = manager.store
    recorder = StoredFirstRecorder(sqlite_status_reader(path))
    manager.add_listener(recorder, alerts=True)
    jobs = add_jobs(manager, sim, 30, prefix="full")
    assert recorder.wait_for(lambda r: sum(u.status == "processing" for u in r.updates) == 30)

    def fill(db) -> int:
        """Cap the file a few pages above its size, then fill it to the brim."""
        pages = db.execute_sql("PRAGMA page_count").fetchone()[0]
        db.execute_sql(f"PRAGMA max_page_count = {pages + 8}")
        db.execute_sql("CREATE TABLE IF NOT EXISTS ballast (pad BLOB)")
        return pages

    store.run_write(fill).result(10)
    for size in (2000, 200, 20):  # big rows first, then ever smaller ones into the gaps
        while True:
            try:
                store.run_write(lambda db, n=size: db.execute_sql("INSERT INTO ballast VALUES (zeroblob(?))", (n,))).result(10)
            except StoreFullError:
                break

    refused = None
    for i in range(200):  # the pages' last gaps may take a few more rows
        name = sim.create_operation(duration=10_000.0)
        try:
            manager.add_to_polling(f"more-{i}", "p", "generation", "acct", name)
        except actors.StoreError as exc:
            refused = (f"more-{i}", exc)
            break
    assert refused is not None, "the full database took 200 more jobs"
    assert isinstance(refused[1], StoreFullError) and "full" in str(refused[1])
    assert manager.get_job(refused[0]) is None and refused[0] not in manager.live_jobs()
    for name in jobs.values():
        sim.finish_now(name)  # completions now need room the database does not have
    assert recorder.wait_for(lambda r: any(a.kind == "store_failed" for a in r.alerts), timeout=20)
    assert manager.stats()["store_errors"] >= 1
    assert recorder.unstored == [], f"announced before stored: {recorder.unstored[:5]}"
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()

    store.run_write(lambda db: db.execute_sql("DROP TABLE ballast")).result(10)  # space returns
    assert recorder.wait_for(lambda r: {u.job_id for u in r.updates if u.status == "completed"} == set(jobs), timeout=30)
    late = add_jobs(manager, sim, 5, prefix="after", duration=20.0)
    assert recorder.wait_for(lambda r: set(late) <= set(r.terminal()))
    completed = Counter(u.job_id for u in recorder.updates if u.status == "completed")
    assert set(completed.values()) == {1}
    assert recorder.unstored == []
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()
    record_figure("db_faults", {"case": "database full", "store_errors": manager.stats()["store_errors"]})


@pytest.fixture
def postgres_schema():
    """A schema of our own, and connections we can single out to kill (other tests share the server)."""
    _require_or_skip()
    tag = f"veo_rel_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(POSTGRES_URL)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE SCHEMA {tag}")
    url = f"{POSTGRES_URL}?application_name={tag}&options=-csearch_path%3D{tag}"
    yield tag, url, admin
    admin.cursor().execute(f"DROP SCHEMA {tag} CASCADE")
    admin.close()


def terminate(admin, tag: str) -> int:
    cursor = admin.cursor()
    cursor.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = %s",
        (tag,),
    )
    return cursor.fetchone()[0]


def test_the_store_reconnects_when_postgresql_drops_its_connections(make_manager, sim, postgres_schema):
    tag, url, admin = postgres_schema
    manager = make_manager(database=url, config_=patient(TIME_SCALE))

    def read_status(job_id: str) -> str | None:
        cursor = admin.cursor()
        cursor.execute(f"SELECT status FROM {tag}.veo_jobs WHERE job_id = %s", (job_id,))
        row = cursor.fetchone()
        return None if row is None else row[0]

    recorder = StoredFirstRecorder(read_status)
    manager.add_listener(recorder, alerts=True)
    jobs = add_jobs(manager, sim, 30, prefix="pg", duration=200.0)
    drops = killed = 0
    while recorder.terminal_count() < len(jobs) and drops < 40:
        killed += terminate(admin, tag)
        drops += 1
        time.sleep(0.02)  # let some writes happen between two drops
    more = add_jobs(manager, sim, 5, prefix="pg-after", duration=20.0)  # the host's writes too
    killed += terminate(admin, tag)
    jobs.update(more)
    assert recorder.wait_for(lambda r: r.terminal_count() == len(jobs), timeout=30)
    assert killed >= 1, "no connection was ever dropped"
    assert recorder.unstored == [], f"announced before stored: {recorder.unstored[:5]}"
    completed = Counter(u.job_id for u in recorder.updates if u.status == "completed")
    assert sorted(completed) == sorted(jobs) and set(completed.values()) == {1}
    killed += terminate(admin, tag)
    assert manager.get_job("pg-0").status == "completed"  # reads reconnect too
    assert manager.stats()["completed"] == len(jobs)
    record_figure("db_faults", {"case": "postgres connections dropped", "drops": drops, "backends_killed": killed})
