"""A software WebAuthn authenticator (never deployed): what a browser and its authenticator send, built by hand.

The browser tests use Chromium's own virtual authenticator; the API tests and the reset benchmark use this one,
which can also do what no honest authenticator does - skip user verification, sign for another RP id or origin,
send its counter backwards - so each check of the server can be seen refusing alone. Attestation is "none".
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.utils import websafe_decode, websafe_encode
from fido2.webauthn import AttestationObject, AttestedCredentialData, AuthenticatorData

FLAG = AuthenticatorData.FLAG


@dataclass
class SoftPasskey:
    """One discoverable credential; `counter` moves up on each use unless a test sets it."""

    rp_id: str
    user_handle: str = ""
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    counter: int = 0
    backup_eligible: bool = False
    backed_up: bool = False

    @property
    def id(self) -> str:
        return websafe_encode(self.credential_id)

    def _flags(self, verified: bool) -> FLAG:
        flags = FLAG.UP | (FLAG.UV if verified else FLAG(0))
        flags |= FLAG.BE if self.backup_eligible else FLAG(0)
        return flags | (FLAG.BS if self.backed_up else FLAG(0))

    def create(self, public_key: dict[str, Any], origin: str, verified: bool = True) -> dict[str, Any]:
        """navigator.credentials.create's answer to `public_key` (the server's options), as the pages send it."""
        self.user_handle = public_key["user"]["id"]
        data = AttestedCredentialData.create(b"\0" * 16, self.credential_id,
                                             ES256.from_cryptography_key(self.key.public_key()))
        auth = AuthenticatorData.create(hashlib.sha256(self.rp_id.encode()).digest(),
                                        self._flags(verified) | FLAG.AT, self.counter, bytes(data))
        client = _client_data("webauthn.create", public_key["challenge"], origin)
        return {"id": self.id, "rawId": self.id, "type": "public-key", "clientExtensionResults": {},
                "response": {"clientDataJSON": websafe_encode(client),
                             "attestationObject": websafe_encode(bytes(AttestationObject.create("none", auth, {})))}}

    def get(self, public_key: dict[str, Any], origin: str, verified: bool = True,
            rp_id: str | None = None) -> dict[str, Any]:
        """navigator.credentials.get's answer to `public_key`, signed over `rp_id` (ours unless a test says)."""
        self.counter += 1
        auth = bytes(AuthenticatorData.create(hashlib.sha256((rp_id or self.rp_id).encode()).digest(),
                                              self._flags(verified), self.counter))
        client = _client_data("webauthn.get", public_key["challenge"], origin)
        signature = self.key.sign(auth + hashlib.sha256(client).digest(), ec.ECDSA(hashes.SHA256()))
        return {"id": self.id, "rawId": self.id, "type": "public-key", "clientExtensionResults": {},
                "response": {"clientDataJSON": websafe_encode(client), "authenticatorData": websafe_encode(auth),
                             "signature": websafe_encode(signature), "userHandle": self.user_handle or None}}


def _client_data(kind: str, challenge: str, origin: str) -> bytes:
    websafe_decode(challenge)  # the server's challenge, base64url: refuse anything else early
    return json.dumps({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False},
                      separators=(",", ":")).encode()
