"""The objects a function receives besides its trigger: `func.Out` holders, the invocation context and timer info."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar

import azure.functions as func
from azure.functions.timer import TimerRequest

T = TypeVar("T")


class Out(func.Out[T], Generic[T]):
    """An output binding value the function sets; the host reads it after the function returns."""

    def __init__(self) -> None:
        self._value: T | None = None
        self.was_set = False

    def set(self, val: T) -> None:
        self._value = val
        self.was_set = True

    def get(self) -> T | None:
        return self._value


class InvocationContext(func.Context):
    """`func.Context` for one invocation."""

    _thread_local = threading.local

    def __init__(self, function_name: str, function_directory: str, invocation_id: str | None = None) -> None:
        self._invocation_id = invocation_id or str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> type[threading.local]:
        return self._thread_local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


def timer_request(*, past_due: bool, schedule: str, last: datetime | None, next_fire: datetime | None,
                  ) -> TimerRequest:
    """A `func.TimerRequest` shaped like the one the real host sends (IsPastDue, Schedule, ScheduleStatus)."""
    status = {}
    if last is not None:
        status["Last"] = last.isoformat()
        status["LastUpdated"] = last.isoformat()
    if next_fire is not None:
        status["Next"] = next_fire.isoformat()
    return TimerRequest(past_due=past_due, schedule={"AdjustForDST": False, "Expression": schedule},
                        schedule_status=status)
