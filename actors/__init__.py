"""Watch long-running AI video jobs (Veo 3) with a supervised pykka actor tree.

The public names are listed in ``__all__``; everything else is internal.
"""

from .clients.base import BatchStatusClient, OperationStatus, StatusClient
from .clients.credentials import CredentialProvider, StaticCredentials, load_credentials_file
from .clients.gemini import GeminiVeoClient
from .clients.vertex import VertexVeoClient
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
    StoreFullError,
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
    "BatchStatusClient",
    "ConfigurationError",
    "CredentialProvider",
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
    "StaticCredentials",
    "StatusClient",
    "StoreError",
    "StoreFullError",
    "TransientApiError",
    "VeoSimulator",
    "VertexVeoClient",
    "load_credentials_file",
]
