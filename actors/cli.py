"""The ``python -m actors`` command line. Runs on the main thread.

Errors a user can cause print one line and exit non-zero, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from .errors import PollingError
from .logs import LEVELS, configure_logging

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m actors", description="Poll Veo 3 video jobs with a supervised actor tree.")
    parser.add_argument("--log-level", choices=LEVELS, default="warning", help="log events at this level and above (default: warning)")
    parser.add_argument("--log-format", choices=("auto", "console", "json"), default="auto", help="console on a terminal, JSON lines otherwise (default: auto)")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the tree against the simulated server on an embedded SQLite file")
    demo.add_argument("--jobs", type=int, default=100, help="how many jobs to submit (default: 100)")
    demo.add_argument("--time-scale", type=float, default=30.0, help="simulated seconds per real second (default: 30)")
    demo.add_argument("--database", default=None, help="SQLite file to use (default: a new file in a temporary directory)")
    demo.add_argument("--seed", type=int, default=1, help="seed of the simulated server (default: 1)")
    demo.add_argument("--failed-share", type=float, default=0.03, help="share of operations the server fails (default: 0.03)")
    demo.add_argument("--filtered-share", type=float, default=0.03, help="share of operations the server filters (default: 0.03)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; returns the exit code."""
    args = _parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    try:
        if args.command == "demo":
            from .demo import run_demo

            database = args.database or os.path.join(tempfile.mkdtemp(prefix="veo-demo-"), "veo3-demo.db")
            result = run_demo(
                jobs=args.jobs, time_scale=args.time_scale, database=database, seed=args.seed,
                failed_share=args.failed_share, filtered_share=args.filtered_share,
            )
            return 0 if result.completed + result.failed == result.jobs else 1
    except (PollingError, ValueError, OSError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return EXIT_USAGE
