"""The Prometheus exposition: a registry of its own, parsed as a scraper would."""

from __future__ import annotations

import requests
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from actors.commands import NewJob, add_jobs
from actors.exporter import make_registry, start_exporter
from actors.metrics import Metrics
from actors.store import JobStore


def families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_collector_exports_counters_gauges_histograms_and_jobs(tmp_path):
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.open()
    try:
        add_jobs(store, [NewJob(f"g{i}", "p", "generation", "default", f"models/m/operations/g{i}") for i in range(3)]
                 + [NewJob("u0", "p", "upscale", "default", "models/m/operations/u0")])
        assert store.cancel_job("g0", "cancelled").result(timeout=5)
        metrics = Metrics()
        metrics.incr("api_calls", 42)
        metrics.incr("api_errors.RateLimitedError", 3)
        metrics.incr("api_errors.AuthError")
        metrics.incr("poller_restarts", 2)
        metrics.incr("alerts")
        metrics.incr("cycles", 7)
        metrics.set_gauge("schedule_depth", 3)
        metrics.set_gauge("next_due_at", 1_700_000_000.5)
        for value in (0.05, 2.0, 45.0, 45.0, 5000.0):
            metrics.observe("job_duration", value)
        metrics.observe("detection_delay_bound", 4.0)

        text = generate_latest(make_registry(metrics, store)).decode()
        parsed = families(text)
        jobs = {(s.labels["status"], s.labels["kind"]): s.value for s in parsed["veo_jobs"].samples}
        assert jobs[("pending", "generation")] == 2 and jobs[("failed", "generation")] == 1
        assert jobs[("pending", "upscale")] == 1 and jobs[("completed", "upscale")] == 0
        assert parsed["veo_api_calls"].type == "counter" and parsed["veo_api_calls"].samples[0].value == 42
        errors = {s.labels["error"]: s.value for s in parsed["veo_api_errors"].samples}
        assert errors == {"RateLimitedError": 3, "AuthError": 1}
        assert parsed["veo_poller_restarts"].samples[0].value == 2
        assert parsed["veo_alerts"].samples[0].value == 1
        assert parsed["veo_cycles"].samples[0].value == 7  # any other counter too
        assert parsed["veo_schedule_depth"].samples[0].value == 3
        assert parsed["veo_next_due_timestamp_seconds"].samples[0].value == 1_700_000_000.5
        hist = {(s.name, s.labels.get("le")): s.value for s in parsed["veo_job_duration_seconds"].samples}
        assert hist[("veo_job_duration_seconds_bucket", "0.1")] == 1
        assert hist[("veo_job_duration_seconds_bucket", "5.0")] == 2
        assert hist[("veo_job_duration_seconds_bucket", "60.0")] == 4
        assert hist[("veo_job_duration_seconds_bucket", "+Inf")] == 5
        assert hist[("veo_job_duration_seconds_count", None)] == 5
        assert abs(hist[("veo_job_duration_seconds_sum", None)] - 5092.05) < 1e-6
        assert parsed["veo_detection_delay_seconds"].type == "histogram"
        assert "veo_jobs" not in generate_latest(REGISTRY).decode()  # the default registry is untouched
    finally:
        store.close()


def test_exporter_serves_http_and_survives_a_closed_database(tmp_path):
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.open()
    metrics = Metrics()
    metrics.incr("api_calls", 5)
    exporter = start_exporter(metrics, store, 0)
    try:
        url = f"http://127.0.0.1:{exporter.port}/metrics"
        parsed = families(requests.get(url, timeout=5).text)
        assert parsed["veo_api_calls"].samples[0].value == 5
        assert "veo_jobs" in parsed
        metrics.incr("api_calls")
        assert families(requests.get(url, timeout=5).text)["veo_api_calls"].samples[0].value == 6
        store.database.execute_sql("DROP TABLE veo_jobs")  # a failing query must not fail the scrape
        answer = requests.get(url, timeout=5)
        assert answer.status_code == 200
        parsed = families(answer.text)
        assert "veo_jobs" not in parsed and parsed["veo_api_calls"].samples[0].value == 6
    finally:
        exporter.close()
        store.close()
