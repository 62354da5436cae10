"""VeoSimulator: a real HTTP server on 127.0.0.1 that speaks the Gemini API's Veo wire format.

Each operation finishes after a duration drawn from a clipped log-normal distribution (divided
by ``time_scale`` for compressed time); some are filtered or fail. Faults can be switched on:
429 with Retry-After, 5xx, slow answers, dropped connections, truncated bodies. Every request
is counted. It serves the demo, the tests and the benchmarks.

The server runs on a background thread and answers each connection on its own daemon thread;
every public method may be called from any thread (one lock guards all state).
"""

from __future__ import annotations

import json
import math
import random
import re
import socket
import string
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

OUTCOMES = ("success", "filtered", "failed")
_RESPONSE_TYPE = (
    "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
)
_FILTER_REASON = (
    "We encountered an issue with the audio for your prompt. "
    "You have not been charged for this attempt."
)
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
    404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
    501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
_QUOTA_DETAILS = [{
    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
    "violations": [{
        "quotaMetric": "generativelanguage.googleapis.com/predict_long_running_requests",
        "quotaId": "PredictLongRunningRequestsPerMinutePerProject",
    }],
}]
_START = re.compile(r"^/v1beta/models/([A-Za-z0-9][A-Za-z0-9._-]*):predictLongRunning$")
_POLL = re.compile(r"^/v1beta/(models/[^/]+/operations/[^/]+)$")
_DOWNLOAD = re.compile(r"^/v1beta/files/([A-Za-z0-9_-]+):download$")
_FAKE_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 32
_ID_ALPHABET = string.ascii_lowercase + string.digits

# An answer: (status, body, content type, extra headers); status None means drop the connection.
_Answer = tuple[int | None, bytes, str, dict[str, str]]


@dataclass
class _Operation:
    name: str
    finish: float
    outcome: str
    file_ids: tuple[str, ...]
    polls: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    first_done_poll: float | None = None


class VeoSimulator:
    """A simulated Gemini Veo server for the demo, tests and benchmarks (see module doc).

    Use as a context manager (or :meth:`start` / :meth:`close`). ``clock`` is the time source
    for operation durations, so tests can inject a fake one; ``latency`` is real seconds added
    to each answer. Public attributes ``latency``, ``api_key``, ``failed_share`` and
    ``filtered_share`` may be changed at any time.
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
        self.latency = 0.0
        self._clock = clock
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._ops: dict[str, _Operation] = {}
        self._files: dict[str, str] = {}
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._faults = {"drop": 0, "rate": 0, "error": 0, "malformed": 0}
        self._retry_after: float | str | None = 1
        self._error_status = 503
        self._in_flight = 0
        self.reset_counters()
        self.last_request_path: str | None = None
        self.last_request_headers: dict[str, str] = {}

    # ----- lifecycle (any thread) -------------------------------------------------------
    def start(self) -> VeoSimulator:
        """Bind a free loopback port and serve on a background thread; returns self."""
        with self._lock:
            if self._server is not None:
                raise RuntimeError("the simulator is already started")
            self._stopping.clear()
            self._server = _Server(("127.0.0.1", 0), _Handler)
            self._server.sim = self
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                name=f"veo-simulator-{self._server.server_address[1]}", daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, drop open connections and join the server thread (idempotent)."""
        with self._lock:
            server, thread, self._server, self._thread = self._server, self._thread, None, None
            connections = list(self._connections)
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None:
            thread.join()

    def __enter__(self) -> VeoSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        server = self._server
        if server is None:
            raise RuntimeError("the simulator is not started")
        return f"http://127.0.0.1:{server.server_address[1]}"

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
                         duration: float | None = None, outcome: str | None = None) -> str:
        """Start an operation and return its name.

        ``duration`` is in simulated seconds (divided by ``time_scale``; None draws one);
        ``outcome`` is one of :data:`OUTCOMES` (None draws one from the shares).
        """
        if outcome is not None and outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
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
            files = (op_id,) if self.samples == 1 else tuple(
                f"{op_id}s{i}" for i in range(self.samples)
            )
            finish = self._clock() + duration / self.time_scale
            self._ops[name] = _Operation(name, finish, outcome, files)
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
        """GETs received for one operation."""
        with self._lock:
            return self._ops[name].polls

    def max_concurrency_for(self, name: str) -> int:
        """The most simultaneous GETs of one operation."""
        with self._lock:
            return self._ops[name].max_in_flight

    def first_poll_after_done(self, name: str) -> float | None:
        """Clock time of the first GET that answered done, or None."""
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

    # ----- request handling (handler threads) -------------------------------------------
    def _serve(self, handler: _Handler, method: str) -> None:
        path = urlsplit(handler.path).path
        poll = _POLL.match(path) if method == "GET" else None
        with self._lock:
            self._requests += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self.last_request_path = handler.path
            self.last_request_headers = dict(handler.headers.items())
            op = self._ops.get(poll.group(1)) if poll else None
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
            handler.reply(status, body, ctype, headers)
        finally:
            with self._lock:
                self._in_flight -= 1
                if op is not None:
                    op.in_flight -= 1

    def _answer(self, method: str, path: str, handler: _Handler, fault: str | None) -> _Answer:
        if fault == "drop":
            return None, b"", "", {}
        if fault == "rate":
            retry = self._retry_after
            headers = {} if retry is None else {"Retry-After": _header_value(retry)}
            return _error(429, "You exceeded your current quota, please check your plan "
                          "and billing details.", details=_QUOTA_DETAILS, headers=headers)
        if fault == "error":
            status = self._error_status
            return _error(status, "The service is currently unavailable." if status >= 500
                          else "The request was rejected.")
        if fault == "malformed":
            return 200, b'{"name": "models/veo/operations/x", "done": tr', "application/json", {}
        if self.api_key is not None and handler.headers.get("x-goog-api-key") != self.api_key:
            return _error(401, "API key not valid. Please pass a valid API key.")
        if method == "POST" and (start := _START.match(path)):
            return _json(200, {"name": self.create_operation(start.group(1))})
        if method == "GET" and (poll := _POLL.match(path)):
            return self._poll(poll.group(1))
        if method == "GET" and (download := _DOWNLOAD.match(path)):
            return self._download(download.group(1))
        return _error(404, f"Method not found: {method} {path[:200]}")

    def _poll(self, name: str) -> _Answer:
        with self._lock:
            op = self._ops.get(name)
            now = self._clock()
            if op is None or self._expired(op, now):
                return _error(404, f"Operation not found: {name}")
            if now < op.finish:
                return _json(200, {"name": name})
            if op.first_done_poll is None:
                op.first_done_poll = now
        body: dict[str, Any] = {"name": name, "done": True}
        if op.outcome == "failed":
            body["error"] = {"code": 13, "message": "Internal error encountered.", "details": []}
        elif op.outcome == "filtered":
            body["response"] = {"@type": _RESPONSE_TYPE, "generateVideoResponse": {
                "raiMediaFilteredCount": len(op.file_ids),
                "raiMediaFilteredReasons": [_FILTER_REASON],
            }}
        else:
            samples = [{"video": {"uri": f"{self.base_url}/v1beta/files/{f}:download?alt=media"}}
                       for f in op.file_ids]
            body["response"] = {"@type": _RESPONSE_TYPE,
                                "generateVideoResponse": {"generatedSamples": samples}}
        return _json(200, body)

    def _download(self, file_id: str) -> _Answer:
        with self._lock:
            op = self._ops.get(self._files.get(file_id, ""))
            now = self._clock()
            if op is None or now < op.finish or op.outcome != "success" or self._expired(op, now):
                return _error(404, f"File not found: {file_id}")
        return 200, _FAKE_MP4, "video/mp4", {}

    def _expired(self, op: _Operation, now: float) -> bool:
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

    def _track(self, conn: socket.socket, opened: bool) -> None:
        with self._lock:
            if opened:
                self._accepted += 1
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


def _json(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> _Answer:
    return status, json.dumps(payload).encode(), "application/json", headers or {}


def _error(status: int, message: str, *, details: list[Any] | None = None,
           headers: dict[str, str] | None = None) -> _Answer:
    error: dict[str, Any] = {"code": status, "message": message,
                             "status": _STATUS_NAMES.get(status, "UNKNOWN")}
    if details is not None:
        error["details"] = details
    return _json(status, {"error": error}, headers)


def _header_value(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    sim: VeoSimulator

    def handle_error(self, request: object, client_address: object) -> None:
        """Stay quiet: clients that time out or hang up are part of the simulation."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 60
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.sim._track(self.connection, opened=True)

    def finish(self) -> None:
        self.server.sim._track(self.connection, opened=False)
        super().finish()

    def do_GET(self) -> None:  # noqa: N802 - the http.server naming
        self.server.sim._serve(self, "GET")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)
        self.server.sim._serve(self, "POST")

    def reply(self, status: int | None, body: bytes, ctype: str, headers: dict[str, str]) -> None:
        if status is None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence the per-request stderr log."""
