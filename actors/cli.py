"""The ``python -m actors`` command line. Runs on the main thread.

Subcommands: ``demo``, ``serve``, ``add``, ``status``, ``watch``, ``retry``, ``cancel``; each
has ``--help``. Errors a user can cause print one line on stderr and exit non-zero, never a
traceback. Exit codes: 0 success, 1 another failure, 2 bad usage or configuration, 3 the
database is unreachable, 4 no such job (see :data:`actors.commands.EXIT_CODES`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from .commands import (
    EXIT_DATABASE,
    EXIT_OTHER,
    EXIT_USAGE,
    CommandError,
    add_jobs,
    cancel_job,
    guess_format,
    open_store,
    read_jobs_file,
    record_to_json,
    retry_job,
    validate_job,
)
from .errors import ConfigurationError, InvalidJobError, PollingError, StoreError
from .logs import FORMATS, LEVELS, configure_logging
from .messages import KINDS, STATUSES

EXIT_INTERRUPTED = 130
DEFAULT_DATABASE = "sqlite:///veo3-jobs.db"

_EPILOG = (
    "exit codes: 0 ok, 1 other failure, 2 bad usage or configuration, "
    "3 database unreachable, 4 unknown job"
)


def _database_url(value: str) -> str:
    """A database URL; a bare file path means a SQLite file."""
    value = value.strip()
    if "://" in value:
        return value
    return f"sqlite:///{value}"


def _add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Logging options, accepted before or after the subcommand."""
    default = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    group = parser.add_argument_group("logging")
    group.add_argument("--log-level", choices=LEVELS, default=default(None),
                       help="log events at this level and above (default: info for serve, warning otherwise)")
    group.add_argument("--log-format", choices=FORMATS, default=default("auto"),
                       help="console on a terminal, JSON lines otherwise (default: auto)")
    group.add_argument("--log-file", default=default(None), metavar="PATH",
                       help="also append every event as a JSON line to PATH")


def _add_database(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database", type=_database_url, default=_database_url(os.environ.get("VEO_DATABASE", DEFAULT_DATABASE)),
        metavar="URL",
        help="database URL (sqlite:///file.db, postgresql://user@host/db) or a SQLite file path "
        "(default: $VEO_DATABASE or sqlite:///veo3-jobs.db)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m actors", description="Poll Veo 3 video jobs with a supervised actor tree.", epilog=_EPILOG
    )
    _add_common(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, description: str | None = None) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=description or help_text, epilog=_EPILOG)
        _add_common(sub, top=False)
        return sub

    demo = command("demo", "run the tree against the simulated server on an embedded SQLite file")
    demo.add_argument("--jobs", type=int, default=100, help="how many jobs to submit (default: 100)")
    demo.add_argument("--time-scale", type=float, default=30.0, help="simulated seconds per real second (default: 30)")
    demo.add_argument("--database", default=None, help="SQLite file to use (default: a new file in a temporary directory)")
    demo.add_argument("--seed", type=int, default=1, help="seed of the simulated server (default: 1)")
    demo.add_argument("--failed-share", type=float, default=0.03, help="share of operations the server fails (default: 0.03)")
    demo.add_argument("--filtered-share", type=float, default=0.03, help="share of operations the server filters (default: 0.03)")

    serve = command(
        "serve", "run the tree as a service until SIGTERM/SIGINT",
        "Run the polling tree until SIGTERM or SIGINT, then shut down gracefully. Jobs arrive "
        "through the database (see `add`) and are picked up within --rescan-interval seconds. "
        "Credentials come from the environment only: GEMINI_API_KEY (or --credentials-file) for "
        "gemini; VERTEX_PROJECT, VERTEX_LOCATION and VERTEX_ACCESS_TOKEN for vertex.",
    )
    _add_database(serve)
    serve.add_argument("--provider", choices=("gemini", "vertex"), default="gemini", help="video API (default: gemini)")
    serve.add_argument("--base-url", default=None, metavar="URL",
                       help="API root, e.g. a local simulated server (plain http only on loopback)")
    serve.add_argument("--credentials-file", default=None, metavar="PATH",
                       help="JSON object mapping profile ids to API keys or tokens ('*': every other "
                       "profile; else GEMINI_API_KEY or VERTEX_ACCESS_TOKEN serves them)")
    serve.add_argument("--metrics-port", type=int, default=None, metavar="N",
                       help="serve Prometheus metrics on this port (0 picks a free one)")
    serve.add_argument("--metrics-host", default="127.0.0.1", metavar="ADDR",
                       help="address the metrics endpoint binds (default: 127.0.0.1; 0.0.0.0 for all)")
    serve.add_argument("--time-scale", type=float, default=None, metavar="X",
                       help="compress every polling duration by X (for tests and demos; default: real time)")
    serve.add_argument("--rescan-interval", type=float, default=None, metavar="SECONDS",
                       help="seconds between scans of the database for new, retried or cancelled jobs (default: 2)")
    serve.add_argument("--profile-rate-limit", type=float, default=None, metavar="PER_SECOND",
                       help="status checks per second allowed per profile (default: unlimited)")
    serve.add_argument("--shutdown-timeout", type=float, default=10.0, metavar="SECONDS",
                       help="seconds a graceful shutdown may take (default: 10)")

    add = command(
        "add", "add one job (flags) or many (a JSON-lines or CSV file)",
        "Store jobs as pending rows due now; a running `serve` on the same database picks them "
        "up. A file has one job per line (JSON objects) or a CSV header with the same field "
        "names: job_id, prompt_id, kind, profile_id, operation_name, scene_id. Nothing is stored "
        "unless every job is valid.",
    )
    _add_database(add)
    add.add_argument("--job-id")
    add.add_argument("--prompt-id")
    add.add_argument("--kind", choices=KINDS)
    add.add_argument("--profile-id", default="default", help="(default: default)")
    add.add_argument("--operation-name", metavar="NAME", help="models/{model}/operations/{id}")
    add.add_argument("--scene-id", default=None)
    add.add_argument("--file", metavar="PATH", help="JSON-lines or CSV file of jobs ('-' reads stdin)")
    add.add_argument("--format", choices=("jsonl", "csv"), default=None,
                     help="file format (default: csv for *.csv, jsonl otherwise)")
    add.add_argument("--json", action="store_true", help="print the result as JSON")

    status = command("status", "show a table of jobs")
    _add_database(status)
    status.add_argument("--status", action="append", choices=STATUSES, metavar="STATUS",
                        help=f"only jobs in this status ({', '.join(STATUSES)}); repeatable")
    status.add_argument("--kind", action="append", choices=KINDS, help="only jobs of this kind; repeatable")
    status.add_argument("--limit", type=int, default=None, metavar="N", help="show at most N jobs (oldest first)")
    status.add_argument("--json", action="store_true", help="print the jobs as a JSON array")

    watch = command("watch", "a live terminal dashboard of the job table")
    _add_database(watch)
    watch.add_argument("--metrics-url", default=None, metavar="URL",
                       help="a serve metrics endpoint (http://127.0.0.1:9464) for restarts, alerts and checks/s")
    watch.add_argument("--interval", type=float, default=2.0, metavar="SECONDS", help="refresh period (default: 2)")
    watch.add_argument("--once", action="store_true", help="print one frame and exit")

    retry = command("retry", "put a failed job back to pending")
    _add_database(retry)
    retry.add_argument("job_id", metavar="JOB")
    retry.add_argument("--json", action="store_true", help="print the job as JSON")

    cancel = command("cancel", "fail a live job as cancelled and stop polling it")
    _add_database(cancel)
    cancel.add_argument("job_id", metavar="JOB")
    cancel.add_argument("--reason", default="cancelled", help="the error stored on the job (default: cancelled)")
    cancel.add_argument("--json", action="store_true", help="print the job as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        level = args.log_level or ("info" if args.command == "serve" else "warning")
        configure_logging(level, args.log_format, log_file=args.log_file)
        return _run(args)
    except CommandError as exc:
        return _fail(str(exc), exc.code)
    except (InvalidJobError, ConfigurationError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except StoreError as exc:
        return _fail(f"database error: {str(exc).splitlines()[0]}", EXIT_DATABASE)
    except PollingError as exc:
        return _fail(str(exc), EXIT_OTHER)
    except (ValueError, TimeoutError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except OSError as exc:
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        return _fail(f"{exc.strerror or exc}{where}", EXIT_USAGE)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from .demo import run_demo

        database = args.database or os.path.join(tempfile.mkdtemp(prefix="veo-demo-"), "veo3-demo.db")
        result = run_demo(
            jobs=args.jobs, time_scale=args.time_scale, database=database, seed=args.seed,
            failed_share=args.failed_share, filtered_share=args.filtered_share,
        )
        return 0 if result.completed + result.failed == result.jobs else EXIT_OTHER
    if args.command == "serve":
        from .serve import ServeOptions, run_serve

        return run_serve(ServeOptions(
            database=args.database, provider=args.provider, base_url=args.base_url,
            credentials_file=args.credentials_file, metrics_port=args.metrics_port,
            metrics_host=args.metrics_host, time_scale=args.time_scale,
            rescan_interval=args.rescan_interval, profile_rate_limit=args.profile_rate_limit,
            shutdown_timeout=args.shutdown_timeout,
        ))
    if args.command == "add":
        return _add(args)
    if args.command == "status":
        return _status(args)
    if args.command == "watch":
        from .dashboard import run_watch

        with open_store(args.database, must_exist=True) as store:
            return run_watch(store, database=args.database, metrics_url=args.metrics_url,
                             interval=args.interval, once=args.once)
    if args.command in ("retry", "cancel"):
        with open_store(args.database, must_exist=True) as store:
            if args.command == "retry":
                record = retry_job(store, args.job_id)
            else:
                record = cancel_job(store, args.job_id, args.reason)
        if args.json:
            print(json.dumps(record_to_json(record)))
        else:
            verb = "back to pending" if args.command == "retry" else f"cancelled ({record.error})"
            print(f"{record.job_id}: {verb}")
        return 0
    return EXIT_USAGE


def _add(args: argparse.Namespace) -> int:
    flags = {
        "job_id": args.job_id, "prompt_id": args.prompt_id, "kind": args.kind,
        "operation_name": args.operation_name, "scene_id": args.scene_id,
    }
    if args.file:
        given = [f"--{name.replace('_', '-')}" for name, value in flags.items() if value is not None]
        if given:
            raise CommandError(f"give either --file or the job's flags, not both ({', '.join(given)})", EXIT_USAGE)
        fmt = args.format or guess_format(args.file)
        if args.file == "-":
            jobs = read_jobs_file(sys.stdin, fmt)
        else:
            with open(args.file, encoding="utf-8", newline="") as handle:
                jobs = read_jobs_file(handle, fmt)
        if not jobs:
            raise CommandError(f"no jobs in {args.file}", EXIT_USAGE)
    else:
        missing = [f"--{name.replace('_', '-')}" for name in ("job_id", "prompt_id", "kind", "operation_name")
                   if flags[name] is None]
        if missing:
            raise CommandError(f"missing {', '.join(missing)} (or give --file)", EXIT_USAGE)
        jobs = [validate_job({**flags, "profile_id": args.profile_id})]
    with open_store(args.database) as store:
        added, known = add_jobs(store, jobs)
    if args.json:
        print(json.dumps({"added": added, "already_known": known, "job_ids": [job.job_id for job in jobs]}))
    else:
        print(f"added {added} job(s)" + (f", {known} already known" if known else ""))
    return 0


def _status(args: argparse.Namespace) -> int:
    from .queries import select_jobs

    if args.limit is not None and args.limit < 1:
        raise CommandError("--limit must be at least 1", EXIT_USAGE)
    with open_store(args.database, must_exist=True) as store:
        records = select_jobs(store, statuses=args.status, kinds=args.kind, limit=args.limit)
    if args.json:
        print(json.dumps([record_to_json(record) for record in records], indent=None))
        return 0
    print_status_table(records)
    return 0


def print_status_table(records, console=None, now: float | None = None) -> None:
    """Print jobs as a table with a one-line summary (to stdout by default)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from .dashboard import _STYLE, _age, _detail

    if console is None:
        console = Console() if sys.stdout.isatty() else Console(width=200, no_color=True, highlight=False)
    now = time.time() if now is None else now
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name, justify in (("JOB", "left"), ("KIND", "left"), ("STATUS", "left"), ("CHECKS", "right"),
                          ("AGE", "right"), ("UPDATED", "right"), ("PROFILE", "left"), ("RESULT", "left")):
        table.add_column(name, justify=justify, no_wrap=name != "RESULT")
    counts: dict[str, int] = {}
    for record in records:
        counts[record.status] = counts.get(record.status, 0) + 1
        table.add_row(
            Text(record.job_id), record.kind, Text(record.status, style=_STYLE.get(record.status, "")),
            str(record.attempts), _age(now - record.created_at), f"{_age(now - record.updated_at)} ago",
            Text(record.profile_id), Text(_detail(record, 60)),
        )
    if records:
        console.print(table)
    summary = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts.get(s))
    console.print(f"{len(records)} job(s)" + (f": {summary}" if summary else ""), highlight=False)
