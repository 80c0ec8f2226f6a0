"""What the three contact-code methods (email, SMS, voice) share: a channel, a contact's normal form, sending."""

from __future__ import annotations

from dataclasses import dataclass

from shared.adapters.phone import PhoneSender
from shared.domain.codes import Channel
from shared.domain.policy import Method
from shared.services.methods.base import Proof


@dataclass(frozen=True)
class ContactCode:
    """A one-time code sent to a contact the user registered; proven by typing the code back."""

    proof = Proof.CONTACT_CODE
    contact_field = "number"  # the registration API's name of the contact field

    method: Method
    channel: Channel
    phone: PhoneSender | None = None

    def unavailable_reason(self) -> str | None:
        if self.phone is None or self.phone.can_send(self.channel):
            return None
        return f"this service cannot send {self.channel.value} codes (provider '{self.phone.provider}')"

    def unavailable_detail(self) -> str:
        """For logs: the provider and channel that cannot send."""
        provider = self.phone.provider if self.phone else "none"
        return f"phone provider {provider} cannot send {self.channel}"

    def normalise(self, contact: str, default_region: str | None) -> str:
        """The contact in its one stored form; ContactError when it is not one."""
        raise NotImplementedError

    @staticmethod
    def contact_key(contact: str | None) -> str | None:
        """Contacts compare case-insensitively (email) or as E.164 (phones, already normalised)."""
        return contact.casefold() if contact else None

    def same_contact(self, registered: str | None, typed: str) -> bool:
        """Whether the typed (normalised) contact is the registered one."""
        return registered is not None and self.contact_key(registered) == self.contact_key(typed)
