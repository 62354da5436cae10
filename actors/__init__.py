"""Watch long-running AI video jobs (Veo 3) with a supervised pykka actor tree.

The public names are listed in ``__all__``; everything else is internal.
"""

from .clients.base import OperationStatus, StatusClient
from .clients.gemini import GeminiVeoClient
from .config import PollingConfig
from .errors import (
    ApiError,
    AuthError,
    ConfigurationError,
    InvalidJobError,
    JobConflictError,
    JobNotFoundError,
    NotRunningError,
    OperationNotFoundError,
    PermanentApiError,
    PollingError,
    RateLimitedError,
    StoreError,
    TransientApiError,
)
from .legacy import PollingService
from .manager import PollingManager
from .messages import Alert, Crash, StatusUpdate
from .simulator import VeoSimulator
from .store import JobRecord

__all__ = [
    "Alert",
    "ApiError",
    "AuthError",
    "ConfigurationError",
    "Crash",
    "GeminiVeoClient",
    "InvalidJobError",
    "JobConflictError",
    "JobNotFoundError",
    "JobRecord",
    "NotRunningError",
    "OperationNotFoundError",
    "OperationStatus",
    "PermanentApiError",
    "PollingConfig",
    "PollingError",
    "PollingManager",
    "PollingService",
    "RateLimitedError",
    "StatusClient",
    "StoreError",
    "TransientApiError",
    "VeoSimulator",
]
