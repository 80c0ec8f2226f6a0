"""Who a notification goes to and in which language: the directory's contact facts the worker needs."""

from __future__ import annotations

from typing import Protocol

from shared import i18n
from shared.adapters.graph import ExpiryContact, UserContact
from shared.adapters.security_info_store import SecurityInfoStore
from shared.errors import SsprError


class Contacts(Protocol):
    async def user_contact(self, user_id: str) -> UserContact: ...


class AdminContacts(Contacts, Protocol):
    async def global_administrator_mails(self) -> list[str]: ...


class ExpiryContacts(Protocol):
    async def expiry_contact(self, user_id: str) -> ExpiryContact | None: ...


class DirectoryContacts(AdminContacts, ExpiryContacts, Protocol):
    """Every contact fact the mails read of the directory (the Graph gateway)."""


def language_of(contact: UserContact | None) -> str:
    return i18n.language_of(contact.preferred_language if contact else None)


def directory_addresses(contact: UserContact | None) -> list[str]:
    """The user's mail and other mails in the directory, in that order, without blanks."""
    return [a for a in ((contact.mail, *contact.other_mails) if contact else ()) if a]


async def user_addresses(user_id: str, contact: UserContact | None,
                         security_info: SecurityInfoStore | None) -> list[str]:
    """Where a notice to the user goes: the email addresses they registered here (when `security_info` is given),
    then their mail and other mails in the directory; each address once."""
    registered = [m.contact for m in await security_info.methods(user_id)
                  if m.kind.value == "email" and m.contact] if security_info is not None else []
    return list(dict.fromkeys([*registered, *directory_addresses(contact)]))


async def contact_or_none(contacts: Contacts, user_id: str) -> UserContact | None:
    try:
        return await contacts.user_contact(user_id)
    except SsprError:
        return None  # the language and greeting are a nicety: the mail still goes out, in English
