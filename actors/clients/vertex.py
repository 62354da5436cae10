"""The Vertex AI status client for Veo operations.

:class:`VertexVeoClient` asks ``POST {base_url}/v1/projects/{project}/locations/{location}/
publishers/google/models/{model}:fetchPredictOperation`` with ``{"operationName": name}`` and
``Authorization: Bearer <token>`` (a GET on the operation name answers 404 on Vertex AI), and
maps the answer exactly as the Gemini client does. The model in the URL is the one in the
operation name.

Videos: a done answer lists ``response.videos[]``, each with a ``gcsUri`` (when the job was
started with a ``storageUri``) or the video itself as ``bytesBase64Encoded``. A ``gcsUri`` is
kept as the video URI. Inline bytes are never kept in an :class:`OperationStatus` (it is
persisted, broadcast and logged): the URI is the placeholder ``inline:{index}`` (the index in
``videos``), and the decoded bytes are handed to ``on_inline_video(operation_name, index,
data)`` when the host gives one. Start Vertex jobs with a ``storageUri`` to get real URIs.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any

import requests

from ..errors import ConfigurationError, InvalidJobError
from ._http import Answer, HttpClient, filter_verdict, settled_early
from .base import (
    VERTEX_OPERATION_PATTERN,
    OperationStatus,
    validate_vertex_operation_name,
)
from .credentials import CredentialProvider, as_provider

INLINE_SCHEME = "inline:"
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_LOCATION = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

#: ``on_inline_video(operation_name, index, data)``: gets the bytes of an inline video.
InlineVideoSink = Callable[[str, int, bytes], None]


def default_base_url(location: str) -> str:
    """Vertex AI's regional endpoint for ``location`` (the global one for ``global``)."""
    if location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def parse_vertex_operation(body: dict[str, Any], *, name: str | None = None) -> OperationStatus:
    """Read one Vertex operation body into an :class:`OperationStatus` (pure; never raises).

    Every video's ``gcsUri`` is kept in order; a video given as ``bytesBase64Encoded`` becomes
    ``inline:{index}``. No videos: filtered (``raiMediaFilteredCount`` / ``Reasons``) or a
    clear no-result failure; ``error`` instead of ``response``: failed with code and message.
    """
    op_name, settled = settled_early(body, name)
    if settled is not None:
        return settled
    response = body.get("response")
    response = response if isinstance(response, dict) else {}
    uris = tuple(uri for _index, uri, _data in _videos(response.get("videos")))
    if uris:
        return OperationStatus(name=op_name, done=True, video_uris=uris)
    return filter_verdict(op_name, response)


def _videos(videos: object) -> list[tuple[int, str, str | None]]:
    """(index, uri, base64 payload or None) for each usable video."""
    if not isinstance(videos, list):
        return []
    found = []
    for index, video in enumerate(videos):
        if not isinstance(video, dict):
            continue
        gcs, inline = video.get("gcsUri"), video.get("bytesBase64Encoded")
        if isinstance(gcs, str) and gcs:
            found.append((index, gcs, None))
        elif isinstance(inline, str) and inline:
            found.append((index, f"{INLINE_SCHEME}{index}", inline))
    return found


class VertexVeoClient(HttpClient):
    """A thread-safe :class:`~actors.clients.base.StatusClient` for Vertex AI.

    ``token_provider`` gives the bearer token: a callable ``(profile_id) -> str`` or
    ``() -> str`` (google-auth, a service account, a vault), a
    :class:`~actors.clients.credentials.CredentialProvider`, or a static token string. It is
    asked before every request, so it may refresh expiring tokens; on a 401 it is asked once
    more and, when that gives a different token, the request is retried once.
    ``client.credentials`` is the provider (``set(profile_id, token)`` pins a token).
    ``model``, when given, is the only model whose operations this client accepts.
    ``max_body_bytes`` defaults to 64 MiB because an answer may carry inline videos.
    """

    def __init__(
        self,
        project: str,
        location: str,
        token_provider: Callable[..., str] | CredentialProvider | str,
        base_url: str | None = None,
        *,
        model: str | None = None,
        timeout: float = 10.0,
        pool_size: int = 32,
        max_body_bytes: int = 64 * 1024 * 1024,
        session: requests.Session | None = None,
        on_inline_video: InlineVideoSink | None = None,
    ) -> None:
        if not isinstance(project, str) or not _PROJECT.fullmatch(project):
            raise ConfigurationError("project must be a Google Cloud project id or number")
        if not isinstance(location, str) or not _LOCATION.fullmatch(location):
            raise ConfigurationError("location must be a region such as 'us-central1'")
        if model is not None and (not isinstance(model, str) or not _MODEL.fullmatch(model)):
            raise ConfigurationError("model must be a model id such as 'veo-3.0-generate-001'")
        if on_inline_video is not None and not callable(on_inline_video):
            raise ConfigurationError("on_inline_video must be callable")
        if token_provider is None:
            raise ConfigurationError("token_provider is required")
        super().__init__(
            default_base_url(location) if base_url is None else base_url,
            as_provider(token_provider, "token_provider"),
            timeout=timeout, pool_size=pool_size, max_body_bytes=max_body_bytes, session=session,
        )
        self._project, self._location, self._model = project, location, model
        self._on_inline = on_inline_video

    @property
    def project(self) -> str:
        return self._project

    @property
    def location(self) -> str:
        return self._location

    def __repr__(self) -> str:
        return (f"VertexVeoClient(project={self._project!r}, location={self._location!r}, "
                f"base_url={self._base_url!r})")

    def fetch_url(self, model: str) -> str:
        """The ``:fetchPredictOperation`` URL for ``model``."""
        return (f"{self._base_url}/v1/projects/{self._project}/locations/{self._location}"
                f"/publishers/google/models/{model}:fetchPredictOperation")

    def check(self, operation_name: str, *, profile_id: str | None = None) -> OperationStatus:
        """Fetch one operation's status with ``profile_id``'s token (blocking; check thread).

        Raises :class:`~actors.errors.InvalidJobError` for a bad name (or another model than
        ``model``) before any request.
        """
        name = validate_vertex_operation_name(operation_name)
        model = VERTEX_OPERATION_PATTERN.fullmatch(name).group("model")  # type: ignore[union-attr]
        if self._model is not None and model != self._model:
            raise InvalidJobError(f"operation {name[:120]!r} is not of model {self._model!r}")
        token = self._secret(profile_id)
        answer = self._fetch(model, name, token)
        if answer.status == 401:
            fresh = self._secret(profile_id)
            if fresh != token:
                answer = self._fetch(model, name, fresh)
        payload = self._operation_body(answer, name)
        status = parse_vertex_operation(payload, name=name)
        if status.succeeded and self._on_inline is not None:
            self._hand_over_inline(name, payload)
        return status

    def _fetch(self, model: str, name: str, token: str) -> Answer:
        return self._exchange(
            "POST", self.fetch_url(model), name, json={"operationName": name},
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )

    def _hand_over_inline(self, name: str, payload: dict[str, Any]) -> None:
        response = payload.get("response") if isinstance(payload.get("response"), dict) else {}
        for index, _uri, data in _videos(response.get("videos")):
            if data is None:
                continue
            try:
                decoded = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                continue
            self._on_inline(name, index, decoded)  # type: ignore[misc]
