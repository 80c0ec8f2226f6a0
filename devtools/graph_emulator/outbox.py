"""Mail sent through POST /users/{sender}/sendMail, and SMS / voice calls of POST /_emulator/sms, land here."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import Any

from .tenant import iso, utc_now


@dataclass(slots=True)
class Outbox:
    messages: list[dict[str, Any]] = field(default_factory=list)  # oldest first

    def add(self, sender: str, message: dict[str, Any], save_to_sent_items: bool) -> dict[str, Any]:
        body = message.get("body") or {}

        def addresses(key: str) -> list[str]:
            return [r.get("emailAddress", {}).get("address", "") for r in message.get(key) or []]

        entry = {
            "id": str(uuid.uuid4()),
            "time": iso(utc_now()),
            "from": sender,
            "to": addresses("toRecipients"),
            "cc": addresses("ccRecipients"),
            "bcc": addresses("bccRecipients"),
            "subject": message.get("subject", ""),
            "contentType": body.get("contentType", "Text"),
            "body": body.get("content", ""),
            "importance": message.get("importance", "normal"),
            "saveToSentItems": save_to_sent_items,
            "channel": "mail",
            "attachments": [
                {"name": a.get("name"), "contentType": a.get("contentType"), "contentId": a.get("contentId"),
                 "isInline": bool(a.get("isInline")), "contentBytes": a.get("contentBytes"),
                 "size": len(base64.b64decode(a.get("contentBytes") or ""))}
                for a in message.get("attachments") or [] if isinstance(a, dict)
            ],
        }
        self.messages.append(entry)
        return entry

    def add_phone(self, to: str, body: str, channel: str) -> dict[str, Any]:
        """An SMS or a voice call the service sent (provider "emulator"): `to` is the E.164 number."""
        entry = {"id": str(uuid.uuid4()), "time": iso(utc_now()), "channel": channel, "to": [to], "body": body}
        self.messages.append(entry)
        return entry

    def newest_first(self) -> list[dict[str, Any]]:
        return list(reversed(self.messages))

    def clear(self) -> None:
        self.messages.clear()
