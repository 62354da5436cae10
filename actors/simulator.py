"""VeoSimulator: a real HTTP server on 127.0.0.1 that speaks the Veo wire formats of the
Gemini API (``GET /v1beta/{operation}``) and of Vertex AI (``:fetchPredictOperation``).

Each operation finishes after a duration drawn from a clipped log-normal distribution (divided
by ``time_scale`` for compressed time); some are filtered or fail. Faults can be switched on:
429 with Retry-After, 4xx/5xx, slow answers, dropped connections, malformed or truncated bodies,
HTML error pages. Every request is counted. It serves the demo, the tests and the benchmarks.

Endpoints (both ``v1beta`` and ``v1`` for the Gemini API, as the google-genai SDK sends ``v1``;
both ``v1`` and ``v1beta1`` for Vertex AI):

- ``POST /v1beta/models/{model}:predictLongRunning`` -> ``{"name": "models/{model}/operations/{id}"}``
- ``GET /v1beta/models/{model}/operations/{id}`` -> the operation (tests/wire/gemini-*.json)
- ``GET /v1beta/files/{id}:download`` -> the video, or a 302 to ``/media/{id}.mp4`` (on this
  server or another one) when ``download_redirect`` is set
- ``GET /media/{id}.mp4`` -> the video, no key needed (a stand-in for a signed storage URL)
- ``POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:predictLongRunning``
  -> ``{"name": "projects/{p}/locations/{l}/publishers/google/models/{model}/operations/{uuid}"}``
- ``POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:fetchPredictOperation``
  with ``{"operationName": ...}`` -> the operation (tests/wire/vertex-*.json)

``api_key`` (when set) is required in ``x-goog-api-key`` on the Gemini endpoints;
``bearer_token`` (when set) in ``Authorization: Bearer`` on the Vertex ones.

The server runs on a background thread and answers each connection on its own daemon thread;
every public method may be called from any thread (one lock guards all state).
"""

from __future__ import annotations

import math
import random
import string
import time
import uuid
from typing import Callable
from urllib.parse import urlsplit

from ._sim_wire import (
    DOWNLOAD,
    FAKE_MP4,
    GEMINI_POLL,
    GEMINI_START,
    HTML_502,
    MEDIA,
    OUTCOMES,
    QUOTA_DETAILS,
    VERTEX_METHOD,
    VERTEX_NAME,
    Answer,
    Handler,
    LoopbackServer,
    Operation,
    done_body,
    error_answer,
    header_value,
    json_answer,
    operation_name_in,
)

__all__ = ["OUTCOMES", "VeoSimulator"]

_ID_ALPHABET = string.ascii_lowercase + string.digits
_FAULTS = ("drop", "rate", "error", "malformed", "html", "truncate")


class VeoSimulator(LoopbackServer):
    """A simulated Veo server (Gemini API and Vertex AI) for the demo, tests and benchmarks.

    Use as a context manager (or :meth:`start` / :meth:`close`). ``clock`` is the time source
    for operation durations, so tests can inject a fake one; ``latency`` is real seconds added
    to each answer. ``download_redirect``: False serves videos directly, True redirects to
    ``/media/`` on this server, a base URL string redirects there (another host).
    ``vertex_inline`` makes Vertex answers carry ``bytesBase64Encoded`` instead of ``gcsUri``.
    Public attributes ``latency``, ``api_key``, ``bearer_token``, ``failed_share``,
    ``filtered_share``, ``download_redirect``, ``vertex_inline`` and ``video_bytes`` may be
    changed at any time.
    """

    def __init__(
        self,
        *,
        time_scale: float = 1.0,
        min_duration: float = 11.0,
        median_duration: float = 90.0,
        max_duration: float = 360.0,
        duration_sigma: float = 0.6,
        filtered_share: float = 0.0,
        failed_share: float = 0.0,
        seed: int | None = None,
        api_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        samples: int = 1,
        expire_after: float | None = None,
        bearer_token: str | None = None,
        download_redirect: bool | str = False,
        vertex_inline: bool = False,
    ) -> None:
        if not time_scale > 0 or not 0 < min_duration <= median_duration <= max_duration:
            raise ValueError("need time_scale > 0 and 0 < min <= median <= max duration")
        if duration_sigma < 0 or samples < 1 or (expire_after is not None and expire_after < 0):
            raise ValueError("need duration_sigma >= 0, samples >= 1, expire_after >= 0")
        self.time_scale = time_scale
        self.min_duration, self.median_duration = min_duration, median_duration
        self.max_duration, self.duration_sigma = max_duration, duration_sigma
        self.filtered_share, self.failed_share = filtered_share, failed_share
        self.api_key, self.samples, self.expire_after = api_key, samples, expire_after
        self.bearer_token, self.download_redirect = bearer_token, download_redirect
        self.vertex_inline, self.video_bytes = vertex_inline, FAKE_MP4
        self.latency = 0.0
        self._clock = clock
        self._rng = random.Random(seed)
        self._init_server()
        self._ops: dict[str, Operation] = {}
        self._files: dict[str, str] = {}
        self._faults = dict.fromkeys(_FAULTS, 0)
        self._retry_after: float | str | None = 1
        self._error_status = 503
        self._in_flight = 0
        self.reset_counters()
        self.last_request_path: str | None = None
        self.last_request_headers: dict[str, str] = {}
        self.last_request_body = b""


    fail_share = property(
        lambda self: self.failed_share, lambda self, v: setattr(self, "failed_share", v),
        doc="Alias of ``failed_share``: the share of new operations that fail.",
    )
    filter_share = property(
        lambda self: self.filtered_share, lambda self, v: setattr(self, "filtered_share", v),
        doc="Alias of ``filtered_share``: the share of new operations that are filtered.",
    )

    # ----- operations (any thread) ------------------------------------------------------
    def create_operation(self, model: str = "veo-3.0-generate-001", *,
                         duration: float | None = None, outcome: str | None = None,
                         api: str = "gemini", project: str = "sim-project",
                         location: str = "us-central1") -> str:
        """Start an operation and return its name.

        ``duration`` is in simulated seconds (divided by ``time_scale``; None draws one);
        ``outcome`` is one of :data:`OUTCOMES` (None draws one from the shares). ``api`` is
        ``gemini`` (``models/{model}/operations/{id}``) or ``vertex`` (a Vertex name under
        ``project`` and ``location``, polled with ``:fetchPredictOperation``).
        """
        if outcome is not None and outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        if api not in ("gemini", "vertex"):
            raise ValueError("api must be 'gemini' or 'vertex'")
        with self._lock:
            if duration is None:
                duration = self._draw_duration()
            if outcome is None:
                draw = self._rng.random()
                failed = draw < self.failed_share
                filtered = not failed and draw < self.failed_share + self.filtered_share
                outcome = "failed" if failed else "filtered" if filtered else "success"
            op_id = self._new_id()
            name = f"models/{model}/operations/{op_id}"
            if api == "vertex":
                op_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
                name = (f"projects/{project}/locations/{location}/publishers/google/models/"
                        f"{model}/operations/{op_id}")
            files = (op_id,) if self.samples == 1 else tuple(
                f"{op_id}s{i}" for i in range(self.samples)
            )
            finish = self._clock() + duration / self.time_scale
            self._ops[name] = Operation(name, finish, outcome, files, vertex=api == "vertex")
            self._files.update((file_id, name) for file_id in files)
        return name

    def finish_time(self, name: str) -> float:
        """The clock value at which the operation is (or was) done."""
        with self._lock:
            return self._ops[name].finish

    def outcome(self, name: str) -> str:
        """The operation's outcome: ``success``, ``filtered`` or ``failed``."""
        with self._lock:
            return self._ops[name].outcome

    def finish_now(self, name: str) -> None:
        """Make the operation done from now on."""
        with self._lock:
            op = self._ops[name]
            op.finish = min(op.finish, self._clock())

    def operations(self) -> list[str]:
        """Names of all operations, in creation order."""
        with self._lock:
            return list(self._ops)

    # ----- counters (any thread) --------------------------------------------------------
    @property
    def request_count(self) -> int:
        """Requests received since the last :meth:`reset_counters`."""
        with self._lock:
            return self._requests

    @property
    def connection_count(self) -> int:
        """TCP connections accepted since the last :meth:`reset_counters`."""
        with self._lock:
            return self._accepted

    @property
    def max_concurrency(self) -> int:
        """The most requests ever in progress at once."""
        with self._lock:
            return self._max_in_flight

    def poll_count(self, name: str) -> int:
        """Polls received for one operation (GETs, or Vertex fetches)."""
        with self._lock:
            return self._ops[name].polls

    def max_concurrency_for(self, name: str) -> int:
        """The most simultaneous polls of one operation."""
        with self._lock:
            return self._ops[name].max_in_flight

    def first_poll_after_done(self, name: str) -> float | None:
        """Clock time of the first poll that answered done, or None."""
        with self._lock:
            return self._ops[name].first_done_poll

    def reset_counters(self) -> None:
        """Zero request, connection, poll and concurrency counters (not done-poll times)."""
        with self._lock:
            self._requests = self._accepted = self._max_in_flight = 0
            for op in self._ops.values():
                op.polls = op.max_in_flight = 0

    # ----- faults (any thread) ----------------------------------------------------------
    def set_rate_limit(self, count: int, retry_after: float | str | None = 1) -> None:
        """Answer the next ``count`` requests 429; ``Retry-After`` is sent verbatim unless None."""
        with self._lock:
            self._faults["rate"], self._retry_after = count, retry_after

    def set_errors(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` requests with HTTP ``status`` (4xx/5xx) and an error body."""
        if not 400 <= status < 600:
            raise ValueError("status must be a 4xx or 5xx code")
        with self._lock:
            self._faults["error"], self._error_status = count, status

    def drop_next(self, count: int) -> None:
        """Close the connection of the next ``count`` requests without answering."""
        with self._lock:
            self._faults["drop"] = count

    def malformed_next(self, count: int) -> None:
        """Answer the next ``count`` requests 200 with truncated JSON."""
        with self._lock:
            self._faults["malformed"] = count

    def html_next(self, count: int) -> None:
        """Answer the next ``count`` requests 502 with an HTML error page (a proxy's)."""
        with self._lock:
            self._faults["html"] = count

    def truncate_next(self, count: int) -> None:
        """Send only half the body of the next ``count`` answers (under the full
        Content-Length) and hang up: a cut connection mid-answer or mid-download."""
        with self._lock:
            self._faults["truncate"] = count

    # ----- request handling (handler threads) -------------------------------------------
    def _serve(self, handler: Handler, method: str) -> None:
        path = urlsplit(handler.path).path
        target = None
        if method == "GET" and (poll := GEMINI_POLL.match(path)):
            target = poll.group(1)
        elif method == "POST" and (vertex := VERTEX_METHOD.match(path)):
            if vertex.group(4) == "fetchPredictOperation":
                target = operation_name_in(handler.body)
        with self._lock:
            self._requests += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self.last_request_path = handler.path
            self.last_request_headers = dict(handler.headers.items())
            self.last_request_body = handler.body
            op = self._ops.get(target) if target else None
            if op is not None:
                op.polls += 1
                op.in_flight += 1
                op.max_in_flight = max(op.max_in_flight, op.in_flight)
            fault = next((kind for kind, left in self._faults.items() if left > 0), None)
            if fault is not None:
                self._faults[fault] -= 1
        try:
            if self.latency > 0:
                self._stopping.wait(self.latency)
            status, body, ctype, headers = self._answer(method, path, handler, fault)
            handler.reply(status, body, ctype, headers, truncate=fault == "truncate")
        finally:
            with self._lock:
                self._in_flight -= 1
                if op is not None:
                    op.in_flight -= 1

    def _answer(self, method: str, path: str, handler: Handler, fault: str | None) -> Answer:
        if fault == "drop":
            return None, b"", "", {}
        if fault == "rate":
            retry = self._retry_after
            headers = {} if retry is None else {"Retry-After": header_value(retry)}
            return error_answer(429, "You exceeded your current quota, please check your plan "
                                "and billing details.", details=QUOTA_DETAILS, headers=headers)
        if fault == "error":
            status = self._error_status
            return error_answer(status, "The service is currently unavailable." if status >= 500
                                else "The request was rejected.")
        if fault == "malformed":
            return 200, b'{"name": "models/veo/operations/x", "done": tr', "application/json", {}
        if fault == "html":
            return 502, HTML_502, "text/html; charset=UTF-8", {}
        if method == "POST" and (vertex := VERTEX_METHOD.match(path)):
            return self._vertex(handler, *vertex.groups())
        if method == "GET" and MEDIA.match(path):
            return 200, self.video_bytes, "video/mp4", {}
        if self.api_key is not None and handler.headers.get("x-goog-api-key") != self.api_key:
            return error_answer(401, "API key not valid. Please pass a valid API key.")
        if method == "POST" and (start := GEMINI_START.match(path)):
            return json_answer(200, {"name": self.create_operation(start.group(1))})
        if method == "GET" and (poll := GEMINI_POLL.match(path)):
            return self._poll(poll.group(1), vertex=False)
        if method == "GET" and (download := DOWNLOAD.match(path)):
            return self._download(download.group(1))
        return error_answer(404, f"Method not found: {method} {path[:200]}")

    def _vertex(self, handler: Handler, project: str, location: str, model: str,
                verb: str) -> Answer:
        token = self.bearer_token
        if token is not None and handler.headers.get("Authorization") != f"Bearer {token}":
            return error_answer(401, "Request had invalid authentication credentials. "
                                "Expected OAuth 2 access token.")
        if verb == "predictLongRunning":
            return json_answer(200, {"name": self.create_operation(
                model, api="vertex", project=project, location=location)})
        name = operation_name_in(handler.body)
        match = VERTEX_NAME.match(name or "")
        if match is None or match.group(1) != model:
            return error_answer(400, "operationName must be an operation of the model "
                                f"in the URL: {str(name)[:200]}")
        return self._poll(name, vertex=True)  # type: ignore[arg-type]

    def _poll(self, name: str, *, vertex: bool) -> Answer:
        with self._lock:
            op = self._ops.get(name)
            now = self._clock()
            if op is None or op.vertex != vertex or self._expired(op, now):
                return error_answer(404, f"Operation not found: {name}")
            if now < op.finish:
                return json_answer(200, {"name": name})
            if op.first_done_poll is None:
                op.first_done_poll = now
        return json_answer(200, done_body(op, self.base_url, inline=self.vertex_inline,
                                          video=self.video_bytes))

    def _download(self, file_id: str) -> Answer:
        with self._lock:
            op = self._ops.get(self._files.get(file_id, ""))
            now = self._clock()
            if op is None or now < op.finish or op.outcome != "success" or self._expired(op, now):
                return error_answer(404, f"File not found: {file_id}")
        redirect = self.download_redirect
        if redirect:
            base = self.base_url if redirect is True else str(redirect).rstrip("/")
            return 302, b"", "text/plain", {"Location": f"{base}/media/{file_id}.mp4"}
        return 200, self.video_bytes, "video/mp4", {}

    def _expired(self, op: Operation, now: float) -> bool:
        return self.expire_after is not None and (
            now >= op.finish + self.expire_after / self.time_scale
        )

    def _draw_duration(self) -> float:
        drawn = self._rng.lognormvariate(math.log(self.median_duration), self.duration_sigma)
        return min(self.max_duration, max(self.min_duration, drawn))

    def _new_id(self) -> str:
        while True:
            op_id = "".join(self._rng.choice(_ID_ALPHABET) for _ in range(12))
            if op_id not in self._files and f"{op_id}s0" not in self._files:
                return op_id
