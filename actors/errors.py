"""The one error hierarchy of the project.

Every error this package raises on purpose derives from :class:`PollingError`, so a host can
catch the whole family with one ``except``. Foreign errors (peewee, requests) are translated
once, at the boundary that meets them, and kept on ``__cause__``.

::

    PollingError
    +-- ConfigurationError          bad settings, bad database URL, bad base URL
    +-- InvalidJobError             bad input to add_to_polling (also a ValueError)
    |   +-- JobConflictError        the job id is already known with another context
    +-- JobNotFoundError            no such job in the store (also a LookupError)
    +-- NotRunningError             the manager is not initialised or already shut down
    +-- StoreError                  the database failed (driver error kept on __cause__)
    |   +-- StoreFullError          the database or its disk is full
    +-- ApiError                    a status check did not give a status
        +-- TransientApiError       5xx, timeouts, dropped connections, malformed bodies
        +-- RateLimitedError        429 / RESOURCE_EXHAUSTED; carries retry_after
        +-- AuthError               401 / 403: the profile's credentials are refused
        +-- OperationNotFoundError  404: unknown or expired operation
        +-- PermanentApiError       any other 4xx: retrying will not help
"""

from __future__ import annotations


class PollingError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigurationError(PollingError, ValueError):
    """A setting, URL or argument that configures the library is invalid."""


class InvalidJobError(PollingError, ValueError):
    """A job given to the library is malformed; nothing was stored."""


class JobConflictError(InvalidJobError):
    """The job id is already known with a different context; nothing was stored."""


class JobNotFoundError(PollingError, LookupError):
    """The job id is not in the store."""


class NotRunningError(PollingError, RuntimeError):
    """The manager is not running: call ``initialize()`` first, or it was shut down."""


class StoreError(PollingError):
    """The database refused or failed an operation; the driver's error is the cause."""


class StoreFullError(StoreError):
    """The database or its disk is full: the write was rolled back, retry when space returns."""


class ApiError(PollingError):
    """A status check failed to produce a status.

    ``status_code`` is the HTTP status when there was a response, else ``None``.
    Messages never contain credentials.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class TransientApiError(ApiError):
    """A failure that may pass: the job backs off and the attempt counts."""


class RateLimitedError(ApiError):
    """The account's quota is exhausted for now; no attempt is burned.

    ``retry_after`` is the server's delay in seconds, or ``None`` when it gave none.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, status_code: int | None = 429
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class AuthError(ApiError):
    """The profile's credentials were refused (401/403)."""


class OperationNotFoundError(ApiError):
    """The operation is unknown to the server, or expired (videos are kept 2 days)."""


class PermanentApiError(ApiError):
    """The server rejected the request in a way retrying will not fix."""
