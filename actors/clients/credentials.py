"""Credentials per profile: which API key or token a check uses.

A *profile* is one account (one Google Cloud project, one quota). Every job carries a
``profile_id``; a client asks its :class:`CredentialProvider` for that profile's secret right
before each request, so a host can rotate keys at any time (``set``) and the tree can see that
they changed (``version``) and resume a profile it paused after a 401/403.

Secrets never appear in a repr, an exception message or a log line written here.
"""

from __future__ import annotations

import inspect
import itertools
import json
import os
import threading
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

from ..errors import AuthError, ConfigurationError

#: In a credentials file, the profile whose key serves every profile not listed.
DEFAULT_PROFILE_KEY = "*"


@runtime_checkable
class CredentialProvider(Protocol):
    """Gives the secret (API key or bearer token) for a profile; called from check threads.

    ``get`` returns a non-empty string or raises :class:`~actors.errors.AuthError` (the
    profile is then paused until its credentials change). A provider may also offer
    ``set(profile_id, secret)``, ``version(profile_id) -> int`` and ``known_secrets()``
    (the values a client must scrub from error texts), as :class:`StaticCredentials` does.
    """

    def get(self, profile_id: str | None) -> str:
        """The secret for ``profile_id`` (None: the default)."""
        ...


def _check_secret(secret: object, what: str) -> str:
    if not isinstance(secret, str) or not secret.strip():
        raise ConfigurationError(f"{what} must be a non-empty string")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in secret):
        raise ConfigurationError(f"{what} must not contain spaces or control characters")
    return secret


def _check_profile(profile_id: object) -> str | None:
    if profile_id is not None and (not isinstance(profile_id, str) or not profile_id):
        raise ConfigurationError("a profile id must be a non-empty string or None")
    return profile_id


class StaticCredentials:
    """A thread-safe table of secrets: one per profile, and a default for the others.

    ``get(profile_id)`` returns the profile's own secret, else the default, else raises
    :class:`AuthError`. ``set`` replaces or adds one (``profile_id=None`` sets the default)
    and bumps ``version``: the number changes whenever what ``get(profile_id)`` returns may
    have changed.
    """

    def __init__(
        self, default: str | None = None, per_profile: Mapping[str, str] | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._secrets: dict[str | None, str] = {}
        self._versions: dict[str | None, int] = {}
        if default is not None:
            self.set(None, default)
        for profile_id, secret in dict(per_profile or {}).items():
            if profile_id is None:
                raise ConfigurationError("per_profile keys must be profile ids (use default=)")
            self.set(profile_id, secret)

    def get(self, profile_id: str | None) -> str:
        """The secret for ``profile_id`` (its own, else the default); AuthError if none."""
        with self._lock:
            secret = self._secrets.get(profile_id) or self._secrets.get(None)
        if secret is None:
            raise AuthError(f"no credentials for profile {str(profile_id)[:80]!r}")
        return secret

    def set(self, profile_id: str | None, secret: str) -> None:
        """Replace or add the secret of ``profile_id`` (None: the default); bumps its version."""
        _check_profile(profile_id)
        _check_secret(secret, "a secret")
        with self._lock:
            self._secrets[profile_id] = secret
            self._versions[profile_id] = next(self._counter)

    def version(self, profile_id: str | None) -> int:
        """A number that changes whenever the secret ``get(profile_id)`` returns may change."""
        with self._lock:
            if profile_id in self._versions:
                return self._versions[profile_id]
            return self._versions.get(None, 0)

    def profiles(self) -> tuple[str, ...]:
        """The profile ids that have a secret of their own (not the default)."""
        with self._lock:
            return tuple(sorted(p for p in self._secrets if p is not None))

    def known_secrets(self) -> tuple[str, ...]:
        """Every secret held, for clients to scrub from error texts (never log this)."""
        with self._lock:
            return tuple(self._secrets.values())

    def __repr__(self) -> str:
        with self._lock:
            has_default = None in self._secrets
            count = len(self._secrets) - has_default
        return f"StaticCredentials(default={'set' if has_default else None}, profiles={count})"

    __str__ = __repr__


class CallableCredentials:
    """Wraps a token function (google-auth, a service account, a vault) as a provider.

    ``token_provider`` is either ``(profile_id) -> str`` or ``() -> str``; which one is read
    from its signature. Each ``get`` calls it again, so it may refresh an expiring token.
    ``set(profile_id, token)`` pins a static token for a profile (None: for all) over the
    function, and bumps ``version``.
    """

    def __init__(self, token_provider: Callable[..., str]) -> None:
        if not callable(token_provider):
            raise ConfigurationError("token_provider must be callable")
        self._function = token_provider
        self._takes_profile = _takes_one_argument(token_provider)
        self._pinned = StaticCredentials()

    def get(self, profile_id: str | None) -> str:
        """A pinned token, else a fresh call of the token function."""
        if self._pinned.version(profile_id):
            return self._pinned.get(profile_id)
        token = self._function(profile_id) if self._takes_profile else self._function()
        if not isinstance(token, str) or not token.strip():
            raise AuthError(f"the token provider gave no token for profile {str(profile_id)[:80]!r}")
        return token

    def set(self, profile_id: str | None, secret: str) -> None:
        """Pin ``secret`` for ``profile_id`` (None: every profile) instead of the function."""
        self._pinned.set(profile_id, secret)

    def version(self, profile_id: str | None) -> int:
        """Changes when a pinned token for the profile changes (0 when none is pinned)."""
        return self._pinned.version(profile_id)

    def known_secrets(self) -> tuple[str, ...]:
        """The pinned tokens (a client also scrubs every token it fetched)."""
        return self._pinned.known_secrets()

    def __repr__(self) -> str:
        name = getattr(self._function, "__qualname__", type(self._function).__name__)
        return f"CallableCredentials({name!s:.60})"


def _takes_one_argument(function: Callable[..., object]) -> bool:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return True  # a builtin we cannot inspect: assume (profile_id) -> str
    for args in (("profile",), ()):
        try:
            signature.bind(*args)
        except TypeError:
            continue
        return bool(args)
    raise ConfigurationError("token_provider must take (profile_id) or no arguments")


def as_provider(value: object, what: str) -> CredentialProvider:
    """A provider from a secret string, a provider object, or a token function."""
    if isinstance(value, str):
        return StaticCredentials(default=_check_secret(value, what))
    get = getattr(value, "get", None)
    if callable(get) and not isinstance(value, Mapping):
        return value  # type: ignore[return-value]
    if callable(value):
        return CallableCredentials(value)
    raise ConfigurationError(f"{what} must be a string, a credential provider or a callable")


def load_credentials_file(path: str | os.PathLike[str]) -> StaticCredentials:
    """Read a JSON object mapping profile id -> secret into :class:`StaticCredentials`.

    The entry ``"*"`` (:data:`DEFAULT_PROFILE_KEY`), if present, is the default for profiles
    not listed. Raises :class:`ConfigurationError` (never quoting a secret) for a missing or
    unreadable file, bad JSON, a non-object, or a value that is not a usable secret.
    """
    shown = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise ConfigurationError(f"credentials file {shown!r} does not exist") from None
    except OSError as exc:
        raise ConfigurationError(
            f"credentials file {shown!r} cannot be read ({type(exc).__name__})"
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise ConfigurationError(f"credentials file {shown!r} is not valid JSON") from None
    if not isinstance(data, dict) or not data:
        raise ConfigurationError(
            f"credentials file {shown!r} must hold a non-empty JSON object of profile -> key"
        )
    credentials = StaticCredentials()
    for profile_id, secret in data.items():
        what = f"the key of profile {profile_id[:80]!r} in {shown!r}"
        credentials.set(None if profile_id == DEFAULT_PROFILE_KEY else profile_id,
                        _check_secret(secret, what))
    return credentials
