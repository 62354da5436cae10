"""The dashboard renders to text (rich's recording console) with the right figures."""

from __future__ import annotations

import time

from rich.console import Console

from actors.commands import NewJob, add_jobs
from actors.dashboard import Snapshot, collect_snapshot, normalize_metrics_url, render_dashboard
from actors.store import JobStore


def render(snap: Snapshot, width: int = 140) -> str:
    console = Console(record=True, width=width)
    console.print(render_dashboard(snap))
    return console.export_text()


def row(text: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is ``first`` (tables may stand side by side)."""
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if first in cells:
            start = cells.index(first)
            end = cells.index("", start) if "" in cells[start:] else len(cells)
            return cells[start:end]
    raise AssertionError(f"no row {first!r} in:\n{text}")


def test_dashboard_counts_throughput_slowest_and_events(tmp_path):
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.open()
    now = time.time()
    try:
        jobs = [NewJob(f"gen-{i}", "p", "generation", "default", f"models/m/operations/g{i}") for i in range(6)]
        jobs += [NewJob(f"up-{i}", "p", "upscale", "studio", f"models/m/operations/u{i}") for i in range(3)]
        add_jobs(store, jobs[:1], now=now - 600)  # the oldest live job
        add_jobs(store, jobs[1:], now=now - 120)
        for i in (1, 2, 3):
            store.save_progress(f"gen-{i}", status="completed", video_url=f"https://v/{i}", updated_at=now - 10).result(5)
        store.save_progress("up-0", status="completed", video_url="https://v/u0", updated_at=now - 3600).result(5)
        store.save_progress("up-1", status="failed", error="filtered: [safety]", updated_at=now - 5).result(5)
        store.save_progress("gen-4", status="processing", attempts=3, updated_at=now - 1).result(5)
        snap = collect_snapshot(store, database="sqlite:///jobs.db", now=now)
    finally:
        store.close()

    assert snap.total == 9 and snap.queue_depth == 4
    assert snap.completed_last_minute == 3 and snap.failed_last_minute == 1
    text = render(snap)
    assert row(text, "pending")[:4] == ["pending", "2", "1", "3"]
    assert row(text, "processing")[:4] == ["processing", "1", "0", "1"]
    assert row(text, "completed")[:4] == ["completed", "3", "1", "4"]
    assert row(text, "failed")[:4] == ["failed", "0", "1", "1"]
    assert row(text, "all")[:4] == ["all", "6", "3", "9"]
    assert row(text, "completed / min")[1] == "3"
    assert row(text, "failed / min")[1] == "1"
    assert row(text, "queue depth (live)")[1] == "4"
    slow = row(text, "gen-0")
    assert slow[:3] == ["gen-0", "generation", "pending"] and slow[3] == "10m00s"
    assert "filtered: [safety]" in text  # markup in data is shown as written
    events = [line for line in text.splitlines() if line.startswith("│ ") and ":" in line.split("│")[1]]
    assert "gen-4" in events[0]  # the latest change first
    assert "no metrics endpoint" in text


def test_dashboard_with_metrics_figures():
    now = 1_800_000_000.0
    previous = Snapshot(taken_at=now - 10, database="db", counts={}, completed_last_minute=0, failed_last_minute=0,
                        oldest_live=[], recent=[], metrics={"api_calls": 100})
    snap = Snapshot(
        taken_at=now, database="db", counts={("pending", "generation"): 2}, completed_last_minute=0,
        failed_last_minute=0, oldest_live=[], recent=[],
        metrics={"api_calls": 150, "poller_restarts": 2, "job_restarts": 1, "alerts": 1, "schedule_depth": 2,
                 "next_due_at": now + 5, "api_errors": {"RateLimitedError": 4}},
        checks_per_second=(150 - previous.metrics["api_calls"]) / 10,
    )
    text = render(snap)
    assert row(text, "poller restarts")[1] == "2"
    assert row(text, "alerts")[1] == "1"
    assert row(text, "errors: RateLimitedError")[1] == "4"
    assert row(text, "checks / s")[1] == "5.0"
    assert row(text, "next check in")[1] == "5s"
    assert "(no live jobs)" in text


def test_metrics_url_normalised():
    assert normalize_metrics_url("http://127.0.0.1:9464") == "http://127.0.0.1:9464/metrics"
    assert normalize_metrics_url("http://h:1/custom") == "http://h:1/custom"
    try:
        normalize_metrics_url("ftp://h")
    except ValueError:
        pass
    else:
        raise AssertionError("ftp accepted")
