"""The simulated Veo server in a process of its own (so it does not share the measured GIL).

``python -m benchmarks.simserver '{"time_scale": 1, ...}'`` prints ``{"base_url": ...}`` and
serves until its stdin closes; then prints ``{"requests": N}``.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
import os
import subprocess

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def simulator_process(**kwargs: Any) -> Iterator[str]:
    """Start a simulator in a child process; yields its base URL."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.simserver", json.dumps(kwargs)], cwd=ROOT,
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        yield json.loads(line)["base_url"]
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str]) -> int:
    import actors

    kwargs = json.loads(argv[0]) if argv else {}
    with actors.VeoSimulator(**kwargs) as sim:
        print(json.dumps({"base_url": sim.base_url}), flush=True)
        sys.stdin.read()
        print(json.dumps({"requests": sim.request_count}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
