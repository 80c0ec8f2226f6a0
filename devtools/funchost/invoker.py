"""Runs one invocation: builds the arguments, runs `def` bodies in the worker thread pool and `async def` bodies on
the host loop, then writes the queue output bindings."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import azure.functions as func

from .bindings import InvocationContext, Out
from .loader import FunctionSpec
from .storage import QueueStore, encode_message

DEFAULT_THREAD_COUNT = 8


class Invoker:
    """Invokes functions and keeps track of the ones still running, so shutdown can wait for them."""

    def __init__(self, store: QueueStore, message_encoding: str) -> None:
        threads = int(os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT") or DEFAULT_THREAD_COUNT)
        self._executor = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="funchost-worker")
        self._store = store
        self._encoding = message_encoding
        self._in_flight: set[asyncio.Task[Any]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def invoke(self, spec: FunctionSpec, trigger_value: Any, *, invocation_id: str | None = None) -> Any:
        """Run the function and write its queue outputs; returns the function's result (or its HTTP output)."""
        task = asyncio.ensure_future(self._invoke(spec, trigger_value, invocation_id))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return await asyncio.shield(task)

    async def _invoke(self, spec: FunctionSpec, trigger_value: Any, invocation_id: str | None) -> Any:
        kwargs, outs = self._arguments(spec, trigger_value, invocation_id)
        if spec.is_async:
            result = await spec.user_function(**kwargs)
        else:
            call = functools.partial(contextvars.copy_context().run, spec.user_function, **kwargs)
            result = await asyncio.get_running_loop().run_in_executor(self._executor, call)
        for output in spec.queue_outputs:
            if output.name == "$return":
                value, was_set = result, result is not None
            else:
                value, was_set = outs[output.name].get(), outs[output.name].was_set
            if was_set and value is not None:
                await self._send(output.connection, output.queue_name, value)
        if spec.http_output and spec.http_output != "$return":
            return outs[spec.http_output].get()
        return result

    def _arguments(self, spec: FunctionSpec, trigger_value: Any,
                   invocation_id: str | None) -> tuple[dict[str, Any], dict[str, Out[Any]]]:
        outs: dict[str, Out[Any]] = {o.name: Out() for o in spec.queue_outputs if o.name != "$return"}
        if spec.http_output and spec.http_output != "$return":
            outs[spec.http_output] = Out()
        kwargs: dict[str, Any] = {}
        for name in spec.parameters:
            if name == spec.trigger_arg:
                kwargs[name] = _convert_trigger(trigger_value, spec.annotations.get(name))
            elif name in outs:
                kwargs[name] = outs[name]
            elif name == "context":
                kwargs[name] = InvocationContext(spec.name, spec.function_directory, invocation_id)
        return kwargs, outs

    async def _send(self, connection: str, queue_name: str, value: Any) -> None:
        client = await self._store.ensure_queue(connection, queue_name)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            await client.send_message(encode_message(_message_body(item), self._encoding))

    async def drain(self, grace_seconds: float) -> bool:
        """Wait (bounded) for running invocations; True when none is left."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=grace_seconds)
        return not self._in_flight

    def close(self, *, wait: bool) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=True)


def _convert_trigger(value: Any, annotation: Any) -> Any:
    """Queue triggers may be declared as `str` or `bytes` instead of `func.QueueMessage`."""
    if isinstance(value, func.QueueMessage):
        if annotation is str or annotation == "str":
            return value.get_body().decode("utf-8")
        if annotation is bytes or annotation == "bytes":
            return value.get_body()
    return value


def _message_body(item: Any) -> str | bytes:
    if isinstance(item, (str, bytes)):
        return item
    if isinstance(item, bytearray):
        return bytes(item)
    if isinstance(item, func.QueueMessage):
        return item.get_body()
    if isinstance(item, (dict, int, float, bool)):
        return json.dumps(item)
    raise TypeError(f"queue output value must be str, bytes, QueueMessage or a list of them, got {type(item).__name__}")
