"""Every outcome of a status check has one defined reaction, run through the public contract."""

from __future__ import annotations

import time

import pytest

import actors
from actors.clients.gemini import parse_operation

from .conftest import TIME_SCALE, Recorder


@pytest.fixture
def watched(make_manager, sim):
    """A manager with a recorder that also hears alerts."""

    def build(**config_changes):
        base = dict(ask_timeout=10.0)
        base.update(config_changes)
        manager = make_manager(config_=actors.PollingConfig(**base).scaled(TIME_SCALE))
        recorder = Recorder()
        manager.add_listener(recorder, alerts=True)
        return manager, recorder

    return build


def add(manager, name, job_id="job", profile="profile-a"):
    manager.add_to_polling(job_id, "prompt", "generation", profile, name)


def test_every_sample_uri_is_kept_not_only_the_first(make_manager):
    with actors.VeoSimulator(time_scale=TIME_SCALE, samples=3, seed=1) as sim:
        manager = make_manager(client=actors.GeminiVeoClient(api_key="k", base_url=sim.base_url))
        recorder = Recorder()
        manager.add_listener(recorder)
        add(manager, sim.create_operation(duration=20))
        assert recorder.wait_for(lambda r: r.terminal_count() == 1)
    final = recorder.terminal()["job"]
    assert final.status == "completed" and len(final.video_uris) == 3
    assert final.video_url == final.video_uris[0]
    assert manager.get_job("job").video_uris == final.video_uris


def test_a_done_operation_with_an_error_fails_with_the_apis_code_and_message(watched, sim):
    manager, recorder = watched()
    add(manager, sim.create_operation(outcome="failed", duration=20))
    assert recorder.wait_for(lambda r: r.terminal_count() == 1)
    final = recorder.terminal()["job"]
    assert final.status == "failed"
    assert "code 13" in final.error and "Internal" in final.error


def test_a_filtered_operation_fails_with_the_filters_reasons(watched, sim):
    manager, recorder = watched()
    add(manager, sim.create_operation(outcome="filtered", duration=20))
    assert recorder.wait_for(lambda r: r.terminal_count() == 1)
    final = recorder.terminal()["job"]
    assert final.status == "failed" and final.error.startswith("filtered")


class _EmptyDoneClient:
    """A host-written StatusClient whose API answers done with neither response nor error."""

    def __init__(self, body: dict) -> None:
        self.body = body

    def check(self, operation_name, *, profile_id=None):
        return parse_operation({**self.body, "name": operation_name})

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    "body",
    [
        {"done": True},
        {"done": True, "response": {"generateVideoResponse": {"generatedSamples": []}}},
    ],
)
def test_a_done_operation_without_video_or_error_fails_clearly(make_manager, body):
    manager = make_manager(client=_EmptyDoneClient(body))
    recorder = Recorder()
    manager.add_listener(recorder)
    add(manager, "models/veo-3.0-generate-001/operations/empty1")
    assert recorder.wait_for(lambda r: r.terminal_count() == 1)
    final = recorder.terminal()["job"]
    assert final.status == "failed" and "without a video" in final.error


def test_a_429_burns_no_attempt_and_pauses_the_profile_for_retry_after(watched, sim):
    manager, recorder = watched()
    name = sim.create_operation(duration=30)
    sim.set_rate_limit(2, retry_after="0.3")
    started = time.monotonic()
    add(manager, name)
    assert recorder.wait_for(lambda r: r.terminal_count() == 1)
    final = recorder.terminal()["job"]
    assert final.status == "completed"
    assert final.attempts == sim.poll_count(name) - 2, "a 429 was counted as an attempt"
    assert manager.stats()["api_errors.RateLimitedError"] == 2
    assert time.monotonic() - started >= 0.6, "the profile was not paused for Retry-After twice"


@pytest.mark.parametrize("fault", ["503", "500", "502", "504", "drop", "malformed"])
def test_transient_failures_count_as_attempts_and_the_job_still_completes(watched, sim, fault):
    manager, recorder = watched()
    name = sim.create_operation(duration=30)
    if fault == "drop":
        sim.drop_next(2)
    elif fault == "malformed":
        sim.malformed_next(2)
    else:
        sim.set_errors(2, status=int(fault))
    add(manager, name)
    assert recorder.wait_for(lambda r: r.terminal_count() == 1)
    final = recorder.terminal()["job"]
    assert final.status == "completed"
    assert final.attempts == sim.poll_count(name)
    assert manager.stats().get("api_errors.TransientApiError", 0) == 2


def test_refused_credentials_hold_the_profile_alert_and_resume_with_new_ones(make_manager):
    with actors.VeoSimulator(time_scale=TIME_SCALE, api_key="right-key", seed=2) as sim:
        client = actors.GeminiVeoClient(api_key="wrong-key", base_url=sim.base_url)
        manager = make_manager(client=client)
        recorder = Recorder()
        manager.add_listener(recorder, alerts=True)
        add(manager, sim.create_operation(duration=20))
        assert recorder.wait_for(lambda r: any(a.kind == "credentials_refused" for a in r.alerts))
        held = manager.get_job("job")
        assert held.live and held.attempts == 0
        assert manager.stats()["profiles"]["profile-a"]["auth_hold"] is True

        manager.update_credentials("profile-a", "right-key")
        assert recorder.wait_for(lambda r: r.terminal_count() == 1)
    assert recorder.terminal()["job"].status == "completed"
    assert sum(a.kind == "credentials_refused" for a in recorder.alerts) == 1


def test_an_unknown_or_expired_operation_fails_after_two_404s_in_a_row(watched, sim):
    manager, recorder = watched()
    add(manager, "models/veo-3.0-generate-001/operations/neverstarted")
    assert recorder.wait_for(lambda r: r.terminal_count() == 1)
    final = recorder.terminal()["job"]
    assert final.status == "failed" and final.error == "operation not found or expired"
    assert final.attempts == 2


def test_a_job_past_its_deadline_fails_as_deadline_exceeded(watched, sim):
    manager, recorder = watched(job_deadline=120.0)
    add(manager, sim.create_operation(duration=100_000))
    assert recorder.wait_for(lambda r: r.terminal_count() == 1)
    final = recorder.terminal()["job"]
    assert final.status == "failed" and final.error.startswith("deadline exceeded")
