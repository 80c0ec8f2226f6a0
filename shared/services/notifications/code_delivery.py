"""Verification codes: issue the challenge's code if this queue message may, then send it by mail, SMS or voice.

The queue carries ids only (never codes): the code is made here, its HMAC stored on the challenge, then sent.
The challenge names the one message allowed to send its current code (`message_id`) and that message's
delivery state, so a redelivered or concurrent copy finds it delivered or being sent and does nothing, a
superseded message (a resend came later) does nothing, and a failed send is marked so the queue's retry issues
a fresh code. The one window where two codes can go out is a worker crash after the send and before
"delivered" is stored: after `SENDING_LEASE` the retry sends a new code, and only the newest works.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from shared.adapters.challenge_store import ChallengeStore
from shared.adapters.mail import mail_texts
from shared.adapters.phone import PhoneSender, send_once
from shared.domain import codes
from shared.domain.clock import Clock
from shared.domain.codes import Challenge, Channel, mask_contact
from shared.domain.notifications import VerificationCode
from shared.services.notifications.bodies import code_mail
from shared.services.notifications.branded import Mailer
from shared.services.notifications.recipients import Contacts, contact_or_none, language_of
from shared.services.policy import PolicyCache

log = logging.getLogger("sspr.notifications")


def _spoken(code: str) -> str:
    return ", ".join(code)


@dataclass(frozen=True)
class CodeDelivery:
    """`challenges`: one store for every message, or the store of each ChallengeRef.store ("registration",
    "reset", "helpdesk")."""

    challenges: ChallengeStore | Mapping[str, ChallengeStore]
    mail: Mailer
    phone: PhoneSender
    contacts: Contacts
    policy: PolicyCache
    key: bytes
    clock: Clock

    def _store(self, name: str) -> ChallengeStore:
        return self.challenges[name] if isinstance(self.challenges, Mapping) else self.challenges

    async def send(self, message: VerificationCode) -> bool:
        """Issue and send the challenge's code if this message may; True when a code went out."""
        ref = message.challenge
        policy = await self.policy.get()
        code = codes.new_code(codes.code_length(policy.codes))
        digest = codes.code_digest(self.key, ref.partition, ref.row, code)
        now = self.clock()

        def issue(challenge: Challenge) -> tuple[bool, Challenge]:
            if not codes.should_send(challenge, message.id, now):
                return False, challenge
            return True, codes.issue_code(challenge, digest, now, codes.code_ttl(policy.codes, challenge.channel))

        store = self._store(ref.store)
        outcome = await store.change(ref.partition, ref.row, issue)
        if outcome is None or not outcome[0]:
            log.info("verification code message %s: nothing to send (delivered, superseded or gone)", message.id)
            return False
        challenge = outcome[1]
        minutes = int(codes.code_ttl(policy.codes, challenge.channel).total_seconds() // 60)
        try:
            await self._deliver(challenge, code, minutes, ref.store)
        except Exception:
            await store.change(ref.partition, ref.row, lambda c: (None, codes.mark_send_failed(c, self.clock())
                                                                            if c.message_id == message.id else c))
            raise
        await store.change(ref.partition, ref.row, lambda c: (None, codes.mark_delivered(c, self.clock())
                                                                        if c.message_id == message.id else c))
        log.info("verification code of %s sent by %s to %s", challenge.method, challenge.channel,
                 mask_contact(challenge.contact))
        return True

    async def _deliver(self, challenge: Challenge, code: str, minutes: int, store: str = "registration") -> None:
        contact = await contact_or_none(self.contacts, challenge.user_id)
        language = language_of(contact)
        texts = mail_texts(language)
        helpdesk = store == "helpdesk"  # read back to an agent on the phone: say so, and when not to
        if challenge.channel is Channel.EMAIL:
            name = contact.display_name if contact else ""
            intro = texts["code.helpdeskIntro" if helpdesk else "code.resetIntro" if store == "reset" else "code.intro"]
            await self.mail.send([challenge.contact], texts["code.helpdeskSubject" if helpdesk else "code.subject"],
                                 code_mail(texts, name, code, minutes, intro,
                                            texts["code.helpdeskIgnore"] if helpdesk else None), language)
            return
        # This code's send, named the same on every retry of it (the provider drops a repeat, F1).
        once = send_once(challenge.message_id or "", challenge.send_count, challenge.sent_at or self.clock())
        if challenge.channel is Channel.SMS:
            sms = texts["code.helpdeskSms" if helpdesk else "code.sms"]
            await self.phone.send(Channel.SMS, challenge.contact, sms.format(code=code, minutes=minutes), once)
        else:
            voice = texts["code.helpdeskVoice" if helpdesk else "code.voice"]
            await self.phone.send(Channel.VOICE, challenge.contact, voice.format(spokenCode=_spoken(code)), once)
