"""The SMS code method: a code sent by text message to the registered mobile phone."""

from __future__ import annotations

from shared.adapters.phone import PhoneSender
from shared.domain import codes
from shared.domain.codes import Channel
from shared.domain.policy import Method
from shared.services.methods.code import ContactCode


class SmsCode(ContactCode):
    def __init__(self, phone: PhoneSender) -> None:
        super().__init__(Method.MOBILE_PHONE, Channel.SMS, phone)

    def normalise(self, contact: str, default_region: str | None) -> str:
        return codes.normalise_phone(contact, self.method, default_region)
