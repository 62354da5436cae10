"""Status clients: the one boundary that speaks HTTP to a video API.

:class:`StatusClient` is the protocol the poller calls from its check threads (optionally a
:class:`BatchStatusClient`); :class:`GeminiVeoClient` implements it for the Gemini API and
:class:`VertexVeoClient` for Vertex AI. A :class:`CredentialProvider` (such as
:class:`StaticCredentials`) gives each profile's key or token.
"""

from .base import (
    BatchStatusClient,
    OperationStatus,
    StatusClient,
    validate_operation_name,
)
from .credentials import (
    CallableCredentials,
    CredentialProvider,
    StaticCredentials,
    load_credentials_file,
)
from .gemini import GeminiVeoClient, parse_operation
from .vertex import VertexVeoClient, parse_vertex_operation

__all__ = [
    "BatchStatusClient",
    "CallableCredentials",
    "CredentialProvider",
    "GeminiVeoClient",
    "OperationStatus",
    "StaticCredentials",
    "StatusClient",
    "VertexVeoClient",
    "load_credentials_file",
    "parse_operation",
    "parse_vertex_operation",
    "validate_operation_name",
]
