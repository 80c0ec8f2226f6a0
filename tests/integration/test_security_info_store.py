"""The security info store on Azurite: method and summary change together, concurrent edits cannot both win."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from devtools.azurite import Azurite
from devtools.stack import GraphEmulator, app_settings
from shared.adapters.security_info_store import SecurityInfoStore
from shared.adapters.storage import StorageClients
from shared.config import load_settings
from shared.domain.policy import Method
from shared.domain.security_info import RegisteredMethod
from shared.errors import PreconditionFailed

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
async def store(azurite: Azurite, graph_emulator: GraphEmulator):  # type: ignore[no-untyped-def]
    storage = StorageClients.from_settings(load_settings(app_settings(azurite, graph_emulator)))
    yield SecurityInfoStore(storage)
    await storage.close()


async def test_a_new_user_has_an_empty_summary_and_no_methods(store: SecurityInfoStore) -> None:
    user = str(uuid.uuid4())
    summary = await store.summary(user)
    assert summary.methods == frozenset() and summary.etag is None
    assert await store.methods(user) == []


async def test_a_method_and_its_summary_are_written_together(store: SecurityInfoStore) -> None:
    user = str(uuid.uuid4())
    empty = await store.summary(user)
    email = RegisteredMethod(Method.EMAIL, NOW, contact="casey.alt@fabrikam.example")
    saved = await store.save(empty.with_method(Method.EMAIL, NOW), put=[email])
    assert saved.methods == {Method.EMAIL} and saved.last_confirmed_at == NOW and saved.etag
    assert await store.methods(user) == [email]
    removed = await store.save(saved.without_method(Method.EMAIL), delete=[Method.EMAIL])
    assert removed.methods == frozenset()
    assert await store.methods(user) == []


async def test_two_concurrent_changes_from_the_same_read_cannot_both_win(store: SecurityInfoStore) -> None:
    user = str(uuid.uuid4())
    base = await store.save((await store.summary(user)).with_method(Method.EMAIL, NOW),
                            put=[RegisteredMethod(Method.EMAIL, NOW, contact="a@fabrikam.example")])
    phone = RegisteredMethod(Method.MOBILE_PHONE, NOW, contact="+46701234567")
    app = RegisteredMethod(Method.AUTHENTICATOR_APP, NOW, secret="ciphertext")
    results = await asyncio.gather(
        store.save(base.with_method(Method.MOBILE_PHONE, NOW), put=[phone]),
        store.save(base.with_method(Method.AUTHENTICATOR_APP, NOW), put=[app]),
        return_exceptions=True,
    )
    assert sum(isinstance(r, PreconditionFailed) for r in results) == 1
    final = await store.summary(user)
    kinds = {m.kind for m in await store.methods(user)}
    assert kinds == set(final.methods) and len(kinds) == 2  # the summary matches the rows: no half state


async def test_two_first_registrations_at_once_cannot_both_create(store: SecurityInfoStore) -> None:
    user = str(uuid.uuid4())
    empty = await store.summary(user)
    results = await asyncio.gather(*(
        store.save(empty.with_method(Method.EMAIL, NOW), put=[RegisteredMethod(Method.EMAIL, NOW, contact=f"{i}@x.example")])
        for i in range(8)
    ), return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, PreconditionFailed) for r in results if isinstance(r, Exception))
