"""The voice code method: a code read out by a call to the registered office phone."""

from __future__ import annotations

from shared.adapters.phone import PhoneSender
from shared.domain import codes
from shared.domain.codes import Channel
from shared.domain.policy import Method
from shared.services.methods.code import ContactCode


class VoiceCode(ContactCode):
    def __init__(self, phone: PhoneSender) -> None:
        super().__init__(Method.OFFICE_PHONE, Channel.VOICE, phone)

    def normalise(self, contact: str, default_region: str | None) -> str:
        return codes.normalise_phone(contact, self.method, default_region)
