"""Save finished videos to disk before the API deletes them (after 2 days).

:func:`download_videos` fetches every video URI of a job with the client's ``download`` method
into ``dest_dir`` under names from :func:`video_filename`. It raises the client's
:class:`~actors.errors.ApiError` on failure; the caller (the job actor) retries with backoff
and never fails the job for it. Blocking: run it off the actor's thread.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from .errors import PermanentApiError

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".webm"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 100


def video_filename(job_id: str, index: int, uri: str) -> str:
    """A safe file name for video ``index`` of ``job_id``: ``{job}-{index}.mp4``.

    The job id keeps only letters, digits, ``.``, ``_`` and ``-`` (no path separators, no
    leading dot, at most 100 characters); when anything was changed, 8 hex digits of its hash
    are added so that different ids never share a name. The extension is the URI's when it is
    a known video one (.mp4, .mov, .webm), else ``.mp4``.
    """
    if not isinstance(index, int) or index < 0:
        raise ValueError("index must be a non-negative integer")
    raw = str(job_id)
    stem = _UNSAFE.sub("_", raw).lstrip(".")[:_MAX_STEM] or "job"
    if stem != raw:
        stem = f"{stem}-{hashlib.sha256(raw.encode()).hexdigest()[:8]}"
    try:
        path = urlsplit(uri).path if isinstance(uri, str) else ""
    except ValueError:
        path = ""
    extension = os.path.splitext(path.split(":")[0])[1].lower()  # ".../{id}:download"
    return f"{stem}-{index}{extension if extension in VIDEO_EXTENSIONS else '.mp4'}"


def download_videos(
    client: object,
    uris: Sequence[str],
    dest_dir: str | os.PathLike[str],
    job_id: str,
    profile_id: str | None,
    *,
    max_bytes: int | None = None,
) -> tuple[str, ...]:
    """Download every URI of ``job_id`` into ``dest_dir`` (created if missing).

    Returns the local paths, in the order of ``uris``. Each file appears complete or not at
    all (the client writes a temporary file and renames it). Raises
    :class:`~actors.errors.PermanentApiError` when the client cannot download, and whatever
    ``client.download`` raises otherwise (an :class:`~actors.errors.ApiError`).
    """
    download = getattr(client, "download", None)
    if not callable(download):
        raise PermanentApiError(
            f"{type(client).__name__} cannot download videos (it has no download method)"
        )
    try:
        os.makedirs(dest_dir, exist_ok=True)
    except OSError as exc:
        raise PermanentApiError(
            f"cannot create the download directory {os.fspath(dest_dir)!r} ({type(exc).__name__})"
        ) from exc
    paths = []
    for index, uri in enumerate(uris):
        path = os.path.join(os.fspath(dest_dir), video_filename(job_id, index, uri))
        if max_bytes is None:
            download(uri, path, profile_id=profile_id)
        else:
            download(uri, path, profile_id=profile_id, max_bytes=max_bytes)
        paths.append(path)
    return tuple(paths)
