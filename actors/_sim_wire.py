"""The wire side of the simulated Veo server: routes, answer bodies, the HTTP handler.

Internal to :mod:`actors.simulator`. Bodies follow the shapes of the public documentation
(see tests/wire/): Gemini API operations and Vertex AI ``fetchPredictOperation`` answers.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

OUTCOMES = ("success", "filtered", "failed")
GEMINI_RESPONSE_TYPE = (
    "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
)
VERTEX_RESPONSE_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
GEMINI_FILTER_REASON = (
    "We encountered an issue with the audio for your prompt. "
    "You have not been charged for this attempt."
)
VERTEX_FILTER_REASON = (
    "Veo could not generate 1 videos based on the prompt provided. "
    "You will not be charged for this request."
)
STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
    404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
    501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
QUOTA_DETAILS = [{
    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
    "violations": [{
        "quotaMetric": "generativelanguage.googleapis.com/predict_long_running_requests",
        "quotaId": "PredictLongRunningRequestsPerMinutePerProject",
    }],
}]
# The Gemini API under v1beta (the REST docs) or v1 (what the google-genai SDK sends).
GEMINI_START = re.compile(r"^/v1(?:beta)?/models/([A-Za-z0-9][A-Za-z0-9._-]*):predictLongRunning$")
GEMINI_POLL = re.compile(r"^/v1(?:beta)?/(models/[^/]+/operations/[^/]+)$")
DOWNLOAD = re.compile(r"^/v1beta/files/([A-Za-z0-9_-]+):download$")
MEDIA = re.compile(r"^/media/([A-Za-z0-9_-]+)\.mp4$")
# Vertex AI under v1 (the REST docs) or v1beta1 (the SDK).
VERTEX_METHOD = re.compile(
    r"^/v1(?:beta1)?/projects/([A-Za-z0-9_-]+)/locations/([a-z0-9-]+)"
    r"/publishers/google/models/([A-Za-z0-9][A-Za-z0-9._-]*):"
    r"(predictLongRunning|fetchPredictOperation)$"
)
VERTEX_NAME = re.compile(
    r"^projects/[^/]+/locations/[^/]+/publishers/google/models/([^/]+)/operations/[^/]+$"
)
FAKE_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 32
HTML_502 = (b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
            b"<body><h1>Bad Gateway</h1><p>The server encountered a temporary error.</p>"
            b"</body></html>")

# An answer: (status, body, content type, extra headers); status None means drop the connection.
Answer = tuple[int | None, bytes, str, dict[str, str]]


@dataclass
class Operation:
    name: str
    finish: float
    outcome: str
    file_ids: tuple[str, ...]
    vertex: bool = False
    polls: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    first_done_poll: float | None = None


def done_body(op: Operation, base_url: str, *, inline: bool = False,
              video: bytes = FAKE_MP4) -> dict[str, Any]:
    """The done answer of ``op`` in its API's shape (tests/wire/*-done|failed|filtered)."""
    body: dict[str, Any] = {"name": op.name, "done": True}
    if op.outcome == "failed":
        body["error"] = {"code": 13, "message": "Internal error encountered.", "details": []}
    elif op.vertex:
        response: dict[str, Any] = {"@type": VERTEX_RESPONSE_TYPE}
        if op.outcome == "filtered":
            response["raiMediaFilteredCount"] = len(op.file_ids)
            response["raiMediaFilteredReasons"] = [VERTEX_FILTER_REASON]
        else:
            response["raiMediaFilteredCount"] = 0
            encoded = base64.b64encode(video).decode()
            response["videos"] = [
                {"bytesBase64Encoded": encoded, "mimeType": "video/mp4"} if inline else
                {"gcsUri": f"gs://sim-bucket/{f}/sample_{i}.mp4", "mimeType": "video/mp4"}
                for i, f in enumerate(op.file_ids)
            ]
        body["response"] = response
    elif op.outcome == "filtered":
        body["response"] = {"@type": GEMINI_RESPONSE_TYPE, "generateVideoResponse": {
            "raiMediaFilteredCount": len(op.file_ids),
            "raiMediaFilteredReasons": [GEMINI_FILTER_REASON],
        }}
    else:
        samples = [{"video": {"uri": f"{base_url}/v1beta/files/{f}:download?alt=media"}}
                   for f in op.file_ids]
        body["response"] = {"@type": GEMINI_RESPONSE_TYPE,
                            "generateVideoResponse": {"generatedSamples": samples}}
    return body


def json_answer(status: int, payload: dict[str, Any],
                headers: dict[str, str] | None = None) -> Answer:
    return status, json.dumps(payload).encode(), "application/json", headers or {}


def error_answer(status: int, message: str, *, details: list[Any] | None = None,
                 headers: dict[str, str] | None = None) -> Answer:
    error: dict[str, Any] = {"code": status, "message": message,
                             "status": STATUS_NAMES.get(status, "UNKNOWN")}
    if details is not None:
        error["details"] = details
    return json_answer(status, {"error": error}, headers)


def header_value(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


def operation_name_in(body: bytes) -> str | None:
    """The ``operationName`` of a fetchPredictOperation body, or None."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    name = payload.get("operationName") if isinstance(payload, dict) else None
    return name if isinstance(name, str) else None


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    sim: LoopbackServer

    def handle_error(self, request: object, client_address: object) -> None:
        """Stay quiet: clients that time out or hang up are part of the simulation."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 60
    server: Server
    body = b""

    def setup(self) -> None:
        super().setup()
        self.server.sim._track(self.connection, opened=True)

    def finish(self) -> None:
        self.server.sim._track(self.connection, opened=False)
        super().finish()

    def do_GET(self) -> None:  # noqa: N802 - the http.server naming
        self.body = b""
        self.server.sim._serve(self, "GET")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length > 0 else b""
        self.server.sim._serve(self, "POST")

    def reply(self, status: int | None, body: bytes, ctype: str, headers: dict[str, str],
              *, truncate: bool = False) -> None:
        """Send the answer; ``status`` None drops the connection; ``truncate`` sends half the
        body under the full Content-Length and hangs up."""
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
        if truncate:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence the per-request stderr log."""


class LoopbackServer:
    """A threaded HTTP server on a free 127.0.0.1 port: start, close, count connections.

    Subclasses answer requests in ``_serve(handler, method)`` (on handler threads).
    """

    def _init_server(self) -> None:
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._accepted = 0

    def _serve(self, handler: Handler, method: str) -> None:
        raise NotImplementedError

    # ----- lifecycle (any thread) -------------------------------------------------------
    def start(self) -> Self:
        """Bind a free loopback port and serve on a background thread; returns self."""
        with self._lock:
            if self._server is not None:
                raise RuntimeError("the simulator is already started")
            self._stopping.clear()
            self._server = Server(("127.0.0.1", 0), Handler)
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

    def __enter__(self) -> Self:
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

    def _track(self, conn: socket.socket, opened: bool) -> None:
        with self._lock:
            if opened:
                self._accepted += 1
                self._connections.add(conn)
            else:
                self._connections.discard(conn)
