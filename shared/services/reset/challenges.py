"""The flow's code challenges, real and decoy, one row per method (security.md A8, A9, C1-C3).

A contact that does not match what the user registered (or a user that does not exist, or registered nothing)
gets a decoy: the same row, the same answers, the same lock after 5 wrong codes, but no code is sent and none can
match. A blocked user's matched contact is kept on a row like a decoy's (no code sent, none can match), so the
code step can tell the person who typed it that they are blocked (G5). `is_real` tells a row whose contact is the
user's own from a decoy: only the former's failures count against the user (C7, G5).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import replace

from shared.domain import codes, reset_flow
from shared.domain.clock import Clock
from shared.domain.codes import CHANNEL_OF_METHOD, Challenge, Verdict
from shared.domain.notifications import new_message_id
from shared.domain.policy import Method, Policy
from shared.domain.reset_flow import ResetFlow
from shared.errors import FlowLocked
from shared.services.reset.answers import ProofRequested
from shared.services.reset.ports import ChallengeRows, ResetQueue


def is_real(challenge: Challenge) -> bool:
    """The contact on this row is one the user registered (a code was sent to it, or would be but for a block)."""
    return bool(challenge.contact)


def proof_requested(method: Method, policy: Policy) -> ProofRequested:
    ttl = codes.code_ttl(policy.codes, CHANNEL_OF_METHOD[method])
    return ProofRequested(method=method, codeLength=codes.code_length(policy.codes),
                          expiresInSeconds=int(ttl.total_seconds()))


class ResetChallenges:
    def __init__(self, rows: ChallengeRows, queue: ResetQueue, code_key: bytes, clock: Clock) -> None:
        self._rows = rows
        self._queue = queue
        self._code_key = code_key
        self._clock = clock

    async def get(self, flow: ResetFlow, method: Method) -> Challenge | None:
        return await self._rows.get(flow.flow_id, method.value)

    async def submit(self, flow: ResetFlow, method: Method, code: str) -> Verdict:
        """Judge a typed code; a challenge gone meanwhile counts as expired."""
        now = self._clock()
        outcome = await self._rows.change(flow.flow_id, method.value,
                                          lambda c: codes.submit(c, code, self._code_key, now))
        return outcome[0] if outcome else Verdict.EXPIRED

    async def put(self, flow: ResetFlow, method: Method, contact: str | None, policy: Policy,
                  send: bool = True) -> str | None:
        """A real challenge (`contact` given: its code is queued), a decoy (no contact: no code sent, none can
        match), or a blocked user's matched contact (`send` False: kept, but no code sent and none can match).

        A new request for the same method replaces the code but keeps the failure count (A8); a locked one stays
        locked (A9). Returns the digest of the live real code it replaced, if any (told "replaced" later)."""
        now = self._clock()
        channel = CHANNEL_OF_METHOD[method]
        ttl = codes.code_ttl(policy.codes, channel)
        user_id = flow.resolution.user_id if flow.resolution and flow.resolution.user_id else ""
        message_id = new_message_id()

        def renewed(current: Challenge | None) -> Challenge:
            base = current or Challenge(partition=flow.flow_id, row=method.value, user_id=user_id, method=method,
                                        channel=channel, contact="", created_at=now)
            if contact is not None and send:
                return codes.request_delivery(replace(base, contact=contact, user_id=user_id, code_digest=None,
                                                      expires_at=None), message_id, now)
            # A decoy: a digest no code produces, alive as long as a real code would be.
            return replace(base, contact=contact or "", code_digest=secrets.token_hex(32), sent_at=now, expires_at=now + ttl,
                           send_count=base.send_count + 1, message_id=None, delivery=codes.Delivery.DELIVERED,
                           delivery_at=now)

        existing = await self._rows.get(flow.flow_id, method.value)
        replaced: str | None = None
        if existing is None:
            stored = renewed(None)
            await self._rows.create(stored)
        else:
            def rule(current: Challenge) -> tuple[tuple[bool, str | None], Challenge]:
                if codes.is_final(current):
                    return (False, None), current
                return (True, current.code_digest if is_real(current) else None), renewed(current)

            outcome = await self._rows.change(flow.flow_id, method.value, rule)
            if outcome is None or not outcome[0][0]:
                raise FlowLocked(f"flow {flow.flow_id}: the {method} challenge is finished")
            stored, replaced = outcome[1], outcome[0][1]
        if contact is not None and send:
            await self._queue.verification_code(stored, message_id, store="reset")
        return replaced

    def was_replaced(self, flow: ResetFlow, method: Method, code: str) -> bool:
        """Whether `code` is the one the method's last new code replaced (A8: it no longer works)."""
        digest = reset_flow.replaced_digest(flow, method)
        typed = codes.code_digest(self._code_key, flow.flow_id, method.value, code)
        return digest is not None and hmac.compare_digest(typed, digest)
