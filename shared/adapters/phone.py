"""Sending codes to phones: SMS and voice calls through the configured provider (SSPR_SMS_PROVIDER).

- "emulator": the dev Graph emulator's outbox (`POST {SSPR_SMS_ENDPOINT}/_emulator/sms`), SMS and voice.
- "acs": Azure Communication Services SMS REST (`POST {endpoint}/sms?api-version=2021-03-07`), authenticated
  with the app's managed identity (Entra token for https://communication.azure.com), so no access key is kept.
  Voice is not offered through ACS here (Call Automation needs a callback endpoint and media): `can_call` is
  False, so the registration API refuses office phone with a clear message.
- "none": no SMS or voice; mobile and office phone are unavailable.

Numbers are masked in every log line (E2); the message text carries the code and is never logged.

Each send is named by a `SendOnce` (F1): the notification message's id and the challenge's send count (one code)
give ACS a stable `repeatabilityRequestId`, and the code's issue time its `repeatabilityFirstSent`, so a retried
POST of the same text (after a timeout or a 5xx whose SMS did go out) is recognised by ACS and not sent twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Protocol

import httpx

from shared.config import Settings, SmsProvider
from shared.domain.codes import Channel, mask_contact
from shared.errors import DependencyUnavailable, PhoneUnavailable

log = logging.getLogger("sspr.phone")

ACS_SCOPE = "https://communication.azure.com/.default"
ACS_SMS_API_VERSION = "2021-03-07"
ACS_ATTEMPTS = 3  # same request id each time: ACS drops a repeat of a send it already made
ACS_RETRY_DELAY = 0.5  # seconds, doubled per attempt
SEND_NAMESPACE = uuid.UUID("6f1d3c52-4b0e-4a8e-9d7a-5e2f0c1b7a93")  # names sends (uuid5), never changes
# ACS tracks a repeatable request for 5 minutes after its Repeatability-First-Sent; an older first-sent is refused
# with 412 (https://learn.microsoft.com/rest/api/communication/repeatable-requests).
ACS_REPEATABILITY_WINDOW = timedelta(minutes=5)


@dataclass(frozen=True)
class SendOnce:
    """One code's send, named so a provider can tell a retry of it from a new send."""

    request_id: str  # a GUID, the same for every retry of this send
    first_sent: datetime  # when this code was issued (UTC)


def send_once(message_id: str, send_count: int, issued_at: datetime) -> SendOnce:
    """The name of the `send_count`-th code of the challenge, sent for notification `message_id`."""
    return SendOnce(str(uuid.uuid5(SEND_NAMESPACE, f"{message_id}/{send_count}")), issued_at)


def acs_sms_body(sender: str, to: str, text: str, once: SendOnce) -> dict[str, Any]:
    """The ACS SMS request: one recipient with the send's repeatability id and first-sent time (IMF-fixdate)."""
    return {
        "from": sender,
        "smsRecipients": [{"to": to, "repeatabilityRequestId": once.request_id,
                           "repeatabilityFirstSent": format_datetime(once.first_sent.astimezone(UTC), usegmt=True)}],
        "message": text,
        "smsSendOptions": {"enableDeliveryReport": False},
    }


class PhoneSender(Protocol):
    provider: str

    def can_send(self, channel: Channel) -> bool: ...

    async def send(self, channel: Channel, to: str, text: str, once: SendOnce) -> None: ...

    async def close(self) -> None: ...


class NoPhone:
    provider = "none"

    def can_send(self, channel: Channel) -> bool:
        return False

    async def send(self, channel: Channel, to: str, text: str, once: SendOnce) -> None:
        raise PhoneUnavailable(f"no SMS provider configured; cannot send {channel} to {mask_contact(to)}")

    async def close(self) -> None:
        return None


class EmulatorPhone:
    """The dev emulator's outbox: what a phone would receive, readable at GET /_emulator/outbox."""

    provider = "emulator"

    def __init__(self, endpoint: str, http: httpx.AsyncClient | None = None) -> None:
        self._url = endpoint.rstrip("/") + "/_emulator/sms"
        self._http = http or httpx.AsyncClient(timeout=10)

    def can_send(self, channel: Channel) -> bool:
        return channel in (Channel.SMS, Channel.VOICE)

    async def send(self, channel: Channel, to: str, text: str, once: SendOnce) -> None:
        try:
            response = await self._http.post(self._url, json={"to": to, "body": text, "channel": channel.value})
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(f"phone emulator unreachable: {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise DependencyUnavailable(f"phone emulator answered {response.status_code} for {mask_contact(to)}")
        log.info("%s sent to %s through the emulator", channel, mask_contact(to))

    async def close(self) -> None:
        await self._http.aclose()


class AcsPhone:
    """Azure Communication Services SMS, authenticated with the app's managed identity."""

    provider = "acs"

    def __init__(self, endpoint: str, sender_number: str, settings: Settings,
                 http: httpx.AsyncClient | None = None, credential: Any = None) -> None:
        self._url = f"{endpoint.rstrip('/')}/sms?api-version={ACS_SMS_API_VERSION}"
        self._from = sender_number
        self._settings = settings
        self._http = http or httpx.AsyncClient(timeout=10)
        self._credential = credential  # an async TokenCredential; the managed identity when None

    def can_send(self, channel: Channel) -> bool:
        return channel is Channel.SMS

    async def _token(self) -> str:
        if self._credential is None:
            from azure.identity.aio import DefaultAzureCredential

            self._credential = DefaultAzureCredential(managed_identity_client_id=self._settings.managed_identity_client_id)
        token = await self._credential.get_token(ACS_SCOPE)
        return token.token

    async def send(self, channel: Channel, to: str, text: str, once: SendOnce) -> None:
        if channel is not Channel.SMS:
            raise PhoneUnavailable("voice calls are not offered through Azure Communication Services here")
        body = acs_sms_body(self._from, to, text, once)
        response = None
        for attempt in range(ACS_ATTEMPTS):
            if attempt:
                await asyncio.sleep(ACS_RETRY_DELAY * 2 ** (attempt - 1))
            try:
                response = await self._http.post(self._url, json=body,
                                                 headers={"Authorization": f"Bearer {await self._token()}"})
            except httpx.HTTPError as exc:
                log.warning("ACS unreachable (%s) sending to %s, attempt %d", type(exc).__name__, mask_contact(to),
                            attempt + 1)
                response = None
                continue
            if response.status_code != 429 and response.status_code < 500:
                break
        if response is None:
            raise DependencyUnavailable(f"ACS unreachable sending to {mask_contact(to)}")
        if response.status_code >= 300:
            raise DependencyUnavailable(f"ACS answered {response.status_code} for {mask_contact(to)}")
        results = response.json().get("value") or [{}]
        if not results[0].get("successful", True):
            raise DependencyUnavailable(f"ACS refused the SMS to {mask_contact(to)}: {results[0].get('httpStatusCode')}")
        log.info("sms sent to %s through ACS", mask_contact(to))

    async def close(self) -> None:
        await self._http.aclose()
        if self._credential is not None:
            await self._credential.close()


def phone_sender(settings: Settings) -> PhoneSender:
    if settings.sms_provider is SmsProvider.EMULATOR and settings.sms_endpoint:
        return EmulatorPhone(settings.sms_endpoint)
    if settings.sms_provider is SmsProvider.ACS and settings.sms_endpoint and settings.sms_sender_number:
        return AcsPhone(settings.sms_endpoint, settings.sms_sender_number, settings)
    return NoPhone()
