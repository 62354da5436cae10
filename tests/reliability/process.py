"""Run ``service.py`` (or the CLI's ``serve``) as a child process and read its JSON lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter

SERVICE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "service.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def serve_cli_available() -> bool:
    """True when ``python -m actors serve`` exists in this checkout."""
    done = subprocess.run(
        [sys.executable, "-m", "actors", "serve", "--help"], cwd=ROOT,
        capture_output=True, text=True, timeout=60,
    )
    return done.returncode == 0


class ServiceProcess:
    """One run of the polling service: its JSON events, readable while it runs."""

    def __init__(self, argv: list[str], *, env: dict[str, str] | None = None) -> None:
        self.events: list[dict] = []
        self.stderr_lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "GEMINI_API_KEY": "test-key", **(env or {})},
        )
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @classmethod
    def runner(cls, database: str, base_url: str, *, time_scale: float, config: dict | None = None,
               shutdown_timeout: float = 10.0) -> ServiceProcess:
        return cls([
            sys.executable, SERVICE, "--database", database, "--base-url", base_url,
            "--time-scale", str(time_scale), "--config", json.dumps(config or {}),
            "--shutdown-timeout", str(shutdown_timeout),
        ])

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "text", "line": line.rstrip("\n")}
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()
        with self._cond:
            self.events.append({"event": "eof"})
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            with self._cond:
                self.stderr_lines.append(line.rstrip("\n"))

    def wait_for(self, predicate, timeout: float) -> bool:
        """Wait until ``predicate(events)`` holds (or the process ended and it does not)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: predicate(self.events) or any(e["event"] == "eof" for e in self.events),
                timeout,
            ) and predicate(self.events)

    def wait_ready(self, timeout: float = 30.0) -> bool:
        return self.wait_for(lambda events: any(e["event"] == "ready" for e in events), timeout)

    def kill(self) -> int:
        """SIGKILL and reap; returns the exit code."""
        self.proc.send_signal(signal.SIGKILL)
        return self.finish(30.0)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float) -> int:
        """Wait for the process to end and its pipes to drain; returns the exit code."""
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code

    def updates(self) -> list[dict]:
        with self._cond:
            return [e for e in self.events if e["event"] == "update"]

    def completions(self) -> Counter:
        return Counter(e["job_id"] for e in self.updates() if e["status"] == "completed")

    def stop_if_running(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def diagnostics(self) -> str:
        with self._cond:
            return "\n".join(self.stderr_lines[-40:])
