"""Status clients: the one boundary that speaks HTTP to a video API.

:class:`StatusClient` is the protocol the poller calls from its check threads;
:class:`GeminiVeoClient` implements it for the Gemini API.
"""

from .base import OperationStatus, StatusClient, validate_operation_name
from .gemini import GeminiVeoClient, parse_operation

__all__ = [
    "GeminiVeoClient",
    "OperationStatus",
    "StatusClient",
    "parse_operation",
    "validate_operation_name",
]
