"""Sealing small secrets (TOTP seeds) for storage with AES-256-GCM under the configured key (security.md A10).

The stored form is base64(nonce | ciphertext+tag) with a random 96-bit nonce per seal. Each seal names a
context (associated data, e.g. the user id and method) that must be given again to open it, so a ciphertext
copied into another user's row, or from a pending setup to a registered method, fails to open.

Key: the 32-byte AES key is always derived from the configured bytes with HKDF-SHA256 under a purpose label,
whatever their length (>= 32 bytes, shared/config.py), so this key is never the configured bytes themselves
and a second purpose can derive its own key from the same secret without weakening this one.
Key rotation is not built yet: a new key makes every sealed seed unreadable (users re-register their app).
"""

from __future__ import annotations

import base64
import binascii
from secrets import token_bytes

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.errors import SecretUnreadable

NONCE_BYTES = 12
KEY_PURPOSE = b"sspr totp seed encryption v1"


class SecretBox:
    def __init__(self, configured_key: bytes) -> None:
        if len(configured_key) < 32:
            raise ValueError("the encryption key needs at least 32 bytes")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_PURPOSE).derive(configured_key)
        self._aead = AESGCM(key)

    @classmethod
    def from_base64(cls, configured_key: str) -> SecretBox:
        return cls(base64.b64decode(configured_key, validate=True))

    def seal(self, plaintext: str, context: bytes) -> str:
        nonce = token_bytes(NONCE_BYTES)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, plaintext.encode("utf-8"), context)).decode("ascii")

    def open(self, sealed: str, context: bytes) -> str:
        try:
            raw = base64.b64decode(sealed, validate=True)
        except (binascii.Error, ValueError):
            raise SecretUnreadable("sealed value is not base64") from None
        if len(raw) <= NONCE_BYTES + 16:
            raise SecretUnreadable("sealed value is too short")
        try:
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context).decode("utf-8")
        except InvalidTag:
            raise SecretUnreadable("sealed value does not open with this key and context") from None
