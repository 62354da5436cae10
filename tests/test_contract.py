"""The host-facing contract: names, defaults, bad input, the deprecated facade."""

from __future__ import annotations

import dataclasses
import math

import pytest

import actors
from actors.config import PollingConfig
from actors.schedule import backoff_delay, stagger
from actors.throttle import ProfileThrottle, TokenBucket

GOOD_OP = "models/veo-3.0-generate-001/operations/op123"


def test_the_public_api_is_exactly_the_documented_names():
    assert sorted(actors.__all__) == sorted(
        [
            "Alert", "ApiError", "AuthError", "ConfigurationError", "Crash", "GeminiVeoClient",
            "InvalidJobError", "JobConflictError", "JobNotFoundError", "JobRecord",
            "NotRunningError", "OperationNotFoundError", "OperationStatus", "PermanentApiError",
            "PollingConfig", "PollingError", "PollingManager", "PollingService",
            "RateLimitedError", "StatusClient", "StoreError", "TransientApiError", "VeoSimulator",
            "BatchStatusClient", "CredentialProvider", "StaticCredentials", "StoreFullError",
            "VertexVeoClient", "load_credentials_file",
        ]
    )
    for name in actors.__all__:
        assert getattr(actors, name).__doc__, f"{name} has no docstring"


def test_config_defaults_reproduce_the_reference_design():
    config = PollingConfig()
    assert (config.tick_interval, config.initial_backoff, config.backoff_multiplier) == (10.0, 10.0, 1.5)
    assert (config.max_backoff, config.max_checks_per_cycle, config.max_attempts) == (60.0, 10, 360)
    assert config.restart_delay == 2.0


@pytest.mark.parametrize(
    "changes",
    [
        {"tick_interval": 0}, {"tick_interval": -1.0}, {"initial_backoff": math.nan},
        {"max_attempts": 0}, {"max_attempts": 2.5}, {"max_checks_per_cycle": True},
        {"backoff_multiplier": 0.9}, {"max_backoff": 1.0}, {"restart_delay": "2"},
        {"profile_rate_limit": 0},
    ],
)
def test_bad_config_values_are_refused_clearly(changes):
    with pytest.raises(actors.ConfigurationError):
        PollingConfig(**changes)


def test_every_error_derives_from_the_one_root():
    for name in actors.__all__:
        value = getattr(actors, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, actors.PollingError)


def test_backoff_follows_10_15_22_5_and_caps_at_60():
    config = PollingConfig()
    assert [backoff_delay(n, config) for n in range(8)] == pytest.approx(
        [10, 15, 22.5, 33.75, 50.625, 60, 60, 60]
    )
    assert backoff_delay(10_000, config) == 60.0
    assert backoff_delay(3, dataclasses.replace(config, backoff_multiplier=1.0)) == 10.0


def test_stagger_spreads_due_times_over_the_window():
    assert stagger(4, 100.0, 1.0) == [100.0, 100.25, 100.5, 100.75]
    assert stagger(0, 100.0, 1.0) == []


def test_a_token_bucket_admits_its_rate_and_says_when_to_come_back():
    bucket = TokenBucket.full(rate=2.0, now=0.0)
    assert bucket.try_take(0.0) and bucket.try_take(0.0) and not bucket.try_take(0.0)
    assert bucket.next_available(0.0) == pytest.approx(0.5)
    assert bucket.try_take(0.5)


def test_a_rate_limited_profile_pauses_slows_down_and_recovers_alone():
    throttle = ProfileThrottle(PollingConfig(tick_interval=1.0, max_checks_per_cycle=10))
    assert throttle.admit("a", 0.0) is None  # no explicit limit: unlimited until a 429
    assert throttle.on_rate_limited("a", 5.0, now=0.0) == 5.0
    assert throttle.admit("a", 1.0) == 5.0
    assert throttle.admit("b", 1.0) is None
    assert throttle.snapshot()["a"]["rate_factor"] == 0.5
    admitted = sum(throttle.admit("a", 5.0) is None for _ in range(20))
    assert admitted == 5  # half of the 10 checks/s ceiling, as one second's burst
    for _ in range(5):
        throttle.on_success("a")
    assert throttle.snapshot()["a"]["rate_factor"] == 1.0
    assert throttle.admit("a", 5.0) is None


def test_a_429_without_retry_after_pauses_longer_each_time():
    throttle = ProfileThrottle(PollingConfig(default_retry_after=2.0))
    assert [throttle.on_rate_limited("a", None, now=0.0) for _ in range(3)] == [2.0, 4.0, 8.0]


def test_refused_credentials_hold_a_profile_until_it_is_resumed():
    throttle = ProfileThrottle(PollingConfig(tick_interval=1.0, default_retry_after=3.0))
    assert throttle.on_auth_failed("a", now=100.0) is True
    assert throttle.on_auth_failed("a", now=100.0) is False
    assert throttle.admit("a", 101.0) == 118.0  # held until the probe, six pauses later
    assert throttle.admit("b", 101.0) is None
    assert throttle.resume("a") is True
    assert throttle.admit("a", 101.0) is None


def test_a_held_profile_lets_one_probe_through_and_a_success_lifts_the_hold():
    throttle = ProfileThrottle(PollingConfig(tick_interval=1.0, default_retry_after=3.0))
    throttle.on_auth_failed("a", now=0.0)
    assert throttle.admit("a", 18.0) is None  # the probe
    assert throttle.admit("a", 18.0) == 36.0  # the others wait for the next probe
    throttle.on_success("a")
    assert throttle.admit("a", 18.5) is None


BAD_INPUTS = [
    dict(job_id=""), dict(job_id=None), dict(job_id=" "), dict(job_id="x" * 300),
    dict(prompt_id=""), dict(profile_id=""), dict(kind="image"), dict(kind=None),
    dict(scene_id=""), dict(operation_name="models/veo/operations/../../x"),
    dict(operation_name="https://evil.example/models/veo/operations/1"),
    dict(operation_name="models/veo/operations/1?key=x"), dict(operation_name="operations/1"),
    dict(operation_name=None), dict(job_id="a\nb"),
]


@pytest.mark.parametrize("bad", BAD_INPUTS)
def test_bad_input_is_refused_and_stores_nothing(make_manager, bad):
    manager = make_manager()
    args = dict(job_id="j1", prompt_id="p1", kind="generation", profile_id="acct", operation_name=GOOD_OP)
    args.update(bad)
    with pytest.raises(actors.InvalidJobError):
        manager.add_to_polling(**args)
    assert manager.stats()["pending"] == 0 and manager.live_jobs() == {}


def test_the_same_job_twice_is_a_no_op_and_another_context_is_a_conflict(make_manager):
    manager = make_manager()
    assert manager.add_to_polling("j1", "p1", "generation", "acct", GOOD_OP) is True
    assert manager.add_to_polling("j1", "p1", "generation", "acct", GOOD_OP) is False
    with pytest.raises(actors.JobConflictError):
        manager.add_to_polling("j1", "p2", "generation", "acct", GOOD_OP)
    assert manager.get_job("j1").prompt_id == "p1"
    assert list(manager.live_jobs()) == ["j1"]


def test_calls_before_initialize_and_after_shutdown_say_the_manager_is_not_running(sim, db_url, config):
    manager = actors.PollingManager(
        database=db_url, client=actors.GeminiVeoClient(api_key="k", base_url=sim.base_url), config=config
    )
    with pytest.raises(actors.NotRunningError):
        manager.add_to_polling("j1", "p1", "generation", "acct", GOOD_OP)
    manager.initialize()
    assert manager.shutdown() is True
    with pytest.raises(actors.NotRunningError):
        manager.add_listener(print)
    with pytest.raises(actors.NotRunningError):
        manager.initialize()


def test_a_manager_needs_a_client_and_a_config_of_the_right_type(db_url):
    with pytest.raises(actors.ConfigurationError):
        actors.PollingManager(database=db_url, client=None)
    with pytest.raises(actors.ConfigurationError):
        actors.PollingManager(database=db_url, client=object())
    with pytest.raises(actors.ConfigurationError):
        actors.PollingManager(database=db_url, client=actors.GeminiVeoClient(api_key="k"), config={})


def test_the_legacy_facade_warns_and_looks_the_context_up_in_the_store(make_manager, sim):
    manager = make_manager()
    name = sim.create_operation(duration=10_000)
    manager.add_to_polling("j1", "p1", "upscale", "acct", name, scene_id="s9")
    with pytest.warns(DeprecationWarning):
        service = actors.PollingService(manager)
    with pytest.warns(DeprecationWarning):
        assert service.add_to_polling("j1", "p1", "upscale") is False
    with pytest.warns(DeprecationWarning), pytest.raises(actors.JobNotFoundError, match="not in the store"):
        service.add_to_polling("unknown", "p1", "upscale")
    with pytest.warns(DeprecationWarning), pytest.raises(actors.InvalidJobError):
        service.add_to_polling("j1", "p1", "generation")


def test_the_legacy_facade_resumes_a_stored_job_that_no_actor_polls(make_manager, sim, db_url, config):
    first = make_manager()
    name = sim.create_operation(duration=10_000)
    first.add_to_polling("j1", "p1", "generation", "acct", name, scene_id="s1")
    first.shutdown()
    second = make_manager()
    assert "j1" in second.live_jobs()  # rehydrated already; the facade call is a no-op
    with pytest.warns(DeprecationWarning):
        service = actors.PollingService(second)
    with pytest.warns(DeprecationWarning):
        assert service.add_to_polling("j1", "p1", "generation") is False
    assert list(second.live_jobs()) == ["j1"]
