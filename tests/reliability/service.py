"""A polling service process for the reliability tests (not the CLI: kept independent of it).

Usage::

    python tests/reliability/service.py --database URL --base-url URL [--time-scale X]
        [--config JSON] [--shutdown-timeout S]

It builds a :class:`actors.PollingManager` over the database and a Gemini client on the base
URL (key from ``GEMINI_API_KEY``), starts it, and runs until SIGTERM or SIGINT, then shuts the
manager down and exits 0 when the shutdown was clean (1 otherwise). Every line it prints on
stdout is one JSON object, flushed at once, so a test reading the pipe sees each as it happens:

- ``{"event": "ready", "pid": ..., "live": N}`` once the tree runs;
- ``{"event": "update", "job_id": ..., "status": ..., ...}`` for every terminal StatusUpdate;
- ``{"event": "stopping", "signal": ...}`` and ``{"event": "stopped", "clean": ...}`` at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(_HERE)))  # the repository root

import actors  # noqa: E402
from actors.logs import configure_logging  # noqa: E402

_print_lock = threading.Lock()


def emit(**fields: object) -> None:
    """Print one JSON line and flush it (any thread)."""
    line = json.dumps(fields, sort_keys=True)
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def on_message(message: object) -> None:
    """The listener: runs on its own listener actor thread."""
    if isinstance(message, actors.Alert):
        emit(event="alert", kind=message.kind, message=message.message)
    elif isinstance(message, actors.StatusUpdate) and message.terminal:
        emit(
            event="update", job_id=message.job_id, status=message.status,
            video_url=message.video_url, error=message.error, attempts=message.attempts,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--config", default="{}", help="PollingConfig fields as JSON (before scaling)")
    parser.add_argument("--shutdown-timeout", type=float, default=10.0)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    configure_logging(args.log_level, "json")  # to stderr: stdout carries only our events

    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, frame: object) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    config = actors.PollingConfig(**json.loads(args.config)).scaled(args.time_scale)
    client = actors.GeminiVeoClient(
        api_key=os.environ.get("GEMINI_API_KEY", "test-key"), base_url=args.base_url
    )
    manager = actors.PollingManager(database=args.database, client=client, config=config)
    manager.initialize()
    manager.add_listener(on_message, alerts=True)
    emit(event="ready", pid=os.getpid(), live=len(manager.live_jobs()))
    while not stop.wait(0.5):
        pass
    emit(event="stopping", signal=received[0] if received else None)
    started = time.monotonic()
    clean = manager.shutdown(timeout=args.shutdown_timeout)
    emit(event="stopped", clean=clean, took=round(time.monotonic() - started, 3))
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
