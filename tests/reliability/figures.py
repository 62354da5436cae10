"""Figures the reliability tests report (what the README's Reliability section quotes).

When ``VEO_RELIABILITY_FIGURES`` names a file, each call appends one JSON line to it; either
way the figures are printed (visible with ``pytest -s``).
"""

from __future__ import annotations

import json
import os
import threading

_lock = threading.Lock()


def record_figure(topic: str, figures: dict) -> None:
    line = json.dumps({"topic": topic, **figures}, sort_keys=True)
    print(f"\nreliability figures: {line}")
    path = os.environ.get("VEO_RELIABILITY_FIGURES")
    if path:
        with _lock, open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
