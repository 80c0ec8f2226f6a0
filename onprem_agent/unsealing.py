"""The agent's side of the password seal: its private keys (current and, during a rotation, the previous) and
`open`, which refuses an expired job, an unknown key, and a box bound to another job, expiry or key."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from shared.adapters.job_sealing import SUITE, key_id
from shared.domain.onprem_jobs import OnPremJob, Part, sealing_info


class Unreadable(Exception):
    """The sealed password does not open here (unknown key, another job's box, tampered); never says more."""


class JobExpired(Exception):
    """The job's expiry has passed: it must not apply."""


def generate_key(path: Path) -> str:
    """Write a new private key (PEM, PKCS#8, mode 0600) to `path`; its public key in base64 for the service."""
    private = X25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    path.touch(mode=0o600, exist_ok=False)
    path.write_bytes(pem)
    return public_base64(private)


def public_base64(private: X25519PrivateKey) -> str:
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def load_key(path: Path) -> X25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, X25519PrivateKey):
        raise ValueError(f"{path} is not an X25519 private key")
    return key


class KeyRing:
    """The agent's private keys by key id; every one of them opens boxes sealed to its public key."""

    def __init__(self, keys: list[X25519PrivateKey]) -> None:
        if not keys:
            raise ValueError("the agent needs at least one private key")
        self._keys = {key_id(k.public_key()): k for k in keys}

    @classmethod
    def from_files(cls, paths: list[Path]) -> KeyRing:
        return cls([load_key(p) for p in paths])

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def open(self, job: OnPremJob, now: datetime, part: Part = "new") -> str:
        """The job's new password (or, `part` "old", a change's current one) in clear, for the one LDAP modify that
        needs it."""
        if now >= job.expires_at:
            raise JobExpired(job.job_id)
        sealed = job.password if part == "new" else job.old_password
        if sealed is None:
            raise Unreadable("the job carries no such password")
        key = self._keys.get(sealed.key_id)
        if key is None:
            raise Unreadable("sealed to a key this agent does not hold")
        try:
            box = base64.b64decode(sealed.box, validate=True)
            clear = SUITE.decrypt(box, key, info=sealing_info(job.job_id, job.expires_at, sealed.key_id, part))
        except (binascii.Error, ValueError, InvalidTag):
            raise Unreadable("the sealed password does not open for this job") from None
        return clear.decode("utf-8")
