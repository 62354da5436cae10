"""Every message the actors exchange, and the StatusUpdate hosts receive.

Messages are small immutable records. Public ones are what hosts, tests and tools may send or
receive (``StatusUpdate``, ``Alert``, ``Crash``); the ones starting with ``_`` are the tree's
own wiring and may change without notice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PENDING = "pending"
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
STATUSES = (PENDING, PROCESSING, COMPLETED, FAILED)
TERMINAL = frozenset({COMPLETED, FAILED})
KINDS = ("generation", "upscale")


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One job's state after a change: what listeners are told, and what replay gives."""

    job_id: str
    kind: str
    status: str
    attempts: int
    video_url: str | None
    error: str | None
    prompt_id: str
    profile_id: str
    operation_name: str
    scene_id: str | None
    updated_at: float
    video_uris: tuple[str, ...] = ()
    video_path: str | None = None

    @property
    def terminal(self) -> bool:
        """True for completed and failed: the job will not change again."""
        return self.status in TERMINAL


@dataclass(frozen=True, slots=True)
class Alert:
    """Something a human should look at (restart storms, refused credentials, a full disk).

    Sent to listeners registered with ``alerts=True``.
    """

    kind: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class Crash:
    """Admin message: the receiving actor fails as if a handler raised (crash injection)."""

    reason: str = "crash injected"


class InjectedCrash(Exception):
    """The exception an actor raises when told :class:`Crash`."""


# -- wiring between the tree's actors ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ChildExited:
    """A child tells the supervisor it stopped (crashed or not)."""

    role: str
    key: str | None
    urn: str
    crashed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class _Tick:
    """The poller's own timer fired."""


@dataclass(frozen=True, slots=True)
class _Track:
    """Poller: put a job on the schedule, first check after ``due_at`` (epoch seconds)."""

    job_id: str
    operation_name: str
    profile_id: str
    due_at: float
    ref: Any = None


@dataclass(frozen=True, slots=True)
class _Untrack:
    """Poller: the job is terminal or gone; drop it from the schedule."""

    job_id: str


@dataclass(frozen=True, slots=True)
class _CheckDone:
    """A check thread finished one status check (``outcome`` is a status or an exception)."""

    job_id: str
    generation: int
    outcome: Any
    started_at: float


@dataclass(frozen=True, slots=True)
class _ApplyCheck:
    """Job actor: apply one check's outcome and reschedule or finish."""

    outcome: Any
    checked_at: float


@dataclass(frozen=True, slots=True)
class _Publish:
    """Broadcaster: relay this update to every listener."""

    update: StatusUpdate
    relay: bool = True


@dataclass(frozen=True, slots=True)
class _RestartPoller:
    """Supervisor: the restart delay after a poller crash has passed."""

    incarnation: int


@dataclass(frozen=True, slots=True)
class _Reschedule:
    """Poller: the job's next check is due at ``due_at``."""

    job_id: str
    due_at: float


@dataclass(frozen=True, slots=True)
class _Retire:
    """Job actor: the row turned terminal elsewhere (cancel, another node); announce and stop."""
