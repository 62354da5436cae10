"""VertexVeoClient: fetchPredictOperation with a bearer token, every answer mapped."""

from __future__ import annotations

import base64
import json
import threading

import pytest

from actors.clients import (
    BatchStatusClient,
    CallableCredentials,
    OperationStatus,
    StaticCredentials,
    StatusClient,
    VertexVeoClient,
    validate_operation_name,
)
from actors.clients.base import VERTEX_OPERATION_PATTERN
from actors.clients.vertex import default_base_url, parse_vertex_operation
from actors.errors import (
    AuthError,
    ConfigurationError,
    InvalidJobError,
    OperationNotFoundError,
    PermanentApiError,
    RateLimitedError,
    TransientApiError,
)
from actors.simulator import VeoSimulator

from .test_gemini_client import CannedAdapter, clock  # noqa: F401 - the clock fixture

TOKEN = "ya29.test-token-do-not-leak-abcdef"
PROJECT, LOCATION, MODEL = "sim-project", "us-central1", "veo-3.0-generate-001"
PREFIX = f"projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/{MODEL}"


@pytest.fixture
def sim(clock):
    with VeoSimulator(clock=clock, bearer_token=TOKEN, seed=5) as server:
        yield server


@pytest.fixture
def client(sim):
    with VertexVeoClient(PROJECT, LOCATION, lambda: TOKEN, sim.base_url, timeout=5) as vertex:
        yield vertex


def vertex_op(sim, **options) -> str:
    return sim.create_operation(MODEL, api="vertex", project=PROJECT, location=LOCATION, **options)


def raised(client, name, kind):
    with pytest.raises(kind) as caught:
        client.check(name)
    error = caught.value
    while error is not None:
        assert TOKEN not in str(error) and TOKEN not in repr(error)
        error = error.__cause__ or error.__context__
    return caught.value


# ----- the request --------------------------------------------------------------------------
def test_it_is_a_status_client_without_a_batch_method(client):
    assert isinstance(client, StatusClient) and not isinstance(client, BatchStatusClient)


def test_a_poll_is_a_post_to_fetch_predict_operation_with_a_bearer_token(sim, client):
    name = vertex_op(sim)
    assert client.check(name) == OperationStatus(name=name, done=False)
    assert sim.last_request_path == (
        f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/"
        f"{MODEL}:fetchPredictOperation")
    assert json.loads(sim.last_request_body) == {"operationName": name}
    assert sim.last_request_headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in repr(client) and sim.poll_count(name) == 1


def test_the_model_in_the_url_comes_from_the_operation_name(sim, client):
    name = sim.create_operation("veo-3.0-fast-generate-001", api="vertex", project=PROJECT)
    client.check(name)
    assert ":fetchPredictOperation" in sim.last_request_path
    assert "/models/veo-3.0-fast-generate-001:" in sim.last_request_path


def test_a_pending_then_done_operation_gives_its_gcs_uri(sim, client, clock):
    name = vertex_op(sim, duration=40, outcome="success")
    assert not client.check(name).done
    clock.now += 40
    status = client.check(name)
    assert status.succeeded and status.video_uris[0].startswith("gs://sim-bucket/")


def test_every_video_is_kept(clock):
    with VeoSimulator(clock=clock, samples=3) as sim, VertexVeoClient(
            PROJECT, LOCATION, "static-token", sim.base_url) as client:
        name = vertex_op(sim, duration=11, outcome="success")
        sim.finish_now(name)
        assert len(set(client.check(name).video_uris)) == 3


def test_inline_videos_become_placeholders_and_the_bytes_go_to_the_sink(clock):
    received: list[tuple[str, int, bytes]] = []
    with VeoSimulator(clock=clock, samples=2, vertex_inline=True) as sim, VertexVeoClient(
            PROJECT, LOCATION, "t", sim.base_url,
            on_inline_video=lambda *args: received.append(args)) as client:
        name = vertex_op(sim, duration=11, outcome="success")
        sim.finish_now(name)
        status = client.check(name)
    assert status.video_uris == ("inline:0", "inline:1")
    assert "AAAA" not in repr(status)  # no base64 payload in the status
    assert received == [(name, 0, sim.video_bytes), (name, 1, sim.video_bytes)]


def test_failed_and_filtered_operations(sim, client):
    failed, filtered = vertex_op(sim, outcome="failed"), vertex_op(sim, outcome="filtered")
    sim.finish_now(failed)
    sim.finish_now(filtered)
    assert (client.check(failed).error, client.check(failed).error_code) == (
        "Internal error encountered.", 13)
    status = client.check(filtered)
    assert status.error.startswith("filtered: Veo could not generate") and status.filtered_reasons


# ----- tokens ------------------------------------------------------------------------------
def test_a_401_asks_the_provider_again_and_retries_once(sim):
    tokens = iter(["expired-token", TOKEN])
    calls: list[str | None] = []

    def provider(profile_id):
        calls.append(profile_id)
        return next(tokens)

    with VertexVeoClient(PROJECT, LOCATION, provider, sim.base_url) as client:
        name = vertex_op(sim)
        assert client.check(name, profile_id="p1") == OperationStatus(name=name, done=False)
    assert calls == ["p1", "p1"] and sim.request_count == 2


def test_a_401_with_no_new_token_is_an_auth_error_without_a_second_request(sim):
    with VertexVeoClient(PROJECT, LOCATION, "stale-token", sim.base_url) as client:
        error = raised(client, vertex_op(sim), AuthError)
    assert error.status_code == 401 and sim.request_count == 1


def test_a_401_after_the_refresh_is_an_auth_error(sim):
    tokens = iter(["bad-1", "bad-2", "bad-3"])
    with VertexVeoClient(PROJECT, LOCATION, lambda: next(tokens), sim.base_url) as client:
        raised(client, vertex_op(sim), AuthError)
    assert sim.request_count == 2


def test_each_profile_uses_its_own_token_and_tokens_can_be_pinned(sim):
    creds = StaticCredentials(per_profile={"a": TOKEN, "b": "other-token"})
    with VertexVeoClient(PROJECT, LOCATION, creds, sim.base_url) as client:
        name = vertex_op(sim)
        client.check(name, profile_id="a")
        raised_b = pytest.raises(AuthError, client.check, name, profile_id="b")
        assert raised_b.value.status_code == 401
        client.credentials.set("b", TOKEN)
        assert not client.check(name, profile_id="b").done


def test_a_token_function_can_be_overridden_with_a_pinned_token(sim):
    with VertexVeoClient(PROJECT, LOCATION, lambda: "wrong", sim.base_url) as client:
        assert isinstance(client.credentials, CallableCredentials)
        client.credentials.set(None, TOKEN)
        assert not client.check(vertex_op(sim)).done


def test_a_provider_that_raises_auth_error_pauses_without_a_request(sim):
    def provider():
        raise AuthError("service account disabled")

    with VertexVeoClient(PROJECT, LOCATION, provider, sim.base_url) as client:
        raised(client, vertex_op(sim), AuthError)
    assert sim.request_count == 0


def test_a_server_message_echoing_the_token_is_scrubbed():
    from requests import Session

    body = json.dumps({"error": {"code": 400, "message": f"bad token {TOKEN}"}}).encode()
    session = Session()
    session.mount("https://", CannedAdapter(400, body))
    client = VertexVeoClient(PROJECT, LOCATION, lambda: TOKEN, session=session)
    assert "[redacted]" in str(raised(client, f"{PREFIX}/operations/x", PermanentApiError))


# ----- errors -------------------------------------------------------------------------------
def test_an_unknown_operation_is_not_found(sim, client):
    assert raised(client, f"{PREFIX}/operations/nosuch", OperationNotFoundError).status_code == 404


def test_a_gemini_operation_is_not_a_vertex_one(sim, client):
    with pytest.raises(InvalidJobError):
        client.check(sim.create_operation())
    assert sim.request_count == 0


def test_429_is_rate_limited_with_retry_after(sim, client):
    sim.set_rate_limit(1, retry_after=9)
    assert raised(client, vertex_op(sim), RateLimitedError).retry_after == 9.0


@pytest.mark.parametrize("status, kind", [
    (500, TransientApiError), (502, TransientApiError), (503, TransientApiError),
    (504, TransientApiError), (403, AuthError), (404, OperationNotFoundError),
    (400, PermanentApiError),
])
def test_http_errors_map_like_the_gemini_client(sim, client, status, kind):
    sim.set_errors(1, status=status)
    assert raised(client, vertex_op(sim), kind).status_code == status


@pytest.mark.parametrize("fault", ["malformed_next", "html_next", "drop_next", "truncate_next"])
def test_broken_answers_are_transient(sim, client, fault):
    name = vertex_op(sim)
    getattr(sim, fault)(1)
    raised(client, name, TransientApiError)
    assert not client.check(name).done


def test_an_oversize_answer_is_transient(sim):
    with VertexVeoClient(PROJECT, LOCATION, TOKEN, sim.base_url, max_body_bytes=30) as client:
        raised(client, vertex_op(sim), TransientApiError)


def test_a_slow_answer_times_out_as_transient(sim):
    sim.latency = 0.5
    with VertexVeoClient(PROJECT, LOCATION, TOKEN, sim.base_url, timeout=0.05) as client:
        assert "Timeout" in str(raised(client, vertex_op(sim), TransientApiError))


def test_many_threads_share_one_client(sim, client):
    names = [vertex_op(sim) for _ in range(8)]
    results: list[bool] = []
    threads = [threading.Thread(target=lambda n=n: results.append(client.check(n).done))
               for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [False] * 8


# ----- names and configuration --------------------------------------------------------------
@pytest.mark.parametrize("name", [
    "", f"{PREFIX}/operations/../x", f"{PREFIX}/operations/a?b=1", f"https://evil.test/{PREFIX}/operations/x",
    f"{PREFIX}/operations/a/b", "projects/p/locations/us-central1/operations/x",
    f"projects/p/locations/us-central1/publishers/other/models/{MODEL}/operations/x",
    f"projects/p/locations/us-central1/publishers/google/models/a..b/operations/x", None,
])
def test_a_bad_operation_name_is_refused_before_any_request(sim, client, name):
    with pytest.raises(InvalidJobError):
        client.check(name)
    with pytest.raises(InvalidJobError):
        validate_operation_name(name)
    assert sim.request_count == 0


def test_the_manager_validator_accepts_both_apis():
    vertex = f"{PREFIX}/operations/a1b07c8e-7b5a-4aba-bb34-3e1ccb8afcc8"
    assert validate_operation_name(vertex) == vertex
    assert validate_operation_name(f"models/{MODEL}/operations/abc") == f"models/{MODEL}/operations/abc"
    assert VERTEX_OPERATION_PATTERN.fullmatch(vertex).group("model") == MODEL


def test_a_model_restriction_refuses_other_models(sim):
    with VertexVeoClient(PROJECT, LOCATION, TOKEN, sim.base_url, model="veo-2.0") as client:
        with pytest.raises(InvalidJobError):
            client.check(vertex_op(sim))


def test_the_default_base_url_is_the_regional_endpoint():
    assert VertexVeoClient(PROJECT, "europe-west4", TOKEN).base_url == (
        "https://europe-west4-aiplatform.googleapis.com")
    assert default_base_url("global") == "https://aiplatform.googleapis.com"


@pytest.mark.parametrize("args, options", [
    (("", LOCATION, TOKEN), {}), ((PROJECT, "US Central", TOKEN), {}),
    ((PROJECT, LOCATION, None), {}), ((PROJECT, LOCATION, 42), {}),
    ((PROJECT, LOCATION, TOKEN, "http://example.com"), {}),
    ((PROJECT, LOCATION, TOKEN), {"model": "../x"}), ((PROJECT, LOCATION, TOKEN), {"timeout": 0}),
])
def test_bad_settings_are_configuration_errors(args, options):
    with pytest.raises(ConfigurationError):
        VertexVeoClient(*args, **options)


def test_parse_never_raises_on_odd_bodies():
    name = f"{PREFIX}/operations/x"
    for response in (None, "junk", {"videos": "junk"}, {"videos": [1, {}, {"gcsUri": ""}]}):
        status = parse_vertex_operation({"name": name, "done": True, "response": response})
        assert status.done and not status.succeeded and status.error
    inline = base64.b64encode(b"video").decode()
    status = parse_vertex_operation(
        {"done": True, "response": {"videos": [{"junk": 1}, {"bytesBase64Encoded": inline}]}},
        name=name)
    assert status.video_uris == ("inline:1",)
