"""The one Protocol every verification method implements, and the registry the flows find a method in.

A flow (reset, registration) never names a method's class: it asks the registry, `methods.get(Method.EMAIL)`,
what this deployment can deliver (`deliverable`) and why not (`unavailable`), and proves a method by its kind
of proof. Adding a method (a passkey is next) is one new file here and one line in `standard_methods`.

    VerificationMethod          what every method tells: its `method`, its kind of `proof`, whether usable
    +-- ContactCode  (code.py)  a code sent to a registered contact: email.py, sms.py, voice.py
    +-- SecretMethod            checked against the user's registered secret: authenticator_app.py,
                                security_questions.py
    +-- PasskeyMethod           a WebAuthn assertion (passkey.py), carried by routes of its own
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from shared.domain.policy import Method
from shared.domain.security_info import RegisteredMethod

if TYPE_CHECKING:
    from shared.adapters.phone import PhoneSender
    from shared.services.methods.code import ContactCode


class Proof(StrEnum):
    """How a person proves a method."""

    CONTACT_CODE = "contact-code"  # types the registered contact, then the code sent to it
    APP_CODE = "app-code"  # types the code their authenticator app shows
    ANSWERS = "answers"  # answers their registered questions
    PASSKEY = "passkey"  # unlocks a passkey on their device (WebAuthn, user verification)


class VerificationMethod(Protocol):
    """One way a person proves who they are."""

    @property
    def method(self) -> Method: ...

    @property
    def proof(self) -> Proof: ...

    def unavailable_reason(self) -> str | None:
        """None when this deployment can use the method now; else why not, in words for an admin."""
        ...


Response = str | Mapping[str, str]  # an app code, or question id -> answer


@runtime_checkable
class SecretMethod(VerificationMethod, Protocol):
    """A method checked against what the user registered (a sealed seed, answer hashes)."""

    async def verify(self, user_id: str, registered: RegisteredMethod, response: Response, now: datetime) -> bool:
        """True when `response` proves `registered`; a right response is used up where the method says so."""
        ...


class Methods:
    """The registry: every method this deployment knows, found by its `Method`."""

    def __init__(self, methods: Iterable[VerificationMethod]) -> None:
        self._methods = {m.method: m for m in methods}

    def get(self, method: Method) -> VerificationMethod:
        return self._methods[method]

    def contact_code(self, method: Method) -> ContactCode | None:
        """The method as a code sent to a contact, or None when it is proven otherwise (or unknown)."""
        from shared.services.methods.code import ContactCode

        found = self._methods.get(method)
        return found if isinstance(found, ContactCode) else None

    def secret(self, method: Method) -> SecretMethod:
        found = self._methods[method]
        if not isinstance(found, SecretMethod):
            raise KeyError(f"{method} is not checked against a registered secret")
        return found

    def contact_code_methods(self) -> frozenset[Method]:
        return frozenset(m for m in self._methods if self.contact_code(m) is not None)

    def deliverable(self) -> frozenset[Method]:
        """The methods this deployment can use now (phones only with a provider that sends their channel)."""
        return frozenset(m for m, found in self._methods.items() if found.unavailable_reason() is None)

    def unavailable(self, allowed: frozenset[Method]) -> list[tuple[Method, str]]:
        """Allowed methods this deployment cannot use, with the reason, in registry order."""
        missing = []
        for method, found in self._methods.items():
            reason = found.unavailable_reason()
            if method in allowed and reason is not None:
                missing.append((method, reason))
        return missing


def standard_methods(phone: PhoneSender, app: SecretMethod | None = None,
                     passkey: VerificationMethod | None = None) -> Methods:
    """The methods of this service: email, SMS and voice codes, the authenticator app, security questions and
    passkeys.

    `app` checks registered authenticator apps (it needs the security info store and the seed key), `passkey`
    holds the relying party; a flow that never checks one (registration of codes) may leave it out."""
    from shared.services.methods.email import EmailCode
    from shared.services.methods.security_questions import SecurityQuestions
    from shared.services.methods.sms import SmsCode
    from shared.services.methods.voice import VoiceCode

    methods: list[VerificationMethod] = [EmailCode(), SmsCode(phone), VoiceCode(phone)]
    if app is not None:
        methods.append(app)
    methods.append(SecurityQuestions())
    if passkey is not None:
        methods.append(passkey)
    return Methods(methods)
