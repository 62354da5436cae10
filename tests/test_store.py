"""The job store, run for real on SQLite (a file) and on the machine's PostgreSQL server."""

from __future__ import annotations

import os

import peewee
import pytest

import actors
from actors.store import JobRecord, JobStore

from .conftest import POSTGRES_URL, Recorder, submit


def _postgres_available() -> bool:
    try:
        db = peewee.PostgresqlDatabase(None)
        from playhouse.db_url import parse

        db.init(**parse(POSTGRES_URL))
        db.connect()
        db.close()
        return True
    except Exception:
        return False


def _require_or_skip() -> None:
    if not _postgres_available():
        if os.environ.get("VEO_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here but {POSTGRES_URL} is unreachable")
        pytest.skip("no PostgreSQL server reachable")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    _require_or_skip()
    store = JobStore(POSTGRES_URL)
    with store.database.connection_context():
        store.database.drop_tables([store.Job], safe=True)
    yield POSTGRES_URL
    with store.database.connection_context():
        store.database.drop_tables([store.Job], safe=True)


@pytest.fixture
def store(database_url):
    job_store = JobStore(database_url)
    job_store.open()
    yield job_store
    job_store.close()


def record(job_id: str = "j1", **overrides) -> JobRecord:
    values = dict(
        job_id=job_id, kind="generation", prompt_id="p1", profile_id="acct",
        operation_name="models/veo-3.0-generate-001/operations/abc", scene_id=None,
        status="pending", attempts=0, backoff=10.0, next_due_at=100.0, video_url=None,
        video_uris=(), error=None, not_found_streak=0, created_at=1.0, updated_at=1.0,
    )
    values.update(overrides)
    return JobRecord(**values)


def test_a_job_is_stored_and_read_back_whole(store):
    created, stored = store.insert_job(record(scene_id="s1")).result(5)
    assert created and stored == record(scene_id="s1")
    assert store.get("j1") == record(scene_id="s1")
    assert store.get("nope") is None


def test_adding_the_same_context_twice_is_a_no_op_and_another_context_conflicts(store):
    store.insert_job(record()).result(5)
    created, existing = store.insert_job(record(next_due_at=999.0)).result(5)
    assert not created and existing.next_due_at == 100.0
    with pytest.raises(actors.JobConflictError):
        store.insert_job(record(prompt_id="other")).result(5)
    assert store.get("j1").prompt_id == "p1"


def test_progress_is_saved_and_a_terminal_row_never_changes_again(store):
    store.insert_job(record()).result(5)
    assert store.save_progress("j1", status="processing", attempts=1, backoff=15.0, next_due_at=115.0).result(5)
    assert store.save_progress("j1", status="completed", attempts=2, video_uris=("u1", "u2"), video_url="u1").result(5)
    assert not store.save_progress("j1", status="failed", error="late writer").result(5)
    final = store.get("j1")
    assert (final.status, final.attempts, final.video_uris, final.error) == ("completed", 2, ("u1", "u2"), None)


def test_live_jobs_come_soonest_due_first_and_counts_cover_every_status(store):
    store.insert_job(record("a", next_due_at=300.0)).result(5)
    store.insert_job(record("b", next_due_at=100.0)).result(5)
    store.insert_job(record("c", next_due_at=200.0)).result(5)
    store.save_progress("c", status="failed", error="x").result(5)
    assert [r.job_id for r in store.live_jobs()] == ["b", "a"]
    assert store.count_by_status() == {"pending": 2, "processing": 0, "completed": 0, "failed": 1}


def test_writes_after_close_fail_clearly_instead_of_hanging(database_url):
    job_store = JobStore(database_url)
    job_store.open()
    job_store.close()
    with pytest.raises(actors.StoreError):
        job_store.insert_job(record()).result(5)


def test_the_whole_tree_runs_on_this_database(database_url, make_manager, sim):
    manager = make_manager(database=database_url)
    listener = Recorder()
    manager.add_listener(listener)
    jobs = submit(manager, sim, 10)
    assert listener.wait_for(lambda r: r.terminal_count() == 10)
    assert manager.stats()["completed"] == 10
    assert {j: manager.get_job(j).status for j in jobs} == {j: "completed" for j in jobs}


def test_a_bad_database_url_is_a_configuration_error(tmp_path):
    with pytest.raises(actors.ConfigurationError):
        JobStore("sqlite:///:memory:")
    with pytest.raises(actors.ConfigurationError):
        JobStore(f"sqlite:///{tmp_path}/missing-dir/jobs.db")
    with pytest.raises(actors.ConfigurationError):
        JobStore("nosuchdb://x")
    with pytest.raises(actors.ConfigurationError):
        JobStore("")
