"""The benchmark harness runs end to end on a tiny input and writes parseable outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_harness_smoke(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "time scale" in proc.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert {"table", "detection", "ceilings", "meta"} <= set(results)
    detection = results["detection"]
    for name in ("reference", "sdk-loop", "api-core", "oracle", "adaptive"):
        assert detection[name]["heard"] == detection[name]["jobs"] > 0
        assert detection[name]["calls_per_job"] >= 1.0
    assert {row["peer"] for row in results["table"]["rows"]} == {"tree", "host-thread", "sdk-loop"}
    assert all(row["repeats"] == 1 and not row["errors"] for row in results["table"]["rows"])
    assert results["ceilings"]["checks_per_second"]["tree"]["checks_per_s"] > 0
    text = (tmp_path / "RESULTS.md").read_text()
    for heading in ("## 1.", "## 2.", "## 3."):
        assert heading in text
    for image in ("detection.png", "table.png"):
        assert (tmp_path / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({image})" in text
