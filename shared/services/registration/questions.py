"""Registering security questions for the signed-in user, and checking answers at a reset (security.md A11).

Offered only when the policy allows questions, and never to administrators (any directory role, asked of the
directory on each call through SecurityInfoService, so a user made admin a minute ago is refused and their
stored admin flag corrected). The user answers exactly the policy's
`registerCount` questions, picked from the shipped catalogue (web/i18n/questions.<lang>.json, English and
Swedish, stable ids) and the admin's custom questions; every broken rule comes back at once. Only Argon2id
hashes are stored; answers are never logged, audited or returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from shared import i18n
from shared.domain import security_questions as rules
from shared.domain.access import Principal
from shared.domain.audit import Activity, Outcome
from shared.domain.clock import Clock
from shared.domain.policy import Method, Policy
from shared.domain.security_info import RegisteredMethod
from shared.domain.security_questions import Answer, Question
from shared.errors import InvalidRequest, MethodNotAllowed, QuestionsNotForAdministrators
from shared.services.registration.answers import CatalogQuestion, QuestionCatalog, Verified
from shared.services.registration.ports import AuditWriter
from shared.services.registration.security_info import SecurityInfoService
from shared.services.registration.user import User, registration_event, user_of


def question_catalogue(language: str) -> dict[str, str]:
    """The predefined questions in one language (id -> text)."""
    if language not in i18n.LANGUAGES:
        raise ValueError(f"no question catalogue for language {language!r}")
    return i18n.catalog("questions", language)


class SecurityQuestionsService:
    def __init__(self, security_info: SecurityInfoService, audit: AuditWriter, clock: Clock,
                 catalogue: Callable[[str], Mapping[str, str]] = question_catalogue) -> None:
        self._info = security_info
        self._audit = audit
        self._clock = clock
        self._catalogue = catalogue

    async def catalog(self, principal: Principal, language: str) -> QuestionCatalog:
        policy = await self._allowed_policy(user_of(principal), None, attempt=False)
        questions = self._questions(policy, language)
        return QuestionCatalog(
            language=language, registerCount=policy.security_questions.register_count,
            answerMinLength=rules.MIN_ANSWER_LENGTH, answerMaxLength=rules.MAX_ANSWER_LENGTH,
            questions=[CatalogQuestion(id=q.id, text=q.text, custom=q.custom) for q in questions],
        )

    async def register(self, principal: Principal, answers: Sequence[Answer], client_ip: str | None) -> Verified:
        """Replace the user's questions with these answers, if every rule holds (400 listing each otherwise)."""
        user = user_of(principal)
        policy = await self._allowed_policy(user, client_ip, attempt=True)
        questions = self._questions(policy, "en")  # ids are the same in every language
        errors = rules.answer_errors(answers, questions, policy.security_questions.register_count,
                                     rules.identity_words(principal.upn, principal.name))
        if errors:
            await self._refused(user, client_ip, "answers-refused", f"{len(errors)} rule(s) broken")
            raise InvalidRequest(errors)
        # Argon2id takes ~50 ms of CPU per answer: off the event loop, so other requests keep flowing.
        secret = await asyncio.to_thread(rules.protect_answers, answers, questions)
        now = self._clock()
        method = RegisteredMethod(Method.SECURITY_QUESTIONS, now, secret=secret)
        status = await self._info.save_method(user, method, None, client_ip)
        return Verified(method=Method.SECURITY_QUESTIONS, status=status)

    async def _allowed_policy(self, user: User, client_ip: str | None, attempt: bool) -> Policy:
        """The policy, if it lets this user register questions; a refused registration `attempt` is audited
        (a mere look at the catalogue is not)."""
        policy = await self._info.policy()
        if Method.SECURITY_QUESTIONS not in policy.methods_allowed.methods():
            if attempt:
                await self._refused(user, client_ip, "not-allowed", "security questions are off in the policy")
            raise MethodNotAllowed("security questions not allowed by policy")
        if (await self._info.current(user.id)).is_admin:
            if attempt:
                await self._refused(user, client_ip, "not-for-administrators", "the user holds a directory role")
            raise QuestionsNotForAdministrators(f"user {user.id} holds a directory role")
        return policy

    def _questions(self, policy: Policy, language: str) -> list[Question]:
        return rules.available_questions(self._catalogue(language), policy.security_questions.custom_questions)

    async def _refused(self, user: User, client_ip: str | None, step: str, reason: str) -> None:
        await self._audit.write(registration_event(user, Activity.REGISTERED_INFO, Method.SECURITY_QUESTIONS,
                                                   Outcome.FAILURE, step, None, client_ip, self._clock(),
                                                   reason=reason))
