"""The change's gates and counters (shared/domain/password_change.py): proof-of-work and budgets on every try, a
pause after too many wrong answers for one typed name (before AD's lockout, as the agents report it) or from one
address, and the counting of a wrong answer, the same for every user name (C7)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from shared import i18n
from shared.domain import password_change as rules
from shared.domain.client_address import budget_key
from shared.domain.throttling import PASSWORD_CHANGE_BUDGETS, PASSWORD_CHECK_BUDGETS
from shared.onprem_errors import ChangePaused
from shared.services.change.ports import Lockout, ProofOfWorkGate, Throttle


@dataclass(frozen=True)
class ThrottleKeys:
    """What a wrong answer of this try counts against: the typed name, and the client's address."""

    name: str
    address: str

    @classmethod
    def of(cls, username: str, client_ip: str | None) -> ThrottleKeys:
        return cls(rules.name_key(username), rules.address_key(budget_key(client_ip)))

    def as_tuple(self) -> tuple[str, str]:
        return self.name, self.address


class ChangeLimits:
    def __init__(self, pow: ProofOfWorkGate, throttle: Throttle, lockout: Lockout) -> None:
        self._pow = pow
        self._throttle = throttle
        self._lockout = lockout

    def proof_of_work(self) -> dict[str, object]:
        return self._pow.challenge()

    async def admit(self, altcha: str, client_ip: str | None) -> None:
        """A solved proof-of-work, spent once, and the try counted against the address's and the service's budgets
        (a refused proof-of-work still counts)."""
        await asyncio.gather(self._pow.spend(altcha), self._throttle.admit(PASSWORD_CHANGE_BUDGETS, client_ip))

    async def admit_check(self, client_ip: str | None) -> None:
        """A live rule check, counted against the address's and the service's check budgets."""
        await self._throttle.admit(PASSWORD_CHECK_BUDGETS, client_ip)

    async def ensure_not_paused(self, keys: ThrottleKeys, language: str) -> None:
        name, address = await asyncio.gather(
            self._throttle.paused_until(keys.name, rules.name_limit(await self._lockout.lockout_policy())),
            self._throttle.paused_until(keys.address, rules.ADDRESS_FAILURES))
        for until, text in ((name, "paused.detail"), (address, "paused.address")):
            if until is not None:
                detail = i18n.catalog("change", language)[text].format(until=until.strftime("%Y-%m-%d %H:%M UTC"))
                raise ChangePaused(until, detail)

    async def failed(self, keys: tuple[str, str]) -> None:
        """A wrong answer: counted for the typed name, and for the address."""
        name_limit = rules.name_limit(await self._lockout.lockout_policy())
        await asyncio.gather(self._throttle.record_event(keys[0], name_limit),
                             self._throttle.record_event(keys[1], rules.ADDRESS_FAILURES))

    async def succeeded(self, keys: tuple[str, str]) -> None:
        """A change made: the name's wrong answers are over (AD cleared its badPwdCount too); the address's stay."""
        await self._throttle.forget(keys[0])
