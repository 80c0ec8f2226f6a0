"""The queue side of every sharded job: validate a shard message, then hand it to the job's service.

An invalid message raises before anything is touched, so it ends in the poison queue unchanged; a valid one is
processed with `final_attempt` set on its last delivery (host.json extensions.queues.maxDequeueCount), when a
job gives up on a dependency that stayed unavailable instead of raising once more.
"""

from collections.abc import Awaitable, Callable
from typing import TypeVar

import azure.functions as func
from pydantic import BaseModel, ValidationError

MAX_DEQUEUE_COUNT = 5  # host.json extensions.queues.maxDequeueCount

M = TypeVar("M", bound=BaseModel)


async def run_shard(msg: func.QueueMessage, model: type[M], job: str,
                    process: Callable[[M, bool], Awaitable[None]]) -> None:
    try:
        message = model.model_validate_json(msg.get_body())
    except ValidationError as exc:
        raise ValueError(f"invalid {job} message: {exc.error_count()} error(s)") from None
    await process(message, (msg.dequeue_count or 1) >= MAX_DEQUEUE_COUNT)
