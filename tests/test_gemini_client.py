"""GeminiVeoClient maps every Gemini answer to a status or an ApiError, and never leaks its key."""

from __future__ import annotations

import filecmp
import io
import json
import os
import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

import actors.clients as clients
from actors.clients import (
    BatchStatusClient,
    GeminiVeoClient,
    OperationStatus,
    StaticCredentials,
    StatusClient,
    parse_operation,
)
from actors.clients.gemini import NO_RESULT, parse_retry_after
from actors.errors import (
    ApiError,
    AuthError,
    ConfigurationError,
    InvalidJobError,
    OperationNotFoundError,
    PermanentApiError,
    RateLimitedError,
    TransientApiError,
)
from actors.simulator import VeoSimulator

WIRE = Path(__file__).parent / "wire"
SHARED_WIRE = Path(os.environ.get("VEO_WIRE_DIR", "/work/shared/wire"))
KEY = "AIzaSy-test-key-do-not-leak-0123456789"
MODEL = "veo-3.0-generate-001"
NAME = f"models/{MODEL}/operations/abc123"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


class CannedAdapter(BaseAdapter):
    """A transport that answers every request with one fixed response and records requests."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.status, self.body, self.headers = status, body, headers or {}
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        assert timeout is not None
        self.sent.append(request)
        response = requests.Response()
        response.status_code, response.reason = self.status, "canned"
        response.headers = CaseInsensitiveDict(self.headers)
        response.raw, response.url, response.request = io.BytesIO(self.body), request.url, request
        return response

    def close(self) -> None:
        pass


def canned(status: int, body: bytes, **headers: str) -> tuple[GeminiVeoClient, CannedAdapter]:
    adapter = CannedAdapter(status, body, {k.replace("_", "-"): v for k, v in headers.items()})
    session = requests.Session()
    session.mount("https://", adapter)
    return GeminiVeoClient(KEY, "https://veo.test", session=session), adapter


def assert_no_key(error: BaseException) -> None:
    while error is not None:
        assert KEY not in str(error) and KEY not in repr(error)
        error = error.__cause__ or error.__context__


def wire(name: str) -> dict:
    return json.loads((WIRE / name).read_text())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock):
    with VeoSimulator(clock=clock, api_key=KEY, seed=11) as server:
        yield server


@pytest.fixture
def client(sim):
    with GeminiVeoClient(KEY, sim.base_url, timeout=5) as gemini:
        yield gemini


def raised(client: GeminiVeoClient, name: str, kind: type[ApiError]) -> ApiError:
    with pytest.raises(kind) as caught:
        client.check(name)
    assert_no_key(caught.value)
    return caught.value


# ----- the wire fixtures ---------------------------------------------------------------------
def test_the_copied_wire_fixtures_match_the_shared_ones_byte_for_byte():
    if not SHARED_WIRE.is_dir():
        pytest.skip(f"{SHARED_WIRE} is not on this machine")
    names = sorted(path.name for path in SHARED_WIRE.iterdir())
    match, mismatch, errors = filecmp.cmpfiles(SHARED_WIRE, WIRE, names, shallow=False)
    assert (mismatch, errors) == ([], [])


@pytest.mark.parametrize("path", sorted(WIRE.glob("gemini-*.json")), ids=lambda p: p.name)
def test_every_gemini_fixture_parses_without_raising(path):
    status = parse_operation(json.loads(path.read_text()))
    assert isinstance(status, OperationStatus)


def test_the_pending_and_start_fixtures_are_not_done():
    for name in ("gemini-pending.json", "gemini-start.json"):
        status = parse_operation(wire(name))
        assert status == OperationStatus(name=wire(name)["name"], done=False)


def test_the_done_fixture_gives_its_video_uri():
    status = parse_operation(wire("gemini-done.json"))
    assert status.succeeded and status.error is None
    assert status.video_uris == (
        "https://generativelanguage.googleapis.com/v1beta/files/qu4d28uipuqh:download?alt=media",
    )


def test_the_failed_fixture_gives_its_error_message_and_code():
    status = parse_operation(wire("gemini-failed.json"))
    assert (status.done, status.succeeded) == (True, False)
    assert (status.error, status.error_code) == ("Internal error encountered.", 13)


def test_the_filtered_fixture_is_a_failure_with_its_reason():
    status = parse_operation(wire("gemini-filtered.json"))
    reason = wire("gemini-filtered.json")["response"]["generateVideoResponse"][
        "raiMediaFilteredReasons"][0]
    assert status.done and not status.succeeded and status.video_uris == ()
    assert status.filtered_reasons == (reason,)
    assert status.error == f"filtered: {reason}"


def test_a_filter_count_without_reasons_is_still_a_filtered_failure():
    body = {"name": NAME, "done": True,
            "response": {"generateVideoResponse": {"raiMediaFilteredCount": 2}}}
    status = parse_operation(body)
    assert status.error.startswith("filtered: ") and status.filtered_reasons == ()


@pytest.mark.parametrize("response", [
    None, {}, {"generateVideoResponse": {}}, {"generateVideoResponse": {"generatedSamples": []}},
    {"generateVideoResponse": {"generatedSamples": [{"video": {}}, {}, "junk"]}},
    {"generateVideoResponse": "junk"},
])
def test_a_done_answer_without_video_or_error_is_a_clear_failure(response):
    body = {"name": NAME, "done": True}
    if response is not None:
        body["response"] = response
    assert parse_operation(body) == OperationStatus(name=NAME, done=True, error=NO_RESULT)


def test_all_samples_uris_are_kept_in_order():
    samples = [{"video": {"uri": f"https://x/v1beta/files/f{i}:download"}} for i in range(3)]
    body = {"done": True, "response": {"generateVideoResponse": {"generatedSamples": samples}}}
    assert parse_operation(body, name=NAME).video_uris == tuple(
        f"https://x/v1beta/files/f{i}:download" for i in range(3))


def test_odd_done_and_error_values_do_not_crash():
    assert not parse_operation({"name": NAME, "done": "true"}).done
    assert parse_operation({"done": True, "error": "boom"}).error == "operation failed (no message)"
    assert parse_operation({"done": True, "error": {"code": True}}).error_code is None


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:45 GMT", now=now) == 45.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    for unusable in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(unusable) is None


# ----- against the simulated server ----------------------------------------------------------
def test_the_client_is_a_status_client_and_the_package_exports_it():
    assert isinstance(GeminiVeoClient(KEY), StatusClient)
    assert not isinstance(GeminiVeoClient(KEY), BatchStatusClient)  # no batch endpoint
    assert set(clients.__all__) == {
        "OperationStatus", "StatusClient", "BatchStatusClient", "GeminiVeoClient",
        "VertexVeoClient", "validate_operation_name", "parse_operation",
        "parse_vertex_operation", "CredentialProvider", "StaticCredentials",
        "CallableCredentials", "load_credentials_file",
    }


def test_a_pending_then_done_operation_over_http(sim, client, clock):
    name = sim.create_operation(duration=60, outcome="success")
    assert client.check(name) == OperationStatus(name=name, done=False)
    clock.now += 60
    status = client.check(name)
    assert status.succeeded and status.video_uris[0].startswith(f"{sim.base_url}/v1beta/files/")


def test_every_sample_of_a_multi_video_operation_is_returned(clock):
    with VeoSimulator(clock=clock, samples=2) as sim, GeminiVeoClient(KEY, sim.base_url) as client:
        name = sim.create_operation(duration=11, outcome="success")
        sim.finish_now(name)
        assert len(set(client.check(name).video_uris)) == 2


def test_failed_and_filtered_operations_over_http(sim, client):
    failed, filtered = sim.create_operation(outcome="failed"), sim.create_operation(
        outcome="filtered")
    sim.finish_now(failed)
    sim.finish_now(filtered)
    assert client.check(failed).error_code == 13
    status = client.check(filtered)
    assert status.error.startswith("filtered: ") and status.filtered_reasons


def test_the_key_travels_in_a_header_and_never_in_the_url(sim, client):
    client.check(sim.create_operation())
    assert sim.last_request_headers["x-goog-api-key"] == KEY
    assert KEY not in sim.last_request_path
    assert KEY not in repr(client) and sim.base_url in repr(client)


def test_an_unknown_or_expired_operation_is_not_found(clock):
    with VeoSimulator(clock=clock, expire_after=10) as sim, GeminiVeoClient(KEY, sim.base_url) as c:
        raised(c, f"models/{MODEL}/operations/nosuchthing", OperationNotFoundError)
        name = sim.create_operation(duration=20)
        clock.now += 30
        assert raised(c, name, OperationNotFoundError).status_code == 404


def test_429_with_retry_after_seconds_is_rate_limited(sim, client):
    sim.set_rate_limit(1, retry_after=7)
    error = raised(client, sim.create_operation(), RateLimitedError)
    assert (error.retry_after, error.status_code) == (7.0, 429)


def test_429_with_an_http_date_retry_after_is_rate_limited(sim, client):
    sim.set_rate_limit(1, retry_after=format_datetime(
        datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True))
    error = raised(client, sim.create_operation(), RateLimitedError)
    assert 25 <= error.retry_after <= 30


def test_429_without_a_usable_retry_after_has_none(sim, client):
    name = sim.create_operation()
    sim.set_rate_limit(1, retry_after=None)
    assert raised(client, name, RateLimitedError).retry_after is None
    sim.set_rate_limit(1, retry_after="later")
    assert raised(client, name, RateLimitedError).retry_after is None


def test_a_resource_exhausted_body_under_another_status_is_rate_limited():
    client, _ = canned(200, json.dumps(wire("gemini-429.json")).encode(), Retry_After="3")
    assert raised(client, NAME, RateLimitedError).retry_after == 3.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(sim, client, status):
    sim.set_errors(1, status=status)
    assert raised(client, sim.create_operation(), TransientApiError).status_code == status


def test_a_503_keeps_its_retry_after():
    client, _ = canned(503, b'{"error": {"code": 503}}', Retry_After="12")
    assert raised(client, NAME, TransientApiError).retry_after == 12.0


@pytest.mark.parametrize("status, kind", [
    (401, AuthError), (403, AuthError), (404, OperationNotFoundError),
    (400, PermanentApiError), (409, PermanentApiError), (422, PermanentApiError),
])
def test_client_errors_map_to_their_kind(sim, client, status, kind):
    sim.set_errors(1, status=status)
    assert raised(client, sim.create_operation(), kind).status_code == status


def test_a_wrong_key_is_an_auth_error(sim):
    with GeminiVeoClient("another-key", sim.base_url) as wrong:
        with pytest.raises(AuthError) as caught:
            wrong.check(sim.create_operation())
    assert caught.value.status_code == 401 and "another-key" not in str(caught.value)


def test_a_server_message_that_echoes_the_key_is_scrubbed():
    body = json.dumps({"error": {"code": 400, "message": f"bad key {KEY}"}}).encode()
    client, _ = canned(400, body)
    assert "[redacted]" in str(raised(client, NAME, PermanentApiError))


def test_a_redirect_is_not_followed():
    client, adapter = canned(302, b"", Location="https://elsewhere.test/steal")
    raised(client, NAME, PermanentApiError)
    assert len(adapter.sent) == 1


def test_truncated_json_is_transient(sim, client):
    sim.malformed_next(1)
    raised(client, sim.create_operation(), TransientApiError)


@pytest.mark.parametrize("status, body", [
    (200, b"<html><body>Service Unavailable</body></html>"),
    (502, b"<html><body>Bad Gateway</body></html>"),
    (200, b"[1, 2, 3]"),
    (200, b'"just a string"'),
    (200, b"\xff\xfe\x00 not utf-8"),
    (200, b""),
])
def test_html_and_non_object_bodies_are_transient(status, body):
    client, _ = canned(status, body, Content_Type="text/html")
    assert raised(client, NAME, TransientApiError).status_code == status


def test_an_oversize_body_is_transient_whether_declared_or_streamed(sim):
    declared, _ = canned(200, b"{}", Content_Length="5000000")
    raised(declared, NAME, TransientApiError)
    streamed, _ = canned(200, b'{"name": "' + b"x" * 3_000_000 + b'"}')
    raised(streamed, NAME, TransientApiError)
    with GeminiVeoClient(KEY, sim.base_url, max_body_bytes=20) as small:
        raised(small, sim.create_operation(), TransientApiError)


def test_a_refused_connection_is_transient(clock):
    sim = VeoSimulator(clock=clock).start()
    base_url = sim.base_url
    sim.close()
    with GeminiVeoClient(KEY, base_url, timeout=2) as client:
        error = raised(client, NAME, TransientApiError)
    assert error.status_code is None and "ConnectionError" in str(error) and NAME in str(error)


def test_a_dropped_connection_is_transient(sim, client):
    sim.drop_next(1)
    raised(client, sim.create_operation(), TransientApiError)


def test_a_slow_answer_times_out_as_transient(sim):
    sim.latency = 0.5
    with GeminiVeoClient(KEY, sim.base_url, timeout=0.05) as impatient:
        error = raised(impatient, sim.create_operation(), TransientApiError)
    assert "Timeout" in str(error)


def test_many_threads_share_one_client_and_its_pool(sim):
    names = [sim.create_operation(outcome="success") for _ in range(16)]
    for name in names[::2]:
        sim.finish_now(name)
    results: dict[str, OperationStatus] = {}
    barrier = threading.Barrier(16)
    with GeminiVeoClient(KEY, sim.base_url, pool_size=16) as shared:
        def worker(name: str) -> None:
            barrier.wait()
            for _ in range(5):
                results[name] = shared.check(name)

        threads = [threading.Thread(target=worker, args=(name,)) for name in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [results[name].done for name in names] == [True, False] * 8
    assert sim.request_count == 80 and sim.connection_count <= 16


# ----- configuration and validation ----------------------------------------------------------
@pytest.mark.parametrize("base_url", [
    "http://example.com", "ftp://127.0.0.1", "https://", "not a url", "https://u:p@host.test",
    "https://host.test/?x=1", "https://host.test/#f", "http://10.0.0.1:80", "https://host:99999",
    None,
])
def test_a_bad_base_url_is_a_configuration_error(base_url):
    with pytest.raises(ConfigurationError):
        GeminiVeoClient(KEY, base_url)


@pytest.mark.parametrize("base_url, kept", [
    ("https://generativelanguage.googleapis.com/", "https://generativelanguage.googleapis.com"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://localhost:1/prefix/", "http://localhost:1/prefix"),
    ("http://[::1]:80", "http://[::1]:80"),
])
def test_https_and_loopback_http_base_urls_are_accepted(base_url, kept):
    assert GeminiVeoClient(KEY, base_url).base_url == kept


@pytest.mark.parametrize("key", ["", "   ", None])
def test_an_empty_api_key_is_a_configuration_error(key):
    with pytest.raises(ConfigurationError):
        GeminiVeoClient(key)


@pytest.mark.parametrize("options", [{"timeout": 0}, {"pool_size": 0}, {"max_body_bytes": 0}])
def test_nonsense_limits_are_configuration_errors(options):
    with pytest.raises(ConfigurationError):
        GeminiVeoClient(KEY, **options)


@pytest.mark.parametrize("name", [
    "", "operations/x", f"models/{MODEL}/operations/../../files", f"{NAME}?key=1",
    "https://evil.test/models/m/operations/x", f"models/{MODEL}/operations/a/b", None,
])
def test_a_bad_operation_name_is_refused_before_any_request(sim, client, name):
    with pytest.raises(InvalidJobError):
        client.check(name)
    assert sim.request_count == 0


def test_a_vertex_operation_name_is_refused_by_the_gemini_client(sim, client):
    vertex = ("projects/p/locations/us-central1/publishers/google/models/"
              f"{MODEL}/operations/abc")
    with pytest.raises(InvalidJobError):
        client.check(vertex)
    assert sim.request_count == 0


# ----- credentials per profile ---------------------------------------------------------------
OTHER_KEY = "AIzaSy-other-profile-key-9876543210"


def test_exactly_one_of_api_key_or_credentials_is_required():
    with pytest.raises(ConfigurationError):
        GeminiVeoClient()
    with pytest.raises(ConfigurationError):
        GeminiVeoClient(KEY, credentials=StaticCredentials(default=KEY))
    with pytest.raises(ConfigurationError):
        GeminiVeoClient(credentials=KEY)


def test_an_api_key_becomes_a_static_provider_for_every_profile():
    client = GeminiVeoClient(KEY)
    assert isinstance(client.credentials, StaticCredentials)
    assert client.credentials.get("any-profile") == KEY


def test_each_profile_checks_with_its_own_key(sim):
    creds = StaticCredentials(per_profile={"a": KEY, "b": OTHER_KEY})
    with GeminiVeoClient(credentials=creds, base_url=sim.base_url) as client:
        name = sim.create_operation()
        client.check(name, profile_id="a")
        assert sim.last_request_headers["x-goog-api-key"] == KEY
        with pytest.raises(AuthError):  # the simulator only knows KEY
            client.check(name, profile_id="b")
        assert sim.last_request_headers["x-goog-api-key"] == OTHER_KEY


def test_a_profile_without_a_key_is_an_auth_error_before_any_request(sim):
    creds = StaticCredentials(per_profile={"a": KEY})
    with GeminiVeoClient(credentials=creds, base_url=sim.base_url) as client:
        with pytest.raises(AuthError, match="no credentials for profile 'b'"):
            client.check(sim.create_operation(), profile_id="b")
    assert sim.request_count == 0


def test_a_rotated_key_is_used_from_the_next_check(sim):
    creds = StaticCredentials(default="revoked-key-0000")
    with GeminiVeoClient(credentials=creds, base_url=sim.base_url) as client:
        name = sim.create_operation()
        with pytest.raises(AuthError):
            client.check(name, profile_id="p")
        version = creds.version("p")
        client.credentials.set("p", KEY)
        assert creds.version("p") != version
        assert client.check(name, profile_id="p") == OperationStatus(name=name, done=False)


def test_every_known_secret_is_scrubbed_from_error_texts():
    creds = StaticCredentials(default=KEY, per_profile={"b": OTHER_KEY})
    body = json.dumps({"error": {"code": 400, "message": f"bad keys {KEY} {OTHER_KEY}"}})
    adapter = CannedAdapter(400, body.encode())
    session = requests.Session()
    session.mount("https://", adapter)
    client = GeminiVeoClient(credentials=creds, base_url="https://veo.test", session=session)
    with pytest.raises(PermanentApiError) as caught:
        client.check(NAME, profile_id="a")
    assert KEY not in str(caught.value) and OTHER_KEY not in str(caught.value)
    assert str(caught.value).count("[redacted]") == 2


class BrokenProvider:
    def get(self, profile_id):
        raise RuntimeError(f"vault down, the key was {KEY}")


def test_a_failing_provider_is_transient_and_its_text_is_not_repeated():
    client = GeminiVeoClient(credentials=BrokenProvider(), base_url="https://veo.test")
    error = raised(client, NAME, TransientApiError)
    assert "RuntimeError" in str(error) and error.__cause__ is None


# ----- more faults from the simulated server -------------------------------------------------
def test_an_html_error_page_is_transient(sim, client):
    sim.html_next(1)
    assert raised(client, sim.create_operation(), TransientApiError).status_code == 502


def test_a_body_cut_short_mid_answer_is_transient(sim, client):
    name = sim.create_operation()
    sim.truncate_next(1)
    raised(client, name, TransientApiError)
    assert client.check(name) == OperationStatus(name=name, done=False)


def test_a_canary_key_never_reaches_a_log_record_or_an_error(sim, caplog, tmp_path):
    import logging

    canary = "CANARY-key-7f3a9c1e5b"
    sim.api_key = canary + "-p"
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    creds = StaticCredentials(default=canary, per_profile={"p": canary + "-p"})
    with GeminiVeoClient(credentials=creds, base_url=sim.base_url, timeout=0.5) as client:
        texts.append(repr(client) + repr(client.credentials))
        name = sim.create_operation(outcome="success")
        for fault in ("drop_next", "malformed_next", "html_next", "truncate_next"):
            getattr(sim, fault)(1)
            texts.append(repr(pytest.raises(ApiError, client.check, name).value))
        for status in (401, 403, 404, 429, 500, 400):
            sim.set_errors(1, status=status)
            texts.append(repr(pytest.raises(ApiError, client.check, name).value))
        sim.finish_now(name)
        texts.append(repr(pytest.raises(AuthError, client.check, name).value))
        uri = client.check(name, profile_id="p").video_uris[0]
        sim.set_errors(1, status=403)
        texts.append(str(pytest.raises(ApiError, client.download, uri, tmp_path / "v").value))
        client.download(uri, tmp_path / "v.mp4", profile_id="p")
    texts.extend(record.getMessage() for record in caplog.records)
    assert caplog.records and not [t for t in texts if canary in t]


def test_a_client_with_check_many_is_a_batch_status_client():
    class Batching:
        def check(self, operation_name, *, profile_id=None):
            return OperationStatus(name=operation_name)

        def check_many(self, operation_names, *, profile_id=None):
            return {name: OperationStatus(name=name) for name in operation_names}

        def close(self):
            pass

    assert isinstance(Batching(), BatchStatusClient) and isinstance(Batching(), StatusClient)
