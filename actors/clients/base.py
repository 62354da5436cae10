"""What a status client is: the one boundary that speaks HTTP to a video API.

A client turns an operation name into an :class:`OperationStatus`, or raises one of the
:class:`~actors.errors.ApiError` family. It is called from the poller's check threads, several
at once, so implementations must be thread-safe.

Two protocols describe a client:

- :class:`StatusClient` (required): ``check`` one operation, ``close`` the connections.
- :class:`BatchStatusClient` (optional): a :class:`StatusClient` that can also check several
  operations in one call with ``check_many``. The poller uses ``check_many`` when the client
  has it; the Gemini API and Vertex AI have no batch endpoint, so their clients do not.

Operation names are checked against the API's pattern before any request:
:func:`validate_operation_name` accepts a Gemini *or* a Vertex name (what the manager needs);
:func:`validate_gemini_operation_name` and :func:`validate_vertex_operation_name` are strict.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..errors import InvalidJobError

#: The Gemini API's operation names: ``models/{model}/operations/{id}``.
GEMINI_OPERATION_PATTERN = re.compile(
    r"^models/[A-Za-z0-9][A-Za-z0-9._-]{0,127}/operations/[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
)

#: Vertex AI's operation names:
#: ``projects/{project}/locations/{location}/publishers/google/models/{model}/operations/{id}``.
#: The named groups ``project``, ``location``, ``model`` and ``id`` pick the parts out.
VERTEX_OPERATION_PATTERN = re.compile(
    r"^projects/(?P<project>[A-Za-z0-9][A-Za-z0-9_-]{0,62})"
    r"/locations/(?P<location>[a-z0-9][a-z0-9-]{0,62})"
    r"/publishers/google/models/(?P<model>[A-Za-z0-9][A-Za-z0-9._-]{0,127})"
    r"/operations/(?P<id>[A-Za-z0-9][A-Za-z0-9_-]{0,127})$"
)

_GEMINI_SHAPE = "models/{model}/operations/{id}"
_VERTEX_SHAPE = "projects/{p}/locations/{l}/publishers/google/models/{model}/operations/{id}"


def _checked(name: object, patterns: tuple[re.Pattern[str], ...], shapes: str) -> str:
    if isinstance(name, str) and ".." not in name and any(
        pattern.fullmatch(name) for pattern in patterns
    ):
        return name
    shown = repr(name[:80]) if isinstance(name, str) else repr(name)[:80]
    raise InvalidJobError(f"operation name {shown} does not match {shapes}")


def validate_gemini_operation_name(name: object) -> str:
    """Return ``name`` if it is a Gemini API operation name, else raise InvalidJobError."""
    return _checked(name, (GEMINI_OPERATION_PATTERN,), _GEMINI_SHAPE)


def validate_vertex_operation_name(name: object) -> str:
    """Return ``name`` if it is a Vertex AI operation name, else raise InvalidJobError."""
    return _checked(name, (VERTEX_OPERATION_PATTERN,), _VERTEX_SHAPE)


def validate_operation_name(name: object) -> str:
    """Return ``name`` if it is a Gemini or a Vertex operation name, else raise
    :class:`InvalidJobError`.

    The patterns admit no ``..``, no query, no scheme and no host, so a name can be joined
    onto a base URL (or sent in a body) safely. Each client also checks its own API's pattern.
    """
    return _checked(
        name, (GEMINI_OPERATION_PATTERN, VERTEX_OPERATION_PATTERN),
        f"{_GEMINI_SHAPE} or {_VERTEX_SHAPE}",
    )


@dataclass(frozen=True, slots=True)
class OperationStatus:
    """One answer about one operation, whatever API gave it.

    ``done`` is False while the video is being made. When done, exactly one of these holds:
    ``video_uris`` is non-empty (success), ``error`` is set (the API failed the operation or
    filtered its output: ``filtered_reasons`` then lists why), or neither (a malformed done
    answer, which the job treats as a failure).

    A video URI is whatever the API gave: an ``https`` download URL (Gemini API), a ``gs://``
    object (Vertex AI), or ``inline:{index}`` when Vertex AI returned the video's bytes in the
    answer itself (see :mod:`actors.clients.vertex`).
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

    What each error means to the tree: :class:`~actors.errors.TransientApiError` backs the job
    off and counts the attempt; :class:`~actors.errors.RateLimitedError` pauses the profile for
    ``retry_after`` without burning an attempt; :class:`~actors.errors.AuthError` pauses the
    profile until its credentials change; :class:`~actors.errors.OperationNotFoundError` fails
    the job when seen twice in a row; :class:`~actors.errors.PermanentApiError` fails the job.
    """

    def check(self, operation_name: str, *, profile_id: str | None = None) -> OperationStatus:
        """Fetch the status of one operation (blocking; runs on a check thread)."""
        ...

    def close(self) -> None:
        """Release connections (runs on the thread that shuts the manager down)."""
        ...


@runtime_checkable
class BatchStatusClient(StatusClient, Protocol):
    """Optional: a :class:`StatusClient` that checks several operations in one call.

    ``check_many`` gets operation names that all belong to ``profile_id`` and returns a
    mapping from each name to its :class:`OperationStatus`, or to the
    :class:`~actors.errors.ApiError` for that one operation (a name missing from the mapping
    is treated as a transient error). When the whole call fails (network, 429, 401) it raises
    instead, and the error applies to every name. The poller uses it when the client has it
    (``isinstance(client, BatchStatusClient)``); it runs on a check thread.
    """

    def check_many(
        self, operation_names: Sequence[str], *, profile_id: str | None = None
    ) -> Mapping[str, OperationStatus | Exception]:
        """Fetch the status of several operations (blocking; runs on a check thread)."""
        ...
