"""``python -m actors watch``: a live terminal dashboard of a job table (rich).

It reads the database (and a ``serve`` metrics endpoint when given), so it works against a
running service from another process or host. :func:`collect_snapshot` gathers one frame's
figures, :func:`render_dashboard` turns them into a rich renderable (testable with a recording
``Console``), and :func:`run_watch` refreshes it until interrupted.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group
from rich.columns import Columns
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .commands import EXIT_USAGE, CommandError
from .errors import ConfigurationError
from .messages import COMPLETED, FAILED, KINDS, PENDING, PROCESSING
from .queries import (
    STATUSES,
    completed_since,
    count_by_status_and_kind,
    finished_since,
    oldest_live,
    recently_updated,
)
from .store import JobRecord, JobStore

_STYLE = {PENDING: "yellow", PROCESSING: "cyan", COMPLETED: "green", FAILED: "red"}


@dataclass
class Snapshot:
    """The figures of one dashboard frame."""

    taken_at: float
    database: str
    counts: dict[tuple[str, str], int]
    completed_last_minute: int
    failed_last_minute: int
    oldest_live: list[JobRecord]
    recent: list[JobRecord]
    metrics: dict[str, Any] | None = None
    metrics_error: str | None = None
    checks_per_second: float | None = None

    def status_total(self, status: str) -> int:
        """Jobs in ``status`` across kinds."""
        return sum(n for (s, _), n in self.counts.items() if s == status)

    @property
    def total(self) -> int:
        """Every job in the table."""
        return sum(self.counts.values())

    @property
    def queue_depth(self) -> int:
        """Live jobs (pending and processing) in the table."""
        return self.status_total(PENDING) + self.status_total(PROCESSING)


def normalize_metrics_url(url: str) -> str:
    """``http://host:port`` -> ``http://host:port/metrics``; raises ``ConfigurationError``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"--metrics-url must be an http(s) URL, got {url!r:.80}")
    path = parts.path if parts.path not in ("", "/") else "/metrics"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def scrape_metrics(url: str, *, timeout: float = 2.0, session: requests.Session | None = None) -> dict[str, Any]:
    """Read a ``serve`` metrics endpoint into flat figures.

    Keys: ``api_calls``, ``poller_restarts``, ``job_restarts``, ``alerts``,
    ``schedule_depth``, ``next_due_at`` and ``api_errors`` (error class -> count). Raises
    ``requests.RequestException`` or ``ValueError`` when the endpoint cannot be read.
    """
    getter = session or requests
    answer = getter.get(url, timeout=timeout)
    answer.raise_for_status()
    figures: dict[str, Any] = {"api_errors": {}}
    names = {
        "veo_api_calls_total": "api_calls",
        "veo_poller_restarts_total": "poller_restarts",
        "veo_job_restarts_total": "job_restarts",
        "veo_alerts_total": "alerts",
        "veo_schedule_depth": "schedule_depth",
        "veo_next_due_timestamp_seconds": "next_due_at",
        "veo_jobs_completed_total": "jobs_completed",
        "veo_jobs_failed_total": "jobs_failed",
    }
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name in names:
                figures[names[sample.name]] = sample.value
            elif sample.name == "veo_api_errors_total":
                figures["api_errors"][sample.labels.get("error", "?")] = sample.value
    return figures


def collect_snapshot(
    store: JobStore,
    *,
    database: str = "",
    metrics_url: str | None = None,
    now: float | None = None,
    slowest: int = 5,
    recent: int = 8,
    previous: Snapshot | None = None,
) -> Snapshot:
    """Gather one frame from the store (and the metrics endpoint when given)."""
    now = time.time() if now is None else now
    counts = count_by_status_and_kind(store)
    finished = finished_since(store, now - 60.0)
    completed = completed_since(store, now - 60.0)
    snap = Snapshot(
        taken_at=now, database=database, counts=counts, completed_last_minute=completed,
        failed_last_minute=finished - completed, oldest_live=oldest_live(store, slowest),
        recent=recently_updated(store, recent),
    )
    if metrics_url:
        try:
            snap.metrics = scrape_metrics(metrics_url)
        except (requests.RequestException, ValueError) as exc:
            snap.metrics_error = f"metrics endpoint unreadable: {type(exc).__name__}"
        else:
            if previous is not None and previous.metrics and snap.taken_at > previous.taken_at:
                delta = snap.metrics.get("api_calls", 0) - previous.metrics.get("api_calls", 0)
                snap.checks_per_second = max(0.0, delta) / (snap.taken_at - previous.taken_at)
    return snap


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h{(seconds % 3600) // 60:02.0f}m"


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%H:%M:%S")


def _detail(record: JobRecord, width: int = 48) -> str:
    text = record.error or record.video_url or record.operation_name
    return text if len(text) <= width else text[: width - 1] + "…"


def render_dashboard(snap: Snapshot) -> Group:
    """The dashboard frame for ``snap`` as a rich renderable."""
    header = Text.assemble(
        ("veo-actors", "bold"), "  ", (snap.database, "dim"), "  ",
        f"{datetime.fromtimestamp(snap.taken_at, timezone.utc):%Y-%m-%d %H:%M:%S} UTC",
    )

    jobs = Table(title="Jobs by status", expand=False)
    jobs.add_column("status")
    for kind in KINDS:
        jobs.add_column(kind, justify="right")
    jobs.add_column("total", justify="right")
    for status in STATUSES:
        jobs.add_row(
            Text(status, style=_STYLE[status]),
            *[str(snap.counts.get((status, kind), 0)) for kind in KINDS],
            str(snap.status_total(status)),
        )
    jobs.add_row("all", *[str(sum(snap.counts.get((s, k), 0) for s in STATUSES)) for k in KINDS], str(snap.total), style="bold")

    flow = Table(title="Throughput", show_header=False)
    flow.add_column("figure")
    flow.add_column("value", justify="right")
    flow.add_row("completed / min", str(snap.completed_last_minute))
    flow.add_row("failed / min", str(snap.failed_last_minute))
    flow.add_row("queue depth (live)", str(snap.queue_depth))
    metrics = snap.metrics
    if metrics is not None:
        depth = metrics.get("schedule_depth")
        flow.add_row("scheduled in poller", "-" if depth is None or math.isnan(depth) else f"{depth:.0f}")
        flow.add_row("checks / s", "-" if snap.checks_per_second is None else f"{snap.checks_per_second:.1f}")
        due = metrics.get("next_due_at")
        idle = due is None or math.isnan(due) or not depth
        flow.add_row("next check in", "-" if idle else _age(due - snap.taken_at))

    health = Table(title="Restarts and alerts", show_header=False)
    health.add_column("figure")
    health.add_column("value", justify="right")
    if metrics is not None:
        health.add_row("API calls", f"{metrics.get('api_calls', 0):.0f}")
        health.add_row("poller restarts", f"{metrics.get('poller_restarts', 0):.0f}")
        health.add_row("job restarts", f"{metrics.get('job_restarts', 0):.0f}")
        alerts = metrics.get("alerts", 0)
        health.add_row("alerts", Text(f"{alerts:.0f}", style="bold red" if alerts else ""))
        for name, value in sorted(metrics.get("api_errors", {}).items()):
            health.add_row(f"errors: {name}", f"{value:.0f}")
    else:
        health.add_row(snap.metrics_error or "no metrics endpoint", "(--metrics-url)" if not snap.metrics_error else "")

    slow = Table(title="Slowest live jobs")
    for name, justify in (("job", "left"), ("kind", "left"), ("status", "left"), ("age", "right"), ("checks", "right"), ("profile", "left")):
        slow.add_column(name, justify=justify)
    for record in snap.oldest_live:
        slow.add_row(
            Text(record.job_id), record.kind, Text(record.status, style=_STYLE.get(record.status, "")),
            _age(snap.taken_at - record.created_at), str(record.attempts), Text(record.profile_id),
        )
    if not snap.oldest_live:
        slow.add_row("(no live jobs)", "", "", "", "", "")

    events = Table(title="Recent events")
    for name in ("time", "job", "status", "checks", "detail"):
        events.add_column(name, justify="right" if name == "checks" else "left")
    for record in snap.recent:
        events.add_row(
            _clock(record.updated_at), Text(record.job_id), Text(record.status, style=_STYLE.get(record.status, "")),
            str(record.attempts), Text(_detail(record)),
        )
    if not snap.recent:
        events.add_row("", "(no jobs yet)", "", "", "")

    return Group(header, Columns([jobs, flow, health]), slow, events)


def run_watch(
    store: JobStore,
    *,
    database: str,
    metrics_url: str | None = None,
    interval: float = 2.0,
    once: bool = False,
    console: Console | None = None,
) -> int:
    """Show the dashboard, refreshed every ``interval`` seconds, until Ctrl-C (or once)."""
    if not interval > 0:
        raise CommandError("--interval must be positive", EXIT_USAGE)
    if metrics_url:
        try:
            metrics_url = normalize_metrics_url(metrics_url)
        except ConfigurationError as exc:
            raise CommandError(str(exc), EXIT_USAGE) from exc
    console = console or Console()
    label = _display_database(database)
    snap = collect_snapshot(store, database=label, metrics_url=metrics_url)
    if once:
        console.print(render_dashboard(snap))
        return 0
    try:
        if console.is_terminal:
            with Live(render_dashboard(snap), console=console, auto_refresh=False, screen=False) as live:
                while True:
                    time.sleep(interval)
                    snap = collect_snapshot(store, database=label, metrics_url=metrics_url, previous=snap)
                    live.update(render_dashboard(snap), refresh=True)
        else:
            while True:
                console.print(render_dashboard(snap))
                time.sleep(interval)
                snap = collect_snapshot(store, database=label, metrics_url=metrics_url, previous=snap)
    except KeyboardInterrupt:
        return 0


def _display_database(database: str) -> str:
    """The URL without any password, for the header."""
    parts = urlsplit(database)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return database
