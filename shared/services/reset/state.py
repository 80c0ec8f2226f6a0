"""The flow's state as stored: opening a flow by its secret, and each change of its state under its ETag.

The rules of each change are shared/domain/reset_flow.py's; this keeps a flow's row and says when it is gone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TypeVar

from shared.domain import reset_flow
from shared.domain.clock import Clock
from shared.domain.ids import is_guid
from shared.domain.policy import Method
from shared.domain.reset_flow import FlowState, ResetFlow, Resolution
from shared.errors import Conflict, FlowLocked, FlowNotFound, MethodsMissing
from shared.services.reset.pace import StepDeadline
from shared.services.reset.ports import FlowRows

T = TypeVar("T")

# How long one request holds the password step: longer than the target may take (two Graph calls within their
# deadlines and the notice), short enough that a crashed holder only delays a retry within the flow's lifetime.
PASSWORD_LEASE = timedelta(minutes=3)


class ResetFlows:
    def __init__(self, rows: FlowRows, code_key: bytes, clock: Clock, deadline: StepDeadline | None = None) -> None:
        self._rows = rows
        self._code_key = code_key
        self._clock = clock
        self.deadline = deadline or StepDeadline()  # when every anonymous step answers (C6)

    def now(self) -> datetime:
        return self._clock()

    def new(self, username: str, client_ip: str | None) -> tuple[ResetFlow, str]:
        """A new flow for `username`, and the secret that opens it (kept only as an HMAC)."""
        flow_id = str(uuid.uuid4())
        secret = reset_flow.new_flow_secret()
        flow = ResetFlow(flow_id=flow_id, secret_digest=reset_flow.secret_digest(self._code_key, flow_id, secret),
                         username=reset_flow.normalise_username(username), created_at=self._clock(),
                         client_ip=client_ip)
        return flow, secret

    async def save_new(self, flow: ResetFlow) -> None:
        await self._rows.create(flow)

    async def open(self, flow_id: str, secret: str) -> ResetFlow:
        """The flow this secret opens: FlowNotFound for unknown, wrong-secret, expired or finished; FlowLocked."""
        if not is_guid(flow_id) or not secret or len(secret) > 128:
            raise FlowNotFound("malformed flow id or secret")
        flow = await self._rows.get(flow_id.lower())
        if flow is None or not reset_flow.secret_matches(flow, self._code_key, secret):
            raise FlowNotFound("unknown flow or wrong secret")
        if reset_flow.is_expired(flow, self._clock()) or flow.state is FlowState.COMPLETED:
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

    async def failed(self, flow: ResetFlow, method: Method) -> tuple[bool, ResetFlow] | None:
        """Count a wrong answer to `method`: (whether this answer locked the flow, the flow), None if gone."""
        def counted(f: ResetFlow) -> tuple[bool, ResetFlow]:
            updated = reset_flow.record_failure(f, method)
            return f.state is FlowState.ACTIVE and updated.state is FlowState.LOCKED, updated

        return await self._rows.change(flow.flow_id, counted)

    async def lock(self, flow: ResetFlow) -> bool:
        """Lock the flow; True when this call locked it (it was active)."""
        outcome = await self._rows.change(flow.flow_id, lambda f: (f.state is FlowState.ACTIVE, reset_flow.lock(f)))
        return outcome is not None and outcome[0]

    async def completed(self, flow: ResetFlow, now: datetime) -> bool:
        """Mark the flow done; False when its row vanished."""
        return await self._rows.change(flow.flow_id, lambda f: (None, reset_flow.completed(f, now))) is not None

    async def claim_password(self, flow: ResetFlow) -> ResetFlow:
        """Take the password step for this request alone, under the row's ETag, before any directory call: one
        success, one password set and one notice whatever the concurrency. Another request holding an unexpired
        claim is Conflict; a finished flow is FlowNotFound, a locked one FlowLocked (as `open` says them)."""
        now = self._clock()

        def claimed(f: ResetFlow) -> tuple[None, ResetFlow]:
            if f.state is FlowState.COMPLETED or reset_flow.is_expired(f, now):
                raise FlowNotFound("flow expired or finished")
            if f.state is FlowState.LOCKED:
                raise FlowLocked(f"flow {f.flow_id} locked")
            if f.password_claimed_at is not None and now < f.password_claimed_at + PASSWORD_LEASE:
                raise Conflict("the password step of this flow is already running")
            return None, replace(f, password_claimed_at=now)

        return await self._changed(flow, claimed)

    async def release_password(self, claimed: ResetFlow) -> None:
        """Give back this request's claim (the directory refused the password or failed) so the step can be
        retried at once; a claim taken since by another request is left alone."""
        def released(f: ResetFlow) -> tuple[None, ResetFlow]:
            mine = f.password_claimed_at is not None and f.password_claimed_at == claimed.password_claimed_at
            return None, replace(f, password_claimed_at=None) if mine and f.state is FlowState.ACTIVE else f

        await self._rows.change(claimed.flow_id, released)

    async def _changed(self, flow: ResetFlow, rule: Callable[[ResetFlow], tuple[None, ResetFlow]]) -> ResetFlow:
        outcome = await self._rows.change(flow.flow_id, rule)
        if outcome is None:
            raise FlowNotFound("flow vanished")
        return outcome[1]
