"""Hold the simulated server against an independent client: the official google-genai SDK.

The SDK polls ``client.operations.get(GenerateVideosOperation(name=...))``; pointed at the
simulator with ``http_options={"base_url": ...}`` it must read the same video URI as our
clients, for the Gemini API (key auth) and for Vertex AI (bearer token, fetchPredictOperation).
"""

from __future__ import annotations

import pytest

genai = pytest.importorskip("google.genai", reason="google-genai is a test-only dependency")
types = pytest.importorskip("google.genai.types")

from actors.clients import GeminiVeoClient, VertexVeoClient  # noqa: E402
from actors.simulator import VeoSimulator  # noqa: E402
from .test_gemini_client import clock  # noqa: E402,F401 - the clock fixture

KEY, TOKEN = "sdk-test-key", "sdk-test-token"
PROJECT, LOCATION, MODEL = "sdk-project", "us-central1", "veo-3.0-fast-generate-001"


@pytest.fixture
def sim(clock):
    with VeoSimulator(clock=clock, api_key=KEY, bearer_token=TOKEN, samples=2) as server:
        yield server


def sdk_uris(operation) -> tuple[str, ...]:
    return tuple(video.video.uri for video in operation.response.generated_videos)


def test_the_sdk_and_the_gemini_client_read_the_same_operation(sim, clock):
    name = sim.create_operation(MODEL, duration=30, outcome="success")
    sdk = genai.Client(api_key=KEY, http_options={"base_url": sim.base_url})
    ours = GeminiVeoClient(KEY, sim.base_url)

    pending = sdk.operations.get(types.GenerateVideosOperation(name=name))
    assert pending.name == name and not pending.done and pending.response is None
    assert sim.last_request_headers.get("x-goog-api-key") == KEY
    assert not ours.check(name).done

    clock.now += 30
    done = sdk.operations.get(pending)
    status = ours.check(name)
    assert done.done and status.succeeded
    assert sdk_uris(done) == status.video_uris and len(status.video_uris) == 2
    assert sim.poll_count(name) == 4


def both_read_finished(sim, outcome: str):
    """(the SDK's operation, our status) for a finished operation with ``outcome``."""
    name = sim.create_operation(MODEL, outcome=outcome)
    sim.finish_now(name)
    sdk = genai.Client(api_key=KEY, http_options={"base_url": sim.base_url})
    done = sdk.operations.get(types.GenerateVideosOperation(name=name))
    with GeminiVeoClient(KEY, sim.base_url) as ours:
        return done, ours.check(name)


def test_the_sdk_and_the_gemini_client_read_the_same_failure(sim):
    done, status = both_read_finished(sim, "failed")
    assert done.done and done.error["code"] == status.error_code == 13
    assert done.error["message"] == status.error


def test_the_sdk_and_the_gemini_client_read_the_same_filter_verdict(sim):
    done, status = both_read_finished(sim, "filtered")
    assert tuple(done.response.rai_media_filtered_reasons) == status.filtered_reasons
    assert done.response.rai_media_filtered_count == 2 and not done.response.generated_videos


def test_the_sdk_in_vertex_mode_and_the_vertex_client_read_the_same_operation(sim, clock):
    credentials = pytest.importorskip("google.oauth2.credentials")
    name = sim.create_operation(MODEL, duration=30, outcome="success", api="vertex",
                                project=PROJECT, location=LOCATION)
    sdk = genai.Client(vertexai=True, project=PROJECT, location=LOCATION,
                       credentials=credentials.Credentials(token=TOKEN),
                       http_options={"base_url": sim.base_url})
    ours = VertexVeoClient(PROJECT, LOCATION, lambda: TOKEN, sim.base_url)

    pending = sdk.operations.get(types.GenerateVideosOperation(name=name))
    assert not pending.done and sim.last_request_path.endswith(":fetchPredictOperation")
    assert sim.last_request_headers.get("Authorization") == f"Bearer {TOKEN}"
    assert not ours.check(name).done

    clock.now += 30
    done = sdk.operations.get(pending)
    status = ours.check(name)
    assert done.done and status.succeeded
    assert sdk_uris(done) == status.video_uris and status.video_uris[0].startswith("gs://")
