"""The offline commands as a user runs them: subprocesses, exit codes, output, ``--json``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

OP = "models/veo-3.0-generate-001/operations/op{}"


def run(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "actors", *args], capture_output=True, text=True, timeout=30,
        input=stdin, env={**os.environ, **(env or {})},
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


def add(db: str, job_id: str, n: int = 1, kind: str = "generation", *extra: str) -> subprocess.CompletedProcess:
    return run("add", "--database", db, "--job-id", job_id, "--prompt-id", f"prompt-{n}", "--kind", kind,
               "--operation-name", OP.format(n), *extra)


def status(db: str, *extra: str) -> list[dict]:
    result = run("status", "--database", db, "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("command", ["demo", "serve", "add", "status", "watch", "retry", "cancel"])
def test_every_subcommand_has_help(command):
    result = run(command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m actors " + command)
    assert "exit codes" in result.stdout


def test_add_status_retry_cancel_round_trip(db, tmp_path):
    assert add(db, "g1", 1).returncode == 0
    assert add(db, "u1", 2, "upscale", "--scene-id", "s1", "--profile-id", "studio").returncode == 0
    again = add(db, "g1", 1, "generation", "--json")  # the same job twice is a no-op
    assert again.returncode == 0 and json.loads(again.stdout) == {"added": 0, "already_known": 1, "job_ids": ["g1"]}

    jobs = status(db)
    assert [(j["job_id"], j["kind"], j["status"], j["attempts"]) for j in jobs] == [
        ("g1", "generation", "pending", 0), ("u1", "upscale", "pending", 0)]
    assert jobs[1]["profile_id"] == "studio" and jobs[1]["scene_id"] == "s1"
    assert [j["job_id"] for j in status(db, "--kind", "upscale")] == ["u1"]
    assert status(db, "--status", "failed") == []

    table = run("status", "--database", db)
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split()[:3] == ["JOB", "KIND", "STATUS"]
    assert "2 job(s): 2 pending" in table.stdout

    cancelled = run("cancel", "g1", "--database", db, "--reason", "changed my mind", "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    record = json.loads(cancelled.stdout)
    assert record["status"] == "failed" and record["error"] == "changed my mind"
    assert [j["job_id"] for j in status(db, "--status", "failed")] == ["g1"]

    again = run("cancel", "g1", "--database", db)
    assert again.returncode == 1 and "already failed" in one_error_line(again)

    retried = run("retry", "g1", "--database", db)
    assert retried.returncode == 0 and "back to pending" in retried.stdout
    g1 = next(j for j in status(db) if j["job_id"] == "g1")
    assert g1["status"] == "pending" and g1["error"] is None and g1["attempts"] == 0

    not_failed = run("retry", "u1", "--database", db)
    assert not_failed.returncode == 1 and "only failed jobs" in one_error_line(not_failed)
    for command in ("retry", "cancel"):
        unknown = run(command, "nope", "--database", db)
        assert unknown.returncode == 4 and "no job 'nope'" in one_error_line(unknown)


def test_add_from_jsonl_csv_and_stdin(db, tmp_path):
    jsonl = tmp_path / "jobs.jsonl"
    jsonl.write_text("\n".join(json.dumps({
        "job_id": f"j{i}", "prompt_id": "p", "kind": "generation", "operation_name": OP.format(i)}) for i in range(5)) + "\n\n")
    result = run("add", "--database", db, "--file", str(jsonl))
    assert result.returncode == 0 and "added 5 job(s)" in result.stdout

    csv_file = tmp_path / "jobs.csv"
    csv_file.write_text("job_id,prompt_id,kind,profile_id,operation_name,scene_id\n"
                        f"c1,p,upscale,studio,{OP.format(10)},scene-1\nc2,p,generation,,{OP.format(11)},\n")
    result = run("add", "--database", db, "--file", str(csv_file), "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["added"] == 2

    line = json.dumps({"job_id": "s1", "prompt_id": "p", "kind": "upscale", "operation_name": OP.format(20)})
    assert run("add", "--database", db, "--file", "-", stdin=line + "\n").returncode == 0

    jobs = {j["job_id"]: j for j in status(db)}
    assert len(jobs) == 8
    assert jobs["c1"]["profile_id"] == "studio" and jobs["c1"]["scene_id"] == "scene-1"
    assert jobs["c2"]["profile_id"] == "default" and jobs["c2"]["scene_id"] is None
    assert all(j["status"] == "pending" for j in jobs.values())


def test_add_rejects_bad_input_and_stores_nothing(db, tmp_path):
    bad_kind = run("add", "--database", db, "--job-id", "x", "--prompt-id", "p", "--kind", "remix",
                   "--operation-name", OP.format(1))
    assert bad_kind.returncode == 2  # argparse: usage line plus the error
    bad_name = run("add", "--database", db, "--job-id", "x", "--prompt-id", "p", "--kind", "generation",
                   "--operation-name", "https://evil.example/x")
    assert bad_name.returncode == 2 and "operation name" in one_error_line(bad_name)
    missing = run("add", "--database", db, "--job-id", "x")
    assert missing.returncode == 2 and "--prompt-id" in one_error_line(missing)

    jsonl = tmp_path / "jobs.jsonl"
    good = json.dumps({"job_id": "ok", "prompt_id": "p", "kind": "generation", "operation_name": OP.format(1)})
    jsonl.write_text(good + "\n" + json.dumps({"job_id": "bad", "prompt_id": "p", "kind": "nope",
                                                "operation_name": OP.format(2)}) + "\n")
    result = run("add", "--database", db, "--file", str(jsonl))
    assert result.returncode == 2 and "line 2" in one_error_line(result)
    jsonl.write_text(good + "\n{not json\n")
    assert "line 2" in one_error_line(run("add", "--database", db, "--file", str(jsonl)))
    jsonl.write_text(good + "\n" + good + "\n")
    assert "given twice" in one_error_line(run("add", "--database", db, "--file", str(jsonl)))
    missing_file = run("add", "--database", db, "--file", str(tmp_path / "absent.jsonl"))
    assert missing_file.returncode == 2 and "absent.jsonl" in one_error_line(missing_file)

    assert not (tmp_path / "jobs.db").exists()  # validated before the database is even opened
    assert add(db, "ok", 1).returncode == 0
    conflict = add(db, "ok", 2)  # same id, another operation
    assert conflict.returncode == 2 and "different context" in one_error_line(conflict)


def test_database_errors_have_their_exit_codes(tmp_path):
    absent = run("status", "--database", f"sqlite:///{tmp_path / 'absent.db'}")
    assert absent.returncode == 3 and "no database" in one_error_line(absent)
    assert not (tmp_path / "absent.db").exists()  # reading commands never create a database
    scheme = run("status", "--database", "nosuch://host/db")
    assert scheme.returncode == 2 and "database URL" in one_error_line(scheme)
    no_dir = run("add", "--database", f"sqlite:///{tmp_path / 'no' / 'x.db'}", "--job-id", "x", "--prompt-id", "p",
                 "--kind", "generation", "--operation-name", OP.format(1))
    assert no_dir.returncode == 2 and "directory" in one_error_line(no_dir)
    pytest.importorskip("psycopg2")
    refused = run("status", "--database", "postgresql://nobody@127.0.0.1:1/none")
    assert refused.returncode == 3 and "unreachable" in one_error_line(refused)


def test_bare_path_means_sqlite_and_env_default(tmp_path):
    path = tmp_path / "plain.db"
    assert add(str(path), "a", 1).returncode == 0
    assert [j["job_id"] for j in status(str(path))] == ["a"]
    via_env = run("status", "--json", env={"VEO_DATABASE": f"sqlite:///{path}"})
    assert via_env.returncode == 0 and json.loads(via_env.stdout)[0]["job_id"] == "a"


def test_logs_json_and_file_without_secrets(tmp_path):
    log_file = tmp_path / "veo.log"
    secret = "sk-very-secret-value"
    result = run("serve", "--database", f"sqlite:///{tmp_path / 'x.db'}", "--base-url", "http://example.invalid",
                 "--log-format", "json", "--log-file", str(log_file), env={"GEMINI_API_KEY": secret})
    assert result.returncode == 2
    assert secret not in result.stderr

    import io

    import structlog

    from actors.logs import configure_logging, redact_secrets

    stream = io.StringIO()
    configure_logging("info", "json", stream, log_file=str(log_file))
    try:
        structlog.get_logger("t").info("checked", job_id="j1", api_key=secret, url=f"https://x/?key={secret}")
        structlog.get_logger("t").debug("hidden", job_id="j2")
    finally:
        structlog.reset_defaults()  # leave the process's logging as other tests expect it
    line = json.loads(stream.getvalue().strip())
    assert line["event"] == "checked" and line["job_id"] == "j1" and line["level"] == "info"
    assert secret not in stream.getvalue() and secret not in log_file.read_text()
    assert json.loads(log_file.read_text().strip().splitlines()[-1])["job_id"] == "j1"
    assert "hidden" not in stream.getvalue()
    assert redact_secrets(None, "info", {"token": "t", "n": 1}) == {"token": "***", "n": 1}


def test_demo_prints_plain_lines_when_not_a_terminal(tmp_path):
    result = run("demo", "--jobs", "12", "--time-scale", "500", "--database", str(tmp_path / "demo.db"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("demo: 12 jobs")
    assert any(line.startswith("[") and "12/12" in line for line in lines)
    assert lines[-1].startswith("summary: ")
    assert "\x1b[" not in result.stdout
