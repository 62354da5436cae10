"""``python -m actors serve``: run the tree as a long-lived service.

Runs on the main thread: it builds the status client from the environment, starts the tree
on the database, optionally serves Prometheus metrics, and waits for SIGTERM or SIGINT; then
it shuts the tree down gracefully (checks in flight land, everything is persisted) and
returns. Jobs reach it through the database: rows other processes insert are adopted on the
supervisor's next rescan of the store.

Credentials never come from the command line: ``GEMINI_API_KEY`` (or a JSON file mapping
profile ids to keys, ``"*"`` for every other profile) for the Gemini API; ``VERTEX_PROJECT``,
``VERTEX_LOCATION`` and ``VERTEX_ACCESS_TOKEN`` (or the same kind of file, of tokens) for
Vertex AI.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass, replace
from typing import Any, Mapping

import structlog

from .commands import EXIT_DATABASE, EXIT_OTHER, EXIT_USAGE, CommandError
from .config import PollingConfig
from .errors import AuthError, ConfigurationError, StoreError

log = structlog.get_logger("actors.serve")



@dataclass(frozen=True)
class ServeOptions:
    """What ``serve`` was asked to do (parsed from the command line)."""

    database: str
    provider: str = "gemini"
    base_url: str | None = None
    credentials_file: str | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    time_scale: float | None = None
    rescan_interval: float | None = None
    profile_rate_limit: float | None = None
    shutdown_timeout: float = 10.0


def _load_credentials(path: str, fallback: str | None) -> Any:
    """The per-profile credentials file (``"*"`` is the default); ``fallback`` serves the rest."""
    from .clients.credentials import load_credentials_file

    credentials = load_credentials_file(path)
    if fallback:
        try:
            credentials.get(None)
        except AuthError:
            credentials.set(None, fallback)
    return credentials


def build_client(options: ServeOptions, environ: Mapping[str, str] | None = None) -> Any:
    """The status client for ``options.provider``, with credentials from the environment.

    Raises :class:`CommandError` (exit 2) for a missing credential, a bad base URL or an
    unavailable provider. Never puts a credential into a message.
    """
    env = os.environ if environ is None else environ
    if options.provider == "gemini":
        from .clients.gemini import DEFAULT_BASE_URL, GeminiVeoClient

        base_url = options.base_url or DEFAULT_BASE_URL
        env_key = env.get("GEMINI_API_KEY", "").strip()
        try:
            if options.credentials_file:
                credentials = _load_credentials(options.credentials_file, env_key)
                return GeminiVeoClient(base_url=base_url, credentials=credentials)
            if not env_key:
                raise CommandError(
                    "no API key: set GEMINI_API_KEY (or give --credentials-file with a key per profile)", EXIT_USAGE
                )
            return GeminiVeoClient(api_key=env_key, base_url=base_url)
        except ConfigurationError as exc:
            raise CommandError(f"bad configuration: {exc}", EXIT_USAGE) from exc
    if options.provider == "vertex":
        try:
            from .clients.vertex import VertexVeoClient  # noqa: PLC0415 - optional, imported lazily
        except ImportError as exc:
            raise CommandError("the vertex provider is not available in this installation", EXIT_USAGE) from exc
        needed = ["VERTEX_PROJECT", "VERTEX_LOCATION"]
        if not options.credentials_file:
            needed.append("VERTEX_ACCESS_TOKEN")
        missing = [name for name in needed if not env.get(name, "").strip()]
        if missing:
            raise CommandError(f"the vertex provider needs {', '.join(missing)} in the environment", EXIT_USAGE)
        token = env.get("VERTEX_ACCESS_TOKEN", "").strip()
        try:
            provider: Any = _load_credentials(options.credentials_file, token) if options.credentials_file else token
            return VertexVeoClient(
                env["VERTEX_PROJECT"].strip(), env["VERTEX_LOCATION"].strip(), provider, base_url=options.base_url
            )
        except ConfigurationError as exc:
            raise CommandError(f"bad configuration: {exc}", EXIT_USAGE) from exc
    raise CommandError(f"unknown provider {options.provider!r}: use gemini or vertex", EXIT_USAGE)


def build_config(options: ServeOptions) -> PollingConfig:
    """The reference configuration, compressed by ``--time-scale``, with the other flags applied."""
    try:
        config = PollingConfig()
        if options.time_scale is not None:
            config = config.scaled(options.time_scale)
        if options.rescan_interval is not None:
            config = replace(config, rescan_interval=options.rescan_interval)
        if options.profile_rate_limit is not None:
            config = replace(config, profile_rate_limit=options.profile_rate_limit)
        return config
    except (ConfigurationError, ZeroDivisionError) as exc:
        raise CommandError(f"bad configuration: {exc}", EXIT_USAGE) from exc


def run_serve(options: ServeOptions, *, stop: threading.Event | None = None, ready=None) -> int:
    """Run the tree until SIGTERM/SIGINT (or ``stop`` is set); returns the exit code.

    0 after a clean shutdown, 1 when the shutdown did not finish within
    ``shutdown_timeout``. Signal handlers are installed only on the main thread (and restored
    on return). ``ready`` (a callable) is called with the manager once the tree runs.
    """
    from .manager import PollingManager

    if options.time_scale is not None and not options.time_scale > 0:
        raise CommandError("--time-scale must be positive", EXIT_USAGE)
    if options.metrics_port is not None and not 0 <= options.metrics_port <= 65535:
        raise CommandError("--metrics-port must be between 0 and 65535", EXIT_USAGE)
    if not options.shutdown_timeout > 0:
        raise CommandError("--shutdown-timeout must be positive", EXIT_USAGE)
    config = build_config(options)
    client = build_client(options)
    try:
        manager = PollingManager(database=options.database, client=client, config=config)
    except ConfigurationError as exc:
        client.close()
        raise CommandError(f"bad configuration: {exc}", EXIT_USAGE) from exc

    stop = stop or threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        def on_signal(signum: int, frame: Any) -> None:
            stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, on_signal)
    exporter = None
    try:
        if options.metrics_port is not None:
            from .exporter import start_exporter

            try:
                exporter = start_exporter(
                    manager.runtime.metrics, manager.store, options.metrics_port, options.metrics_host
                )
            except OSError as exc:
                client.close()
                raise CommandError(
                    f"cannot serve metrics on {options.metrics_host}:{options.metrics_port}: {exc.strerror or exc}",
                    EXIT_USAGE,
                ) from exc
        try:
            manager.initialize()
        except StoreError as exc:
            client.close()
            raise CommandError(f"database unreachable: {str(exc).splitlines()[0]}", EXIT_DATABASE) from exc
        try:
            counts = manager.store.count_by_status()
            log.info(
                "serve_started", provider=options.provider, client=repr(client),
                live_jobs=counts["pending"] + counts["processing"],
                metrics_port=exporter.port if exporter is not None else None,
                rescan_interval=config.rescan_interval, tick_interval=config.tick_interval,
            )
            if ready is not None:
                ready(manager)
            while not stop.wait(0.5):
                pass
            log.info("serve_stopping", timeout=options.shutdown_timeout)
        finally:
            clean = manager.shutdown(timeout=options.shutdown_timeout)
            log.info("serve_stopped", clean=clean)
    finally:
        if exporter is not None:
            exporter.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if not clean:
        raise CommandError(f"the tree did not stop cleanly within {options.shutdown_timeout:g} s", EXIT_OTHER)
    return 0
