"""Hostile input: random and malicious values thrown at every public call.

Each call either accepts the value correctly or raises a subclass of ``actors.PollingError``
(nothing else: no TypeError, no driver error, no hang), and afterwards the store holds exactly
the jobs that were accepted, each with the context it was accepted with, and every live one
has exactly one actor.
"""

from __future__ import annotations

import math
import time
from collections import Counter

import pykka
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actors
from actors.clients.base import GEMINI_OPERATION_PATTERN
from actors.messages import KINDS

from .reliability.configs import patient
from .reliability.figures import record_figure

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

NASTY_TEXT = [
    "", " ", "\t", "\n", "a\nb", "a\rb", "\x00", "a\x00b", "\ud800", "a\udfffb", "\u202eevil", "\ufeff",
    "💥" * 10, "e\u0301", "ﷺ" * 50, "x" * 255, "x" * 256, "y" * 100_000, "'; DROP TABLE veo_jobs; --",
    "../../etc/passwd", "%s%s%n", "${jndi:ldap://x}", "<script>", "NULL", "None", "0", "-1",
]
NOT_TEXT = [None, 0, -1, 1.5, math.nan, True, b"bytes", bytearray(b"x"), ["list"], {"d": 1}, object()]
NASTY_OPERATIONS = [
    "models/veo/operations/../../x", "models/veo/operations/x?alt=media", "//evil.example/x",
    "http://evil.example/models/a/operations/b", "models//operations/x", "models/a/operations/",
    "models/a/operations/x/extra", "models/a b/operations/x", "operations/x", "models/a/operations/x\n",
    "models/" + "a" * 200 + "/operations/x", "models/a/operations/\ud800", "MODELS/a/operations/x",
]

texts = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=20),  # surrogates too
    st.sampled_from(NASTY_TEXT),
    st.sampled_from(NOT_TEXT),
)


def mostly(valid, hostile):
    """Valid most of the time, so that whole calls (six arguments) are often valid too."""
    return st.integers(0, 5).flatmap(lambda pick: hostile if pick == 5 else valid)


ids = mostly(
    st.one_of(st.sampled_from([f"id-{i}" for i in range(6)]),  # duplicates are likely
              st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF, exclude_categories=("Cs",)),
                      min_size=1, max_size=255)),
    texts,
)
valid_operations = st.from_regex(
    r"\Amodels/[a-z0-9][a-z0-9.-]{0,12}/operations/[a-z0-9][a-z0-9_-]{0,12}\Z"
).filter(lambda name: ".." not in name)
operations = mostly(valid_operations, st.one_of(st.sampled_from(NASTY_OPERATIONS), texts))
kinds = mostly(st.sampled_from(KINDS), st.one_of(st.sampled_from(["Generation", "generation ", "upscale\x00"]), texts))


def _valid_id(value: object) -> bool:
    return (
        isinstance(value, str) and bool(value.strip()) and len(value) <= 255
        and not any(ch in value for ch in "\x00\r\n")
    )


def _storable(value: object) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeError:
        return False
    return True


@pytest.fixture
def manager(make_manager):
    return make_manager(config_=patient(1000.0, not_found_limit=1))


def consistent(manager, accepted: dict[str, tuple]) -> None:
    """The store holds exactly the accepted jobs, with their contexts; live rows have one actor each."""
    rows = {record.job_id: record for record in manager.store.jobs()}
    assert set(rows) == set(accepted), f"stored {set(rows) ^ set(accepted)} unexpectedly"
    for job_id, context in accepted.items():
        assert rows[job_id].context() == context
    deadline = time.monotonic() + 10
    while True:  # actors start and finish asynchronously
        live_rows = {r.job_id for r in manager.store.jobs() if r.live}
        actors_now = manager.live_jobs()
        if set(actors_now) == live_rows:
            break
        assert time.monotonic() < deadline, f"actors {set(actors_now) ^ live_rows} out of step with the store"
        time.sleep(0.01)
    assert len(set(actors_now.values())) == len(actors_now), "a job has two actors"


def test_add_to_polling_accepts_valid_input_and_rejects_everything_else_with_a_polling_error(manager):
    accepted: dict[str, tuple] = {}
    tried = {"n": 0}
    outcomes: Counter = Counter()

    @SETTINGS
    @given(job_id=ids, prompt_id=ids, kind=kinds, profile_id=ids, operation=operations,
           scene_id=st.one_of(st.none(), ids))
    def attempt(job_id, prompt_id, kind, profile_id, operation, scene_id):
        tried["n"] += 1
        context = (kind, prompt_id, profile_id, operation, scene_id)
        valid = (
            all(_valid_id(v) and _storable(v) for v in (job_id, prompt_id, profile_id))
            and (scene_id is None or (_valid_id(scene_id) and _storable(scene_id)))
            and kind in KINDS
            and isinstance(operation, str) and GEMINI_OPERATION_PATTERN.fullmatch(operation) is not None
            and ".." not in operation  # never valid: a name must not climb out of its path
        )
        try:
            created = manager.add_to_polling(job_id, prompt_id, kind, profile_id, operation, scene_id)
        except actors.JobConflictError:
            assert valid and job_id in accepted and accepted[job_id] != context
            outcomes["conflict"] += 1
            return
        except actors.PollingError as exc:
            outcomes[type(exc).__name__] += 1
            assert not valid or job_id in accepted, f"valid input refused: {exc!r}"
            assert not isinstance(exc, actors.StoreError), f"bad input reached the database: {exc!r}"
            if isinstance(job_id, str) and job_id not in accepted:
                assert manager.get_job(job_id) is None if _storable(job_id) else True
            return
        assert valid, "invalid input was accepted"
        assert created is (job_id not in accepted)
        outcomes["created" if created else "same again"] += 1
        accepted.setdefault(job_id, context)

    attempt()
    consistent(manager, accepted)
    assert outcomes["created"] >= 10 and outcomes["InvalidJobError"] >= 10, outcomes
    record_figure("input", {"call": "add_to_polling", "inputs": tried["n"], **outcomes})


def test_lookups_retry_cancel_and_listener_calls_take_any_value(manager, sim):
    name = sim.create_operation(duration=10_000.0)
    manager.add_to_polling("known", "p", "generation", "acct", name)
    tried = {"n": 0}

    @SETTINGS
    @given(value=ids, reason=texts)
    def attempt(value, reason):
        tried["n"] += 4
        for call in (
            lambda: manager.get_job(value),
            lambda: manager.retry(value),
            lambda: manager.cancel(value, reason) if value != "known" else None,
            lambda: manager.remove_listener(value),
        ):
            try:
                result = call()
            except actors.PollingError:
                continue
            assert result is None or isinstance(result, (bool, actors.JobRecord))
        try:
            manager.add_listener(value)
        except actors.PollingError:
            pass
        else:
            assert callable(value)
            manager.remove_listener(value)

    attempt()
    assert manager.get_job("known").live
    consistent(manager, {"known": ("generation", "p", "acct", name, None)})
    record_figure("input", {"call": "get_job/retry/cancel/listeners", "inputs": tried["n"]})


def test_cancel_reasons_of_any_kind_are_stored_or_refused_cleanly(manager, sim):
    counter = {"n": 0}

    @SETTINGS
    @given(reason=texts)
    def attempt(reason):
        counter["n"] += 1
        job_id = f"c-{counter['n']}"
        manager.add_to_polling(job_id, "p", "upscale", "acct", sim.create_operation(duration=10_000.0))
        try:
            cancelled = manager.cancel(job_id, reason)
        except actors.PollingError:
            assert manager.get_job(job_id).live, "a refused cancel changed the job"
            return
        assert cancelled is True
        stored = manager.get_job(job_id)
        assert stored.status == "failed"
        if isinstance(reason, str):
            assert stored.error == reason

    attempt()
    record_figure("input", {"call": "cancel reasons", "inputs": counter["n"]})


@pytest.mark.parametrize("field", ["job_id", "prompt_id", "profile_id", "scene_id"])
@pytest.mark.parametrize("bad", ["\ud800", "job-\udfff"], ids=["lone-high", "lone-low"])
def test_text_the_database_cannot_hold_is_refused_as_invalid_and_stores_nothing(manager, field, bad):
    args = dict(job_id="j", prompt_id="p", kind="generation", profile_id="a",
                operation_name="models/veo/operations/abc", scene_id="s")
    args[field] = bad
    with pytest.raises(actors.InvalidJobError):
        manager.add_to_polling(**args)
    with pytest.raises(actors.InvalidJobError):
        manager.get_job(bad)
    assert manager.store.jobs() == [] and manager.live_jobs() == {}


CONFIG_VALUES = st.one_of(
    st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(NOT_TEXT),
    st.sampled_from(["10", "", "reference", "adaptive", "fast"]), st.integers(10**18, 10**19),
)


def test_every_config_field_takes_any_value_or_raises_a_configuration_error():
    fields = list(actors.PollingConfig.__dataclass_fields__)
    tried = {"n": 0}

    @SETTINGS
    @given(field=st.sampled_from(fields), value=CONFIG_VALUES)
    def attempt(field, value):
        tried["n"] += 1
        try:
            config = actors.PollingConfig(**{field: value})
        except actors.ConfigurationError:
            return
        config.scaled(1000.0)  # a config that was accepted must also scale
        hash(config)

    attempt()
    record_figure("input", {"call": "PollingConfig", "inputs": tried["n"]})


def test_constructors_take_any_database_client_and_url_or_raise_a_polling_error(tmp_path):
    tried = {"n": 0}
    databases = st.one_of(
        texts, st.sampled_from([
            "sqlite://", "sqlite:///", "sqlite:///:memory:", f"sqlite:///{tmp_path}/no/such/dir/x.db",
            "mysql://nobody@127.0.0.1:1/x", "bogus://x", "postgresql://", "sqlite:///" + "d" * 5000,
        ]),
    )
    urls = st.one_of(texts, st.sampled_from([
        "http://127.0.0.1:1", "https://example.com", "ftp://x", "http://evil.example", "javascript:x",
        "http://[::1", "http://127.0.0.1:99999", "//no-scheme",
    ]))

    @SETTINGS
    @given(database=databases, api_key=texts, base_url=urls)
    def attempt(database, api_key, base_url):
        tried["n"] += 1
        try:
            client = actors.GeminiVeoClient(api_key=api_key, base_url=base_url)
        except actors.PollingError:
            client = None
        else:
            client.close()
        try:
            actors.PollingManager(database=database, client=client)
        except actors.PollingError:
            pass

    attempt()
    record_figure("input", {"call": "constructors", "inputs": tried["n"]})


@pytest.mark.parametrize("timeout", [
    -1.0, 0.0, math.nan, 0.001,
    None, "5", math.inf, 1e300,
])
def test_shutdown_takes_any_timeout_without_hanging_or_a_foreign_error(make_manager, timeout):
    manager = make_manager()
    started = time.monotonic()
    clean = None
    try:
        clean = manager.shutdown(timeout=timeout)
    except actors.PollingError:
        pass
    assert time.monotonic() - started < 15
    if manager._state == "running":  # refused the value: it must still be fully usable
        clean = manager.shutdown(timeout=5.0)
        assert clean is True
    with pytest.raises(actors.NotRunningError):
        manager.add_to_polling("x", "p", "generation", "a", "models/a/operations/b")
    # A clean shutdown leaves nothing running; an unclean (too short) one has told every actor
    # to stop, and they do so on their own shortly.
    deadline = time.monotonic() + (0 if clean else 5)
    while pykka.ActorRegistry.get_all() and time.monotonic() < deadline:
        time.sleep(0.01)
    leftover = pykka.ActorRegistry.get_all()
    assert leftover == [], f"shutdown left actors running: {[r.actor_class.__name__ for r in leftover]}"

