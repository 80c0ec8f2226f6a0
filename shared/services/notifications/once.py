"""Mails sent at most once per queue message: claim the message's ledger row, send, mark it sent (F1).

A failed send releases only this worker's claim (by its ETag) and the send's own error goes to the queue, whose
retry may claim again; a crashed worker's claim lapses after `REMINDER_LEASE`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from shared.adapters.mail import MailLedger
from shared.domain.clock import Clock
from shared.errors import StorageUnavailable

log = logging.getLogger("sspr.notifications")

REMINDER_LEASE = timedelta(minutes=2)

T = TypeVar("T")


async def mail_once(ledger: MailLedger, clock: Clock, message_id: str, what: str,
                    send: Callable[[], Awaitable[T]]) -> tuple[bool, T | None]:
    """Run `send` unless this message's mail was sent or is being sent: (True, its result), or (False, None)."""
    claim = await ledger.claim(message_id, clock(), REMINDER_LEASE)
    if claim is None:
        log.info("%s %s already sent or being sent", what, message_id)
        return False, None
    try:
        result = await send()
    except Exception:
        try:
            await ledger.release(message_id, claim)
        except StorageUnavailable as release_failed:
            # The claim lapses after REMINDER_LEASE anyway; the send's error is the one the queue must see.
            log.warning("%s %s: releasing its claim failed: %s", what, message_id, release_failed)
        raise
    await ledger.mark_sent(message_id, clock())
    return True, result
