"""The code rules (security.md A1-A9): generation, HMAC storage, expiry, single use, lockout, resend, contacts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain import codes
from shared.domain.codes import Challenge, Channel, ContactError, Delivery, Verdict
from shared.domain.policy import DEFAULT_POLICY, Method

KEY = b"k" * 32
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=5)


def fresh(message_id: str = "m1") -> Challenge:
    challenge = Challenge("flow-1", "email", "user-1", Method.EMAIL, Channel.EMAIL, "a@b.example", NOW)
    return codes.request_delivery(challenge, message_id, NOW)


def with_code(code: str, challenge: Challenge | None = None, at: datetime = NOW) -> Challenge:
    c = challenge or fresh()
    return codes.issue_code(c, codes.code_digest(KEY, c.partition, c.row, code), at, TTL)


def test_codes_are_eight_digits_by_default_and_never_fewer_than_six() -> None:
    assert codes.code_length(DEFAULT_POLICY.codes) == 8
    short = DEFAULT_POLICY.codes.model_copy(update={"length": 4})
    assert codes.code_length(short) == 6
    generated = {codes.new_code(8) for _ in range(200)}
    assert all(len(c) == 8 and c.isdigit() for c in generated) and len(generated) > 190


def test_a_challenge_stores_only_a_keyed_digest_bound_to_flow_and_method() -> None:
    challenge = with_code("12345678")
    assert "12345678" not in repr(challenge)
    assert challenge.code_digest == codes.code_digest(KEY, "flow-1", "email", "12345678")
    assert codes.code_digest(KEY, "flow-2", "email", "12345678") != challenge.code_digest
    assert codes.code_digest(KEY, "flow-1", "mobilePhone", "12345678") != challenge.code_digest
    assert codes.code_digest(b"x" * 32, "flow-1", "email", "12345678") != challenge.code_digest


def test_the_right_code_works_once() -> None:
    verdict, used = codes.submit(with_code("12345678"), "12345678", KEY, NOW)
    assert verdict is Verdict.ACCEPTED and used.used_at == NOW
    again, _ = codes.submit(used, "12345678", KEY, NOW)
    assert again is Verdict.USED


def test_a_code_of_another_flow_fails() -> None:
    other = Challenge("flow-2", "email", "user-1", Method.EMAIL, Channel.EMAIL, "a@b.example", NOW)
    mine = with_code("12345678")
    theirs = with_code("87654321", codes.request_delivery(other, "m", NOW))
    assert codes.submit(mine, "87654321", KEY, NOW)[0] is Verdict.WRONG
    assert codes.submit(theirs, "12345678", KEY, NOW)[0] is Verdict.WRONG


def test_a_code_expires_at_its_ttl() -> None:
    challenge = with_code("12345678")
    assert codes.submit(challenge, "12345678", KEY, NOW + TTL - timedelta(seconds=1))[0] is Verdict.ACCEPTED
    verdict, unchanged = codes.submit(challenge, "12345678", KEY, NOW + TTL)
    assert verdict is Verdict.EXPIRED and unchanged == challenge


def test_ttl_comes_from_the_policy_per_channel() -> None:
    policy_codes = DEFAULT_POLICY.codes.model_copy(update={"email_ttl_minutes": 15, "sms_ttl_minutes": 3})
    assert codes.code_ttl(policy_codes, Channel.EMAIL) == timedelta(minutes=15)
    assert codes.code_ttl(policy_codes, Channel.SMS) == timedelta(minutes=3)
    assert codes.code_ttl(policy_codes, Channel.VOICE) == timedelta(minutes=5)


def test_five_wrong_codes_lock_and_the_right_code_is_refused_after() -> None:
    challenge = with_code("12345678")
    verdicts = []
    for _ in range(5):
        verdict, challenge = codes.submit(challenge, "00000000", KEY, NOW)
        verdicts.append(verdict)
    assert verdicts == [Verdict.WRONG] * 4 + [Verdict.LOCKED]
    verdict, challenge = codes.submit(challenge, "12345678", KEY, NOW)
    assert verdict is Verdict.LOCKED and challenge.failed_attempts == 6  # every refused answer counts


def test_a_new_code_invalidates_the_old_one_and_keeps_the_failure_count() -> None:
    challenge = with_code("11111111")
    _, challenge = codes.submit(challenge, "00000000", KEY, NOW)
    challenge = codes.request_delivery(challenge, "m2", NOW)
    challenge = with_code("22222222", challenge)
    assert challenge.failed_attempts == 1 and challenge.send_count == 2
    assert codes.submit(challenge, "11111111", KEY, NOW)[0] is Verdict.WRONG
    assert codes.submit(challenge, "22222222", KEY, NOW)[0] is Verdict.ACCEPTED


def test_only_the_newest_requested_message_sends_and_only_once() -> None:
    challenge = fresh("m1")
    assert codes.should_send(challenge, "m1", NOW)
    sending = with_code("12345678", challenge)
    assert not codes.should_send(sending, "m1", NOW + timedelta(seconds=30))  # another worker is sending it
    assert codes.should_send(sending, "m1", NOW + codes.SENDING_LEASE)  # that worker went silent
    delivered = codes.mark_delivered(sending, NOW)
    assert delivered.delivery is Delivery.DELIVERED and not codes.should_send(delivered, "m1", NOW)
    superseded = codes.request_delivery(delivered, "m2", NOW)
    assert not codes.should_send(superseded, "m1", NOW) and codes.should_send(superseded, "m2", NOW)
    failed = codes.mark_send_failed(with_code("12345678", superseded), NOW)
    assert codes.should_send(failed, "m2", NOW) and failed.code_digest is None


@pytest.mark.parametrize("address", ["casey", "casey@", "@fabrikam.example", "casey@fabrikam", "ca sey@x.example",
                                     "a@" + "b" * 250 + ".example", "casey@-bad.example"])
def test_bad_email_addresses_are_refused(address: str) -> None:
    with pytest.raises(ContactError):
        codes.normalise_email(address)


def test_an_email_address_keeps_its_local_part_and_lowers_its_domain() -> None:
    assert codes.normalise_email("  Casey.Alt@Fabrikam.EXAMPLE ") == "Casey.Alt@fabrikam.example"


@pytest.mark.parametrize(("number", "region", "e164"), [
    ("+46 70 123 45 67", None, "+46701234567"),
    ("070-123 45 67", "SE", "+46701234567"),
    ("+1 (201) 555-0123", None, "+12015550123"),
    ("+44 7400 123456", None, "+447400123456"),
    ("0151 23456789", "de", "+4915123456789"),
])
def test_mobile_numbers_of_several_countries_become_e164(number: str, region: str | None, e164: str) -> None:
    assert codes.normalise_phone(number, Method.MOBILE_PHONE, region) == e164


@pytest.mark.parametrize(("number", "region"), [
    ("070-123 45 67", None),  # national form without a region
    ("+46 8 123 456 78", None),  # Stockholm landline: no SMS
    ("+46 70 123", None),  # too short
    ("+44 20 7946 0958", None),  # London landline
    ("+1 900 555 0123", None),  # premium rate
    ("not a number", "SE"),
    ("+46701234567", "SWE"),  # region is two letters
])
def test_numbers_that_cannot_receive_an_sms_are_refused(number: str, region: str | None) -> None:
    with pytest.raises(ContactError):
        codes.normalise_phone(number, Method.MOBILE_PHONE, region)


def test_an_office_phone_may_be_a_landline_but_not_premium_rate() -> None:
    assert codes.normalise_phone("+46 8 123 456 78", Method.OFFICE_PHONE) == "+46812345678"
    with pytest.raises(ContactError):
        codes.normalise_phone("+1 900 555 0123", Method.OFFICE_PHONE)


def test_contacts_are_masked() -> None:
    assert codes.mask_contact("casey.alt@fabrikam.example") == "c***@fabrikam.example"
    assert codes.mask_contact("+46701234567") == "+46*******67"
