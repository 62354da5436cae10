"""Configs for the reliability tests."""

from __future__ import annotations

from dataclasses import replace

import actors


def patient(scale: float, **changes) -> actors.PollingConfig:
    """The reference defaults compressed by ``scale``, with no job deadline in the way.

    The deadline (1800 s, 1.8 s at a scale of 1000) is not what these tests are about: a
    slow CI machine must not fail a long-running job by it.
    """
    base = actors.PollingConfig(ask_timeout=10.0).scaled(scale)
    return replace(base, job_deadline=1e6, **changes)
