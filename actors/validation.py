"""The checks every way of adding a job shares (the manager, the ``add`` command).

Pure functions, any thread; each raises :class:`~actors.errors.InvalidJobError` with a message
that names the bad field and never echoes more than a short prefix of the value.
"""

from __future__ import annotations

from .clients.base import validate_operation_name
from .errors import InvalidJobError
from .messages import KINDS

MAX_ID = 255


def check_id(name: str, value: object, *, optional: bool = False) -> str | None:
    """Return ``value`` if it is a usable id (``None`` allowed when ``optional``)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidJobError(f"{name} must be a non-empty string, got {value!r:.80}")
    if len(value) > MAX_ID:
        raise InvalidJobError(f"{name} is longer than {MAX_ID} characters")
    if any(ch in value for ch in "\x00\r\n"):
        raise InvalidJobError(f"{name} must not contain NUL or line breaks")
    try:
        value.encode("utf-8")
    except UnicodeError:
        raise InvalidJobError(f"{name} is not valid text (it cannot be encoded as UTF-8)") from None
    return value


def check_job(
    job_id: object,
    prompt_id: object,
    kind: object,
    profile_id: object,
    operation_name: object,
    scene_id: object = None,
) -> None:
    """Check one job's fields; raises :class:`InvalidJobError` on the first bad one."""
    check_id("job_id", job_id)
    check_id("prompt_id", prompt_id)
    check_id("profile_id", profile_id)
    check_id("scene_id", scene_id, optional=True)
    if kind not in KINDS:
        raise InvalidJobError(f"kind must be one of {', '.join(KINDS)}, got {kind!r:.40}")
    validate_operation_name(operation_name)
