"""Optimistic concurrency on one row: read, decide, write under the read's ETag, and on losing the race read again,
after a capped, jittered exponential backoff (security.md F3).

Every read-modify-write of the service goes through `retry_lost_races`, so racing writers spread out in time
instead of re-colliding in lockstep: attempt n waits a random time in [0, min(CAP, BASE * 2**n)] ("full
jitter"). With the defaults a writer gives up after 16 attempts and at most ~4.2 s of waiting; 20 writers on
one row (the tests' worst case) all get through well within that.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from shared.adapters.storage_errors import storage_errors
from shared.errors import WriteContention

log = logging.getLogger("sspr.storage")

T = TypeVar("T")

ATTEMPTS = 16
BASE_DELAY = 0.01  # seconds
MAX_DELAY = 0.4  # seconds


class LostRace(Exception):
    """Raised by an attempt whose conditional write (If-Match, or a create) lost to another writer."""


def replace_if_unchanged(etag: str) -> dict[str, Any]:
    """Keyword arguments (or a transaction operation's options) that replace a row only if still at `etag`."""
    return {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}


def is_conflict(error: Exception) -> bool:
    """A 409 (created meanwhile) or 412 (changed since read): another writer got there first."""
    return getattr(error, "status_code", None) in (409, 412)


def backoff_ceiling(attempt: int, base: float = BASE_DELAY, cap: float = MAX_DELAY) -> float:
    """The longest wait after the `attempt`-th lost race (0-based); the wait is uniform in [0, this]."""
    return min(cap, base * 2 ** min(attempt, 30))


async def retry_lost_races(attempt: Callable[[], Awaitable[T]], what: str,
                           lost: type[Exception] | tuple[type[Exception], ...] = LostRace,
                           attempts: int = ATTEMPTS) -> T:
    """Run `attempt` (one read-decide-write) until it does not raise `lost`; `WriteContention` after `attempts`.

    `attempt` must re-read what it decides on each time; anything else it raises passes through at once.
    """
    for n in range(attempts):
        try:
            return await attempt()
        except lost:
            if n + 1 < attempts:
                await asyncio.sleep(random.uniform(0, backoff_ceiling(n)))
    log.warning("%s kept changing: gave up after %d attempts", what, attempts)
    raise WriteContention(f"{what} kept changing")


async def write_if_unchanged(table: TableClient, entity: dict[str, object], etag: str | None, what: str) -> str:
    """Create `entity` (etag None: it was not there when read) or replace it if still at `etag`; its new ETag.
    `LostRace` when another writer got there first (created it, changed it, or deleted it since the read),
    `StorageUnavailable` when storage fails."""
    with storage_errors(f"{what} write"):
        try:
            if etag is None:
                result = await table.create_entity(entity)
            else:
                result = await table.update_entity(entity, **replace_if_unchanged(etag))
        except ResourceExistsError:
            raise LostRace from None
        except ResourceNotFoundError:
            if etag is None:
                raise  # a create never answers 404: the table itself is gone
            raise LostRace from None  # deleted since the read (a release, a purge): read again and judge again
        except HttpResponseError as exc:
            if is_conflict(exc):
                raise LostRace from None
            raise
    return str(result.get("etag", ""))


async def submit_if_unchanged(table: TableClient, operations: list[Any], what: str) -> None:
    """One single-partition transaction whose conditional operations must all still hold; `LostRace` if one no
    longer does (the whole transaction is then not applied), `StorageUnavailable` when storage fails."""
    with storage_errors(f"{what} transaction"):
        try:
            await table.submit_transaction(operations)
        except TableTransactionError as exc:
            if is_conflict(exc):
                raise LostRace(f"{what} changed meanwhile") from None
            raise
