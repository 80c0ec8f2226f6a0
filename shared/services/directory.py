"""Names instead of object ids: the admin page's group picker (groups searched by name, a page at a time, each with
its user count) and the names of the users an audit page or a search by UPN is about."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Protocol

from shared.adapters.graph.directory import DirectoryGroup, GroupPage, UserName
from shared.errors import FieldError, InvalidRequest

PICKER_PAGE = 10


class GroupDirectory(Protocol):
    async def search_groups(self, text: str, skiptoken: str | None, page_size: int) -> GroupPage: ...


class UserDirectory(Protocol):
    async def user_id_by_upn(self, upn: str) -> str | None: ...

    async def user_names(self, user_ids: list[str]) -> dict[str, UserName]: ...


@dataclass(frozen=True)
class GroupsFound:
    groups: list[DirectoryGroup]
    continuation: str | None  # the next page of the same search, or None
    total: int | None


def _continuation(text: str, skiptoken: str | None) -> str | None:
    if skiptoken is None:
        return None
    return base64.urlsafe_b64encode(json.dumps({"q": text, "t": skiptoken}).encode()).decode()


def _skiptoken(text: str, continuation: str) -> str:
    """The Graph skiptoken of a continuation this service issued for the same search text (400 otherwise)."""
    try:
        token = json.loads(base64.urlsafe_b64decode(continuation.encode()))
        if isinstance(token, dict) and token.get("q") == text and isinstance(token.get("t"), str):
            return str(token["t"])
    except (binascii.Error, ValueError, UnicodeDecodeError):
        pass
    raise InvalidRequest([FieldError.of("continuation", "continuation.otherSearch",
                                        "belongs to another search: search again")])


@dataclass(frozen=True)
class GroupPicker:
    directory: GroupDirectory
    page_size: int = PICKER_PAGE

    async def search(self, text: str, continuation: str | None) -> GroupsFound:
        """Groups whose name has words starting with those of `text` (every group when empty), a page at a time."""
        skiptoken = _skiptoken(text, continuation) if continuation else None
        page = await self.directory.search_groups(text, skiptoken, self.page_size)
        return GroupsFound(page.groups, _continuation(text, page.skiptoken), page.total)


@dataclass(frozen=True)
class UserNames:
    directory: UserDirectory

    async def id_of(self, user: str) -> str | None:
        """The object id a search names: the id itself, or the id of the user whose UPN it is (None: nobody)."""
        return user.lower() if "@" not in user else await self.directory.user_id_by_upn(user)

    async def of(self, user_ids: list[str]) -> dict[str, UserName]:
        """The names of the ids that name users, read in one batch (never one Graph call per id)."""
        wanted = sorted({i for i in user_ids if i})
        return await self.directory.user_names(wanted) if wanted else {}
