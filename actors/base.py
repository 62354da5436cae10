"""SupervisedActor: the one base class of every child of the supervisor.

It makes a child's death visible however it happens. pykka calls ``on_failure`` when a
``tell`` handler raises, but not when ``on_start`` raises, and calls ``on_stop`` only on an
orderly stop; this class reports each case to the supervisor exactly once as
``_ChildExited``. It also turns any ``BaseException`` from a handler into an ordinary
exception, because pykka answers a ``BaseException`` by stopping every actor in the process.

All hooks run on the actor's own thread. Per-job actors will later move onto a pooled
runtime; keeping the base class here keeps that move in one place.
"""

from __future__ import annotations

from typing import Any

import pykka
import structlog

from .messages import Crash, InjectedCrash, _ChildExited
from .runtime import Runtime

log = structlog.get_logger("actors")


class SupervisedActor(pykka.ThreadingActor):
    """A child of the supervisor. Subclasses implement ``setup``, ``handle``, ``teardown``."""

    role = "child"

    def __init__(self, runtime: Runtime, key: str | None = None) -> None:
        super().__init__()
        self.runtime = runtime
        self.key = key
        self._exit_reported = False
        #: What ``on_stop`` reports; a job sets "finished" when it stops itself as terminal.
        self.stop_reason = "stopped"

    # -- subclass hooks (actor thread) -------------------------------------------------------

    def setup(self) -> None:
        """Start work; raising here kills the actor and the supervisor is told."""

    def handle(self, message: Any) -> Any:
        """Handle one message; raising in a tell kills the actor (the supervisor is told)."""
        raise TypeError(f"{type(self).__name__} got an unknown message: {type(message).__name__}")

    def teardown(self, crashed: bool) -> None:
        """Release what ``setup`` took; runs once however the actor ends. Must not raise."""

    # -- pykka hooks ------------------------------------------------------------------------

    def on_start(self) -> None:
        try:
            self.setup()
        except Exception as exc:
            self._exit(crashed=True, reason=f"on_start failed: {type(exc).__name__}: {exc}")
            raise
        except BaseException as exc:  # pykka would stop every actor in the process
            self._exit(crashed=True, reason=f"on_start failed: {type(exc).__name__}")
            raise RuntimeError(f"{type(exc).__name__} in on_start") from exc

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Crash):
            raise InjectedCrash(message.reason)
        try:
            return self.handle(message)
        except Exception:
            raise
        except BaseException as exc:
            raise RuntimeError(f"{type(exc).__name__} escaped a handler") from exc

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self._exit(crashed=True, reason=f"{exception_type.__name__}: {exception_value}")

    def on_stop(self) -> None:
        self._exit(crashed=False, reason=self.stop_reason)

    def _exit(self, *, crashed: bool, reason: str) -> None:
        if self._exit_reported:
            return
        self._exit_reported = True
        try:
            self.teardown(crashed)
        except Exception:
            log.exception("teardown_failed", role=self.role, key=self.key)
        if crashed:
            log.error("actor_crashed", role=self.role, key=self.key, reason=reason)
        self.runtime.tell(
            "supervisor",
            _ChildExited(self.role, self.key, self.actor_urn, crashed, reason),
        )
