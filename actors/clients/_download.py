"""Download one video file to disk: credentials only to the API's own host, redirects
followed by hand, a temporary file renamed into place, sizes checked, no partial file left.
Internal: clients expose it as their ``download`` method.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

import requests

from ..errors import PermanentApiError, TransientApiError
from ._http import CHUNK, Answer, decode, is_loopback, origin

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
#: The default cap on one video file (2 GiB).
DEFAULT_MAX_VIDEO_BYTES = 2 * 1024**3


def describe(url: str) -> str:
    """A URL without its query and fragment (signed URLs carry secrets there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"[:200]


def check_download_url(url: object) -> str:
    """``url`` if it is https, or http to a loopback host; else PermanentApiError."""
    if not isinstance(url, str):
        raise PermanentApiError("a video URI must be a string")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise PermanentApiError(f"video URI {url[:100]!r} is not a valid URL") from None
    if not host or parts.username or parts.password:
        raise PermanentApiError(f"video URI {describe(url)!r} has no usable host")
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host)):
        return url
    raise PermanentApiError(
        f"video URI {describe(url)!r} must use https (http only for loopback hosts)"
    )


def fetch_to_file(
    session: requests.Session,
    url: str,
    dest_path: str | os.PathLike[str],
    *,
    trusted_url: str,
    auth_headers: dict[str, str],
    timeout: float,
    max_bytes: int,
    http_error: Callable[[Answer, str], Exception],
) -> int:
    """Download ``url`` into ``dest_path``; returns the bytes written.

    ``auth_headers`` go only to the origin of ``trusted_url`` (the API's base URL); a redirect
    that leaves it is followed without them. Errors: see ``GeminiVeoClient.download``.
    """
    if not isinstance(max_bytes, int) or max_bytes < 1:
        raise PermanentApiError("max_bytes must be a positive integer")
    trusted = origin(trusted_url)
    current = check_download_url(url)
    for _hop in range(MAX_REDIRECTS + 1):
        headers = {"Accept-Encoding": "identity"}
        if origin(current) == trusted:
            headers.update(auth_headers)
        try:
            response = session.get(
                current, headers=headers, timeout=timeout, stream=True, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise TransientApiError(
                f"{type(exc).__name__} while downloading {describe(current)}"
            ) from exc
        with response:
            if response.status_code in REDIRECT_STATUSES:
                location = response.headers.get("Location")
                if not location:
                    raise TransientApiError(
                        f"redirect without a Location from {describe(current)}",
                        status_code=response.status_code,
                    )
                current = check_download_url(urljoin(current, location))
                continue
            if not 200 <= response.status_code < 300:
                raise http_error(_error_answer(response), f"download of {describe(current)}")
            return _write(response, os.fspath(dest_path), max_bytes, describe(current))
    raise TransientApiError(f"more than {MAX_REDIRECTS} redirects while downloading {describe(url)}")


def _error_answer(response: requests.Response) -> Answer:
    try:
        body = response.raw.read(64 * 1024, decode_content=True) or b""
    except Exception:  # noqa: BLE001 - the status says enough
        body = b""
    return Answer(response.status_code, response.headers, decode(body), False)


def _write(response: requests.Response, dest: str, max_bytes: int, shown: str) -> int:
    declared_text = response.headers.get("Content-Length", "").strip()
    declared = int(declared_text) if declared_text.isdigit() else None
    if declared is not None and declared > max_bytes:
        raise PermanentApiError(
            f"video at {shown} is {declared} bytes, over the {max_bytes}-byte cap",
            status_code=response.status_code,
        )
    directory = os.path.dirname(os.path.abspath(dest))
    try:
        fd, temp = tempfile.mkstemp(dir=directory, prefix=".download-", suffix=".part")
    except OSError as exc:
        raise TransientApiError(f"cannot write into {directory!r} ({type(exc).__name__})") from exc
    written = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in response.iter_content(chunk_size=CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise PermanentApiError(
                        f"video at {shown} exceeds the {max_bytes}-byte cap",
                        status_code=response.status_code,
                    )
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if declared is not None and written != declared:
            raise TransientApiError(
                f"video at {shown} was cut short: {written} of {declared} bytes",
                status_code=response.status_code,
            )
        if written == 0:
            raise TransientApiError(f"video at {shown} is empty", status_code=response.status_code)
        os.replace(temp, dest)
    except requests.RequestException as exc:
        _remove(temp)
        raise TransientApiError(f"{type(exc).__name__} while downloading {shown}") from exc
    except OSError as exc:
        _remove(temp)
        raise TransientApiError(f"cannot write {dest!r} ({type(exc).__name__})") from exc
    except BaseException:
        _remove(temp)
        raise
    return written


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
