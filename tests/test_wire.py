"""Every wire fixture (tests/wire, copies of the shared ones) parses to the status it means."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors.clients import OperationStatus, parse_operation, parse_vertex_operation
from actors.clients._http import Answer, HttpClient
from actors.clients.base import GEMINI_OPERATION_PATTERN, VERTEX_OPERATION_PATTERN
from actors.clients.credentials import StaticCredentials
from actors.errors import OperationNotFoundError, RateLimitedError

WIRE = Path(__file__).parent / "wire"
FIXTURES = sorted(WIRE.glob("*.json"))


def load(name: str) -> dict:
    return json.loads((WIRE / name).read_text())


def test_there_are_gemini_and_vertex_fixtures():
    names = {path.name for path in FIXTURES}
    assert {"gemini-done.json", "gemini-pending.json", "vertex-done.json",
            "vertex-filtered.json", "vertex-fetch-request.json"} <= names


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_every_fixture_is_a_json_object_that_its_parser_reads(path):
    body = json.loads(path.read_text())
    assert isinstance(body, dict)
    parse = parse_vertex_operation if path.name.startswith("vertex-") else parse_operation
    assert isinstance(parse(body), OperationStatus)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_every_operation_name_in_a_fixture_matches_its_pattern(path):
    body = json.loads(path.read_text())
    name = body.get("name") or body.get("operationName")
    if name is None:
        assert "error" in body
        return
    pattern = VERTEX_OPERATION_PATTERN if path.name.startswith("vertex-") else (
        GEMINI_OPERATION_PATTERN)
    assert pattern.fullmatch(name)


def test_gemini_pending_and_start():
    for name in ("gemini-pending.json", "gemini-start.json"):
        assert parse_operation(load(name)) == OperationStatus(name=load(name)["name"], done=False)


def test_gemini_done():
    status = parse_operation(load("gemini-done.json"))
    assert status.succeeded and status.video_uris == (
        "https://generativelanguage.googleapis.com/v1beta/files/qu4d28uipuqh:download?alt=media",)


def test_gemini_failed():
    status = parse_operation(load("gemini-failed.json"))
    assert (status.done, status.error, status.error_code) == (
        True, "Internal error encountered.", 13)


def test_gemini_filtered():
    status = parse_operation(load("gemini-filtered.json"))
    reasons = load("gemini-filtered.json")["response"]["generateVideoResponse"][
        "raiMediaFilteredReasons"]
    assert not status.succeeded and status.filtered_reasons == tuple(reasons)
    assert status.error == "filtered: " + reasons[0]


def test_vertex_done():
    status = parse_vertex_operation(load("vertex-done.json"))
    assert status.succeeded and status.error is None
    assert status.video_uris == ("gs://BUCKET_NAME/TIMESTAMPED_FOLDER/sample_0.mp4",)
    assert status.name == load("vertex-done.json")["name"]


def test_vertex_filtered():
    status = parse_vertex_operation(load("vertex-filtered.json"))
    reasons = load("vertex-filtered.json")["response"]["raiMediaFilteredReasons"]
    assert status.done and not status.succeeded and status.video_uris == ()
    assert status.filtered_reasons == tuple(reasons)
    assert status.error == "filtered: " + reasons[0]


def test_the_vertex_fetch_request_is_what_the_client_sends():
    request = load("vertex-fetch-request.json")
    assert set(request) == {"operationName"}
    assert VERTEX_OPERATION_PATTERN.fullmatch(request["operationName"])


def error_for(fixture: str, status: int, headers: dict[str, str] | None = None) -> Exception:
    client = HttpClient("https://veo.test", StaticCredentials(default="k"), timeout=1,
                        pool_size=1, max_body_bytes=1000, session=None)
    return client._http_error(Answer(status, headers or {}, load(fixture), False), "op")


def test_the_gemini_404_body_is_not_found_with_its_message():
    error = error_for("gemini-404.json", 404)
    assert isinstance(error, OperationNotFoundError) and "Operation not found" in str(error)


def test_the_gemini_429_body_is_rate_limited():
    error = error_for("gemini-429.json", 429, {"Retry-After": "20"})
    assert isinstance(error, RateLimitedError) and error.retry_after == 20.0
    assert "exceeded your current quota" in str(error)
