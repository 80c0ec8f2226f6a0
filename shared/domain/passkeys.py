"""Passkeys (WebAuthn discoverable credentials): what is kept per user and the rules of using one (security.md I1).

A user's passkeys live on their one `passkey` method row (`RegisteredMethod.secret`, JSON): the user handle the
authenticators keep (random, never the object id), and per passkey its credential id, its name, the attested
credential data (AAGUID, id and COSE public key: nothing secret), its sign counter and its backup flags.

Rules, each a function below:
- SIGN_COUNTER_MOVES_FORWARD: a counter that does not go up is a cloned authenticator, refused - unless both the
  stored and the new counter are 0 (authenticators that do not count, as synced passkeys do not).
- BACKUP_ELIGIBILITY_FIXED: the backup-eligible flag of a credential never changes, and "backed up" without
  "eligible" is malformed (WebAuthn Level 3, 6.1.3): either is refused.
- A user keeps at most MAX_PASSKEYS, each named (1-64 printable characters).
- COUNTS_AS_TWO: a passkey proven with user verification counts as two methods only when the policy says so, and
  for administrators only when it says so for them explicitly.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from shared.domain.policy import Method, Policy

MAX_PASSKEYS = 10
MAX_NAME_LENGTH = 64
USER_HANDLE_BYTES = 32


@dataclass(frozen=True)
class Passkey:
    id: str  # the credential id, base64url
    name: str
    credential: str  # the attested credential data (AAGUID, id, COSE public key), base64url
    sign_count: int
    backup_eligible: bool
    backed_up: bool
    created_at: datetime
    last_used_at: datetime | None = None


@dataclass(frozen=True)
class UserPasskeys:
    handle: str  # the WebAuthn user handle, base64url: random per user
    passkeys: tuple[Passkey, ...] = ()

    def find(self, credential_id: str) -> Passkey | None:
        return next((p for p in self.passkeys if p.id == credential_id), None)

    def added(self, passkey: Passkey) -> UserPasskeys:
        return replace(self, passkeys=(*self.passkeys, passkey))

    def without(self, credential_id: str) -> UserPasskeys:
        return replace(self, passkeys=tuple(p for p in self.passkeys if p.id != credential_id))

    def replaced(self, passkey: Passkey) -> UserPasskeys:
        return replace(self, passkeys=tuple(passkey if p.id == passkey.id else p for p in self.passkeys))


def encode(keys: UserPasskeys) -> str:
    return json.dumps({"handle": keys.handle, "passkeys": [
        {"id": p.id, "name": p.name, "credential": p.credential, "signCount": p.sign_count,
         "backupEligible": p.backup_eligible, "backedUp": p.backed_up, "createdAt": p.created_at.isoformat(),
         "lastUsedAt": p.last_used_at.isoformat() if p.last_used_at else None} for p in keys.passkeys]},
        separators=(",", ":"))


def decode(text: str | None) -> UserPasskeys | None:
    if not text:
        return None
    d = json.loads(text)
    return UserPasskeys(handle=d["handle"], passkeys=tuple(
        Passkey(id=p["id"], name=p["name"], credential=p["credential"], sign_count=int(p["signCount"]),
                backup_eligible=bool(p["backupEligible"]), backed_up=bool(p["backedUp"]),
                created_at=datetime.fromisoformat(p["createdAt"]),
                last_used_at=datetime.fromisoformat(p["lastUsedAt"]) if p.get("lastUsedAt") else None)
        for p in d["passkeys"]))


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a passkey, or None."""
    if not name.strip() or len(name) > MAX_NAME_LENGTH:
        return f"must be 1 to {MAX_NAME_LENGTH} characters (not only spaces)"
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        return "must be one line of printable characters"
    return None


def sign_counter_moves_forward(stored: int, new: int) -> bool:
    """SIGN_COUNTER_MOVES_FORWARD: False means a cloned authenticator (WebAuthn 7.2 step 21)."""
    return (stored == 0 and new == 0) or new > stored


def backup_flags_valid(passkey: Passkey, eligible: bool, backed_up: bool) -> bool:
    """BACKUP_ELIGIBILITY_FIXED, and no "backed up" without "eligible"."""
    return eligible == passkey.backup_eligible and (eligible or not backed_up)


def after_use(passkey: Passkey, sign_count: int, backed_up: bool, now: datetime) -> Passkey:
    return replace(passkey, sign_count=sign_count, backed_up=backed_up, last_used_at=now)


def counts_as_two(policy: Policy, is_admin: bool) -> bool:
    """COUNTS_AS_TWO: the policy's word, for administrators only when it names them too."""
    if is_admin:
        return policy.passkeys.counts_as_two_for_administrators
    return policy.passkeys.counts_as_two_methods


def proven_count(methods: Iterable[Method], passkey_counts_twice: bool) -> int:
    """How many methods `methods` are worth: a passkey is two when it counts as two."""
    distinct = set(methods)
    return len(distinct) + (1 if passkey_counts_twice and Method.PASSKEY in distinct else 0)
