"""The flow's state as stored: opening a flow by its secret, and each change of its state under its ETag.

The rules of each change are shared/domain/reset_flow.py's; this keeps a flow's row and says when it is gone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeVar

from shared.domain import onprem, reset_flow
from shared.domain.access_pass import after_password_open
from shared.domain.clock import Clock
from shared.domain.ids import is_guid
from shared.domain.policy import Method
from shared.domain.reset_flow import ChangeKind, FlowState, PendingChange, ResetFlow, Resolution
from shared.errors import Conflict, FlowLocked, FlowNotFound, MethodsMissing
from shared.services.reset.pace import StepDeadline
from shared.services.reset.ports import FlowRows, Rows

T = TypeVar("T")
V = TypeVar("V")

# How long one request holds the password step: longer than the target may take (two Graph calls within their
# deadlines and the notice), short enough that a crashed holder only delays a retry within the flow's lifetime.
PASSWORD_LEASE = timedelta(minutes=3)
# How long one request holds the settling of a change whose verdict is in (revoke, notice, complete).
SETTLE_LEASE = timedelta(minutes=1)


async def open_by_secret(rows: Rows[V], row_id: str, secret: str, matches: Callable[[V], bool], noun: str) -> V:
    """The row this secret opens (a reset flow, a pending change); FlowNotFound, the one answer, for a malformed id
    or secret, an unknown row and a wrong secret (`matches`)."""
    if not is_guid(row_id) or not secret or len(secret) > 128:
        raise FlowNotFound(f"malformed {noun} id or secret")
    found = await rows.get(row_id.lower())
    if found is None or not matches(found):
        raise FlowNotFound(f"unknown {noun} or wrong secret")
    return found


@dataclass(frozen=True)
class ResetFlows:
    rows: FlowRows
    code_key: bytes
    clock: Clock
    deadline: StepDeadline = field(default_factory=StepDeadline)  # when every anonymous step answers (C6)

    def now(self) -> datetime:
        return self.clock()

    def new(self, username: str, client_ip: str | None) -> tuple[ResetFlow, str]:
        """A new flow for `username`, and the secret that opens it (kept only as an HMAC)."""
        flow_id = str(uuid.uuid4())
        secret = reset_flow.new_flow_secret()
        flow = ResetFlow(flow_id=flow_id, secret_digest=reset_flow.secret_digest(self.code_key, flow_id, secret),
                         username=reset_flow.normalise_username(username), created_at=self.clock(),
                         client_ip=client_ip)
        return flow, secret

    async def save_new(self, flow: ResetFlow) -> None:
        await self.rows.create(flow)

    async def open(self, flow_id: str, secret: str) -> ResetFlow:
        """The flow this secret opens: FlowNotFound for unknown, wrong-secret, expired or finished; FlowLocked."""
        flow = await open_by_secret(self.rows, flow_id, secret,
                                    lambda f: reset_flow.secret_matches(f, self.code_key, secret), "flow")
        if reset_flow.is_expired(flow, self.clock()) or flow.state is FlowState.COMPLETED:
            raise FlowNotFound("flow expired or finished")
        if flow.state is FlowState.LOCKED:
            raise FlowLocked(f"flow {flow.flow_id} locked")
        return flow

    async def open_ready(self, flow_id: str, secret: str) -> ResetFlow:
        """A13: the password step of a flow whose required methods are not all verified is refused, no Graph."""
        flow = await self.open(flow_id, secret)
        if not reset_flow.ready_for_password(flow):
            raise MethodsMissing(f"flow {flow.flow_id} has not verified its required methods")
        return flow

    async def open_verified(self, flow_id: str, secret: str) -> ResetFlow:
        """A flow whose required methods are verified, finished (its password set) or not: the Temporary Access
        Pass may come right after the password. Unknown, wrong-secret and expired: FlowNotFound; FlowLocked."""
        if not is_guid(flow_id) or not secret or len(secret) > 128:
            raise FlowNotFound("malformed flow id or secret")
        flow = await self.rows.get(flow_id.lower())
        if flow is None or not reset_flow.secret_matches(flow, self.code_key, secret) \
                or reset_flow.is_expired(flow, self.clock()):
            raise FlowNotFound("unknown, expired or wrong secret")
        if flow.state is FlowState.LOCKED:
            raise FlowLocked(f"flow {flow.flow_id} locked")
        if flow.state is FlowState.ACTIVE and not reset_flow.ready_for_password(flow):
            raise MethodsMissing(f"flow {flow.flow_id} has not verified its required methods")
        return flow

    async def claim_access_pass(self, flow: ResetFlow) -> ResetFlow:
        """PASS_ONCE_PER_FLOW: this request alone makes the flow's pass. Instead of a password (an active flow)
        the claim holds the password step too; after it (a completed flow) only within AFTER_PASSWORD_WINDOW."""
        now = self.clock()

        def claimed(f: ResetFlow) -> tuple[None, ResetFlow]:
            if f.access_pass_at is not None:
                raise Conflict("this flow's Temporary Access Pass was made already")
            if f.state is FlowState.COMPLETED:
                if not after_password_open(f.completed_at, now):
                    raise FlowNotFound("too long after the password was set")
                return None, replace(f, access_pass_at=now)
            if f.password_claimed_at is not None and now < f.password_claimed_at + PASSWORD_LEASE:
                raise Conflict("the password step of this flow is running")
            return None, replace(f, access_pass_at=now, password_claimed_at=now)

        return await self._changed(flow, claimed)

    async def release_access_pass(self, claimed: ResetFlow) -> None:
        """Give back a claim whose pass Entra did not make, so the person can try again."""
        def released(f: ResetFlow) -> tuple[None, ResetFlow]:
            if f.access_pass_at != claimed.access_pass_at:
                return None, f
            held = f.password_claimed_at == claimed.password_claimed_at and f.state is FlowState.ACTIVE
            return None, replace(f, access_pass_at=None, password_claimed_at=None if held else f.password_claimed_at)

        await self.rows.change(claimed.flow_id, released)

    async def resolved(self, flow: ResetFlow, resolution: Resolution) -> ResetFlow:
        """The first resolution wins."""
        return await self._changed(flow, lambda f: (None, reset_flow.resolved(f, resolution)))

    async def code_replaced(self, flow: ResetFlow, method: Method, digest: str) -> ResetFlow:
        return await self._changed(flow, lambda f: (None, reset_flow.record_replaced(f, method, digest)))

    async def verified(self, flow: ResetFlow, method: Method) -> ResetFlow:
        return await self._changed(flow, lambda f: (None, reset_flow.record_verified(f, method)))

    async def questions_chosen(self, flow: ResetFlow, chosen: tuple[str, ...]) -> ResetFlow:
        """The questions asked in this flow, chosen once (a second choice keeps the first)."""
        return await self._changed(flow, lambda f: (None, f if f.question_ids else replace(f, question_ids=chosen)))

    async def passkey_challenge(self, flow: ResetFlow, challenge: str) -> ResetFlow:
        now = self.clock()
        return await self._changed(flow, lambda f: (None, reset_flow.passkey_challenge_issued(f, challenge, now)))

    async def take_passkey_challenge(self, flow: ResetFlow) -> str | None:
        """The flow's open passkey challenge, used up under the row's ETag: of parallel takers one gets it."""
        now = self.clock()
        outcome = await self.rows.change(flow.flow_id, lambda f: reset_flow.passkey_challenge_taken(f, now))
        return outcome[0] if outcome else None

    async def failed(self, flow: ResetFlow, method: Method) -> tuple[bool, ResetFlow] | None:
        """Count a wrong answer to `method`: (whether this answer locked the flow, the flow), None if gone."""
        def counted(f: ResetFlow) -> tuple[bool, ResetFlow]:
            updated = reset_flow.record_failure(f, method)
            return f.state is FlowState.ACTIVE and updated.state is FlowState.LOCKED, updated

        return await self.rows.change(flow.flow_id, counted)

    async def lock(self, flow: ResetFlow) -> bool:
        """Lock the flow; True when this call locked it (it was active)."""
        outcome = await self.rows.change(flow.flow_id, lambda f: (f.state is FlowState.ACTIVE, reset_flow.lock(f)))
        return outcome is not None and outcome[0]

    async def completed(self, flow: ResetFlow, now: datetime) -> bool:
        """Mark the flow done; False when its row vanished."""
        return await self.rows.change(flow.flow_id, lambda f: (None, reset_flow.completed(f, now))) is not None

    async def claim_change(self, flow: ResetFlow, kind: ChangeKind, attempt_id: Callable[[int], str],
                           lifetime: timedelta) -> ResetFlow:
        """Take the password (or unlock) step for this request alone, under the row's ETag, before any directory
        call: one success, one change and one notice whatever the concurrency. The try gets a new id
        (`attempt_id(n)` for the flow's n-th try) and is kept as the flow's pending change until its verdict is in.
        Another request's live claim, or a change still awaiting its verdict, is Conflict; a finished flow is
        FlowNotFound, a locked one FlowLocked (as `open` says them)."""
        now = self.clock()

        def claimed(f: ResetFlow) -> tuple[None, ResetFlow]:
            if f.state is FlowState.COMPLETED or reset_flow.is_expired(f, now):
                raise FlowNotFound("flow expired or finished")
            if f.state is FlowState.LOCKED:
                raise FlowLocked(f"flow {f.flow_id} locked")
            if f.password_claimed_at is not None and now < f.password_claimed_at + PASSWORD_LEASE:
                raise Conflict("the password step of this flow is already running")
            if f.pending is not None and not onprem.gave_up(f.pending.expires_at, now):
                raise Conflict("the last change of this flow is still waiting for its directory", pending=True)
            attempts = f.attempts + 1
            pending = PendingChange(kind, attempt_id(attempts), now + lifetime)
            return None, replace(f, password_claimed_at=now, attempts=attempts, pending=pending)

        return await self._changed(flow, claimed)

    async def release_change(self, claimed: ResetFlow) -> None:
        """Give back this request's claim and its pending change (the directory refused or failed: nothing
        changed) so the step can be retried at once; a claim taken since by another request is left alone."""
        attempt = claimed.pending.attempt_id if claimed.pending else None

        def released(f: ResetFlow) -> tuple[None, ResetFlow]:
            mine = f.pending is not None and f.pending.attempt_id == attempt
            return None, replace(f, password_claimed_at=None, pending=None) if mine and f.state is FlowState.ACTIVE \
                else f

        await self.rows.change(claimed.flow_id, released)

    async def settling(self, flow_id: str, attempt_id: str) -> ResetFlow | None:
        """Take the pending change `attempt_id` to settle it (its verdict is in): the flow, or None when another
        request settles it now, it was settled already, or the flow has another change pending. A settler that
        died lets the next one take over after SETTLE_LEASE."""
        now = self.clock()

        def taken(f: ResetFlow) -> tuple[bool, ResetFlow]:
            p = f.pending
            if f.state is not FlowState.ACTIVE or p is None or p.attempt_id != attempt_id:
                return False, f
            if p.settling_at is not None and now < p.settling_at + SETTLE_LEASE:
                return False, f
            return True, replace(f, pending=replace(p, settling_at=now))

        outcome = await self.rows.change(flow_id, taken)
        return outcome[1] if outcome is not None and outcome[0] else None

    async def read(self, flow_id: str) -> ResetFlow | None:
        """The flow by id alone, for the service's own use (a verdict from the on-premises agent), never a caller's."""
        return await self.rows.get(flow_id.lower()) if is_guid(flow_id) else None

    async def open_change(self, flow_id: str, secret: str) -> ResetFlow:
        """The flow whose change the person waits for: like `open`, but a flow that expired or finished while its
        change was pending still opens (its verdict is what the person waits to read)."""
        if not is_guid(flow_id) or not secret or len(secret) > 128:
            raise FlowNotFound("malformed flow id or secret")
        flow = await self.rows.get(flow_id.lower())
        if flow is None or not reset_flow.secret_matches(flow, self.code_key, secret) or flow.pending is None:
            raise FlowNotFound("unknown flow, wrong secret, or no change")
        return flow

    async def _changed(self, flow: ResetFlow, rule: Callable[[ResetFlow], tuple[None, ResetFlow]]) -> ResetFlow:
        outcome = await self.rows.change(flow.flow_id, rule)
        if outcome is None:
            raise FlowNotFound("flow vanished")
        return outcome[1]
