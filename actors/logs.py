"""structlog configuration for the command line (libraries embedding us configure their own).

Console output on a terminal, JSON lines otherwise or on request; a level filter; optionally
every event also as a JSON line in a file (the reference design kept a separate worker log).
Values of keys that look like credentials are masked before anything is rendered. Runs once
on the main thread before the tree starts.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from typing import Any, TextIO

import structlog

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("auto", "console", "json")

_SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|authorization|credential)", re.IGNORECASE)
_SECRET_IN_TEXT = re.compile(r"((?:key|token|secret|password)=)[^&\s]+", re.IGNORECASE)
_MASK = "***"


def redact_secrets(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: mask credential-like keys and ``key=...`` fragments in strings."""
    for key, value in list(event_dict.items()):
        if _SECRET_KEY.search(key) and value is not None:
            event_dict[key] = _MASK
        elif isinstance(value, str) and "=" in value:
            event_dict[key] = _SECRET_IN_TEXT.sub(r"\1" + _MASK, value)
    return event_dict


class _FileSink:
    """structlog processor: write each event as one JSON line to a file, then pass it on."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        line = json.dumps(event_dict, default=str)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()
        return event_dict


_file: TextIO | None = None


def configure_logging(
    level: str = "warning", fmt: str = "auto", stream: TextIO | None = None, *, log_file: str | None = None
) -> None:
    """Configure structlog for this process.

    ``fmt`` is ``console``, ``json`` or ``auto`` (console on a terminal, else JSON);
    ``log_file`` also appends every event as a JSON line to that file. Raises ``ValueError``
    for an unknown level or format and ``OSError`` when the file cannot be opened.
    """
    global _file
    stream = stream or sys.stderr
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
    tty = hasattr(stream, "isatty") and stream.isatty()
    if fmt == "auto":
        fmt = "console" if tty else "json"
    renderer = structlog.dev.ConsoleRenderer(colors=tty) if fmt == "console" else structlog.processors.JSONRenderer()
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
        structlog.processors.format_exc_info,
    ]
    if _file is not None:
        _file.close()
        _file = None
    if log_file:
        _file = open(log_file, "a", encoding="utf-8")  # noqa: SIM115 - kept for the process's life
        processors.append(_FileSink(_file))
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
