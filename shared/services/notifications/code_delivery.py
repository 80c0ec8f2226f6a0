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

from shared.adapters.challenge_store import ChallengeStore
from shared.adapters.mail import MailSender, mail_texts
from shared.adapters.phone import PhoneSender, send_once
from shared.domain import codes
from shared.domain.clock import Clock
from shared.domain.codes import Challenge, Channel, mask_contact
from shared.domain.notifications import VerificationCode
from shared.services.notifications.bodies import code_mail
from shared.services.notifications.recipients import Contacts, contact_or_none, language_of
from shared.services.policy import PolicyCache

log = logging.getLogger("sspr.notifications")


def _spoken(code: str) -> str:
    return ", ".join(code)


class CodeDelivery:
    def __init__(self, challenges: ChallengeStore, mail: MailSender, phone: PhoneSender, contacts: Contacts,
                 policy: PolicyCache, code_key: bytes, clock: Clock,
                 reset_challenges: ChallengeStore | None = None) -> None:
        self._challenges = challenges
        self._reset_challenges = reset_challenges or challenges
        self._mail = mail
        self._phone = phone
        self._contacts = contacts
        self._policy = policy
        self._key = code_key
        self._clock = clock

    async def send(self, message: VerificationCode) -> bool:
        """Issue and send the challenge's code if this message may; True when a code went out."""
        ref = message.challenge
        policy = await self._policy.get()
        code = codes.new_code(codes.code_length(policy.codes))
        digest = codes.code_digest(self._key, ref.partition, ref.row, code)
        now = self._clock()

        def issue(challenge: Challenge) -> tuple[bool, Challenge]:
            if not codes.should_send(challenge, message.id, now):
                return False, challenge
            return True, codes.issue_code(challenge, digest, now, codes.code_ttl(policy.codes, challenge.channel))

        store = self._reset_challenges if ref.store == "reset" else self._challenges
        outcome = await store.change(ref.partition, ref.row, issue)
        if outcome is None or not outcome[0]:
            log.info("verification code message %s: nothing to send (delivered, superseded or gone)", message.id)
            return False
        challenge = outcome[1]
        minutes = int(codes.code_ttl(policy.codes, challenge.channel).total_seconds() // 60)
        try:
            await self._deliver(challenge, code, minutes, reset=ref.store == "reset")
        except Exception:
            await store.change(ref.partition, ref.row, lambda c: (None, codes.mark_send_failed(c, self._clock())
                                                                            if c.message_id == message.id else c))
            raise
        await store.change(ref.partition, ref.row, lambda c: (None, codes.mark_delivered(c, self._clock())
                                                                        if c.message_id == message.id else c))
        log.info("verification code of %s sent by %s to %s", challenge.method, challenge.channel,
                 mask_contact(challenge.contact))
        return True

    async def _deliver(self, challenge: Challenge, code: str, minutes: int, reset: bool = False) -> None:
        contact = await contact_or_none(self._contacts, challenge.user_id)
        texts = mail_texts(language_of(contact))
        if challenge.channel is Channel.EMAIL:
            name = contact.display_name if contact else ""
            intro = texts["code.resetIntro"] if reset else texts["code.intro"]
            await self._mail.send([challenge.contact], texts["code.subject"],
                                  code_mail(texts, name, code, minutes, intro))
            return
        # This code's send, named the same on every retry of it (the provider drops a repeat, F1).
        once = send_once(challenge.message_id or "", challenge.send_count, challenge.sent_at or self._clock())
        if challenge.channel is Channel.SMS:
            await self._phone.send(Channel.SMS, challenge.contact, texts["code.sms"].format(code=code, minutes=minutes),
                                   once)
        else:
            await self._phone.send(Channel.VOICE, challenge.contact,
                                   texts["code.voice"].format(spokenCode=_spoken(code)), once)
