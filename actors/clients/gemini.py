"""The Gemini API (generativelanguage v1beta) status client for Veo operations.

:class:`GeminiVeoClient` asks ``GET {base_url}/v1beta/{operation}`` with the API key in the
``x-goog-api-key`` header and turns the answer into an :class:`OperationStatus`, or raises one
of the :class:`~actors.errors.ApiError` family. :func:`parse_operation` is the pure part: it
reads one operation body and never raises.

The key never appears in a URL, a log line, an exception message or a repr.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from ..errors import (
    AuthError,
    ConfigurationError,
    OperationNotFoundError,
    PermanentApiError,
    RateLimitedError,
    TransientApiError,
)
from .base import OperationStatus, validate_operation_name

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
NO_RESULT = "operation finished without a video or an error"
FILTERED_NO_REASON = "filtered: the output was blocked by a safety filter (no reason given)"
_TRANSIENT_STATUSES = frozenset({408, 500, 502, 503, 504})
_CHUNK = 64 * 1024


def parse_operation(body: dict[str, Any], *, name: str | None = None) -> OperationStatus:
    """Read one Gemini operation body into an :class:`OperationStatus` (pure; any thread).

    ``name`` overrides the body's own ``name``. A missing ``done`` means pending. A done body
    yields videos, an error, a filter verdict, or the :data:`NO_RESULT` error; never raises.
    """
    op_name = name if name is not None else _text(body.get("name"))
    if body.get("done") is not True:
        return OperationStatus(name=op_name, done=False)
    if "error" in body:
        err = body["error"] if isinstance(body["error"], dict) else {}
        code = err.get("code")
        return OperationStatus(
            name=op_name,
            done=True,
            error=_text(err.get("message")) or "operation failed (no message)",
            error_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        )
    response = body.get("response")
    video = response.get("generateVideoResponse") if isinstance(response, dict) else None
    video = video if isinstance(video, dict) else {}
    uris = tuple(_sample_uris(video.get("generatedSamples")))
    if uris:
        return OperationStatus(name=op_name, done=True, video_uris=uris)
    raw_reasons = video.get("raiMediaFilteredReasons")
    reasons = tuple(r for r in raw_reasons if isinstance(r, str)) if isinstance(
        raw_reasons, list
    ) else ()
    count = video.get("raiMediaFilteredCount")
    if reasons or raw_reasons is not None or (isinstance(count, int) and count > 0):
        error = "filtered: " + "; ".join(reasons) if reasons else FILTERED_NO_REASON
        return OperationStatus(name=op_name, done=True, error=error, filtered_reasons=reasons)
    return OperationStatus(name=op_name, done=True, error=NO_RESULT)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP date), else None."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now if now is not None else datetime.now(timezone.utc)
    return max(0.0, (when - current).total_seconds())


class GeminiVeoClient:
    """A thread-safe :class:`~actors.clients.base.StatusClient` for the Gemini API.

    Built once by the host; ``check`` runs on the poller's check threads, many at once, over
    one pooled ``requests.Session`` (no automatic retries: the poller owns retrying). An
    injected ``session`` is used as given and left open by :meth:`close`.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 10.0,
        pool_size: int = 32,
        max_body_bytes: int = 1_000_000,
        session: requests.Session | None = None,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigurationError("api_key must be a non-empty string")
        if not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigurationError("timeout must be a positive number of seconds")
        if not isinstance(pool_size, int) or pool_size < 1:
            raise ConfigurationError("pool_size must be a positive integer")
        if not isinstance(max_body_bytes, int) or max_body_bytes < 1:
            raise ConfigurationError("max_body_bytes must be a positive integer")
        self._base_url = _validate_base_url(base_url)
        self._api_key = api_key
        self._timeout = float(timeout)
        self._max_body = max_body_bytes
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self._session = session

    @property
    def base_url(self) -> str:
        """The API root this client talks to (no trailing slash)."""
        return self._base_url

    def __repr__(self) -> str:
        return f"GeminiVeoClient(base_url={self._base_url!r})"

    def __enter__(self) -> GeminiVeoClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release pooled connections (runs on the thread that shuts the manager down)."""
        if self._owns_session:
            self._session.close()

    def check(self, operation_name: str, *, profile_id: str | None = None) -> OperationStatus:
        """Fetch one operation's status (blocking; runs on a check thread).

        ``profile_id`` is accepted for the protocol and ignored: this client has one key.
        Raises :class:`~actors.errors.InvalidJobError` for a bad name before any request.
        """
        name = validate_operation_name(operation_name)
        try:
            response = self._session.get(
                f"{self._base_url}/v1beta/{name}",
                headers={"x-goog-api-key": self._api_key, "Accept": "application/json"},
                timeout=self._timeout,
                stream=True,
                allow_redirects=False,
            )
            with response:
                body, oversize = self._read_capped(response)
        except requests.RequestException as exc:
            raise TransientApiError(f"{type(exc).__name__} while checking {name}") from exc
        payload = _decode(body) if not oversize else None
        status = response.status_code
        if 200 <= status < 300:
            if oversize:
                raise TransientApiError(
                    f"answer for {name} exceeds {self._max_body} bytes", status_code=status
                )
            if payload is None:
                raise TransientApiError(
                    f"malformed answer for {name} (not a JSON object)", status_code=status
                )
            if not payload.get("done") and _error_status(payload) == "RESOURCE_EXHAUSTED":
                raise self._rate_limited(name, response, payload)
            return parse_operation(payload, name=name)
        raise self._http_error(name, response, payload)

    def _read_capped(self, response: requests.Response) -> tuple[bytes, bool]:
        """Read at most ``max_body_bytes``; report whether the body was larger."""
        declared = response.headers.get("Content-Length", "")
        if declared.strip().isdigit() and int(declared) > self._max_body:
            return b"", True
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=_CHUNK):
            size += len(chunk)
            if size > self._max_body:
                return b"", True
            chunks.append(chunk)
        return b"".join(chunks), False

    def _rate_limited(
        self, name: str, response: requests.Response, payload: dict[str, Any] | None
    ) -> RateLimitedError:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return RateLimitedError(
            self._scrub(f"rate limited while checking {name}{_server_says(payload)}"),
            retry_after=retry_after,
            status_code=response.status_code,
        )

    def _http_error(
        self, name: str, response: requests.Response, payload: dict[str, Any] | None
    ) -> Exception:
        status = response.status_code
        if status == 429 or _error_status(payload) == "RESOURCE_EXHAUSTED":
            return self._rate_limited(name, response, payload)
        message = self._scrub(f"HTTP {status} while checking {name}{_server_says(payload)}")
        if status in _TRANSIENT_STATUSES or status >= 500:
            error = TransientApiError(message, status_code=status)
            error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return error
        if status in (401, 403):
            return AuthError(message, status_code=status)
        if status == 404:
            return OperationNotFoundError(message, status_code=status)
        return PermanentApiError(message, status_code=status)

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "[redacted]")


def _validate_base_url(base_url: object) -> str:
    if not isinstance(base_url, str):
        raise ConfigurationError("base_url must be a string")
    try:
        parts = urlsplit(base_url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigurationError(f"base_url {base_url[:100]!r} is not a valid URL") from None
    if not host or parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError(
            f"base_url {base_url[:100]!r} must be scheme://host[:port][/path] only"
        )
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return base_url.strip().rstrip("/")
    raise ConfigurationError(
        f"base_url {base_url[:100]!r} must use https (http is allowed only for loopback hosts)"
    )


def _decode(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _error_status(payload: dict[str, Any] | None) -> str | None:
    error = payload.get("error") if payload else None
    return error.get("status") if isinstance(error, dict) else None


def _server_says(payload: dict[str, Any] | None) -> str:
    error = payload.get("error") if payload else None
    message = _text(error.get("message")) if isinstance(error, dict) else ""
    return f": {message[:200]}" if message else ""


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


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
