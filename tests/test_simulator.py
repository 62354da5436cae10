"""The simulated Gemini Veo server speaks the wire format of tests/wire/ and counts requests."""

from __future__ import annotations

import base64
import json
import statistics
import threading
from pathlib import Path

import pytest
import requests

from actors.clients.base import GEMINI_OPERATION_PATTERN, VERTEX_OPERATION_PATTERN
from actors.simulator import VeoSimulator

WIRE = Path(__file__).parent / "wire"
MODEL = "veo-3.0-generate-001"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fixture(name: str) -> dict:
    return json.loads((WIRE / name).read_text())


def shape(value: object) -> object:
    """The keys of a JSON value, recursively, without the leaf values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return type(value).__name__


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock):
    with VeoSimulator(clock=clock, seed=7) as server:
        yield server


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


def poll(http: requests.Session, sim: VeoSimulator, name: str, **headers: str) -> requests.Response:
    return http.get(f"{sim.base_url}/v1beta/{name}", headers=headers, timeout=5)


def test_a_pending_operation_answers_only_its_name(sim, http):
    name = sim.create_operation(duration=60)
    answer = poll(http, sim, name)
    assert answer.status_code == 200
    assert answer.json() == {"name": name}
    assert shape(answer.json()) == shape(fixture("gemini-pending.json"))


def test_an_operation_is_done_with_a_downloadable_video_once_its_duration_passed(sim, http, clock):
    name = sim.create_operation(duration=60, outcome="success")
    assert sim.finish_time(name) == clock.now + 60
    clock.advance(59.9)
    assert "done" not in poll(http, sim, name).json()
    clock.advance(0.1)
    body = poll(http, sim, name).json()
    assert shape(body) == shape(fixture("gemini-done.json"))
    uri = body["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"]
    assert uri.startswith(f"{sim.base_url}/v1beta/files/") and uri.endswith(":download?alt=media")
    video = http.get(uri, timeout=5)
    assert video.status_code == 200 and video.headers["Content-Type"] == "video/mp4"
    assert video.content


def test_time_scale_divides_durations(clock):
    sim = VeoSimulator(clock=clock, time_scale=100)
    name = sim.create_operation(duration=90)
    assert sim.finish_time(name) == pytest.approx(clock.now + 0.9)


def test_every_sample_gets_its_own_video_uri(clock, http):
    with VeoSimulator(clock=clock, samples=3) as sim:
        name = sim.create_operation(duration=11, outcome="success")
        sim.finish_now(name)
        samples = poll(http, sim, name).json()["response"]["generateVideoResponse"]
        uris = [s["video"]["uri"] for s in samples["generatedSamples"]]
        assert len(set(uris)) == 3


def test_a_failed_operation_has_the_failed_shape(sim, http):
    name = sim.create_operation(outcome="failed")
    sim.finish_now(name)
    body = poll(http, sim, name).json()
    assert shape(body) == shape(fixture("gemini-failed.json"))
    assert body["done"] is True and body["error"]["code"] == 13


def test_a_filtered_operation_has_the_filtered_shape(sim, http):
    name = sim.create_operation(outcome="filtered")
    sim.finish_now(name)
    body = poll(http, sim, name).json()
    assert shape(body) == shape(fixture("gemini-filtered.json"))
    assert "generatedSamples" not in body["response"]["generateVideoResponse"]
    assert sim.outcome(name) == "filtered"


def test_an_unknown_operation_answers_404_with_the_error_shape(sim, http):
    answer = poll(http, sim, f"models/{MODEL}/operations/zzzzzzzzzzzz")
    assert answer.status_code == 404
    assert shape(answer.json()) == shape(fixture("gemini-404.json"))
    assert answer.json()["error"]["status"] == "NOT_FOUND"


def test_an_operation_expires_after_its_retention(clock, http):
    with VeoSimulator(clock=clock, expire_after=100) as sim:
        name = sim.create_operation(duration=20, outcome="success")
        clock.advance(119)
        assert poll(http, sim, name).status_code == 200
        clock.advance(1)
        assert poll(http, sim, name).status_code == 404


def test_rate_limiting_answers_429_with_retry_after_then_recovers(sim, http):
    name = sim.create_operation()
    sim.set_rate_limit(2, retry_after=7)
    first, second, third = (poll(http, sim, name) for _ in range(3))
    assert first.status_code == second.status_code == 429
    assert first.headers["Retry-After"] == "7"
    assert shape(first.json()) == shape(fixture("gemini-429.json"))
    assert third.status_code == 200
    sim.set_rate_limit(1, retry_after=None)
    assert "Retry-After" not in poll(http, sim, name).headers


def test_switched_on_errors_answer_that_status_with_a_json_body(sim, http):
    name = sim.create_operation()
    sim.set_errors(1, status=503)
    answer = poll(http, sim, name)
    assert answer.status_code == 503 and answer.json()["error"]["code"] == 503
    assert poll(http, sim, name).status_code == 200


def test_a_dropped_connection_gives_no_answer(sim, http):
    name = sim.create_operation()
    sim.drop_next(1)
    with pytest.raises(requests.ConnectionError):
        poll(http, sim, name)
    assert poll(http, sim, name).status_code == 200


def test_a_malformed_answer_is_truncated_json(sim, http):
    sim.malformed_next(1)
    answer = poll(http, sim, sim.create_operation())
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()


def test_a_wrong_api_key_is_refused_with_401(clock, http):
    with VeoSimulator(clock=clock, api_key="right-key") as sim:
        name = sim.create_operation()
        refused = poll(http, sim, name, **{"x-goog-api-key": "wrong-key"})
        assert refused.status_code == 401 and refused.json()["error"]["code"] == 401
        assert poll(http, sim, name, **{"x-goog-api-key": "right-key"}).status_code == 200
        assert sim.last_request_headers["x-goog-api-key"] == "right-key"
        assert sim.last_request_path == f"/v1beta/{name}"


def test_predict_long_running_starts_an_operation_over_http(sim, http):
    answer = http.post(
        f"{sim.base_url}/v1beta/models/{MODEL}:predictLongRunning",
        json={"instances": [{"prompt": "a cat"}], "parameters": {"aspectRatio": "16:9"}},
        timeout=5,
    )
    assert answer.status_code == 200
    assert shape(answer.json()) == shape(fixture("gemini-start.json"))
    name = answer.json()["name"]
    assert GEMINI_OPERATION_PATTERN.fullmatch(name) and name.startswith(f"models/{MODEL}/")
    assert sim.operations() == [name]


def test_requests_and_polls_are_counted_and_keep_alive_reuses_one_connection(sim, http):
    name = sim.create_operation()
    for _ in range(4):
        poll(http, sim, name)
    poll(http, sim, f"models/{MODEL}/operations/unknown")
    assert sim.request_count == 5
    assert sim.poll_count(name) == 4
    assert sim.connection_count == 1
    sim.reset_counters()
    assert (sim.request_count, sim.poll_count(name), sim.max_concurrency) == (0, 0, 0)


def test_concurrent_polls_of_one_operation_are_measured(sim):
    name = sim.create_operation()
    other = sim.create_operation()
    sim.latency = 0.3
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def client() -> None:
        with requests.Session() as session:
            barrier.wait()
            statuses.append(session.get(f"{sim.base_url}/v1beta/{name}", timeout=5).status_code)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 4
    assert sim.max_concurrency == 4
    assert sim.max_concurrency_for(name) == 4
    assert sim.max_concurrency_for(other) == 0


def test_the_first_done_poll_is_recorded(sim, http, clock):
    name = sim.create_operation(duration=30)
    poll(http, sim, name)
    assert sim.first_poll_after_done(name) is None
    clock.advance(45)
    poll(http, sim, name)
    clock.advance(10)
    poll(http, sim, name)
    assert sim.first_poll_after_done(name) == sim.finish_time(name) + 15


def test_the_duration_distribution_honours_its_bounds_and_median(clock):
    sim = VeoSimulator(clock=clock, seed=42)
    durations = [sim.finish_time(sim.create_operation()) - clock.now for _ in range(4000)]
    assert min(durations) >= 11.0 and max(durations) <= 360.0
    assert statistics.median(durations) == pytest.approx(90.0, rel=0.08)
    wide = VeoSimulator(clock=clock, seed=42, duration_sigma=3.0)
    tails = {wide.finish_time(wide.create_operation()) - clock.now for _ in range(500)}
    assert min(tails) == 11.0 and max(tails) == 360.0  # the tails are clipped, not redrawn


def test_outcomes_are_drawn_from_the_shares(clock):
    sim = VeoSimulator(clock=clock, seed=3, failed_share=0.2, filtered_share=0.3)
    outcomes = [sim.outcome(sim.create_operation()) for _ in range(3000)]
    assert outcomes.count("failed") / 3000 == pytest.approx(0.2, abs=0.04)
    assert outcomes.count("filtered") / 3000 == pytest.approx(0.3, abs=0.04)
    sim.fail_share, sim.filter_share = 0.0, 0.0
    assert {sim.outcome(sim.create_operation()) for _ in range(50)} == {"success"}


def test_the_same_seed_gives_the_same_operations(clock):
    first, second = VeoSimulator(clock=clock, seed=5), VeoSimulator(clock=clock, seed=5)
    names = [(first.create_operation(), second.create_operation()) for _ in range(5)]
    assert all(a == b for a, b in names)


def test_a_closed_simulator_refuses_connections(clock, http):
    sim = VeoSimulator(clock=clock).start()
    base_url = sim.base_url
    poll(http, sim, sim.create_operation())
    sim.close()
    sim.close()
    with pytest.raises(requests.ConnectionError):
        http.get(f"{base_url}/v1beta/models/m/operations/x", timeout=2)


# ----- Vertex AI endpoints -------------------------------------------------------------------
PROJECT, LOCATION = "sim-project", "us-central1"
VERTEX_ROOT = f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/{MODEL}"


def fetch(http, sim, name, model=MODEL, **headers):
    url = (f"{sim.base_url}/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/"
           f"models/{model}:fetchPredictOperation")
    return http.post(url, json={"operationName": name}, headers=headers, timeout=5)


def vertex_op(sim, **options):
    return sim.create_operation(api="vertex", project=PROJECT, location=LOCATION, **options)


def test_vertex_predict_long_running_starts_a_vertex_operation(sim, http):
    answer = http.post(f"{sim.base_url}{VERTEX_ROOT}:predictLongRunning",
                       json={"instances": [{"prompt": "a cat"}]}, timeout=5)
    assert answer.status_code == 200
    name = answer.json()["name"]
    assert VERTEX_OPERATION_PATTERN.fullmatch(name)
    assert name.startswith(VERTEX_ROOT[len("/v1/"):] + "/operations/")
    assert sim.operations() == [name]


def test_a_vertex_fetch_answers_pending_then_the_done_shape(sim, http, clock):
    name = vertex_op(sim, duration=20, outcome="success")
    assert fetch(http, sim, name).json() == {"name": name}
    clock.advance(20)
    body = fetch(http, sim, name).json()
    assert shape(body) == shape(fixture("vertex-done.json"))
    assert body["response"]["videos"][0]["gcsUri"].startswith("gs://")
    assert json.loads(sim.last_request_body) == {"operationName": name}
    assert shape(json.loads(sim.last_request_body)) == shape(fixture("vertex-fetch-request.json"))
    assert sim.poll_count(name) == 2 and sim.first_poll_after_done(name) == clock.now


def test_a_vertex_filtered_operation_has_the_filtered_shape(sim, http):
    name = vertex_op(sim, outcome="filtered")
    sim.finish_now(name)
    assert shape(fetch(http, sim, name).json()) == shape(fixture("vertex-filtered.json"))


def test_a_vertex_failed_operation_has_the_error_shape(sim, http):
    name = vertex_op(sim, outcome="failed")
    sim.finish_now(name)
    body = fetch(http, sim, name).json()
    assert body["done"] is True and body["error"]["code"] == 13


def test_vertex_inline_videos_carry_base64_bytes(clock, http):
    with VeoSimulator(clock=clock, vertex_inline=True) as sim:
        name = vertex_op(sim, outcome="success")
        sim.finish_now(name)
        video = fetch(http, sim, name).json()["response"]["videos"][0]
        assert base64.b64decode(video["bytesBase64Encoded"]) == sim.video_bytes


def test_a_get_on_a_vertex_operation_name_answers_404(sim, http):
    name = vertex_op(sim)
    assert http.get(f"{sim.base_url}/v1/{name}", timeout=5).status_code == 404


def test_a_vertex_fetch_for_an_unknown_or_mismatched_operation(sim, http):
    assert fetch(http, sim, f"{VERTEX_ROOT[4:]}/operations/nosuch").status_code == 404
    name = vertex_op(sim)
    assert fetch(http, sim, name, model="veo-2.0-generate-001").status_code == 400
    assert fetch(http, sim, sim.create_operation()).status_code == 400  # a Gemini name


def test_the_bearer_token_is_checked_on_vertex_endpoints_only(clock, http):
    with VeoSimulator(clock=clock, bearer_token="tok") as sim:
        name = vertex_op(sim)
        refused = fetch(http, sim, name, Authorization="Bearer wrong")
        assert refused.status_code == 401 and refused.json()["error"]["status"] == (
            "UNAUTHENTICATED")
        assert fetch(http, sim, name, Authorization="Bearer tok").status_code == 200
        assert poll(http, sim, sim.create_operation()).status_code == 200


@pytest.mark.parametrize("fault, status", [
    ("set_errors", 503), ("set_rate_limit", 429), ("html_next", 502),
])
def test_faults_apply_to_vertex_endpoints_too(sim, http, fault, status):
    name = vertex_op(sim)
    getattr(sim, fault)(1)
    assert fetch(http, sim, name).status_code == status
    assert fetch(http, sim, name).status_code == 200


# ----- more faults ---------------------------------------------------------------------------
def test_html_next_answers_an_html_502_page(sim, http):
    sim.html_next(1)
    answer = poll(http, sim, sim.create_operation())
    assert answer.status_code == 502 and answer.headers["Content-Type"].startswith("text/html")
    assert answer.text.startswith("<!DOCTYPE html>")


def test_truncate_next_cuts_the_body_short(sim, http):
    sim.truncate_next(1)
    with pytest.raises(requests.RequestException):
        poll(http, sim, sim.create_operation())


def test_the_gemini_endpoints_also_answer_under_v1_as_the_sdk_sends(sim, http):
    name = sim.create_operation()
    assert http.get(f"{sim.base_url}/v1/{name}", timeout=5).json() == {"name": name}


# ----- downloads -----------------------------------------------------------------------------
def test_a_download_redirects_to_media_when_asked(sim, http):
    name = sim.create_operation(outcome="success")
    sim.finish_now(name)
    uri = poll(http, sim, name).json()["response"]["generateVideoResponse"][
        "generatedSamples"][0]["video"]["uri"]
    assert http.get(uri, timeout=5).content == sim.video_bytes
    sim.download_redirect = True
    answer = http.get(uri, timeout=5, allow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(f"{sim.base_url}/media/")
    assert http.get(uri, timeout=5).content == sim.video_bytes
    sim.download_redirect = "http://127.0.0.1:1/storage"
    assert http.get(uri, timeout=5, allow_redirects=False).headers["Location"].startswith(
        "http://127.0.0.1:1/storage/media/")
