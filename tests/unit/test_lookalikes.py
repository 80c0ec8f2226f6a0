"""Usernames and contacts Entra would not store are refused, never folded into someone else's (security.md D5)."""

from __future__ import annotations

import pytest

from shared.domain import codes
from shared.domain.codes import ContactError
from shared.domain.reset_flow import normalise_username
from shared.services.reset.user import plausible_username

KELVIN = "\u212a"


@pytest.mark.parametrize(("address", "says"), [
    ("ca\u200bsey@fabrikam.example", "invisible"),        # zero-width space (Cf)
    ("casey\u2028@fabrikam.example", "invisible"),        # line separator (Zl)
    ("casey\u2029x@fabrikam.example", "invisible"),       # paragraph separator (Zp)
    ("\u202ecasey@fabrikam.example", "invisible"),        # right-to-left override (bidi)
    ("ca\u2066sey@fabrikam.example", "invisible"),        # left-to-right isolate (bidi)
    ("casey\u00ad@fabrikam.example", "invisible"),        # soft hyphen (Cf)
    ('"casey"@fabrikam.example', "quoted"),
    ('"ca sey"@fabrikam.example', "quoted"),
    (f"{KELVIN}asey@fabrikam.example", "ASCII"),          # a compatibility lookalike of K
    ("casey@fabr\u0131kam.example", "ASCII"),             # dotless i in the domain
    ("ｃasey@fabrikam.example", "ASCII"),                 # fullwidth c
])
def test_D5_an_address_entra_would_not_store_is_refused_with_a_plain_message(address: str, says: str) -> None:
    with pytest.raises(ContactError, match=says):
        codes.normalise_email(address)


@pytest.mark.parametrize("address", ["casey..alt@fabrikam.example", ".casey@fabrikam.example",
                                     "casey.@fabrikam.example", "casey@xn--zz.example"])
def test_D5_a_malformed_dot_atom_or_punycode_label_is_refused(address: str) -> None:
    with pytest.raises(ContactError):
        codes.normalise_email(address)


@pytest.mark.parametrize("address", ["casey.alt+sspr@fabrikam.example", "o'neil@fabrikam.example",
                                     "a_b-c~d@xn--bcher-kva.example"])
def test_D5_ordinary_addresses_still_pass(address: str) -> None:
    assert codes.normalise_email(address) == address


def test_D5_the_masked_contact_of_an_accepted_address_never_starts_with_a_quote() -> None:
    assert codes.mask_contact(codes.normalise_email("casey@fabrikam.example")) == "c***@fabrikam.example"


def test_D5_a_kelvin_sign_is_not_folded_into_the_ascii_user_and_names_nobody() -> None:
    typed = f"{KELVIN}elvin@contoso.example"
    normalised = normalise_username(typed)
    assert normalised != "kelvin@contoso.example" and KELVIN in normalised
    assert not plausible_username(normalised)
    assert plausible_username(normalise_username("Kelvin@Contoso.Example"))


@pytest.mark.parametrize("username", [
    "kel\u200bvin@contoso.example", "kelvin\u202e@contoso.example", "kelvin\u2028@contoso.example",
    "ｋelvin@contoso.example", "kelvin@contoso.exampl\u0435", "kelvin.@contoso.example", '"kelvin"@contoso.example',
    "kelvin@contoso", "guest_x.example#EXT#@contoso.example", "a/b@contoso.example", "a" * 65 + "@contoso.example",
])
def test_D5_what_entra_would_not_store_as_a_upn_is_never_looked_up(username: str) -> None:
    assert not plausible_username(normalise_username(username))


@pytest.mark.parametrize("username", ["casey.alt@contoso.example", "c_a-s!e^y~@sub.contoso.example"])
def test_D5_upns_of_entras_character_set_are_looked_up(username: str) -> None:
    assert plausible_username(username)


@pytest.mark.parametrize("number", [
    "+4670\u200b1234567",    # zero-width space (Cf)
    "+46701234567\u2028",    # line separator (Zl) at the end
    "+46 70\u2029123 45 67",  # paragraph separator (Zp)
    "+46\u202e701234567",    # right-to-left override (bidi)
    "+4670\u20661234567",    # left-to-right isolate (bidi)
    "+4670\u00ad1234567",    # soft hyphen (Cf)
])
def test_D5_a_phone_number_with_an_invisible_bidi_or_line_separator_character_is_refused(number: str) -> None:
    with pytest.raises(ContactError, match="invisible"):
        codes.normalise_phone(number, codes.Method.MOBILE_PHONE)


@pytest.mark.parametrize("number", ["\uff0b46701234567", "+46\uff17\uff10 123 45 67", "+46 70-123 45 67"])
def test_D5_digits_of_other_scripts_in_a_phone_number_fold_to_its_one_e164_spelling(number: str) -> None:
    # libphonenumber reads any Unicode decimal digit and the fullwidth plus; what is stored and compared is E.164.
    assert codes.normalise_phone(number, codes.Method.MOBILE_PHONE) == "+46701234567"
