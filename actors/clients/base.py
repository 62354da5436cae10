"""What a status client is: the one boundary that speaks HTTP to a video API.

A client turns an operation name into an :class:`OperationStatus`, or raises one of the
:class:`~actors.errors.ApiError` family. It is called from the poller's check threads, several
at once, so implementations must be thread-safe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..errors import InvalidJobError

#: The Gemini API's operation names: ``models/{model}/operations/{id}``.
GEMINI_OPERATION_PATTERN = re.compile(
    r"^models/[A-Za-z0-9][A-Za-z0-9._-]{0,127}/operations/[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
)


def validate_operation_name(name: object) -> str:
    """Return ``name`` if it is a Gemini operation name, else raise :class:`InvalidJobError`.

    The pattern admits no ``..``, no query, no scheme and no host, so a name can be joined
    onto a base URL safely.
    """
    if not isinstance(name, str) or not GEMINI_OPERATION_PATTERN.fullmatch(name):
        shown = repr(name) if not isinstance(name, str) else repr(name[:80])
        raise InvalidJobError(
            f"operation name {shown} does not match models/{{model}}/operations/{{id}}"
        )
    return name


@dataclass(frozen=True, slots=True)
class OperationStatus:
    """One answer about one operation, whatever API gave it.

    ``done`` is False while the video is being made. When done, exactly one of these holds:
    ``video_uris`` is non-empty (success), ``error`` is set (the API failed the operation or
    filtered its output: ``filtered_reasons`` then lists why), or neither (a malformed done
    answer, which the job treats as a failure).
    """

    name: str
    done: bool = False
    video_uris: tuple[str, ...] = ()
    error: str | None = None
    error_code: int | None = None
    filtered_reasons: tuple[str, ...] = field(default=())

    @property
    def succeeded(self) -> bool:
        """True when the operation finished with at least one video."""
        return self.done and bool(self.video_uris) and self.error is None


@runtime_checkable
class StatusClient(Protocol):
    """The protocol a host implements to poll another provider.

    ``check`` is called from several threads at once. It returns the operation's status or
    raises an :class:`~actors.errors.ApiError` subclass; anything else it raises is treated as
    a transient error. ``profile_id`` selects the account whose credentials to use.
    """

    def check(self, operation_name: str, *, profile_id: str | None = None) -> OperationStatus:
        """Fetch the status of one operation (blocking; runs on a check thread)."""
        ...

    def close(self) -> None:
        """Release connections (runs on the thread that shuts the manager down)."""
        ...
