"""The verification-method registry and the password-target rule, as the flows rely on them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from shared.adapters.phone import NoPhone
from shared.domain.codes import Channel, ContactError
from shared.domain.password_targets import ENTRA, target_for
from shared.domain.policy import DEFAULT_DOCUMENT, Method, Policy
from shared.services.methods import ContactCode, standard_methods
from shared.services.password_targets.base import PasswordTargets
from shared.services.password_targets.entra import EntraTarget


class SmsOnly:
    provider = "sms-only"

    def can_send(self, channel: Channel) -> bool:
        return channel is Channel.SMS


@dataclass(frozen=True)
class DirectoryUser:
    synced: bool


def policy() -> Policy:
    return Policy.model_validate({**DEFAULT_DOCUMENT, "scope": "all"})


def test_phones_are_deliverable_only_with_a_provider_that_sends_their_channel() -> None:
    assert standard_methods(NoPhone()).deliverable() == {Method.EMAIL, Method.SECURITY_QUESTIONS}
    assert Method.MOBILE_PHONE in standard_methods(SmsOnly()).deliverable()  # type: ignore[arg-type]
    assert Method.OFFICE_PHONE not in standard_methods(SmsOnly()).deliverable()  # type: ignore[arg-type]


def test_unavailable_methods_are_listed_in_registry_order_with_the_provider() -> None:
    missing = standard_methods(NoPhone()).unavailable(frozenset({Method.OFFICE_PHONE, Method.MOBILE_PHONE,
                                                                 Method.EMAIL}))
    assert missing == [(Method.MOBILE_PHONE, "this service cannot send sms codes (provider 'none')"),
                       (Method.OFFICE_PHONE, "this service cannot send voice codes (provider 'none')")]


def test_only_the_three_contact_methods_are_proven_by_a_sent_code() -> None:
    methods = standard_methods(NoPhone())
    assert methods.contact_code_methods() == {Method.EMAIL, Method.MOBILE_PHONE, Method.OFFICE_PHONE}
    assert methods.contact_code(Method.SECURITY_QUESTIONS) is None
    assert methods.contact_code(Method.AUTHENTICATOR_APP) is None  # not in this registry at all


def test_contacts_match_case_insensitively_after_normalising() -> None:
    email = standard_methods(NoPhone()).contact_code(Method.EMAIL)
    assert isinstance(email, ContactCode)
    assert email.same_contact("Casey.Alt@Example.com", email.normalise(" casey.alt@example.com ", None))
    assert not email.same_contact(None, "casey.alt@example.com")
    with pytest.raises(ContactError):
        email.normalise("not an address", None)


def test_a_cloud_user_gets_the_entra_target_and_a_synced_user_none() -> None:
    assert target_for(DirectoryUser(synced=False), policy()) == ENTRA
    assert target_for(DirectoryUser(synced=True), policy()) is None


def test_the_target_registry_finds_a_target_by_the_name_the_rule_gives() -> None:
    entra = EntraTarget(graph=None)  # type: ignore[arg-type]
    assert PasswordTargets([entra]).get(ENTRA) is entra
