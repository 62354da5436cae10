"""The Gemini API (generativelanguage v1beta) status client for Veo operations.

:class:`GeminiVeoClient` asks ``GET {base_url}/v1beta/{operation}`` with the profile's API key
in the ``x-goog-api-key`` header and turns the answer into an :class:`OperationStatus`, or
raises one of the :class:`~actors.errors.ApiError` family. :func:`parse_operation` is the pure
part: it reads one operation body and never raises. :meth:`GeminiVeoClient.download` saves a
finished video to disk.

Keys never appear in a URL, a log line, an exception message or a repr.
"""

from __future__ import annotations

import os
from typing import Any

import requests

from ..errors import ConfigurationError
from ._download import DEFAULT_MAX_VIDEO_BYTES, fetch_to_file
from ._http import (
    FILTERED_NO_REASON,
    LOOPBACK_HOSTS,
    NO_RESULT,
    HttpClient,
    filter_verdict,
    parse_retry_after,
    settled_early,
)
from .base import OperationStatus, validate_gemini_operation_name
from .credentials import CredentialProvider, StaticCredentials, as_provider

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
API_KEY_HEADER = "x-goog-api-key"

__all__ = [
    "DEFAULT_BASE_URL",
    "FILTERED_NO_REASON",
    "LOOPBACK_HOSTS",
    "NO_RESULT",
    "GeminiVeoClient",
    "parse_operation",
    "parse_retry_after",
]


def parse_operation(body: dict[str, Any], *, name: str | None = None) -> OperationStatus:
    """Read one Gemini operation body into an :class:`OperationStatus` (pure; any thread).

    ``name`` overrides the body's own ``name``. A missing ``done`` means pending. A done body
    yields every sample's video URI, an error, a filter verdict, or the :data:`NO_RESULT`
    error; never raises.
    """
    op_name, settled = settled_early(body, name)
    if settled is not None:
        return settled
    response = body.get("response")
    video = response.get("generateVideoResponse") if isinstance(response, dict) else None
    video = video if isinstance(video, dict) else {}
    uris = tuple(_sample_uris(video.get("generatedSamples")))
    if uris:
        return OperationStatus(name=op_name, done=True, video_uris=uris)
    return filter_verdict(op_name, video)


class GeminiVeoClient(HttpClient):
    """A thread-safe :class:`~actors.clients.base.StatusClient` for the Gemini API.

    Give exactly one of ``api_key`` (one key for every profile) or ``credentials`` (a
    :class:`~actors.clients.credentials.CredentialProvider` choosing the key per profile).
    ``client.credentials`` is the provider either way; ``client.credentials.set(profile, key)``
    rotates a key while the tree runs. ``check`` runs on the poller's check threads, many at
    once, over one pooled session (no automatic retries: the poller owns retrying).
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        *,
        credentials: CredentialProvider | None = None,
        timeout: float = 10.0,
        pool_size: int = 32,
        max_body_bytes: int = 1_000_000,
        session: requests.Session | None = None,
    ) -> None:
        if (api_key is None) == (credentials is None):
            raise ConfigurationError("give exactly one of api_key or credentials")
        if api_key is not None:
            if not isinstance(api_key, str) or not api_key.strip():
                raise ConfigurationError("api_key must be a non-empty string")
            provider: CredentialProvider = StaticCredentials(default=api_key)
        elif isinstance(credentials, str) or not callable(getattr(credentials, "get", None)):
            raise ConfigurationError("credentials must be a provider with get(profile_id)")
        else:
            provider = as_provider(credentials, "credentials")
        super().__init__(
            base_url, provider, timeout=timeout, pool_size=pool_size,
            max_body_bytes=max_body_bytes, session=session,
        )

    def check(self, operation_name: str, *, profile_id: str | None = None) -> OperationStatus:
        """Fetch one operation's status with ``profile_id``'s key (blocking; a check thread).

        Raises :class:`~actors.errors.InvalidJobError` for a bad name before any request, and
        :class:`~actors.errors.AuthError` when the profile has no key.
        """
        name = validate_gemini_operation_name(operation_name)
        key = self._secret(profile_id)
        answer = self._exchange(
            "GET", f"{self._base_url}/v1beta/{name}", name,
            headers={API_KEY_HEADER: key, "Accept": "application/json"},
        )
        return parse_operation(self._operation_body(answer, name), name=name)

    def download(
        self,
        uri: str,
        dest_path: str | os.PathLike[str],
        *,
        profile_id: str | None = None,
        max_bytes: int = DEFAULT_MAX_VIDEO_BYTES,
    ) -> int:
        """Save the video at ``uri`` as ``dest_path``; returns the number of bytes written.

        The key goes in a header, and only to this client's own host: redirects are followed
        by hand (at most 5), and one that leaves the host is followed without the key. The
        bytes go to a temporary file in the same directory, renamed into place when complete;
        no partial file is ever left. Raises :class:`~actors.errors.TransientApiError` for
        network errors, 5xx, a body shorter than its Content-Length or an empty one;
        :class:`~actors.errors.OperationNotFoundError` for 404 (expired after 2 days);
        :class:`~actors.errors.AuthError` for 401/403; :class:`~actors.errors.RateLimitedError`
        for 429; :class:`~actors.errors.PermanentApiError` for a non-https URI (http only to a
        loopback host), a video over ``max_bytes``, or another 4xx.
        """
        key = self._secret(profile_id)
        return fetch_to_file(
            self._session, uri, dest_path, trusted_url=self._base_url,
            auth_headers={API_KEY_HEADER: key}, timeout=self._timeout, max_bytes=max_bytes,
            http_error=self._http_error,
        )


def _sample_uris(samples: object) -> list[str]:
    if not isinstance(samples, list):
        return []
    uris = []
    for sample in samples:
        video = sample.get("video") if isinstance(sample, dict) else None
        uri = video.get("uri") if isinstance(video, dict) else None
        if isinstance(uri, str) and uri:
            uris.append(uri)
    return uris
