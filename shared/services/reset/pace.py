"""Every anonymous reset step answers at one fixed deadline from its start, whatever it found (security.md C6).

Who the username names (nobody, a member, an administrator, a guest, disabled, synced or blocked) and whether a
typed contact matched change how much work a step does: Graph reads, a throttle row, a queue write. Measured from
the call's start, the step's answer (a refusal too) is held until `seconds` have passed, so the time to answer is
the deadline for everyone; the deadline is set above the step's slowest usual time against real Graph. A step that
overruns it answers when done and is logged: the deadline, not the work, is what must be raised then.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

log = logging.getLogger("sspr.reset")

DEFAULT_STEP_DEADLINE_SECONDS = 0.4  # above the proof step's p99 against real Graph (resolve + reads + queue)

P = ParamSpec("P")
R = TypeVar("R")


class StepDeadline:
    def __init__(self, seconds: float = DEFAULT_STEP_DEADLINE_SECONDS) -> None:
        self.seconds = max(0.0, seconds)

    async def hold(self, started: float, step: str) -> None:
        """Wait until `seconds` after `started` (a time.monotonic() reading)."""
        left = self.seconds - (time.monotonic() - started)
        if left > 0:
            await asyncio.sleep(left)
        elif self.seconds:
            log.warning("reset step %s took %.0f ms, past its deadline of %.0f ms", step,
                        (self.seconds - left) * 1000, self.seconds * 1000)


class Paced(Protocol):
    @property
    def deadline(self) -> StepDeadline: ...


S = TypeVar("S", bound=Paced)


def paced(step: Callable[Concatenate[S, P], Awaitable[R]]) -> Callable[Concatenate[S, P], Awaitable[R]]:
    """The step answers (or raises) no earlier than its owner's deadline after the call began."""

    @functools.wraps(step)
    async def at_deadline(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        started = time.monotonic()
        try:
            return await step(self, *args, **kwargs)
        finally:
            await self.deadline.hold(started, step.__name__)

    return at_deadline
