"""The one stored SSPR policy: table "Policy", entity ("policy", "current"), JSON plus a version, ETag-guarded.

The ETag this store hands out is the policy's version in quotes (`"3"`), not the table's own ETag: it is a strong
validator (If-Match compares strongly, RFC 9110), it says nothing about storage internals, and `"0"` means "never
saved, you are looking at the defaults". Every write is still conditional on the table's ETag of the entity it just
read, so two admins who both send If-Match `"3"` race inside Table Storage and exactly one wins; the first save
is an insert, which Table Storage refuses for the second of two concurrent first saves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient
from pydantic import ValidationError

from shared.adapters.storage import StorageClients
from shared.adapters.storage_errors import storage_errors
from shared.domain.clock import Clock, utc_now
from shared.domain.policy import DEFAULT_POLICY, Policy
from shared.errors import PreconditionFailed, StoredPolicyUnreadable

TABLE = "Policy"
PARTITION = "policy"
ROW = "current"
NEVER_SAVED = '"0"'


def etag_of(version: int) -> str:
    return f'"{version}"'


def version_of(etag: str) -> int | None:
    """The version an If-Match value names, or None when it names none this store issued."""
    text = etag.strip()
    if len(text) < 3 or not (text.startswith('"') and text.endswith('"')) or not text[1:-1].isdigit():
        return None
    return int(text[1:-1])


@dataclass(frozen=True)
class _Current:
    policy: Policy
    version: int
    table_etag: str | None  # None: never saved


@dataclass(frozen=True)
class PolicyStore:
    storage: StorageClients
    clock: Clock = utc_now

    async def get(self) -> tuple[Policy, str]:
        """The policy and its ETag; the defaults with ETag `"0"` while no admin has saved one."""
        current = await self._read()
        return current.policy, etag_of(current.version)

    async def replace(self, policy: Policy, if_match: str, updated_by: str = "") -> str:
        """Save `policy` if `if_match` is still the current ETag; the new ETag, or PreconditionFailed."""
        expected = version_of(if_match)
        current = await self._read()
        if expected is None or expected != current.version:
            raise PreconditionFailed(f"If-Match {if_match[:40]!r} is not the current policy version {current.version}")
        entity = self._entity(policy, current.version + 1, updated_by)
        table = await self._table()
        with storage_errors("policy write"):
            try:
                if current.table_etag is None:
                    await table.create_entity(entity)
                else:
                    await table.update_entity(
                        entity, mode=UpdateMode.REPLACE,
                        etag=current.table_etag, match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceModifiedError, ResourceExistsError, ResourceNotFoundError):
                # Someone saved (or, for the first save, created; or deleted) between our read and our write.
                raise PreconditionFailed("the policy changed while it was being saved") from None
        return etag_of(current.version + 1)

    async def _read(self) -> _Current:
        table = await self._table()
        with storage_errors("policy read"):
            try:
                entity = await table.get_entity(PARTITION, ROW)
            except ResourceNotFoundError:
                return _Current(DEFAULT_POLICY, 0, None)
        try:
            policy = Policy.model_validate_json(entity["policy"])
        except (ValidationError, KeyError, TypeError):
            raise StoredPolicyUnreadable("the stored policy does not pass the current rules") from None
        return _Current(policy, int(entity["version"]), entity.metadata["etag"])

    async def _table(self) -> TableClient:
        with storage_errors("policy table"):
            return await self.storage.table_ready(TABLE)

    def _entity(self, policy: Policy, version: int, updated_by: str) -> dict[str, Any]:
        return {
            "PartitionKey": PARTITION,
            "RowKey": ROW,
            "policy": policy.model_dump_json(by_alias=True),
            "version": version,
            "updatedAt": self.clock(),
            "updatedBy": updated_by,
        }
