"""``python -m actors serve`` as a user runs it: a subprocess fed by ``add``, stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

import actors
from actors.dashboard import collect_snapshot, render_dashboard
from actors.store import JobStore

KEY = "serve-test-key"
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _cli(*args: str, env: dict | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "actors", *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(condition, *, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode} while waiting for {what}: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _scrape(port: int) -> dict[str, list]:
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except requests.RequestException:
        return {}
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def _status(db: str) -> list[dict]:
    result = _cli("status", "--database", db, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _start_serve(db: str, sim: actors.VeoSimulator, port: int, *extra: str, scale: int = 1000) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "actors", "serve", "--database", db, "--base-url", sim.base_url,
         "--metrics-port", str(port), "--time-scale", str(scale), "--rescan-interval", "0.1",
         "--log-format", "json", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "GEMINI_API_KEY": KEY},
    )


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err


def test_serve_picks_up_added_jobs_exports_metrics_and_stops_on_sigterm(tmp_path):
    db = f"sqlite:///{tmp_path / 'jobs.db'}"
    port = _free_port()
    with actors.VeoSimulator(time_scale=1000, seed=3, api_key=KEY) as sim:
        # A few rows before serve starts (restored at start), the rest while it runs (adopted by rescan).
        early = [sim.create_operation(duration=30) for _ in range(3)]
        lines = [
            json.dumps({"job_id": f"early-{i}", "prompt_id": f"p{i}", "kind": "generation",
                        "profile_id": "default", "operation_name": name})
            for i, name in enumerate(early)
        ]
        (tmp_path / "early.jsonl").write_text("\n".join(lines) + "\n")
        assert _cli("add", "--database", db, "--file", str(tmp_path / "early.jsonl")).returncode == 0

        proc = _start_serve(db, sim, port)
        try:
            _wait_for(lambda: _scrape(port), timeout=15, what="the metrics endpoint", proc=proc)
            late = [sim.create_operation("veo-3.0-fast-generate-001", duration=40) for _ in range(4)]
            failing = sim.create_operation(duration=20, outcome="failed")
            rows = ["job_id,prompt_id,kind,profile_id,operation_name,scene_id"]
            rows += [f"late-{i},q{i},upscale,default,{name},scene-{i}" for i, name in enumerate(late)]
            rows.append(f"bad-1,q9,generation,default,{failing},")
            (tmp_path / "late.csv").write_text("\n".join(rows) + "\n")
            added = _cli("add", "--database", db, "--file", str(tmp_path / "late.csv"), "--json")
            assert added.returncode == 0, added.stderr
            assert json.loads(added.stdout)["added"] == 5

            def all_terminal():
                jobs = _status(db)
                return len(jobs) == 8 and all(job["status"] in ("completed", "failed") for job in jobs) and jobs

            jobs = _wait_for(all_terminal, timeout=20, what="every job terminal", proc=proc)
            by_id = {job["job_id"]: job for job in jobs}
            assert by_id["bad-1"]["status"] == "failed" and by_id["bad-1"]["error"]
            assert all(by_id[f"late-{i}"]["status"] == "completed" for i in range(4))
            assert all(by_id[f"late-{i}"]["video_url"] for i in range(4))

            # retry the failed job: serve adopts the reset row and fails it again (the server says so)
            retried = _cli("retry", "bad-1", "--database", db, "--json")
            assert retried.returncode == 0, retried.stderr
            assert json.loads(retried.stdout)["status"] == "pending"
            _wait_for(lambda: any(j["job_id"] == "bad-1" and j["status"] == "failed" and j["attempts"] >= 1
                                  for j in _status(db)), timeout=15, what="the retried job to fail again", proc=proc)

            # the metrics endpoint, parsed
            families = _wait_for(
                lambda: (f := _scrape(port)) and f["veo_jobs_completed"][0].value >= 7 and f,
                timeout=10, what="completions in the metrics", proc=proc,
            )
            jobs_gauge = {(s.labels["status"], s.labels["kind"]): s.value for s in families["veo_jobs"]}
            assert jobs_gauge[("completed", "generation")] == 3
            assert jobs_gauge[("completed", "upscale")] == 4
            assert jobs_gauge[("failed", "generation")] == 1
            assert families["veo_api_calls"][0].value >= 8
            assert families["veo_poller_restarts"][0].value == 0
            assert "veo_alerts" in families and "veo_schedule_depth" in families
            assert "veo_next_due_timestamp_seconds" in families
            durations = {s.name: s.value for s in families["veo_job_duration_seconds"]}
            assert durations["veo_job_duration_seconds_count"] >= 7
            assert durations['veo_job_duration_seconds_bucket'] >= 0
            assert "veo_detection_delay_seconds" in families

            # the dashboard against the running service, through the command line
            watch = _cli("watch", "--database", db, "--metrics-url", f"http://127.0.0.1:{port}", "--once")
            assert watch.returncode == 0, watch.stderr
            assert "Jobs by status" in watch.stdout and "poller restarts" in watch.stdout
        finally:
            code, err = _stop(proc)
    assert code == 0, err
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    names = [event["event"] for event in events]
    assert "serve_started" in names and "serve_stopped" in names
    assert KEY not in err
    assert all(job["status"] in ("completed", "failed") for job in _status(db))


def test_serve_cancel_reaches_running_service_and_sigterm_keeps_live_jobs(tmp_path):
    db = f"sqlite:///{tmp_path / 'jobs.db'}"
    port = _free_port()
    with actors.VeoSimulator(time_scale=1000, seed=4, api_key=KEY) as sim:
        slow = sim.create_operation(duration=1e6)  # never finishes during the test
        other = sim.create_operation(duration=1e6)
        # time compressed 100x only: the job deadline (1800 s) must not expire the live job here
        proc = _start_serve(db, sim, port, scale=100)
        try:
            _wait_for(lambda: _scrape(port), timeout=15, what="the metrics endpoint", proc=proc)
            for job_id, name in (("slow-1", slow), ("slow-2", other)):
                result = _cli("add", "--database", db, "--job-id", job_id, "--prompt-id", "p",
                              "--kind", "generation", "--operation-name", name)
                assert result.returncode == 0, result.stderr
            _wait_for(lambda: sim.poll_count(slow) >= 2 and sim.poll_count(other) >= 1,
                      timeout=15, what="serve to poll the added jobs", proc=proc)
            cancelled = _cli("cancel", "slow-1", "--database", db, "--reason", "not wanted")
            assert cancelled.returncode == 0, cancelled.stderr
            time.sleep(0.3)  # a rescan (every 0.1 s) retires it; a check in flight may still land
            before_cancelled, before_other = sim.poll_count(slow), sim.poll_count(other)
            _wait_for(lambda: sim.poll_count(other) >= before_other + 2, timeout=15,
                      what="more polls of the live job", proc=proc)
            assert sim.poll_count(slow) - before_cancelled <= 1
        finally:
            code, err = _stop(proc)
    assert code == 0, err
    by_id = {job["job_id"]: job for job in _status(db)}
    assert by_id["slow-1"]["status"] == "failed" and by_id["slow-1"]["error"] == "not wanted"
    assert by_id["slow-2"]["status"] in ("pending", "processing")  # persisted, resumed by the next serve


def test_serve_configuration_errors_are_one_line_with_exit_codes(tmp_path):
    db = f"sqlite:///{tmp_path / 'jobs.db'}"
    env = {"GEMINI_API_KEY": ""}
    missing = _cli("serve", "--database", db, env=env)
    assert missing.returncode == 2 and "GEMINI_API_KEY" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and "Traceback" not in missing.stderr

    remote_http = _cli("serve", "--database", db, "--base-url", "http://example.invalid", env={"GEMINI_API_KEY": "k"})
    assert remote_http.returncode == 2 and "Traceback" not in remote_http.stderr

    bad_url = _cli("serve", "--database", "nosuch://x", env={"GEMINI_API_KEY": "k"})
    assert bad_url.returncode == 2 and "Traceback" not in bad_url.stderr

    unreachable = _cli("serve", "--database", f"sqlite:///{tmp_path / 'no' / 'dir' / 'x.db'}", env={"GEMINI_API_KEY": "k"})
    assert unreachable.returncode in (2, 3) and "Traceback" not in unreachable.stderr

    creds = tmp_path / "creds.json"
    creds.write_text("not json")
    bad_creds = _cli("serve", "--database", db, "--credentials-file", str(creds), env=env)
    assert bad_creds.returncode == 2 and "credentials file" in bad_creds.stderr

    vertex = _cli("serve", "--database", db, "--provider", "vertex",
                  env={"VERTEX_PROJECT": "", "VERTEX_LOCATION": "", "VERTEX_ACCESS_TOKEN": ""})
    assert vertex.returncode == 2 and "vertex" in vertex.stderr.lower() and "Traceback" not in vertex.stderr


def test_serve_with_per_profile_credentials_file(tmp_path):
    db = f"sqlite:///{tmp_path / 'jobs.db'}"
    port = _free_port()
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({"studio": KEY}))
    with actors.VeoSimulator(time_scale=1000, seed=5, api_key=KEY) as sim:
        name = sim.create_operation(duration=20)
        assert _cli("add", "--database", db, "--job-id", "j1", "--prompt-id", "p", "--kind", "generation",
                    "--profile-id", "studio", "--operation-name", name).returncode == 0
        proc = subprocess.Popen(
            [sys.executable, "-m", "actors", "serve", "--database", db, "--base-url", sim.base_url,
             "--credentials-file", str(creds), "--time-scale", "1000", "--rescan-interval", "0.1",
             "--metrics-port", str(port), "--log-format", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "GEMINI_API_KEY": ""},
        )
        try:
            _wait_for(lambda: [j for j in _status(db) if j["status"] == "completed"], timeout=15,
                      what="the job to complete", proc=proc)
        finally:
            code, err = _stop(proc)
    assert code == 0, err
    assert KEY not in err


def test_dashboard_frame_from_a_served_database(tmp_path):
    """The render function, on a table a real tree filled."""
    db = f"sqlite:///{tmp_path / 'jobs.db'}"
    config = actors.PollingConfig().scaled(1000)
    with actors.VeoSimulator(time_scale=1000, seed=6, api_key=KEY) as sim:
        manager = actors.PollingManager(
            database=db, client=actors.GeminiVeoClient(api_key=KEY, base_url=sim.base_url), config=config
        ).initialize()
        try:
            for i in range(5):
                manager.add_to_polling(f"d{i}", "p", "generation", "default", sim.create_operation(duration=20))
            manager.add_to_polling("stuck", "p", "upscale", "default", sim.create_operation(duration=1e6))
            _wait_for(lambda: manager.stats()["completed"] == 5, timeout=15, what="five completions")
        finally:
            manager.shutdown()
    from rich.console import Console

    store = JobStore(db)
    store.open()
    try:
        snap = collect_snapshot(store, database=db)
    finally:
        store.close()
    console = Console(record=True, width=120)
    console.print(render_dashboard(snap))
    text = console.export_text()
    completed_row = next(line for line in text.splitlines() if line.startswith("│ completed "))
    assert [cell.strip() for cell in completed_row.split("│") if cell.strip()][:4] == ["completed", "5", "0", "5"]
    assert "stuck" in text  # the only live job is the slowest one
    assert "completed / min" in text
