"""Reset flows in Table Storage ("ResetFlows"): one partition per flow (security.md F3, architecture.md).

Partition = the flow id; row "flow" is the flow's state, and one row per method challenge (row = the method) is
kept by a `ChallengeStore` on the same table, so everything a flow is lives in one partition. Every change of the
flow row is a read-decide-write under its ETag, redone on 412 (`change`).

Nothing secret is stored: the flow secret only as an HMAC, codes only as HMACs on the challenge rows, never a
password (B3). The username is what the user typed (normalised), needed to resolve the user once.

Purge (E4): a flow is useless once it has expired (15 minutes); `purge_expired` deletes whole partitions of flows
created before a cutoff.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from shared.adapters.challenge_store import ChallengeStore
from shared.adapters.etag_retry import retry_lost_races, write_if_unchanged
from shared.adapters.storage import StorageClients, create_row, purge_partitions, read_row
from shared.domain.onprem import OnPremAccount
from shared.domain.password_targets import ENTRA
from shared.domain.policy import Method
from shared.domain.reset_flow import (
    FLOW_ROW,
    ChangeKind,
    FlowState,
    PendingChange,
    Refusal,
    ResetFlow,
    Resolution,
    UserNames,
)

TABLE = "ResetFlows"

T = TypeVar("T")


def _resolution_json(r: Resolution | None) -> str | None:
    if r is None:
        return None
    return json.dumps({
        "userId": r.user_id, "isAdmin": r.is_admin, "registered": sorted(r.registered),
        "refusal": r.refusal.value if r.refusal else None, "methodsRequired": r.methods_required,
        "methodsAllowed": sorted(r.methods_allowed),
        "context": [r.names.given_name, r.names.surname, r.names.display_name], "target": r.target,
        "passkeyTwice": r.passkey_counts_twice,
        "onPremises": [r.on_premises.sid, r.on_premises.distinguished_name] if r.on_premises else None,
    })


def _resolution(text: str | None) -> Resolution | None:
    if not text:
        return None
    d = json.loads(text)
    return Resolution(
        user_id=d["userId"], is_admin=bool(d["isAdmin"]), registered=frozenset(Method(m) for m in d["registered"]),
        refusal=Refusal(d["refusal"]) if d["refusal"] else None, methods_required=int(d["methodsRequired"]),
        methods_allowed=frozenset(Method(m) for m in d["methodsAllowed"]),
        names=_names(d.get("context", [])),
        # Flows resolved before targets were kept were all for Entra (synced users are refused).
        target=d.get("target", ENTRA if d["userId"] else None),
        passkey_counts_twice=bool(d.get("passkeyTwice", False)),
        on_premises=OnPremAccount(*d["onPremises"]) if d.get("onPremises") else None,
    )


def _pending_json(p: PendingChange | None) -> str | None:
    if p is None:
        return None
    return json.dumps({"kind": p.kind.value, "attemptId": p.attempt_id, "expiresAt": p.expires_at.isoformat(),
                       "settlingAt": p.settling_at.isoformat() if p.settling_at else None})


def _pending(text: str | None) -> PendingChange | None:
    if not text:
        return None
    d = json.loads(text)
    return PendingChange(kind=ChangeKind(d["kind"]), attempt_id=d["attemptId"],
                         expires_at=datetime.fromisoformat(d["expiresAt"]),
                         settling_at=datetime.fromisoformat(d["settlingAt"]) if d.get("settlingAt") else None)


def _names(words: list[str]) -> UserNames:
    given, surname, display = ([str(w) for w in words] + ["", "", ""])[:3]
    return UserNames(given_name=given, surname=surname, display_name=display)


def _entity(f: ResetFlow) -> dict[str, Any]:
    return {
        "PartitionKey": f.flow_id,
        "RowKey": FLOW_ROW,
        "secretDigest": f.secret_digest,
        "username": f.username,
        "createdAt": f.created_at,
        "clientIp": f.client_ip,
        "resolution": _resolution_json(f.resolution),
        "verified": json.dumps([m.value for m in f.verified]),
        "failures": json.dumps({m.value: n for m, n in f.failures}),
        "questionIds": json.dumps(list(f.question_ids)),
        "replaced": json.dumps({m.value: d for m, d in f.replaced}),
        "state": f.state.value,
        "completedAt": f.completed_at,
        "passwordClaimedAt": f.password_claimed_at,
        "passkeyChallenge": f.passkey_challenge,
        "passkeyChallengeAt": f.passkey_challenge_at,
        "accessPassAt": f.access_pass_at,
        "pending": _pending_json(f.pending),
        "attempts": f.attempts,
        "helpdesk": f.helpdesk,
        "helpdeskPass": f.helpdesk_pass,
    }


def _flow(e: Any) -> ResetFlow:
    completed, claimed = e.get("completedAt"), e.get("passwordClaimedAt")
    return ResetFlow(
        flow_id=e["PartitionKey"],
        secret_digest=e["secretDigest"],
        username=e["username"],
        created_at=e["createdAt"],
        client_ip=e.get("clientIp"),
        resolution=_resolution(e.get("resolution")),
        verified=tuple(Method(m) for m in json.loads(e.get("verified") or "[]")),
        failures=tuple(sorted((Method(m), int(n)) for m, n in json.loads(e.get("failures") or "{}").items())),
        question_ids=tuple(json.loads(e.get("questionIds") or "[]")),
        replaced=tuple(sorted((Method(m), str(d)) for m, d in json.loads(e.get("replaced") or "{}").items())),
        state=FlowState(e.get("state") or FlowState.ACTIVE.value),
        completed_at=completed if isinstance(completed, datetime) else None,
        password_claimed_at=claimed if isinstance(claimed, datetime) else None,
        passkey_challenge=e.get("passkeyChallenge"),
        passkey_challenge_at=e.get("passkeyChallengeAt") if isinstance(e.get("passkeyChallengeAt"), datetime) else None,
        access_pass_at=e.get("accessPassAt") if isinstance(e.get("accessPassAt"), datetime) else None,
        pending=_pending(e.get("pending")),
        attempts=int(e.get("attempts") or 0),
        helpdesk=e.get("helpdesk"),
        helpdesk_pass=bool(e.get("helpdeskPass")),
        etag=e.metadata.get("etag"),
    )


class ResetFlowStore:
    def __init__(self, storage: StorageClients) -> None:
        self._storage = storage
        self.challenges = ChallengeStore(storage, TABLE)

    async def create(self, flow: ResetFlow) -> None:
        await create_row(await self._storage.table_ready(TABLE), _entity(flow), "reset flow")

    async def get(self, flow_id: str) -> ResetFlow | None:
        found = await read_row(await self._storage.table_ready(TABLE), flow_id, FLOW_ROW, "reset flow")
        return None if found is None else _flow(found)

    async def change(self, flow_id: str, rule: Callable[[ResetFlow], tuple[T, ResetFlow]]) -> tuple[T, ResetFlow] | None:
        """Apply `rule` to the stored flow under its ETag, re-reading on 412; None if the flow is gone.

        `rule` returns (result, new flow) and may raise to refuse (nothing is written then); an unchanged flow is
        not written.
        """
        table = await self._storage.table_ready(TABLE)

        async def attempt() -> tuple[T, ResetFlow] | None:
            current = await self.get(flow_id)
            if current is None:
                return None
            result, updated = rule(current)
            if updated == current:
                return result, current
            etag = await write_if_unchanged(table, _entity(updated), current.etag, "reset flow")
            return result, ResetFlow(**{**updated.__dict__, "etag": etag})

        return await retry_lost_races(attempt, f"reset flow {flow_id}")

    async def purge_expired(self, cutoff: datetime, limit: int) -> int:
        """Delete up to `limit` rows of flows created before `cutoff` (their flow row and challenges); idempotent."""
        table = await self._storage.table_ready(TABLE)
        return await purge_partitions(table, "RowKey eq @row and createdAt lt @cutoff",
                                      {"row": FLOW_ROW, "cutoff": cutoff}, limit, "reset flow")
