"""One-time codes and the notifications worker at the service level, on Azurite + the emulator (no host):
races on a challenge (A6, F3), expiry with an injected clock, send budgets (G2), worker idempotency (F1),
invalid messages (D5) and registration reminders.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devtools.azurite import Azurite
from devtools.stack import GraphEmulator, app_settings
from shared import queues
from shared.adapters.audit_store import AuditStore
from shared.adapters.challenge_store import ChallengeStore
from shared.adapters.credentials import graph_credential
from shared.adapters.enablement_store import EnablementStore
from shared.adapters.graph import GraphGateway
from shared.adapters.mail import MailLedger, MailSender
from shared.adapters.notification_queue import NotificationQueue
from shared.adapters.onprem_store import OnPremStore
from shared.adapters.phone import AcsPhone, EmulatorPhone, NoPhone, send_once
from shared.adapters.policy_store import PolicyStore
from shared.adapters.security_info_store import SecurityInfoStore
from shared.adapters.storage import StorageClients
from shared.adapters.throttle_store import GLOBAL_SHARDS, ThrottleStore
from shared.config import load_settings
from shared.domain import codes
from shared.domain.audit import Actor
from shared.domain.codes import Challenge, Channel, Verdict
from shared.domain.notifications import InvalidNotification
from shared.domain.policy import Method
from shared.domain.throttling import Budget
from shared.errors import ChannelPaused, CodeNotAccepted, MethodUnavailable
from shared.services.methods import standard_methods
from shared.services.notifications import (
    REMINDER_LEASE,
    CodeDelivery,
    NotificationService,
    Outbox,
    ReminderMails,
    ResetNotices,
)
from shared.services.notifications.branded import BrandedMail
from shared.services.onprem.agents import AgentRoster
from shared.services.policy import PolicyCache
from shared.services.registration.flow import RegistrationService
from shared.services.registration.security_info import CurrentPolicy, SecurityInfoService
from shared.services.registration.user import User
from shared.services.reset.user import UserResolver
from shared.services.throttle import ThrottleService

KEY = b"integration-test-code-key-32-bytes!!"
PREFIX = "ntf" + uuid.uuid4().hex[:8]
CASEY_ID = "c0ffee00-5e1f-4ea5-b0a7-000000001003"
SVEN_ID = "c0ffee00-5e1f-4ea5-b0a7-000000001004"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Parts:
    storage: StorageClients
    challenges: ChallengeStore
    worker: NotificationService
    registration: RegistrationService
    clock: Clock
    emulator: GraphEmulator
    graph: GraphGateway
    policy: PolicyCache


def build_registration(p: Parts, budgets: tuple[Budget, ...] | None = None, phone: Any = None) -> RegistrationService:
    throttle = ThrottleService(ThrottleStore(p.storage), AuditStore(p.storage), p.clock,
                            **({"budgets": budgets} if budgets else {}))
    agents = AgentRoster(OnPremStore(p.storage, PREFIX), p.clock, None)
    standing = UserResolver(p.graph, SecurityInfoStore(p.storage), EnablementStore(p.storage), agents)
    info = SecurityInfoService(SecurityInfoStore(p.storage), p.graph, CurrentPolicy(PolicyStore(p.storage)),
                               AuditStore(p.storage), p.clock, standing)
    return RegistrationService(info, p.challenges, throttle, NotificationQueue(p.storage),
                               standard_methods(phone or EmulatorPhone(p.emulator.base_url)), AuditStore(p.storage),
                               KEY, p.clock)


@pytest.fixture
async def parts(azurite: Azurite, graph_emulator: GraphEmulator) -> AsyncIterator[Parts]:
    settings = load_settings(app_settings(azurite, graph_emulator, SSPR_TABLE_PREFIX=PREFIX))
    storage = StorageClients.from_settings(settings)
    graph = GraphGateway.create(settings, graph_credential(settings))
    clock = Clock()
    policy = PolicyCache(PolicyStore(storage), clock)
    challenges = ChallengeStore(storage)
    phone = EmulatorPhone(graph_emulator.base_url)
    mail, ledger = BrandedMail(MailSender(graph, settings.mail_sender)), MailLedger(storage)
    worker = NotificationService(CodeDelivery(challenges, mail, phone, graph, policy, KEY, clock),
                                 ResetNotices(Outbox(mail, graph, ledger, clock), policy),
                                 ReminderMails(Outbox(mail, graph, ledger, clock), settings.page_url("register")))
    p = Parts(storage, challenges, worker, None, clock, graph_emulator, graph, policy)  # type: ignore[arg-type]
    p.registration = build_registration(p)
    yield p
    await phone.close()
    await graph.close()
    await storage.close()


def all_messages(emulator: GraphEmulator) -> list[dict[str, Any]]:
    return list(httpx.get(f"{emulator.base_url}/_emulator/outbox", timeout=10).json()["value"])


def outbox(emulator: GraphEmulator, to: str) -> list[dict[str, Any]]:
    return [m for m in all_messages(emulator) if to in m.get("to", [])]


def code_in(message: dict[str, Any]) -> str:
    found = re.findall(r"(?<!\d)(\d{8})(?!\d)", message["body"])
    assert found, "no 8-digit code in the message"
    return found[0]


def queue_message(challenge: Challenge, message_id: str) -> str:
    return json.dumps({"kind": "verification-code", "id": message_id,
                       "challenge": {"partition": challenge.partition, "row": challenge.row}})


async def new_challenge(p: Parts, contact: str | None = None, channel: Channel = Channel.EMAIL,
                        method: Method = Method.EMAIL) -> tuple[Challenge, str]:
    message_id = str(uuid.uuid4())
    challenge = codes.request_delivery(
        Challenge(str(uuid.uuid4()), method.value, CASEY_ID, method, channel,
                  contact or f"casey-{uuid.uuid4().hex[:8]}@fabrikam.example", p.clock()),
        message_id, p.clock(),
    )
    await p.challenges.create(challenge)
    return challenge, message_id


async def challenge_with_code(p: Parts) -> tuple[Challenge, str]:
    challenge, message_id = await new_challenge(p)
    assert await p.worker.handle(queue_message(challenge, message_id)) is None
    return challenge, code_in(outbox(p.emulator, challenge.contact)[0])


async def submit(p: Parts, challenge: Challenge, code: str) -> Verdict:
    outcome = await p.challenges.change(challenge.partition, challenge.row,
                                        lambda c: codes.submit(c, code, KEY, p.clock()))
    assert outcome is not None
    return outcome[0]


async def test_right_code_in_parallel_succeeds_exactly_once_every_time(parts: Parts) -> None:
    for _ in range(8):
        challenge, code = await challenge_with_code(parts)
        verdicts = await asyncio.gather(*(submit(parts, challenge, code) for _ in range(16)))
        assert verdicts.count(Verdict.ACCEPTED) == 1
        assert set(verdicts) == {Verdict.ACCEPTED, Verdict.USED}


async def test_twenty_parallel_wrong_codes_count_exactly_twenty_and_lock(parts: Parts) -> None:
    challenge, code = await challenge_with_code(parts)
    wrong = "0" * 8 if code != "0" * 8 else "1" * 8
    verdicts = await asyncio.gather(*(submit(parts, challenge, wrong) for _ in range(20)))
    stored = await parts.challenges.get(challenge.partition, challenge.row)
    assert stored is not None and stored.failed_attempts == 20
    assert verdicts.count(Verdict.WRONG) == 4 and verdicts.count(Verdict.LOCKED) == 16
    assert await submit(parts, challenge, code) is Verdict.LOCKED


async def test_a_redelivered_or_concurrent_message_sends_one_code(parts: Parts) -> None:
    challenge, message_id = await new_challenge(parts)
    body = queue_message(challenge, message_id)
    await asyncio.gather(parts.worker.handle(body), parts.worker.handle(body))
    await parts.worker.handle(body)
    assert len(outbox(parts.emulator, challenge.contact)) == 1
    stored = await parts.challenges.get(challenge.partition, challenge.row)
    assert stored is not None and stored.send_count == 1 and stored.delivery == codes.Delivery.DELIVERED


async def test_a_superseded_message_sends_nothing(parts: Parts) -> None:
    challenge, first = await new_challenge(parts)
    second = str(uuid.uuid4())
    await parts.challenges.change(challenge.partition, challenge.row,
                                  lambda c: (None, codes.request_delivery(c, second, parts.clock())))
    await parts.worker.handle(queue_message(challenge, first))
    assert outbox(parts.emulator, challenge.contact) == []
    await parts.worker.handle(queue_message(challenge, second))
    assert len(outbox(parts.emulator, challenge.contact)) == 1


@pytest.mark.parametrize("body", [  # fixed ids: every test process collects the same names
    "not json",
    json.dumps({"kind": "verification-code", "id": "x", "challenge": {"partition": "a", "row": "b"}}),
    json.dumps({"kind": "verification-code", "id": "c0ffee00-0000-4000-8000-00000000bad1", "challenge": {"partition": "a/b", "row": "c"}}),
    json.dumps({"kind": "verification-code", "id": "c0ffee00-0000-4000-8000-00000000bad2", "challenge": {"partition": "a", "row": "b"},
                "code": "12345678"}),
    json.dumps({"kind": "password-reset-notice", "id": "c0ffee00-0000-4000-8000-00000000bad3"}),
    json.dumps({"kind": "registration-reminder", "id": "c0ffee00-0000-4000-8000-00000000bad4", "userId": "casey@contoso.example"}),
])
async def test_an_invalid_message_raises_before_any_side_effect(parts: Parts, body: str) -> None:
    before = all_messages(parts.emulator)
    with pytest.raises(InvalidNotification):
        await parts.worker.handle(body)
    after = all_messages(parts.emulator)
    assert len(after) == len(before)


async def test_sms_and_voice_codes_land_in_the_phone_outbox(parts: Parts) -> None:
    number = f"+4670{uuid.uuid4().int % 10**7:07d}"
    sms, sms_id = await new_challenge(parts, number, Channel.SMS, Method.MOBILE_PHONE)
    await parts.worker.handle(queue_message(sms, sms_id))
    [text] = outbox(parts.emulator, number)
    assert text["channel"] == "sms" and await submit(parts, sms, code_in(text)) is Verdict.ACCEPTED
    office = f"+468{uuid.uuid4().int % 10**7:07d}"
    call, call_id = await new_challenge(parts, office, Channel.VOICE, Method.OFFICE_PHONE)
    await parts.worker.handle(queue_message(call, call_id))
    [spoken] = outbox(parts.emulator, office)
    digits = "".join(re.findall(r"\d", spoken["body"]))
    assert spoken["channel"] == "voice" and await submit(parts, call, digits[:8]) is Verdict.ACCEPTED


async def test_an_expired_code_is_refused_like_a_wrong_one(parts: Parts) -> None:
    casey = User(CASEY_ID, Actor(CASEY_ID, "casey@contoso.example"))
    address = f"casey-{uuid.uuid4().hex[:8]}@fabrikam.example"
    started = await parts.registration.start(casey, Method.EMAIL, address, None, "203.0.113.7")
    [message] = await _drain(parts)
    await parts.worker.handle(message)
    code = code_in(outbox(parts.emulator, address)[0])
    parts.clock.now += timedelta(minutes=5)  # the default policy: 5 minutes for email
    with pytest.raises(CodeNotAccepted) as expired:
        await parts.registration.verify(casey, started.challengeId, code, None)
    with pytest.raises(CodeNotAccepted) as unknown:
        await parts.registration.verify(casey, str(uuid.uuid4()), code, None)
    assert expired.value.problem == unknown.value.problem


async def test_an_sms_budget_used_up_pauses_sms_while_email_keeps_working(parts: Parts) -> None:
    budgets = (Budget(Channel.SMS, "ip", 2, timedelta(hours=1)), Budget(Channel.EMAIL, "ip", 50, timedelta(hours=1)))
    registration = build_registration(parts, budgets)
    ip = f"198.51.100.{uuid.uuid4().int % 250}"
    sven = User(SVEN_ID, Actor(SVEN_ID, "sven@contoso.example"))
    for _ in range(2):
        await registration.start(sven, Method.MOBILE_PHONE, "+46701234567", None, ip)
    with pytest.raises(ChannelPaused):
        await registration.start(sven, Method.MOBILE_PHONE, "+46701234567", None, ip)
    await registration.start(sven, Method.EMAIL, "sven@fabrikam.example", None, ip)
    await registration.start(sven, Method.MOBILE_PHONE, "+46701234567", None, "192.0.2.1")  # another IP
    await _drain(parts)


async def test_without_a_phone_provider_phone_methods_are_refused_clearly(parts: Parts) -> None:
    registration = build_registration(parts, phone=NoPhone())
    sven = User(SVEN_ID, Actor(SVEN_ID, "sven@contoso.example"))
    with pytest.raises(MethodUnavailable):
        await registration.start(sven, Method.MOBILE_PHONE, "+46701234567", None, None)
    view = await registration.overview(sven)
    assert [u.method for u in view.unavailableMethods] == [Method.MOBILE_PHONE]


async def test_a_registration_reminder_is_mailed_once_in_the_users_language(parts: Parts) -> None:
    message = json.dumps({"kind": "registration-reminder", "id": str(uuid.uuid4()), "userId": SVEN_ID})
    before = len(outbox(parts.emulator, "sven@contoso.example"))
    await asyncio.gather(parts.worker.handle(message), parts.worker.handle(message))
    await parts.worker.handle(message)
    mails = outbox(parts.emulator, "sven@contoso.example")
    assert len(mails) == before + 1
    assert mails[0]["subject"].startswith("Registrera") and "http://localhost:7071/api/pages/register" in mails[0]["body"]


async def _drain(parts: Parts) -> list[str]:
    queue = await parts.storage.queue_ready(queues.NOTIFICATIONS)
    bodies = []
    async for m in queue.receive_messages(messages_per_page=32):
        bodies.append(m.content)
        await queue.delete_message(m)
    return bodies


# ---- sends named once (F1), the mail ledger's claims, global budgets spread over rows (F3) ----------------------

class _Token:
    token = "test-token"


class _Credential:
    """Stands in for the managed identity: ACS is faked below, so no real token is needed."""

    async def get_token(self, *scopes: str) -> _Token:
        return _Token()

    async def close(self) -> None:
        return None


async def test_an_acs_send_retried_after_a_5xx_names_the_same_send_both_times(
        azurite: Azurite, graph_emulator: GraphEmulator) -> None:
    bodies: list[dict[str, Any]] = []

    def acs(request: httpx.Request) -> httpx.Response:  # ACS itself: the first POST fails after sending
        bodies.append(json.loads(request.content))
        if len(bodies) == 1:
            return httpx.Response(503)
        return httpx.Response(202, json={"value": [{"to": "+46701234567", "successful": True, "httpStatusCode": 202}]})

    settings = load_settings(app_settings(azurite, graph_emulator))
    phone = AcsPhone("https://acs.example", "+18005550100", settings,
                     http=httpx.AsyncClient(transport=httpx.MockTransport(acs)), credential=_Credential())
    issued = datetime(2026, 11, 25, 12, 0, 5, tzinfo=UTC)
    message_id = str(uuid.uuid4())
    await phone.send(Channel.SMS, "+46701234567", "Your code is 12345678", send_once(message_id, 1, issued))
    await phone.close()
    first, retry = (b["smsRecipients"][0] for b in bodies)
    assert first == retry
    assert first["repeatabilityFirstSent"] == "Wed, 25 Nov 2026 12:00:05 GMT"
    assert uuid.UUID(first["repeatabilityRequestId"])  # ACS wants a GUID
    assert first["repeatabilityRequestId"] == send_once(message_id, 1, issued).request_id
    assert send_once(message_id, 2, issued).request_id != first["repeatabilityRequestId"]  # a new code: a new send


async def test_releasing_a_claim_leaves_another_workers_takeover_alone(parts: Parts) -> None:
    ledger = MailLedger(parts.storage)
    message_id = str(uuid.uuid4())
    start = parts.clock()
    crashed = await ledger.claim(message_id, start, REMINDER_LEASE)
    assert crashed is not None and await ledger.claim(message_id, start, REMINDER_LEASE) is None
    later = start + REMINDER_LEASE + timedelta(seconds=1)
    takeover = await ledger.claim(message_id, later, REMINDER_LEASE)
    assert takeover is not None and takeover != crashed
    await ledger.release(message_id, crashed)  # the slow first worker gives up its (stale) claim
    assert await ledger.claim(message_id, later, REMINDER_LEASE) is None  # the takeover still holds
    await ledger.release(message_id, takeover)
    assert await ledger.claim(message_id, later, REMINDER_LEASE) is not None


class _ReleasedDuringTakeover:
    """Azurite's table client as the SDK gives it, except that the first read of a row is followed at once by
    `release` (the crashed worker giving its claim back, a real delete on Azurite): the race between a takeover's
    read and its write, made to happen every time."""

    def __init__(self, table: Any, release: Callable[[], Awaitable[None]]) -> None:
        self._table = table
        self._release: Callable[[], Awaitable[None]] | None = release

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    async def get_entity(self, *args: Any, **kwargs: Any) -> Any:
        entity = await self._table.get_entity(*args, **kwargs)
        if self._release is not None:
            release, self._release = self._release, None
            await release()
        return entity


class _StorageWithRace:
    def __init__(self, storage: StorageClients, release: Callable[[], Awaitable[None]]) -> None:
        self._storage = storage
        self._release = release

    async def table_ready(self, name: str) -> Any:
        return _ReleasedDuringTakeover(await self._storage.table_ready(name), self._release)


async def test_F1_a_claim_released_between_a_takeovers_read_and_write_is_taken_not_lost(parts: Parts) -> None:
    ledger = MailLedger(parts.storage)
    message_id = str(uuid.uuid4())
    start = parts.clock()
    crashed = await ledger.claim(message_id, start, REMINDER_LEASE)
    assert crashed is not None
    later = start + REMINDER_LEASE + timedelta(seconds=1)  # the first worker's lease ran out: a redelivery takes over
    racing = MailLedger(_StorageWithRace(parts.storage,  # type: ignore[arg-type]
                                         lambda: ledger.release(message_id, crashed)))
    takeover = await racing.claim(message_id, later, REMINDER_LEASE)
    # The slow first worker let go just as the redelivery looked: the redelivery must still send the mail (a None
    # here is "sent or being sent", and the message would be deleted with no mail ever sent).
    assert takeover is not None
    assert await ledger.claim(message_id, later, REMINDER_LEASE) is None  # held: no third worker sends it too


async def test_a_global_budget_counts_every_send_across_its_rows(parts: Parts) -> None:
    store = ThrottleStore(parts.storage)
    budget = Budget(Channel.VOICE, "global", 45, timedelta(hours=1))
    # A window of its own, far from the other tests' sends.
    now = datetime(2040, 1, 1, tzinfo=UTC) + timedelta(hours=uuid.uuid4().int % 100_000)
    counts = await asyncio.gather(*(store.spend(budget, f"192.0.2.{i}", now) for i in range(40)))
    assert max(counts) <= 40
    assert await store.spend(budget, None, now) == 41  # nothing racing it: the sum is exact
    table = await parts.storage.table_ready("Throttle")
    rows = [e async for e in table.query_entities("PartitionKey eq @pk", parameters={"pk": "budget-voice-global"})
            if e["RowKey"].startswith(now.strftime("%Y%m%dT%H"))]
    assert len(rows) > 1 and len(rows) <= GLOBAL_SHARDS and sum(int(e["count"]) for e in rows) == 41


async def test_F1_a_reminder_text_retried_by_the_queue_repeats_its_first_try_and_mails_once(
        parts: Parts, azurite: Azurite) -> None:
    """The text fails at ACS (503 on each of the sender's own tries), the queue delivers the message again half a
    minute later, across an hour's turn: the retry names the very request of the first try (its first-sent time,
    within ACS's 5 minutes, and its id), and the mail, sent at the first delivery, is not sent again. A delivery
    after ACS's window names a new request (ACS no longer knows the old one)."""
    from shared.domain.notifications import PasswordExpiryReminder
    from shared.domain.password_expiry import version_of
    from shared.services.notifications import ExpiryLinks, ExpiryReminderMails
    from shared.services.notifications.branded import BrandedMail

    changed = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    user = httpx.post(f"{parts.emulator.base_url}/_emulator/users", timeout=10, json={
        "userPrincipalName": f"txt-{uuid.uuid4().hex[:8]}@contoso.example", "displayName": "Tove Text",
        "mail": f"tove-{uuid.uuid4().hex[:8]}@contoso.example", "mobilePhone": "+46 70 555 12 34",
        "lastPasswordChangeDateTime": changed.isoformat(), "password": "Unused-Pa55word!"}).json()
    acs_down = [True]
    bodies: list[dict[str, Any]] = []

    def acs(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content)["smsRecipients"][0])
        if acs_down[0]:
            return httpx.Response(503)
        return httpx.Response(202, json={"value": [{"to": "+46705551234", "successful": True, "httpStatusCode": 202}]})

    settings = load_settings(app_settings(azurite, parts.emulator))
    phone = AcsPhone("https://acs.example", "+18005550100", settings,
                     http=httpx.AsyncClient(transport=httpx.MockTransport(acs)), credential=_Credential())
    out = Outbox(BrandedMail(MailSender(parts.graph, "noreply@contoso.example")), parts.graph,
                 MailLedger(parts.storage), parts.clock)
    mails = ExpiryReminderMails(out, phone, SecurityInfoStore(parts.storage),
                                ExpiryLinks("https://sspr.example/change", "https://sspr.example/reset"))

    def reminder() -> PasswordExpiryReminder:
        return PasswordExpiryReminder(kind="password-expiry-reminder", id=str(uuid.uuid4()), userId=user["id"],
                                      stage=3, expiresAt="2026-11-30T08:00:00Z", passwordVersion=version_of(changed),
                                      synced=False, sms=True)

    message = reminder()
    parts.clock.now = datetime(2026, 11, 27, 12, 59, 50, tzinfo=UTC)
    with pytest.raises(Exception):  # noqa: B017  (ACS answered 503 on every try: the queue retries the message)
        await mails.send(message)
    acs_down[0] = False
    parts.clock.now = datetime(2026, 11, 27, 13, 0, 20, tzinfo=UTC)
    await mails.send(message)
    parts.clock.now = datetime(2026, 11, 27, 13, 10, 0, tzinfo=UTC)
    await mails.send(message)  # a third delivery: both sends are done
    await phone.close()
    assert len(bodies) == 4  # three tries at the first delivery, one at the second, none at the third
    assert {b["repeatabilityFirstSent"] for b in bodies} == {"Fri, 27 Nov 2026 12:59:50 GMT"}
    assert len({b["repeatabilityRequestId"] for b in bodies}) == 1
    assert len([m for m in outbox(parts.emulator, user["mail"]) if "expires" in m["subject"]]) == 1

    late = reminder()  # a message whose text fails, retried after ACS's window: a new request, its own first-sent
    acs_down[0] = True
    parts.clock.now = datetime(2026, 11, 27, 14, 0, 0, tzinfo=UTC)
    phone = AcsPhone("https://acs.example", "+18005550100", settings,
                     http=httpx.AsyncClient(transport=httpx.MockTransport(acs)), credential=_Credential())
    mails = ExpiryReminderMails(mails.out, phone, mails.security_info, mails.links)
    with pytest.raises(Exception):  # noqa: B017
        await mails.send(late)
    acs_down[0] = False
    parts.clock.now = datetime(2026, 11, 27, 14, 6, 0, tzinfo=UTC)
    await mails.send(late)
    await phone.close()
    first_try, retry = bodies[4], bodies[-1]
    assert first_try["repeatabilityFirstSent"] == "Fri, 27 Nov 2026 14:00:00 GMT"
    assert retry["repeatabilityFirstSent"] == "Fri, 27 Nov 2026 14:06:00 GMT"
    assert retry["repeatabilityRequestId"] != first_try["repeatabilityRequestId"]

