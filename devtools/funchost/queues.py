"""Queue triggers: polls Azure Queue Storage with host.json semantics (batches, back-off, leases, poison queues)."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from typing import Any

from azure.functions.queue import QueueMessage as FunctionQueueMessage
from azure.storage.queue import QueueMessage as StoredMessage
from azure.storage.queue.aio import QueueClient

from . import logs
from .invoker import Invoker
from .loader import FunctionSpec
from .settings import QueueOptions
from .storage import MessageEncodingError, QueueStore, decode_message

log = logging.getLogger("funchost")

MIN_POLLING_INTERVAL = 0.1
DEFAULT_LEASE_SECONDS = 600  # the real host keeps a message invisible for 10 minutes while it runs


def lease_seconds() -> int:
    """How long a running message stays invisible before its lease is renewed (FUNCHOST_QUEUE_LEASE_SECONDS)."""
    return max(2, int(os.environ.get("FUNCHOST_QUEUE_LEASE_SECONDS") or DEFAULT_LEASE_SECONDS))


class QueueListener:
    """Polls one function's queue and runs the function for each message."""

    def __init__(self, spec: FunctionSpec, store: QueueStore, invoker: Invoker, options: QueueOptions) -> None:
        self.spec = spec
        self.queue_name: str = spec.trigger["queueName"]
        self.poison_name = f"{self.queue_name}-poison"
        self._connection: str = spec.trigger["connection"]
        self._store = store
        self._invoker = invoker
        self._options = options
        self._lease = lease_seconds()
        self._client: QueueClient | None = None
        self._stopping = asyncio.Event()
        self._capacity = asyncio.Event()
        self._messages: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._client = await self._store.ensure_queue(self._connection, self.queue_name)
        self._poller = asyncio.create_task(self._poll(), name=f"poll {self.queue_name}")
        self._poller.add_done_callback(logs.report_crash)

    async def stop(self, grace_seconds: float) -> None:
        """Stop polling, then wait (bounded) for the messages already running."""
        self._stopping.set()
        self._capacity.set()
        if self._poller is not None:
            await asyncio.gather(self._poller, return_exceptions=True)
        if self._messages:
            await asyncio.wait(set(self._messages), timeout=grace_seconds)

    async def _poll(self) -> None:
        assert self._client is not None
        delay = MIN_POLLING_INTERVAL
        batch = self._options.batch_size
        while not self._stopping.is_set():
            while len(self._messages) > self._options.new_batch_threshold and not self._stopping.is_set():
                self._capacity.clear()
                await self._capacity.wait()
            if self._stopping.is_set():
                break
            try:
                received = self._client.receive_messages(
                    messages_per_page=batch, max_messages=batch, visibility_timeout=self._lease)
                messages = [message async for message in received]
            except Exception as exc:  # storage down: keep polling at the slow rate
                log.warning("queue %s: receive failed: %s", self.queue_name, exc)
                messages = []
                delay = self._options.max_polling_interval
            if messages:
                delay = MIN_POLLING_INTERVAL
                for message in messages:
                    task = asyncio.create_task(self._process(message))
                    self._messages.add(task)
                    task.add_done_callback(self._finished)
                continue
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, max(self._options.max_polling_interval, MIN_POLLING_INTERVAL))

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._messages.discard(task)
        self._capacity.set()

    async def _process(self, message: StoredMessage) -> None:
        assert self._client is not None
        count = int(message.dequeue_count or 1)
        detail = f"queue {self.queue_name} id={message.id} dequeue={count}"
        started = time.perf_counter()
        succeeded = False
        lease = _Lease(self._client, message, self._lease)
        try:
            if count > self._options.max_dequeue_count:
                log.error("%s: dequeued more than maxDequeueCount (%d) times; not run",
                          detail, self._options.max_dequeue_count)
            else:
                body = decode_message(message.content, self._options.message_encoding)
                trigger = FunctionQueueMessage(
                    id=message.id, body=body, dequeue_count=count, expiration_time=message.expires_on,
                    insertion_time=message.inserted_on, time_next_visible=message.next_visible_on,
                    pop_receipt=message.pop_receipt)
                await self._invoker.invoke(self.spec, trigger)
                succeeded = True
        except MessageEncodingError as exc:
            log.error("%s: %s; counted as a failed attempt (host.json messageEncoding is %s)",
                      detail, exc, self._options.message_encoding)
        except Exception:
            log.exception("function %s failed (%s)", self.spec.name, detail)
        finally:
            await lease.stop()
        outcome = await self._settle(message, lease.pop_receipt, count, succeeded)
        logs.invocation(self.spec.name, detail, (time.perf_counter() - started) * 1000, outcome)

    async def _settle(self, message: StoredMessage, pop_receipt: str | None, count: int, succeeded: bool) -> str:
        """Delete, release for retry, or move to the poison queue; returns the outcome for the log."""
        assert self._client is not None
        try:
            if succeeded:
                await self._client.delete_message(message.id, pop_receipt)
                return "Succeeded"
            if count >= self._options.max_dequeue_count:
                poison = await self._store.ensure_queue(self._connection, self.poison_name)
                await poison.send_message(message.content)
                await self._client.delete_message(message.id, pop_receipt)
                return f"Failed, poisoned to {self.poison_name}"
            await self._client.update_message(
                message.id, pop_receipt, visibility_timeout=math.ceil(self._options.visibility_timeout))
            return f"Failed, retry after {self._options.visibility_timeout:g} s"
        except Exception as exc:
            log.error("queue %s id=%s: could not settle the message (%s); it reappears when its lease ends",
                      self.queue_name, message.id, exc)
            return "Succeeded, not deleted" if succeeded else "Failed, not released"


class _Lease:
    """Keeps a running message invisible by renewing its visibility every half lease."""

    def __init__(self, client: QueueClient, message: StoredMessage, seconds: int) -> None:
        self.pop_receipt: str | None = message.pop_receipt
        self._client = client
        self._message_id = message.id
        self._seconds = seconds
        self._lock = asyncio.Lock()
        self._stopped = False
        self._task: asyncio.Task[Any] = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._seconds / 2)
            async with self._lock:
                if self._stopped:
                    return
                try:
                    updated = await self._client.update_message(
                        self._message_id, self.pop_receipt, visibility_timeout=self._seconds)
                    self.pop_receipt = updated.pop_receipt
                except Exception as exc:
                    log.warning("queue message %s: lease renewal failed: %s", self._message_id, exc)

    async def stop(self) -> None:
        async with self._lock:
            self._stopped = True
            self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
