"""Prometheus exposition of one polling tree (``serve --metrics-port``).

:class:`TreeCollector` reads the tree's :class:`~actors.metrics.Metrics` and the job table at
each scrape and yields metric families; it lives in a registry of its own (never the process
default), so embedding hosts keep theirs clean. :func:`start_exporter` serves that registry
over HTTP on a background thread.

Exported families (all prefixed ``veo_``):

====================================  =========  ==============================================
``veo_jobs{status,kind}``             gauge      jobs in the table by status and kind
``veo_api_calls_total``               counter    status checks made (``rate()`` = checks/s)
``veo_api_errors_total{error}``       counter    failed checks by error class
``veo_checks_started_total``          counter    checks the poller started
``veo_jobs_completed_total``          counter    jobs this process saw complete
``veo_jobs_failed_total``             counter    jobs this process saw fail
``veo_poller_restarts_total``         counter    poller restarts by the supervisor
``veo_job_restarts_total``            counter    job actor restarts by the supervisor
``veo_alerts_total``                  counter    alerts raised (restart intensity exceeded)
``veo_schedule_depth``                gauge      jobs in the poller's schedule
``veo_next_due_timestamp_seconds``    gauge      Unix time the next check is due
``veo_job_duration_seconds``          histogram  job creation to terminal state
``veo_detection_delay_seconds``       histogram  bound on completion-to-detection delay
====================================  =========  ==============================================

Any other counter of the tree is exported as ``veo_<name>_total``.
"""

from __future__ import annotations

import math
import re
import threading
from typing import Iterator

import structlog
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from .metrics import BUCKETS, Histogram, Metrics
from .queries import count_by_status_and_kind
from .store import JobStore

log = structlog.get_logger("actors.exporter")

_GAUGES = {
    "schedule_depth": ("veo_schedule_depth", "Jobs in the poller's schedule."),
    "next_due_at": ("veo_next_due_timestamp_seconds", "Unix time at which the next status check is due."),
}
_COUNTERS = {
    "api_calls": ("veo_api_calls", "Status checks made against the video API (rate() gives checks per second)."),
    "checks_started": ("veo_checks_started", "Status checks the poller started."),
    "jobs_completed": ("veo_jobs_completed", "Jobs this process saw complete."),
    "jobs_failed": ("veo_jobs_failed", "Jobs this process saw fail."),
    "poller_restarts": ("veo_poller_restarts", "Poller restarts by the supervisor."),
    "job_restarts": ("veo_job_restarts", "Job actor restarts by the supervisor."),
    "alerts": ("veo_alerts", "Alerts raised by the supervisor (restart intensity exceeded)."),
}
_HISTOGRAMS = {
    "job_duration": ("veo_job_duration_seconds", "Seconds from a job's creation to its terminal state."),
    "detection_delay_bound": (
        "veo_detection_delay_seconds",
        "Upper bound on the seconds between an operation finishing and its detection.",
    ),
}
_ERROR_PREFIX = "api_errors."


def _metric_name(name: str) -> str:
    return "veo_" + re.sub(r"[^a-zA-Z0-9_]", "_", name)


class TreeCollector(Collector):
    """Yields the tree's metric families at each scrape (runs on the exporter's threads)."""

    def __init__(self, metrics: Metrics, store: JobStore | None = None) -> None:
        self.metrics = metrics
        self.store = store

    def collect(self) -> Iterator:
        snapshot = self.metrics.snapshot()
        if self.store is not None:
            try:
                counts = count_by_status_and_kind(self.store)
            except Exception as exc:  # a scrape must not fail because the database did
                log.warning("metrics_jobs_query_failed", error=f"{type(exc).__name__}: {exc}")
            else:
                jobs = GaugeMetricFamily("veo_jobs", "Jobs in the table by status and kind.", labels=["status", "kind"])
                for (status, kind), n in sorted(counts.items()):
                    jobs.add_metric([status, kind], n)
                yield jobs
        errors = CounterMetricFamily("veo_api_errors", "Failed status checks by error class.", labels=["error"])
        for name, value in sorted(snapshot.items()):
            if name.startswith(_ERROR_PREFIX):
                errors.add_metric([name[len(_ERROR_PREFIX):]], value)
        yield errors
        for key, (name, doc) in _COUNTERS.items():
            yield CounterMetricFamily(name, doc, value=snapshot.get(key, 0))
        for key, (name, doc) in _GAUGES.items():
            value = snapshot.get(key)
            gauge = GaugeMetricFamily(name, doc)
            gauge.add_metric([], value if value is not None else math.nan)
            yield gauge
        for key in sorted(snapshot):
            if key in _COUNTERS or key in _GAUGES or key.startswith(_ERROR_PREFIX) or key == "live_actors":
                continue
            yield CounterMetricFamily(_metric_name(key), f"Tree counter {key}.", value=snapshot[key])
        histograms = self.metrics.histograms()
        for key, (name, doc) in _HISTOGRAMS.items():
            yield _histogram(name, doc, histograms.get(key) or Histogram())


def _histogram(name: str, doc: str, histogram: Histogram) -> HistogramMetricFamily:
    cumulative = 0
    buckets = []
    for bound, count in zip(BUCKETS, histogram.buckets):
        cumulative += count
        buckets.append(("+Inf" if math.isinf(bound) else repr(float(bound)), cumulative))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=histogram.total)


def make_registry(metrics: Metrics, store: JobStore | None = None) -> CollectorRegistry:
    """A registry of its own holding one :class:`TreeCollector`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TreeCollector(metrics, store))
    return registry


class Exporter:
    """A running metrics endpoint; :meth:`close` stops it."""

    def __init__(self, server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The TCP port it listens on (useful when started on port 0)."""
        return self._server.server_address[1]

    def close(self) -> None:
        """Stop serving and join the server thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_exporter(metrics: Metrics, store: JobStore | None, port: int, host: str = "127.0.0.1") -> Exporter:
    """Serve ``/metrics`` for the tree on ``host:port`` (0 picks a free port)."""
    server, thread = start_http_server(port, addr=host, registry=make_registry(metrics, store))
    return Exporter(server, thread)
