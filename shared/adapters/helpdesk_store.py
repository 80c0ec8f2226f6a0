"""Helpdesk verifications in Table Storage ("Helpdesk") and the approvals they wait for ("HelpdeskApprovals").

"Helpdesk": one partition per verification (partition = its id): row "verification" (the agent, the caller, the
state), one code challenge per method (row = the method, kept by a `ChallengeStore` on the same table, like a reset
flow's), and row "link" (the one-time reset link: its secret only as an HMAC, security.md A2). Every change is a
read-decide-write under the row's ETag, redone on 412.

"HelpdeskApprovals": partition "pending", one row per request. Approvals are rare (only actions on privileged
callers), read together by every agent's "waiting for approval" list, and purged once their verification is over,
so one small partition serves them.

Nothing secret is stored: codes and the link's secret only as HMACs, never a password, never what a caller said.
Purge (E4): `purge_expired` deletes whole verification partitions and approvals older than a cutoff.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from azure.data.tables import TableEntity

from shared.adapters.challenge_store import ChallengeStore
from shared.adapters.etag_retry import retry_lost_races, write_if_unchanged
from shared.adapters.storage import StorageClients, purge_partitions, purge_where, read_row
from shared.adapters.storage_errors import storage_errors
from shared.domain.helpdesk import (
    VERIFICATION_ROW,
    ApprovalRequest,
    ApprovalState,
    Caller,
    HelpdeskAction,
    Verification,
    VerificationState,
)
from shared.domain.helpdesk_links import LINK_ROW, LinkPurpose, ResetLink
from shared.domain.onprem import OnPremAccount
from shared.domain.policy import Method

TABLE = "Helpdesk"
APPROVALS_TABLE = "HelpdeskApprovals"
APPROVALS_PARTITION = "pending"

T = TypeVar("T")
R = TypeVar("R")


def _when(e: Any, name: str) -> datetime | None:
    value = e.get(name)
    return value if isinstance(value, datetime) else None


def _verification_entity(v: Verification) -> dict[str, Any]:
    c = v.caller
    return {
        "PartitionKey": v.verification_id, "RowKey": VERIFICATION_ROW, "agentId": v.agent_id, "agentName": v.agent_name,
        "userId": c.user_id, "userPrincipalName": c.user_principal_name, "displayName": c.display_name,
        "privileged": c.privileged, "accountEnabled": c.account_enabled, "synced": c.synced, "target": c.target,
        "onPremises": json.dumps([c.on_premises.sid, c.on_premises.distinguished_name]) if c.on_premises else None,
        "createdAt": v.created_at, "state": v.state.value, "verifiedMethod": v.method.value if v.method else None,
        "verifiedAt": v.verified_at, "failures": json.dumps({m.value: n for m, n in v.failures}),
        "done": json.dumps([a.value for a in v.done]), "linksSent": v.links_sent, "attempts": v.attempts,
        "unlockPendingUntil": v.unlock_pending_until, "passkeyAskedAt": v.passkey_asked_at,
        "passkeyChallenge": v.passkey_challenge, "passkeyChallengeAt": v.passkey_challenge_at,
    }


def _verification(e: Any) -> Verification:
    on_premises = json.loads(e["onPremises"]) if e.get("onPremises") else None
    caller = Caller(user_id=e["userId"], user_principal_name=e.get("userPrincipalName") or "",
                    display_name=e.get("displayName") or "", privileged=bool(e.get("privileged")),
                    account_enabled=e.get("accountEnabled") is not False, synced=bool(e.get("synced")),
                    target=e.get("target"), on_premises=OnPremAccount(*on_premises) if on_premises else None)
    return Verification(
        verification_id=e["PartitionKey"], agent_id=e["agentId"], agent_name=e.get("agentName") or "", caller=caller,
        created_at=e["createdAt"], state=VerificationState(e.get("state") or "started"),
        method=Method(e["verifiedMethod"]) if e.get("verifiedMethod") else None, verified_at=_when(e, "verifiedAt"),
        failures=tuple(sorted((Method(m), int(n)) for m, n in json.loads(e.get("failures") or "{}").items())),
        done=tuple(HelpdeskAction(a) for a in json.loads(e.get("done") or "[]")),
        links_sent=int(e.get("linksSent") or 0), attempts=int(e.get("attempts") or 0),
        unlock_pending_until=_when(e, "unlockPendingUntil"), passkey_asked_at=_when(e, "passkeyAskedAt"),
        passkey_challenge=e.get("passkeyChallenge"), passkey_challenge_at=_when(e, "passkeyChallengeAt"),
        etag=e.metadata.get("etag"),
    )


def _link_entity(link: ResetLink) -> dict[str, Any]:
    return {
        "PartitionKey": link.verification_id, "RowKey": LINK_ROW, "userId": link.user_id,
        "purpose": link.purpose.value, "contact": link.contact, "agentName": link.agent_name,
        "createdAt": link.created_at, "messageId": link.message_id, "secretDigest": link.secret_digest,
        "sentAt": link.sent_at, "expiresAt": link.expires_at, "usedAt": link.used_at,
    }


def _link(e: Any) -> ResetLink:
    return ResetLink(
        verification_id=e["PartitionKey"], user_id=e["userId"], purpose=LinkPurpose(e["purpose"]),
        contact=e["contact"], agent_name=e.get("agentName") or "", created_at=e["createdAt"],
        message_id=e["messageId"], secret_digest=e.get("secretDigest"), sent_at=_when(e, "sentAt"),
        expires_at=_when(e, "expiresAt"), used_at=_when(e, "usedAt"), etag=e.metadata.get("etag"),
    )


def _approval_entity(r: ApprovalRequest) -> dict[str, Any]:
    return {
        "PartitionKey": APPROVALS_PARTITION, "RowKey": r.request_id, "verificationId": r.verification_id,
        "action": r.action.value, "userId": r.user_id, "userPrincipalName": r.user_principal_name,
        "requestedBy": r.requested_by, "requestedByName": r.requested_by_name, "requestedAt": r.requested_at,
        "expiresAt": r.expires_at, "option": r.option, "state": r.state.value, "decidedBy": r.decided_by,
        "decidedByName": r.decided_by_name, "decidedAt": r.decided_at,
    }


def _approval(e: Any) -> ApprovalRequest:
    return ApprovalRequest(
        request_id=e["RowKey"], verification_id=e["verificationId"], action=HelpdeskAction(e["action"]),
        user_id=e["userId"], user_principal_name=e.get("userPrincipalName") or "", requested_by=e["requestedBy"],
        requested_by_name=e.get("requestedByName") or "", requested_at=e["requestedAt"], expires_at=e["expiresAt"],
        option=e.get("option"), state=ApprovalState(e["state"]), decided_by=e.get("decidedBy"),
        decided_by_name=e.get("decidedByName"), decided_at=_when(e, "decidedAt"), etag=e.metadata.get("etag"),
    )


class HelpdeskStore:
    def __init__(self, storage: StorageClients) -> None:
        self._storage = storage
        self.challenges = ChallengeStore(storage, TABLE)

    # ---- one row, read and changed under its ETag ----------------------------------------------------------

    async def _get(self, table_name: str, pk: str, rk: str, read: Callable[[Any], R]) -> R | None:
        found = await read_row(await self._storage.table_ready(table_name), pk, rk, table_name)
        return None if found is None else read(found)

    async def _change(self, table_name: str, pk: str, rk: str, read: Callable[[Any], R],
                      write: Callable[[Any], dict[str, Any]], rule: Callable[[Any], tuple[Any, Any]],
                      ) -> tuple[Any, R | None]:
        """`rule(current or None)` -> (result, new row or None for "write nothing"), under the ETag read."""
        table = await self._storage.table_ready(table_name)

        async def attempt() -> tuple[Any, R | None]:
            current = await self._get(table_name, pk, rk, read)
            result, updated = rule(current)
            if updated is None or updated == current:
                return result, current
            etag = await write_if_unchanged(table, write(updated), getattr(current, "etag", None), table_name)
            return result, read(_with_etag(write(updated), etag))

        return await retry_lost_races(attempt, f"{table_name} {pk}/{rk}")

    async def _change_existing(self, table_name: str, pk: str, rk: str, read: Callable[[Any], R],
                               write: Callable[[Any], dict[str, Any]], rule: Callable[[R], tuple[T, R]],
                               ) -> tuple[T, R] | None:
        """`_change` of a row that must be there: None, and nothing written, when it is not."""
        def on(current: R | None) -> tuple[Any, R | None]:
            return (None, None) if current is None else rule(current)

        result, stored = await self._change(table_name, pk, rk, read, write, on)
        return None if stored is None else (result, stored)

    async def _create(self, table_name: str, entity: dict[str, Any], what: str) -> None:
        table = await self._storage.table_ready(table_name)
        with storage_errors(what):
            await table.create_entity(entity)

    # ---- verifications ---------------------------------------------------------------------------------------

    async def create(self, verification: Verification) -> None:
        await self._create(TABLE, _verification_entity(verification), "helpdesk verification write")

    async def get(self, verification_id: str) -> Verification | None:
        return await self._get(TABLE, verification_id, VERIFICATION_ROW, _verification)

    async def change(self, verification_id: str,
                     rule: Callable[[Verification], tuple[T, Verification]]) -> tuple[T, Verification] | None:
        return await self._change_existing(TABLE, verification_id, VERIFICATION_ROW, _verification,
                                           _verification_entity, rule)

    # ---- the one-time link -------------------------------------------------------------------------------------

    async def link(self, verification_id: str) -> ResetLink | None:
        return await self._get(TABLE, verification_id, LINK_ROW, _link)

    async def change_link(self, verification_id: str,
                          rule: Callable[[ResetLink | None], tuple[T, ResetLink | None]]) -> tuple[T, ResetLink | None]:
        return await self._change(TABLE, verification_id, LINK_ROW, _link, _link_entity, rule)

    # ---- approvals ---------------------------------------------------------------------------------------------

    async def add_approval(self, request: ApprovalRequest) -> None:
        await self._create(APPROVALS_TABLE, _approval_entity(request), "helpdesk approval write")

    async def approval(self, request_id: str) -> ApprovalRequest | None:
        return await self._get(APPROVALS_TABLE, APPROVALS_PARTITION, request_id, _approval)

    async def change_approval(self, request_id: str, rule: Callable[[ApprovalRequest], tuple[T, ApprovalRequest]],
                              ) -> tuple[T, ApprovalRequest] | None:
        return await self._change_existing(APPROVALS_TABLE, APPROVALS_PARTITION, request_id, _approval,
                                           _approval_entity, rule)

    async def pending_approvals(self, now: datetime, limit: int = 100) -> list[ApprovalRequest]:
        table = await self._storage.table_ready(APPROVALS_TABLE)
        found: list[ApprovalRequest] = []
        with storage_errors("helpdesk approvals read"):
            rows = table.query_entities("PartitionKey eq @pk and state eq @state and expiresAt gt @now",
                                        parameters={"pk": APPROVALS_PARTITION, "state": ApprovalState.PENDING.value,
                                                    "now": now}, results_per_page=limit)
            async for row in rows:
                found.append(_approval(row))
                if len(found) >= limit:
                    break
        return sorted(found, key=lambda r: r.requested_at)

    # ---- purge (E4) --------------------------------------------------------------------------------------------

    async def purge_expired(self, cutoff: datetime, limit: int) -> int:
        """Delete up to `limit` rows of verifications created, and approvals expired, before `cutoff`."""
        table = await self._storage.table_ready(TABLE)
        deleted = await purge_partitions(table, "RowKey eq @row and createdAt lt @cutoff",
                                         {"row": VERIFICATION_ROW, "cutoff": cutoff}, limit, "helpdesk")
        approvals = await self._storage.table_ready(APPROVALS_TABLE)
        return deleted + await purge_where(approvals, "PartitionKey eq @pk and expiresAt lt @cutoff",
                                           {"pk": APPROVALS_PARTITION, "cutoff": cutoff}, limit, "helpdesk approvals")


def _with_etag(entity: dict[str, Any], etag: str) -> TableEntity:
    stored = TableEntity(entity)
    stored._metadata = {"etag": etag, "timestamp": None}  # what a read would carry
    return stored
