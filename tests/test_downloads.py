"""Downloading finished videos: key only to the API's host, redirects, atomic files, sizes."""

from __future__ import annotations

import io
import os

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from actors.clients import GeminiVeoClient, StaticCredentials, VertexVeoClient
from actors.downloads import download_videos, video_filename
from actors.errors import (
    AuthError,
    OperationNotFoundError,
    PermanentApiError,
    RateLimitedError,
    TransientApiError,
)
from actors.simulator import VeoSimulator

from .test_gemini_client import clock  # noqa: F401 - the clock fixture

KEY = "AIzaSy-download-key-do-not-leak-42"


@pytest.fixture
def sim(clock):
    with VeoSimulator(clock=clock, api_key=KEY, seed=3) as server:
        yield server


@pytest.fixture
def client(sim):
    with GeminiVeoClient(KEY, sim.base_url, timeout=5) as gemini:
        yield gemini


def finished_uri(sim, client, **options) -> str:
    name = sim.create_operation(outcome="success", **options)
    sim.finish_now(name)
    return client.check(name).video_uris[0]


def leftovers(directory) -> list[str]:
    return sorted(os.listdir(directory))


# ----- GeminiVeoClient.download -------------------------------------------------------------
def test_a_video_is_downloaded_with_the_key_in_a_header(sim, client, tmp_path):
    uri = finished_uri(sim, client)
    dest = tmp_path / "video.mp4"
    written = client.download(uri, dest)
    assert written == len(sim.video_bytes) and dest.read_bytes() == sim.video_bytes
    assert sim.last_request_headers["x-goog-api-key"] == KEY
    assert KEY not in sim.last_request_path
    assert leftovers(tmp_path) == ["video.mp4"]


def test_the_profile_selects_the_key(sim, tmp_path):
    creds = StaticCredentials(default="wrong-key", per_profile={"good": KEY})
    with GeminiVeoClient(credentials=creds, base_url=sim.base_url) as client:
        uri = finished_uri(sim, client.__class__(KEY, sim.base_url))
        with pytest.raises(AuthError):
            client.download(uri, tmp_path / "a.mp4")
        assert client.download(uri, tmp_path / "b.mp4", profile_id="good") > 0
    assert leftovers(tmp_path) == ["b.mp4"]


def test_a_same_host_redirect_is_followed_with_the_key(sim, client, tmp_path):
    sim.download_redirect = True
    uri = finished_uri(sim, client)
    assert client.download(uri, tmp_path / "v.mp4") == len(sim.video_bytes)
    assert sim.last_request_path.startswith("/media/")
    assert sim.last_request_headers.get("x-goog-api-key") == KEY


def test_a_redirect_to_another_host_drops_the_key(sim, client, clock, tmp_path):
    with VeoSimulator(clock=clock) as storage:
        storage.video_bytes = b"video from another host" * 10
        sim.download_redirect = storage.base_url
        uri = finished_uri(sim, client)
        assert client.download(uri, tmp_path / "v.mp4") == len(storage.video_bytes)
        assert (tmp_path / "v.mp4").read_bytes() == storage.video_bytes
        assert storage.request_count == 1 and storage.last_request_path.startswith("/media/")
        assert "x-goog-api-key" not in {k.lower() for k in storage.last_request_headers}
        assert KEY not in repr(storage.last_request_headers)


def test_a_uri_on_another_host_never_gets_the_key(sim, client, clock, tmp_path):
    with VeoSimulator(clock=clock) as storage:
        storage_uri = storage.base_url.replace("127.0.0.1", "localhost") + "/media/abc.mp4"
        client.download(storage_uri, tmp_path / "v.mp4")
        assert "x-goog-api-key" not in {k.lower() for k in storage.last_request_headers}


class RedirectingAdapter(BaseAdapter):
    """Answers every request with a redirect to ``target``; records the requests."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target, self.sent = target, []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.sent.append(request)
        response = requests.Response()
        response.status_code, response.reason = 302, "Found"
        response.headers = CaseInsensitiveDict({"Location": self.target})
        response.raw, response.url, response.request = io.BytesIO(b""), request.url, request
        return response

    def close(self) -> None:
        pass


def redirecting_client(target: str) -> tuple[GeminiVeoClient, RedirectingAdapter]:
    adapter = RedirectingAdapter(target)
    session = requests.Session()
    session.mount("https://", adapter)
    return GeminiVeoClient(KEY, "https://veo.test", session=session), adapter


def test_more_than_five_redirects_are_transient(tmp_path):
    client, adapter = redirecting_client("/v1beta/files/again:download")
    with pytest.raises(TransientApiError, match="more than 5 redirects"):
        client.download("https://veo.test/v1beta/files/x:download", tmp_path / "v.mp4")
    assert len(adapter.sent) == 6 and leftovers(tmp_path) == []
    assert all(r.headers["x-goog-api-key"] == KEY for r in adapter.sent)


def test_a_redirect_from_https_down_to_http_is_refused(tmp_path):
    client, adapter = redirecting_client("http://veo.test/plain.mp4")
    with pytest.raises(PermanentApiError, match="https"):
        client.download("https://veo.test/v1beta/files/x:download", tmp_path / "v.mp4")
    assert len(adapter.sent) == 1


def test_an_expired_or_unknown_video_is_not_found(sim, client, tmp_path):
    with pytest.raises(OperationNotFoundError):
        client.download(f"{sim.base_url}/v1beta/files/nosuch:download?alt=media", tmp_path / "x")
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("status, kind", [
    (500, TransientApiError), (503, TransientApiError), (401, AuthError), (403, AuthError),
    (429, RateLimitedError), (400, PermanentApiError),
])
def test_http_errors_map_onto_the_hierarchy(sim, client, tmp_path, status, kind):
    uri = finished_uri(sim, client)
    if status == 429:
        sim.set_rate_limit(1)
    else:
        sim.set_errors(1, status=status)
    with pytest.raises(kind) as caught:
        client.download(uri, tmp_path / "v.mp4")
    assert KEY not in str(caught.value)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fault", ["drop_next", "truncate_next", "html_next"])
def test_a_cut_or_broken_download_leaves_no_file(sim, client, tmp_path, fault):
    uri = finished_uri(sim, client)
    getattr(sim, fault)(1)
    with pytest.raises(TransientApiError):
        client.download(uri, tmp_path / "v.mp4")
    assert leftovers(tmp_path) == []
    client.download(uri, tmp_path / "v.mp4")
    assert leftovers(tmp_path) == ["v.mp4"]


def test_a_video_over_max_bytes_is_refused_and_not_kept(sim, client, tmp_path):
    uri = finished_uri(sim, client)
    with pytest.raises(PermanentApiError):
        client.download(uri, tmp_path / "v.mp4", max_bytes=10)
    assert leftovers(tmp_path) == []


def test_an_existing_file_is_replaced_only_when_the_new_one_is_complete(sim, client, tmp_path):
    uri = finished_uri(sim, client)
    dest = tmp_path / "v.mp4"
    dest.write_bytes(b"old")
    sim.truncate_next(1)
    with pytest.raises(TransientApiError):
        client.download(uri, dest)
    assert dest.read_bytes() == b"old"
    client.download(uri, dest)
    assert dest.read_bytes() == sim.video_bytes


@pytest.mark.parametrize("uri", [
    "http://example.com/v.mp4", "ftp://127.0.0.1/v.mp4", "gs://bucket/v.mp4", "inline:0",
    "https://user:pw@example.com/v.mp4", None,
])
def test_a_uri_that_is_not_https_is_refused_without_a_request(sim, client, tmp_path, uri):
    with pytest.raises(PermanentApiError):
        client.download(uri, tmp_path / "v.mp4")
    assert sim.request_count == 0


def test_a_refused_connection_is_transient(clock, tmp_path):
    sim = VeoSimulator(clock=clock).start()
    base_url = sim.base_url
    sim.close()
    with GeminiVeoClient(KEY, base_url, timeout=2) as client:
        with pytest.raises(TransientApiError):
            client.download(f"{base_url}/v1beta/files/x:download", tmp_path / "v.mp4")
    assert leftovers(tmp_path) == []


def test_a_missing_directory_is_transient(sim, client, tmp_path):
    uri = finished_uri(sim, client)
    with pytest.raises(TransientApiError):
        client.download(uri, tmp_path / "no" / "such" / "v.mp4")


# ----- actors.downloads ---------------------------------------------------------------------
def test_download_videos_saves_every_sample_and_returns_the_paths(clock, tmp_path):
    with VeoSimulator(clock=clock, api_key=KEY, samples=3) as sim, GeminiVeoClient(
            KEY, sim.base_url) as client:
        name = sim.create_operation(outcome="success")
        sim.finish_now(name)
        uris = client.check(name).video_uris
        dest = tmp_path / "videos" / "nested"
        paths = download_videos(client, uris, dest, "job-7", "profile-a")
    assert paths == tuple(str(dest / f"job-7-{i}.mp4") for i in range(3))
    assert all(open(path, "rb").read() == sim.video_bytes for path in paths)


def test_download_videos_passes_the_profile_and_cap(tmp_path):
    calls = []

    class Recording:
        def download(self, uri, dest_path, *, profile_id=None, max_bytes=None):
            calls.append((uri, os.path.basename(dest_path), profile_id, max_bytes))
            return 1

    download_videos(Recording(), ["https://h/a.mov"], tmp_path, "j", "p", max_bytes=99)
    assert calls == [("https://h/a.mov", "j-0.mov", "p", 99)]


def test_a_client_that_cannot_download_is_a_permanent_error(tmp_path):
    client = VertexVeoClient("p", "us-central1", "token")
    with pytest.raises(PermanentApiError, match="cannot download"):
        download_videos(client, ["gs://b/v.mp4"], tmp_path, "j", None)


@pytest.mark.parametrize("job_id, expected", [
    ("job-1", "job-1-0.mp4"),
    ("scene.7_b", "scene.7_b-0.mp4"),
])
def test_a_plain_job_id_is_kept_as_it_is(job_id, expected):
    assert video_filename(job_id, 0, "https://h/v1beta/files/x:download?alt=media") == expected


@pytest.mark.parametrize("job_id", ["../../etc/passwd", "a/b", "a\\b", ".hidden", "", "x" * 500,
                                    "naïve job", "a\x00b"])
def test_an_unsafe_job_id_is_sanitised_and_stays_unique(job_id):
    name = video_filename(job_id, 2, "gs://bucket/x.mp4")
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    assert name.endswith("-2.mp4") and len(name) < 130
    assert name != video_filename(job_id + "!", 2, "gs://bucket/x.mp4")


def test_different_ids_that_sanitise_alike_get_different_names():
    assert video_filename("a/b", 0, "") != video_filename("a_b", 0, "")
    assert video_filename("a/b", 0, "") != video_filename("a:b", 0, "")


def test_the_extension_comes_from_the_uri_when_it_is_a_video_one():
    assert video_filename("j", 0, "gs://b/sample_0.webm") == "j-0.webm"
    assert video_filename("j", 0, "https://h/x.exe") == "j-0.mp4"
    assert video_filename("j", 1, "https://h/v1beta/files/abc:download?alt=media") == "j-1.mp4"
