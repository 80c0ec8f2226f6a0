"""Proof-of-work for the anonymous reset start (security.md D4): ALTCHA v1 challenges, each solvable once.

The `altcha` library makes and checks the challenges (SHA-256, HMAC-signed, with an expiry in the salt), so no
state is kept for a challenge handed out. A solved challenge is spent by creating a row keyed by its signature's
hash in "ProofOfWorkSpent": a second use of the same solution finds the row and is refused (replay). Spent rows are
useless once their challenge expired; `purge_expired` deletes them.

The HMAC key is derived (HKDF) from SSPR_CODE_HMAC_KEY with its own label, so no extra secret must be managed and
a challenge signature can never double as a code digest.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

import altcha
from azure.core.exceptions import AzureError, ResourceExistsError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.adapters.storage import StorageClients, purge_where
from shared.domain.clock import Clock
from shared.errors import ProofOfWorkFailed, StorageUnavailable

TABLE = "ProofOfWorkSpent"
CHALLENGE_TTL = timedelta(minutes=10)
# Numbers a browser tries on average: half of this. 100,000 SHA-256 rounds are ~0.1 s in a phone's browser and
# ~0.1 s in Python, and cost a bot that much per attempt, every attempt.
MAX_NUMBER = 100_000
MAX_PAYLOAD_LENGTH = 2048

def derived_key(code_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"sspr altcha v1").derive(code_key)


class ProofOfWork:
    def __init__(self, storage: StorageClients, code_key: bytes, clock: Clock, max_number: int = MAX_NUMBER) -> None:
        self._storage = storage
        self._key = derived_key(code_key).hex()
        self._clock = clock
        self._max_number = max_number

    def challenge(self) -> dict[str, Any]:
        """A fresh challenge, as the ALTCHA widget's `challengeurl` expects it."""
        made = altcha.create_challenge_v1(altcha.ChallengeOptionsV1(
            hmac_key=self._key, max_number=self._max_number, expires=self._clock() + CHALLENGE_TTL,
        ))
        return {"algorithm": made.algorithm, "challenge": made.challenge, "maxnumber": made.max_number,
                "salt": made.salt, "signature": made.signature}

    async def spend(self, payload: str) -> None:
        """Accept a solution once: `ProofOfWorkFailed` if it is malformed, wrong, expired or already used."""
        if not payload or len(payload) > MAX_PAYLOAD_LENGTH:
            raise ProofOfWorkFailed("missing or oversized proof-of-work")
        try:
            decoded = json.loads(base64.b64decode(payload, validate=True))
            valid, _ = altcha.verify_solution_v1(decoded, self._key, check_expires=True)
        except (ValueError, TypeError, KeyError, AttributeError):
            raise ProofOfWorkFailed("malformed proof-of-work") from None
        if not valid:
            raise ProofOfWorkFailed("proof-of-work does not verify (wrong or expired)")
        spent = hashlib.sha256(str(decoded["signature"]).encode()).hexdigest()
        table = await self._storage.table_ready(TABLE)
        try:
            await table.create_entity({"PartitionKey": spent, "RowKey": "spent", "spentAt": self._clock()})
        except ResourceExistsError:
            raise ProofOfWorkFailed("proof-of-work already used") from None
        except AzureError as exc:
            raise StorageUnavailable(f"proof-of-work write failed: {type(exc).__name__}") from None

    async def purge_expired(self, now: datetime, limit: int) -> int:
        """Delete spent rows whose challenge has expired (they can no longer be replayed anyway)."""
        table = await self._storage.table_ready(TABLE)
        return await purge_where(table, "spentAt lt @cutoff", {"cutoff": now - CHALLENGE_TTL}, limit,
                                 "proof-of-work")


def solve(challenge: dict[str, Any]) -> str:
    """The widget's work, for tests, benchmarks and scripted clients: the payload to post as `altcha`."""
    solution = altcha.solve_challenge_v1(challenge["challenge"], challenge["salt"], challenge["algorithm"],
                                         challenge["maxnumber"])
    if solution is None:
        raise ValueError("challenge has no solution below maxnumber")
    payload = {"algorithm": challenge["algorithm"], "challenge": challenge["challenge"], "number": solution.number,
               "salt": challenge["salt"], "signature": challenge["signature"]}
    return base64.b64encode(json.dumps(payload).encode()).decode()
