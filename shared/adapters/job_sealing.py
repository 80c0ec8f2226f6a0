"""Sealing a password to the on-premises agent's public key (security.md H2): HPKE, RFC 9180, from `cryptography`.

Suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, base mode. The HPKE `info` binds the job id, the
expiry and the key id (`shared.domain.onprem_jobs.sealing_info`), so a box copied into another job, or a job
whose expiry was pushed back, does not open. Only the agent holds the private key; the service knows the public
keys it may seal to. During a key rotation the agent holds both private keys and the service seals to the
newest public key it was given; the key id in the box tells the agent which key opens it.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from shared.domain.onprem_jobs import Part, SealedPassword, sealing_info

SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def key_id(public_key: X25519PublicKey) -> str:
    """The first 8 bytes (hex) of SHA-256 over the raw public key: names a key without revealing anything."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_from_base64(text: str) -> X25519PublicKey:
    """An agent's public key as the agent prints it (`python -m onprem_agent keygen`): base64 of 32 raw bytes."""
    return X25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))


class JobSealer:
    """Seals passwords to one agent public key (the newest the service was configured with)."""

    def __init__(self, public_key: X25519PublicKey) -> None:
        self._public_key = public_key
        self.key_id = key_id(public_key)

    @classmethod
    def from_base64(cls, text: str) -> JobSealer:
        return cls(public_key_from_base64(text))

    def seal(self, password: str, job_id: str, expires_at: datetime, part: Part = "new") -> SealedPassword:
        """`password` sealed for job `job_id` as its `part`: the new password, or (a change) the current one."""
        info = sealing_info(job_id, expires_at, self.key_id, part)
        box = SUITE.encrypt(password.encode("utf-8"), self._public_key, info=info)
        return SealedPassword(key_id=self.key_id, box=base64.b64encode(box).decode("ascii"))
