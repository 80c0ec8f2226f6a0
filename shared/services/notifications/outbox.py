"""What every mail of the notifications goes out through, built once (functions/composition.py): the branded
mailer, the directory's contact facts, the ledger that sends each queue message's mail once, and the clock; and
`OnceMail`, the base of a use case whose `send` is just that: one mail per queue message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar, Generic, Protocol, TypeVar

from shared.adapters.mail import MailLedger
from shared.domain.clock import Clock
from shared.services.notifications.branded import Mailer
from shared.services.notifications.once import mail_once
from shared.services.notifications.recipients import DirectoryContacts

T = TypeVar("T")


class QueuedMessage(Protocol):
    @property
    def id(self) -> str: ...


M = TypeVar("M", bound=QueuedMessage)


@dataclass(frozen=True)
class Outbox:
    mail: Mailer
    contacts: DirectoryContacts
    ledger: MailLedger
    clock: Clock

    async def once(self, message_id: str, what: str, send: Callable[[], Awaitable[T]]) -> tuple[bool, T | None]:
        """`send` unless this message's mail was sent or is being sent (`once.mail_once`)."""
        return await mail_once(self.ledger, self.clock, message_id, what, send)


@dataclass(frozen=True)
class OnceMail(Generic[M]):
    """A use case that mails once per queue message through the outbox `out` (its first field): `send` claims the
    message in the ledger and writes the mail (`_send`). Each names its mail for the logs (`what`)."""

    what: ClassVar[str]
    out: Outbox

    async def send(self, message: M) -> bool:
        """True when this call handled the message's mail (sent it, or found nothing to send)."""
        sent, _ = await self.out.once(message.id, self.what, lambda: self._send(message))
        return sent

    async def _send(self, message: M) -> None:
        raise NotImplementedError
