"""Timer triggers: 6-field NCRONTAB (UTC) or TimeSpan schedules, runOnStartup, past-due detection, no overlap."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from croniter import croniter

from . import logs
from .bindings import timer_request
from .invoker import Invoker
from .loader import FunctionSpec
from .settings import SettingsError, is_timespan, parse_timespan

log = logging.getLogger("funchost")

PAST_DUE_TOLERANCE = timedelta(seconds=1)


class Schedule:
    """When a timer fires next: an NCRONTAB expression or a constant interval."""

    def __init__(self, expression: str) -> None:
        self.expression = expression.strip()
        self._interval: timedelta | None = None
        if is_timespan(self.expression):
            self._interval = timedelta(seconds=parse_timespan(self.expression, what="timer schedule"))
            if self._interval <= timedelta(0):
                raise SettingsError(f"timer schedule {expression!r} must be a positive interval")
        elif len(self.expression.split()) != 6:
            raise SettingsError(f"timer schedule {expression!r}: expected 6 NCRONTAB fields "
                                "(second minute hour day month day-of-week) or a TimeSpan hh:mm:ss")
        elif not croniter.is_valid(self.expression, second_at_beginning=True):
            raise SettingsError(f"timer schedule {expression!r} is not a valid NCRONTAB expression")

    def next_after(self, moment: datetime) -> datetime:
        if self._interval is not None:
            return moment + self._interval
        return croniter(self.expression, moment, second_at_beginning=True).get_next(datetime)


class TimerRunner:
    """Fires one timer function on its schedule; a run that is still going delays the next one."""

    def __init__(self, spec: FunctionSpec, invoker: Invoker, *, enabled: bool) -> None:
        self.spec = spec
        self.schedule = Schedule(str(spec.trigger["schedule"]))
        self._invoker = invoker
        self._enabled = enabled
        self._lock = asyncio.Lock()
        self._last: datetime | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._enabled:
            self._task = asyncio.create_task(self._loop(), name=f"timer {self.spec.name}")
            self._task.add_done_callback(logs.report_crash)

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        if self.spec.trigger.get("runOnStartup"):
            await self.fire(past_due=False, detail="timer runOnStartup")
        while not self._stopping.is_set():
            due = self.schedule.next_after(datetime.now(UTC))
            wait = (due - datetime.now(UTC)).total_seconds()
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=max(0.0, wait))
                return
            except TimeoutError:
                pass
            late = datetime.now(UTC) - due
            await self.fire(past_due=late > PAST_DUE_TOLERANCE, detail=f"timer {self.schedule.expression}")

    async def fire(self, *, past_due: bool, detail: str = "timer manual") -> None:
        """One invocation; concurrent fires wait for the running one (a timer never overlaps itself)."""
        async with self._lock:
            now = datetime.now(UTC)
            started = time.perf_counter()
            outcome = "Succeeded"
            try:
                request = timer_request(past_due=past_due, schedule=self.schedule.expression, last=self._last,
                                        next_fire=self.schedule.next_after(now))
                await self._invoker.invoke(self.spec, request)
            except Exception:
                log.exception("function %s failed (%s)", self.spec.name, detail)
                outcome = "Failed"
            self._last = now
            suffix = " (past due)" if past_due else ""
            logs.invocation(self.spec.name, detail + suffix, (time.perf_counter() - started) * 1000, outcome)
