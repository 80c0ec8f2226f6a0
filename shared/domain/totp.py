"""Authenticator app codes (TOTP, RFC 6238) as security.md A10 states them: seeds, time steps, replay refusal.

What authenticator apps support, and nothing else: SHA-1, 6 digits, a 30-second step. One step either side of
now is accepted (clock drift of the phone), and a step is accepted at most once per registered app: a code
whose step is not after the app's last used step is refused, so a code seen over a shoulder cannot be replayed
within its 90-second window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pyotp

STEP_SECONDS = 30
DIGITS = 6
STEPS_EITHER_SIDE = 1
SEED_BYTES = 20  # 160 bits, the RFC 4226 recommendation and security.md A10's floor
SETUP_LIFETIME = timedelta(minutes=10)  # a started registration must be confirmed within this
CODE = re.compile(r"^[0-9]{6}$")


def new_seed() -> str:
    """A fresh seed from the CSPRNG, as authenticator apps take it: base32 without padding (32 characters)."""
    return base64.b32encode(secrets.token_bytes(SEED_BYTES)).decode("ascii").rstrip("=")


def step_at(moment: datetime) -> int:
    """The RFC 6238 time step (T) that `moment` falls in."""
    return int(moment.timestamp()) // STEP_SECONDS


def code_for_step(seed: str, step: int) -> str:
    return _totp(seed).generate_otp(step)


def accepted_step(seed: str, code: str, now: datetime, last_used_step: int | None) -> int | None:
    """The step `code` belongs to, if it is one of now's steps (+/-1) and after the last step used; else None.

    Every candidate step is compared (constant-time), so the time taken does not say which step matched.
    """
    if not CODE.match(code):
        return None
    current = step_at(now)
    matched: int | None = None
    for step in range(current - STEPS_EITHER_SIDE, current + STEPS_EITHER_SIDE + 1):
        fresh = last_used_step is None or step > last_used_step
        if hmac.compare_digest(code_for_step(seed, step), code) and fresh and matched is None:
            matched = step
    return matched


def provisioning_uri(seed: str, account: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app scans: `issuer:account`, the seed and our parameters."""
    return _totp(seed).provisioning_uri(name=account, issuer_name=issuer)


def _totp(seed: str) -> pyotp.TOTP:
    return pyotp.TOTP(seed, digits=DIGITS, digest=hashlib.sha1, interval=STEP_SECONDS)


@dataclass(frozen=True)
class PendingSetup:
    """An authenticator app being registered: its seed (sealed, never plain) until the user confirms a code.

    One per user: starting again replaces it, so an abandoned setup leaves one row behind, not many.
    """

    user_id: str
    setup_id: str
    sealed_seed: str
    created_at: datetime
    expires_at: datetime
    etag: str | None = field(default=None, compare=False)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def seed_context(user_id: str) -> bytes:
    """What a registered seed's ciphertext is bound to: copied to another user's row, it does not open."""
    return f"sspr/totp-seed/{user_id}/authenticatorApp".encode()


def pending_seed_context(user_id: str, setup_id: str) -> bytes:
    """What a pending seed's ciphertext is bound to: its user and its one setup."""
    return f"sspr/totp-seed/{user_id}/pending/{setup_id}".encode()
