"""The HTTP plumbing the status clients share (Gemini API, Vertex AI).

One place for: the base-URL rule (https, or http to a loopback host), the pooled session,
reads capped at ``max_body_bytes``, the mapping of HTTP answers onto the error hierarchy,
``Retry-After``, the parts of an operation body both APIs share, and scrubbing every known
secret out of error texts. Internal: the public names are re-exported by the clients.
"""

from __future__ import annotations

import ipaddress
import json
import math
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Self
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from ..errors import (
    AuthError,
    ConfigurationError,
    OperationNotFoundError,
    PermanentApiError,
    PollingError,
    RateLimitedError,
    TransientApiError,
)
from .base import OperationStatus
from .credentials import CredentialProvider

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
NO_RESULT = "operation finished without a video or an error"
FILTERED_NO_REASON = "filtered: the output was blocked by a safety filter (no reason given)"
REDACTED = "[redacted]"
TRANSIENT_STATUSES = frozenset({408, 500, 502, 503, 504})
CHUNK = 64 * 1024


# ----- pure helpers (any thread) ------------------------------------------------------------
def is_loopback(host: str | None) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_base_url(base_url: object) -> str:
    """``base_url`` without a trailing slash, if it is https (or http to a loopback host)."""
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
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host)):
        return base_url.strip().rstrip("/")
    raise ConfigurationError(
        f"base_url {base_url[:100]!r} must use https (http is allowed only for loopback hosts)"
    )


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, with the default port filled in; for same-host tests."""
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


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


def decode(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def error_status(payload: dict[str, Any] | None) -> str | None:
    error = payload.get("error") if payload else None
    return error.get("status") if isinstance(error, dict) else None


def server_says(payload: dict[str, Any] | None) -> str:
    error = payload.get("error") if payload else None
    message = text(error.get("message")) if isinstance(error, dict) else ""
    return f": {message[:200]}" if message else ""


def text(value: object) -> str:
    return value if isinstance(value, str) else ""


def settled_early(body: dict[str, Any], name: str | None) -> tuple[str, OperationStatus | None]:
    """The operation's name, and its status when the body is pending or carries ``error``
    (None when the caller must read the ``response``)."""
    op_name = name if name is not None else text(body.get("name"))
    if body.get("done") is not True:
        return op_name, OperationStatus(name=op_name, done=False)
    if "error" in body:
        return op_name, operation_error(op_name, body["error"])
    return op_name, None


def operation_error(op_name: str, error: object) -> OperationStatus:
    """A done operation that carries ``error: {code, message}`` instead of a response."""
    err = error if isinstance(error, dict) else {}
    code = err.get("code")
    return OperationStatus(
        name=op_name,
        done=True,
        error=text(err.get("message")) or "operation failed (no message)",
        error_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
    )


def filter_verdict(op_name: str, holder: dict[str, Any]) -> OperationStatus:
    """A done operation without videos: filtered (with its reasons) or :data:`NO_RESULT`."""
    raw_reasons = holder.get("raiMediaFilteredReasons")
    reasons = tuple(r for r in raw_reasons if isinstance(r, str)) if isinstance(
        raw_reasons, list
    ) else ()
    count = holder.get("raiMediaFilteredCount")
    if reasons or raw_reasons is not None or (
        isinstance(count, int) and not isinstance(count, bool) and count > 0
    ):
        error = "filtered: " + "; ".join(reasons) if reasons else FILTERED_NO_REASON
        return OperationStatus(name=op_name, done=True, error=error, filtered_reasons=reasons)
    return OperationStatus(name=op_name, done=True, error=NO_RESULT)


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer, read (at most ``max_body_bytes``) and closed."""

    status: int
    headers: Any
    payload: dict[str, Any] | None
    oversize: bool


# ----- the shared client base ---------------------------------------------------------------
class HttpClient:
    """Session, limits, credentials and error mapping shared by the API clients (thread-safe).

    One pooled ``requests.Session`` without automatic retries (the poller owns retrying). An
    injected ``session`` is used as given and left open by :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        credentials: CredentialProvider,
        *,
        timeout: float,
        pool_size: int,
        max_body_bytes: int,
        session: requests.Session | None,
    ) -> None:
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0:
            raise ConfigurationError("timeout must be a positive number of seconds")
        if not isinstance(pool_size, int) or pool_size < 1:
            raise ConfigurationError("pool_size must be a positive integer")
        if not isinstance(max_body_bytes, int) or max_body_bytes < 1:
            raise ConfigurationError("max_body_bytes must be a positive integer")
        self._base_url = validate_base_url(base_url)
        self._credentials = credentials
        self._timeout = float(timeout)
        self._max_body = max_body_bytes
        self._seen_secrets: deque[str] = deque(maxlen=64)
        self._seen_lock = threading.Lock()
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

    @property
    def credentials(self) -> CredentialProvider:
        """The provider that gives each profile's secret (``set`` it to rotate keys)."""
        return self._credentials

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release pooled connections (runs on the thread that shuts the manager down)."""
        if self._owns_session:
            self._session.close()

    # -- credentials -------------------------------------------------------------------------
    def _secret(self, profile_id: str | None) -> str:
        """The profile's secret from the provider; AuthError/TransientApiError if it fails."""
        shown = str(profile_id)[:80]
        failure = None
        try:
            secret = self._credentials.get(profile_id)
        except PollingError:
            raise
        except Exception as exc:  # a host's provider failed: its text may hold a secret,
            failure = type(exc).__name__  # so it is neither repeated nor chained
        if failure is not None:
            raise TransientApiError(
                f"the credentials provider failed for profile {shown!r} ({failure})"
            )
        if not isinstance(secret, str) or not secret.strip():
            raise AuthError(f"the credentials provider gave no secret for profile {shown!r}")
        with self._seen_lock:
            if secret not in self._seen_secrets:
                self._seen_secrets.append(secret)
        return secret

    def _scrub(self, message: str) -> str:
        """``message`` with every secret this client knows of replaced by [redacted]."""
        with self._seen_lock:
            secrets = set(self._seen_secrets)
        known = getattr(self._credentials, "known_secrets", None)
        if callable(known):
            try:
                secrets.update(known())
            except Exception:  # noqa: BLE001 - scrubbing must never fail
                pass
        for secret in sorted((s for s in secrets if s), key=len, reverse=True):
            message = message.replace(secret, REDACTED)
        return message

    # -- one request -------------------------------------------------------------------------
    def _exchange(self, method: str, url: str, what: str, **kwargs: Any) -> Answer:
        """Send one request (no redirects followed) and read its capped body."""
        try:
            response = self._session.request(
                method, url, timeout=self._timeout, stream=True, allow_redirects=False, **kwargs
            )
            with response:
                body, oversize = self._read_capped(response)
        except requests.RequestException as exc:
            raise TransientApiError(f"{type(exc).__name__} while checking {what}") from exc
        payload = decode(body) if not oversize else None
        return Answer(response.status_code, response.headers, payload, oversize)

    def _read_capped(self, response: requests.Response) -> tuple[bytes, bool]:
        """Read at most ``max_body_bytes``; report whether the body was larger."""
        declared = response.headers.get("Content-Length", "")
        if declared.strip().isdigit() and int(declared) > self._max_body:
            return b"", True
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=CHUNK):
            size += len(chunk)
            if size > self._max_body:
                return b"", True
            chunks.append(chunk)
        return b"".join(chunks), False

    def _operation_body(self, answer: Answer, what: str) -> dict[str, Any]:
        """The operation JSON of a 2xx answer, or raise the error the answer means."""
        if not 200 <= answer.status < 300:
            raise self._http_error(answer, what)
        if answer.oversize:
            raise TransientApiError(
                f"answer for {what} exceeds {self._max_body} bytes", status_code=answer.status
            )
        if answer.payload is None:
            raise TransientApiError(
                f"malformed answer for {what} (not a JSON object)", status_code=answer.status
            )
        if not answer.payload.get("done") and error_status(answer.payload) == "RESOURCE_EXHAUSTED":
            raise self._rate_limited(answer, what)
        return answer.payload

    def _rate_limited(self, answer: Answer, what: str) -> RateLimitedError:
        return RateLimitedError(
            self._scrub(f"rate limited while checking {what}{server_says(answer.payload)}"),
            retry_after=parse_retry_after(answer.headers.get("Retry-After")),
            status_code=answer.status,
        )

    def _http_error(self, answer: Answer, what: str) -> Exception:
        """The error a non-2xx answer means (see :class:`~actors.clients.base.StatusClient`)."""
        status, payload = answer.status, answer.payload
        if status == 429 or error_status(payload) == "RESOURCE_EXHAUSTED":
            return self._rate_limited(answer, what)
        message = self._scrub(f"HTTP {status} while checking {what}{server_says(payload)}")
        if status in TRANSIENT_STATUSES or status >= 500:
            error = TransientApiError(message, status_code=status)
            error.retry_after = parse_retry_after(answer.headers.get("Retry-After"))
            return error
        if status in (401, 403):
            return AuthError(message, status_code=status)
        if status == 404:
            return OperationNotFoundError(message, status_code=status)
        return PermanentApiError(message, status_code=status)
