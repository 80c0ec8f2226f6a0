"""Timer triggers: 6-field NCRONTAB (UTC) or TimeSpan schedules, runOnStartup, past-due detection, no overlap, and
one instance at a time across hosts on the same storage (the singleton listener lock).

Like the real host ("If a function app scales out to multiple instances, only a single instance of a
timer-triggered function is run across all instances", https://learn.microsoft.com/azure/azure-functions/
functions-bindings-timer#scale-out; the lock blobs of https://github.com/Azure/azure-webjobs-sdk/issues/614), each
timer's schedule runs only on the host that holds a blob lease on `azure-webjobs-hosts/locks/{hostId}/
{function}.Listener` in AzureWebJobsStorage. The holder renews the lease; the others try to take it every
FUNCHOST_TIMER_LOCK_POLL_SECONDS, so when the holder dies (SIGKILL: no release) one of them takes over once the
lease expired (FUNCHOST_TIMER_LEASE_SECONDS, 15-60 s as Blob Storage allows). The schedule monitor's status blob
`azure-webjobs-hosts/timers/{hostId}/{function}/status` ({"Last", "Next", "LastUpdated"}) is written after every
run; a new holder whose recorded `Next` has passed fires once as past due, as the real host does after downtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import BlobLeaseClient, BlobServiceClient, ContainerClient
from croniter import croniter

from . import logs
from .bindings import timer_request
from .invoker import Invoker
from .loader import FunctionSpec
from .settings import SettingsError, is_timespan, parse_timespan

log = logging.getLogger("funchost")

PAST_DUE_TOLERANCE = timedelta(seconds=1)
HOSTS_CONTAINER = "azure-webjobs-hosts"
HOST_ID_SETTING = "AzureFunctionsWebHost__hostid"
LEASE_SECONDS_SETTING = "FUNCHOST_TIMER_LEASE_SECONDS"
POLL_SECONDS_SETTING = "FUNCHOST_TIMER_LOCK_POLL_SECONDS"


def host_id(app_dir: str) -> str:
    """The host id the lock blobs are named by: AzureFunctionsWebHost__hostid, else one derived from the app and its
    settings, so that hosts started on the same app with the same settings are instances of one app."""
    chosen = os.environ.get(HOST_ID_SETTING)
    if chosen:
        return chosen
    digest = hashlib.sha256(app_dir.encode())
    for name, value in sorted(os.environ.items()):
        if not name.startswith(("PYTEST_", "FUNCHOST_", "_")):
            digest.update(f"{name}={value}\n".encode())
    base = re.sub(r"[^a-z0-9-]", "", os.path.basename(app_dir.rstrip("/")).lower())[:18] or "app"
    return f"{base}-{digest.hexdigest()[:12]}"


class TimerLocks:
    """The blob container holding every timer's lock and status blobs, and this instance's lease id."""

    def __init__(self, host: str) -> None:
        self.host_id = host
        self.lease_seconds = min(60, max(15, int(os.environ.get(LEASE_SECONDS_SETTING) or 15)))
        self.poll_seconds = max(0.2, float(os.environ.get(POLL_SECONDS_SETTING) or 10))
        self.instance = str(uuid.uuid4())  # the lease id: which instance holds a lock
        self._service: BlobServiceClient | None = None
        self._container: ContainerClient | None = None

    async def container(self) -> ContainerClient:
        if self._container is None:
            connection = os.environ.get("AzureWebJobsStorage")
            uri = os.environ.get("AzureWebJobsStorage__blobServiceUri")
            if connection:
                self._service = BlobServiceClient.from_connection_string(connection)
            elif uri:
                from azure.identity.aio import DefaultAzureCredential

                self._service = BlobServiceClient(uri, credential=DefaultAzureCredential())
            else:
                raise RuntimeError("timers need AzureWebJobsStorage (their singleton locks are blob leases)")
            self._container = self._service.get_container_client(HOSTS_CONTAINER)
            with contextlib.suppress(ResourceExistsError):
                await self._container.create_container()
        return self._container

    async def close(self) -> None:
        if self._service is not None:
            await self._service.close()


class ListenerLock:
    """One timer's singleton lock: a lease on locks/{hostId}/{function}.Listener, renewed while held."""

    def __init__(self, locks: TimerLocks, function: str) -> None:
        self._locks = locks
        self.blob = f"locks/{locks.host_id}/{function}.Listener"
        self.status_blob = f"timers/{locks.host_id}/{function}/status"
        self._lease: BlobLeaseClient | None = None
        self.lease_seconds = locks.lease_seconds
        self.poll_seconds = locks.poll_seconds

    async def try_acquire(self) -> bool:
        container = await self._locks.container()
        blob = container.get_blob_client(self.blob)
        with contextlib.suppress(ResourceExistsError, HttpResponseError):
            await blob.upload_blob(b"", overwrite=False)
        lease = BlobLeaseClient(blob, lease_id=self._locks.instance)
        try:
            await lease.acquire(lease_duration=self._locks.lease_seconds)
        except HttpResponseError:
            return False  # held by another instance (409 LeaseAlreadyPresent)
        self._lease = lease
        return True

    async def renew(self) -> bool:
        if self._lease is None:
            return False
        try:
            await self._lease.renew()
            return True
        except HttpResponseError:
            self._lease = None
            return False

    async def release(self) -> None:
        if self._lease is not None:
            with contextlib.suppress(HttpResponseError):
                await self._lease.release()
            self._lease = None

    async def read_status(self) -> dict[str, str]:
        container = await self._locks.container()
        try:
            data = await (await container.get_blob_client(self.status_blob).download_blob()).readall()
            status = json.loads(data)
            return status if isinstance(status, dict) else {}
        except (ResourceNotFoundError, ValueError):
            return {}

    async def write_status(self, last: datetime, next_fire: datetime) -> None:
        container = await self._locks.container()
        now = datetime.now(UTC)
        body = json.dumps({"Last": last.isoformat(), "Next": next_fire.isoformat(), "LastUpdated": now.isoformat()})
        await container.get_blob_client(self.status_blob).upload_blob(body.encode(), overwrite=True)


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

    def __init__(self, spec: FunctionSpec, invoker: Invoker, *, enabled: bool, locks: TimerLocks | None = None,
                 ) -> None:
        self.spec = spec
        self.schedule = Schedule(str(spec.trigger["schedule"]))
        self._invoker = invoker
        self._enabled = enabled
        self._singleton = ListenerLock(locks, spec.name) if locks is not None else None
        self._held = asyncio.Event()
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
        if self._singleton is None:
            await self._run_schedule()
            return
        lock = self._singleton
        while not self._stopping.is_set():
            try:
                acquired = await lock.try_acquire()
            except Exception as exc:  # storage unreachable for a moment: try again at the next poll
                log.warning("timer %s: cannot reach its lock blob (%s)", self.spec.name, type(exc).__name__)
                acquired = False
            if acquired:
                log.info("timer %s: this instance holds the singleton lock %s", self.spec.name, lock.blob)
                self._held.set()
                renewal = asyncio.create_task(self._keep_lock(lock), name=f"timer lock {self.spec.name}")
                try:
                    status = await lock.read_status()
                    recorded_next = _parse_time(status.get("Next"))
                    if recorded_next is not None and datetime.now(UTC) - recorded_next > PAST_DUE_TOLERANCE:
                        await self.fire(past_due=True, detail=f"timer {self.schedule.expression} missed")
                    await self._run_schedule()
                finally:
                    renewal.cancel()
                    await asyncio.gather(renewal, return_exceptions=True)
                    self._held.clear()
                    await lock.release()
                if not self._stopping.is_set():
                    log.warning("timer %s: lost its singleton lock", self.spec.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._locks_poll())

    def _locks_poll(self) -> float:
        return self._singleton.poll_seconds if self._singleton is not None else 1.0

    async def _keep_lock(self, lock: ListenerLock) -> None:
        """Renew the lease every third of its duration; when renewal fails the lock is lost."""
        interval = lock.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            if not await lock.renew():
                self._held.clear()
                return

    async def _run_schedule(self) -> None:
        if self.spec.trigger.get("runOnStartup"):
            await self.fire(past_due=False, detail="timer runOnStartup")
        while not self._stopping.is_set() and (self._singleton is None or self._held.is_set()):
            due = self.schedule.next_after(datetime.now(UTC))
            wait = (due - datetime.now(UTC)).total_seconds()
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=max(0.0, wait))
                return
            except TimeoutError:
                pass
            if self._singleton is not None and not self._held.is_set():
                return
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
            if self._singleton is not None and self._held.is_set():
                try:
                    await self._singleton.write_status(now, self.schedule.next_after(datetime.now(UTC)))
                except Exception as exc:
                    log.warning("timer %s: cannot write its status blob (%s)", self.spec.name, type(exc).__name__)
            suffix = " (past due)" if past_due else ""
            logs.invocation(self.spec.name, detail + suffix, (time.perf_counter() - started) * 1000, outcome)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
