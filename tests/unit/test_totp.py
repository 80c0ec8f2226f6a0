"""Authenticator app codes (security.md A10): seeds, the +/-1 step window, replay refusal, sealed seeds."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest

from shared.adapters.secret_box import SecretBox
from shared.domain import totp
from shared.errors import SecretUnreadable

NOW = datetime(2026, 11, 25, 12, 0, 10, tzinfo=UTC)
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def code_at(moment: datetime, seed: str = SEED) -> str:
    return pyotp.TOTP(seed).at(moment)  # an authenticator app's view: SHA1, 6 digits, 30 s


def test_a_seed_holds_160_random_bits_in_base32() -> None:
    seeds = {totp.new_seed() for _ in range(50)}
    assert len(seeds) == 50
    for seed in seeds:
        assert len(seed) == 32 and len(base64.b32decode(seed)) * 8 == 160


def test_the_current_code_is_accepted_with_its_step() -> None:
    assert totp.accepted_step(SEED, code_at(NOW), NOW, None) == totp.step_at(NOW)


@pytest.mark.parametrize("offset", [-30, 30])
def test_a_code_one_step_early_or_late_is_accepted(offset: int) -> None:
    moment = NOW + timedelta(seconds=offset)
    assert totp.accepted_step(SEED, code_at(moment), NOW, None) == totp.step_at(moment)


@pytest.mark.parametrize("offset", [-60, 60, -300])
def test_a_code_two_or_more_steps_away_is_refused(offset: int) -> None:
    assert totp.accepted_step(SEED, code_at(NOW + timedelta(seconds=offset)), NOW, None) is None


def test_a_used_step_is_refused_again_and_so_are_earlier_ones() -> None:
    step = totp.accepted_step(SEED, code_at(NOW), NOW, None)
    assert step is not None
    assert totp.accepted_step(SEED, code_at(NOW), NOW, last_used_step=step) is None
    assert totp.accepted_step(SEED, code_at(NOW - timedelta(seconds=30)), NOW, last_used_step=step) is None
    later = NOW + timedelta(seconds=30)
    assert totp.accepted_step(SEED, code_at(later), later, last_used_step=step) == step + 1


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12345a", " 123456", "１２３４５６"])
def test_malformed_codes_are_refused(code: str) -> None:
    assert totp.accepted_step(SEED, code, NOW, None) is None


def test_another_seeds_code_is_refused() -> None:
    assert totp.accepted_step(SEED, code_at(NOW, totp.new_seed()), NOW, None) is None


def test_the_otpauth_uri_names_issuer_account_and_the_apps_parameters() -> None:
    uri = totp.provisioning_uri(SEED, "casey@contoso.example", "Contoso Ltd")
    parts = urlsplit(uri)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    assert unquote(parts.path) == "/Contoso Ltd:casey@contoso.example"
    assert query["secret"] == SEED and query["issuer"] == "Contoso Ltd"
    assert query.get("digits", "6") == "6" and query.get("period", "30") == "30"
    assert query.get("algorithm", "SHA1") == "SHA1"
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP) and parsed.now() == pyotp.TOTP(SEED).now()


# ---- sealing seeds (AES-256-GCM) -----------------------------------------------------------------------------

KEY = secrets.token_bytes(32)
ALICE = totp.seed_context("11111111-1111-1111-1111-111111111111")
BOB = totp.seed_context("22222222-2222-2222-2222-222222222222")


def test_a_sealed_seed_opens_with_its_key_and_context() -> None:
    box = SecretBox(KEY)
    sealed = box.seal(SEED, ALICE)
    assert SEED not in sealed and box.open(sealed, ALICE) == SEED


def test_sealing_twice_gives_different_ciphertexts_with_a_96_bit_nonce() -> None:
    box = SecretBox(KEY)
    first, second = box.seal(SEED, ALICE), box.seal(SEED, ALICE)
    assert first != second
    assert base64.b64decode(first)[:12] != base64.b64decode(second)[:12]
    assert len(base64.b64decode(first)) == 12 + len(SEED) + 16  # nonce | ciphertext | GCM tag


def test_a_seed_copied_to_another_user_does_not_open() -> None:
    box = SecretBox(KEY)
    with pytest.raises(SecretUnreadable):
        box.open(box.seal(SEED, ALICE), BOB)


def test_a_pending_seed_does_not_open_as_a_registered_one() -> None:
    box = SecretBox(KEY)
    sealed = box.seal(SEED, totp.pending_seed_context("u", "setup-1"))
    with pytest.raises(SecretUnreadable):
        box.open(sealed, totp.seed_context("u"))
    with pytest.raises(SecretUnreadable):
        box.open(sealed, totp.pending_seed_context("u", "setup-2"))


@pytest.mark.parametrize("position", [0, 12, -1])
def test_a_tampered_ciphertext_does_not_open(position: int) -> None:
    box = SecretBox(KEY)
    raw = bytearray(base64.b64decode(box.seal(SEED, ALICE)))
    raw[position] ^= 0x01
    with pytest.raises(SecretUnreadable):
        box.open(base64.b64encode(bytes(raw)).decode(), ALICE)


@pytest.mark.parametrize("sealed", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_garbage_does_not_open(sealed: str) -> None:
    with pytest.raises(SecretUnreadable):
        SecretBox(KEY).open(sealed, ALICE)


def test_another_key_does_not_open_a_seed() -> None:
    with pytest.raises(SecretUnreadable):
        SecretBox(secrets.token_bytes(48)).open(SecretBox(KEY).seal(SEED, ALICE), ALICE)


def test_a_key_shorter_than_32_bytes_is_refused() -> None:
    with pytest.raises(ValueError):
        SecretBox(secrets.token_bytes(31))
