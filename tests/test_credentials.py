"""Credentials per profile: StaticCredentials, CallableCredentials, credentials files."""

from __future__ import annotations

import json
import threading

import pytest

from actors.clients import (
    CallableCredentials,
    CredentialProvider,
    StaticCredentials,
    load_credentials_file,
)
from actors.clients.credentials import as_provider
from actors.errors import AuthError, ConfigurationError

SECRET_A, SECRET_B, DEFAULT = "key-aaaa-secret", "key-bbbb-secret", "key-default-secret"


def test_a_profile_gets_its_own_key_else_the_default():
    creds = StaticCredentials(default=DEFAULT, per_profile={"a": SECRET_A})
    assert creds.get("a") == SECRET_A
    assert creds.get("b") == DEFAULT
    assert creds.get(None) == DEFAULT
    assert isinstance(creds, CredentialProvider)


def test_no_key_for_a_profile_is_an_auth_error_that_reveals_nothing():
    creds = StaticCredentials(per_profile={"a": SECRET_A})
    with pytest.raises(AuthError) as caught:
        creds.get("b")
    assert "no credentials for profile 'b'" in str(caught.value)
    assert SECRET_A not in str(caught.value)
    with pytest.raises(AuthError):
        StaticCredentials().get(None)


def test_set_replaces_or_adds_and_bumps_the_version():
    creds = StaticCredentials(default=DEFAULT)
    before_a, before_b = creds.version("a"), creds.version("b")
    creds.set("a", SECRET_A)
    assert creds.get("a") == SECRET_A
    assert creds.version("a") > before_a and creds.version("b") == before_b
    after = creds.version("a")
    creds.set("a", SECRET_B)
    assert creds.get("a") == SECRET_B and creds.version("a") > after
    creds.set(None, "new-default")
    assert creds.get("b") == "new-default" and creds.version("b") > before_b
    assert creds.profiles() == ("a",)


def test_the_version_starts_at_zero_without_any_key():
    assert StaticCredentials().version("x") == 0


def test_repr_and_str_never_show_a_secret():
    creds = StaticCredentials(default=DEFAULT, per_profile={"a": SECRET_A, "b": SECRET_B})
    for shown in (repr(creds), str(creds), f"{creds}"):
        assert all(s not in shown for s in (DEFAULT, SECRET_A, SECRET_B))
    assert "profiles=2" in repr(creds)


@pytest.mark.parametrize("secret", ["", "   ", None, 42, "two words", "line\nbreak"])
def test_an_unusable_secret_is_a_configuration_error(secret):
    with pytest.raises(ConfigurationError) as caught:
        StaticCredentials(per_profile={"a": secret})
    if isinstance(secret, str) and secret.strip():
        assert secret not in str(caught.value)


def test_concurrent_sets_and_gets_are_consistent():
    creds = StaticCredentials(default=DEFAULT)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        for j in range(200):
            creds.set(f"p{i}", f"key-{i}-{j}")

    def reader() -> None:
        try:
            for _ in range(500):
                assert creds.get("p1").startswith(("key-1-", DEFAULT))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and creds.get("p3") == "key-3-199"


# ----- token functions ----------------------------------------------------------------------
def test_a_token_function_with_or_without_a_profile_argument():
    seen: list[object] = []
    per_profile = CallableCredentials(lambda profile: seen.append(profile) or f"tok-{profile}")
    assert per_profile.get("a") == "tok-a" and seen == ["a"]
    assert CallableCredentials(lambda: "tok").get("a") == "tok"


def test_a_token_function_is_called_again_on_every_get():
    tokens = iter(["t1", "t2"])
    creds = CallableCredentials(lambda: next(tokens))
    assert (creds.get(None), creds.get(None)) == ("t1", "t2")


def test_a_pinned_token_wins_over_the_function_and_bumps_the_version():
    creds = CallableCredentials(lambda: "from-function")
    assert creds.version("a") == 0
    creds.set("a", "tok-xyz-987")
    assert creds.get("a") == "tok-xyz-987" and creds.get("b") == "from-function"
    assert creds.version("a") > 0 and creds.known_secrets() == ("tok-xyz-987",)
    assert "tok-xyz-987" not in repr(creds)


def test_a_function_that_gives_no_token_is_an_auth_error():
    with pytest.raises(AuthError):
        CallableCredentials(lambda: "").get("a")


def test_a_function_with_an_unusable_signature_is_refused():
    with pytest.raises(ConfigurationError):
        CallableCredentials(lambda a, b: "x")


def test_as_provider_accepts_a_string_a_provider_or_a_function():
    assert as_provider("tok", "token").get("x") == "tok"
    creds = StaticCredentials(default="d")
    assert as_provider(creds, "token") is creds
    assert as_provider(lambda: "f", "token").get(None) == "f"
    for bad in (None, 3, {"a": "b"}):
        with pytest.raises(ConfigurationError):
            as_provider(bad, "token")


# ----- credentials files --------------------------------------------------------------------
def test_a_credentials_file_maps_profiles_to_keys_with_an_optional_default(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"a": SECRET_A, "b": SECRET_B, "*": DEFAULT}))
    creds = load_credentials_file(path)
    assert (creds.get("a"), creds.get("b"), creds.get("zzz")) == (SECRET_A, SECRET_B, DEFAULT)
    assert creds.profiles() == ("a", "b")


@pytest.mark.parametrize("content", [
    "not json {", "[]", "{}", '"a string"', json.dumps({"a": 3}), json.dumps({"a": ""}),
    json.dumps({"a": "has space " + SECRET_A}),
])
def test_a_bad_credentials_file_is_a_clear_configuration_error(tmp_path, content):
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError) as caught:
        load_credentials_file(path)
    assert str(path) in str(caught.value) and SECRET_A not in str(caught.value)
    assert caught.value.__cause__ is None


def test_a_missing_credentials_file_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_credentials_file(tmp_path / "nope.json")
