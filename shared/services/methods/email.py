"""The email code method: a code sent to the registered email address."""

from __future__ import annotations

from shared.domain import codes
from shared.domain.codes import Channel
from shared.domain.policy import Method
from shared.services.methods.code import ContactCode


class EmailCode(ContactCode):
    contact_field = "address"

    def __init__(self) -> None:
        super().__init__(Method.EMAIL, Channel.EMAIL)

    def normalise(self, contact: str, default_region: str | None) -> str:
        return codes.normalise_email(contact)
