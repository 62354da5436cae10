"""PollingService: the deprecated facade that keeps the old three-argument call working.

The reference design's callers only knew ``add_to_polling(id, prompt_id, type)``; the rest of
the context (profile, operation name, scene) is looked up in the job store. New code should
call :meth:`actors.PollingManager.add_to_polling` directly.
"""

from __future__ import annotations

import warnings

from .errors import InvalidJobError, JobNotFoundError
from .manager import PollingManager


class PollingService:
    """Deprecated: wraps a :class:`PollingManager` (call from any host thread)."""

    def __init__(self, manager: PollingManager) -> None:
        warnings.warn(
            "PollingService is deprecated; use PollingManager.add_to_polling with the full context",
            DeprecationWarning,
            stacklevel=2,
        )
        if not isinstance(manager, PollingManager):
            raise TypeError("PollingService wraps a PollingManager")
        self.manager = manager

    def add_to_polling(self, job_id: str, prompt_id: str, kind: str) -> bool:
        """Look the job's context up in the store and start polling it.

        Raises :class:`JobNotFoundError` when the store has no such job, and
        :class:`InvalidJobError` when the stored job has another prompt or kind.
        """
        warnings.warn(
            "PollingService.add_to_polling is deprecated; use PollingManager.add_to_polling",
            DeprecationWarning,
            stacklevel=2,
        )
        record = self.manager.get_job(job_id)
        if record is None:
            raise JobNotFoundError(
                f"job {job_id!r:.80} is not in the store: the legacy call needs a stored job "
                "(use PollingManager.add_to_polling with the full context instead)"
            )
        if (record.prompt_id, record.kind) != (prompt_id, kind):
            raise InvalidJobError(
                f"job {job_id!r:.80} is stored with prompt {record.prompt_id!r} and kind "
                f"{record.kind!r}, not {prompt_id!r} and {kind!r}"
            )
        return self.manager.add_to_polling(
            job_id, prompt_id, kind, record.profile_id, record.operation_name, record.scene_id
        )
