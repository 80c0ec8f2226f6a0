"""The passkey method: WebAuthn ceremonies with python-fido2 against the pages' own relying party (security.md I1).

Registration asks for a discoverable credential with user verification; a reset asks for an assertion with no
list of credentials (`allowCredentials` empty), so nothing before a first proof depends on the username (I2):
the authenticator offers the passkeys it holds for this relying party, and the answer names its credential and
the user handle. The library checks the ceremony (type, challenge, origin - exactly the pages' origin - RP id
hash, user present and verified, signature); the rules of what is kept (sign counter, backup flags) are
shared/domain/passkeys.py's. Every refusal is `PasskeyRefused` with a reason for the log and the audit, never
told to the caller (one answer for all, as C3 for codes).

Why python-fido2 (docs/passkeys.md has the measures): its only dependency is `cryptography`, which the service
already has, and it imports in half the time of py_webauthn, which brings pyOpenSSL, pyasn1 and cbor2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fido2.server import Fido2Server
from fido2.utils import websafe_decode, websafe_encode
from fido2.webauthn import (
    AttestedCredentialData,
    AuthenticationResponse,
    AuthenticatorData,
    PublicKeyCredentialDescriptor,
    PublicKeyCredentialRpEntity,
    PublicKeyCredentialType,
    PublicKeyCredentialUserEntity,
    RegistrationResponse,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from shared.domain.passkeys import Passkey
from shared.domain.policy import Method
from shared.domain.relying_party import RelyingParty
from shared.services.methods.base import Proof

CEREMONY_TIMEOUT_MS = 120_000  # what the browser gives the person to touch or unlock the authenticator


# The browser's bytes go through fido2's CBOR, COSE and signature code, whose failures on malformed input are not one
# type (ValueError, KeyError, IndexError, struct.error, cryptography's InvalidSignature, ...): each parse of
# untrusted input turns any of them into a refusal, never a 500.


class PasskeyRefused(Exception):
    """A ceremony that does not prove what it claims; `reason` is for the log and the audit only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class NewCredential:
    id: str
    credential: str
    sign_count: int
    backup_eligible: bool
    backed_up: bool


@dataclass(frozen=True)
class Assertion:
    credential_id: str
    user_handle: str | None


@dataclass(frozen=True)
class Proven:
    sign_count: int
    backup_eligible: bool
    backed_up: bool


def _state(challenge: bytes) -> dict[str, Any]:
    return {"challenge": websafe_encode(challenge), "user_verification": UserVerificationRequirement.REQUIRED}


def _flags(data: AuthenticatorData) -> tuple[bool, bool]:
    return bool(data.flags & AuthenticatorData.FLAG.BE), bool(data.flags & AuthenticatorData.FLAG.BS)


class PasskeyMethod:
    """Passkeys as a verification method; None as relying party when the pages have no domain name."""

    method = Method.PASSKEY
    proof = Proof.PASSKEY

    def __init__(self, party: RelyingParty | None) -> None:
        self.party = party
        self._server = None if party is None else Fido2Server(
            PublicKeyCredentialRpEntity(name=party.name, id=party.id),
            verify_origin=lambda origin: origin == party.origin,
        )

    def unavailable_reason(self) -> str | None:
        if self._server is None:
            return "passkeys need the pages on a domain name: SSPR_PUBLIC_BASE_URL names an IP address"
        return None

    def _ready(self) -> Fido2Server:
        if self._server is None:
            raise PasskeyRefused("no relying party")
        return self._server

    def creation_options(self, handle: str, user_name: str, display_name: str, existing: list[Passkey],
                         challenge: bytes) -> dict[str, Any]:
        """What navigator.credentials.create needs: a discoverable credential, user verification required, none
        of the user's existing passkeys again."""
        options, _ = self._ready().register_begin(
            PublicKeyCredentialUserEntity(name=user_name, id=websafe_decode(handle), display_name=display_name),
            [PublicKeyCredentialDescriptor(type=PublicKeyCredentialType.PUBLIC_KEY, id=websafe_decode(p.id))
             for p in existing],
            resident_key_requirement=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED, challenge=challenge)
        public_key = dict(options)["publicKey"]
        public_key["timeout"] = CEREMONY_TIMEOUT_MS
        return {"publicKey": public_key}

    def registered(self, challenge: bytes, response: Mapping[str, Any]) -> NewCredential:
        try:
            data = self._ready().register_complete(_state(challenge), RegistrationResponse.from_dict(response))
        except Exception as error:  # noqa: BLE001 - untrusted CBOR/COSE bytes fail many ways
            raise PasskeyRefused(f"registration refused: {error}") from None
        credential = data.credential_data
        if credential is None:
            raise PasskeyRefused("registration refused: no credential data")
        eligible, backed_up = _flags(data)
        return NewCredential(id=websafe_encode(credential.credential_id), credential=websafe_encode(bytes(credential)),
                             sign_count=data.counter, backup_eligible=eligible, backed_up=backed_up)

    def request_options(self, challenge: bytes) -> dict[str, Any]:
        """What navigator.credentials.get needs: no credentials listed, so it is the same for every username."""
        options, _ = self._ready().authenticate_begin(None, user_verification=UserVerificationRequirement.REQUIRED,
                                                      challenge=challenge)
        public_key = dict(options)["publicKey"]
        public_key["timeout"] = CEREMONY_TIMEOUT_MS
        return {"publicKey": public_key}

    @staticmethod
    def assertion(response: Mapping[str, Any]) -> Assertion:
        """Which credential and user handle an assertion names (not yet proven)."""
        try:
            parsed = AuthenticationResponse.from_dict(response)
        except Exception as error:  # noqa: BLE001 - untrusted CBOR/COSE bytes fail many ways
            raise PasskeyRefused(f"malformed assertion: {error}") from None
        handle = parsed.response.user_handle
        return Assertion(credential_id=websafe_encode(parsed.raw_id),
                         user_handle=websafe_encode(handle) if handle else None)

    def verify(self, challenge: bytes, passkey: Passkey, response: Mapping[str, Any]) -> Proven:
        """The assertion is this passkey's, made now for this challenge on our origin with user verification."""
        credential = AttestedCredentialData(websafe_decode(passkey.credential))
        try:
            parsed = AuthenticationResponse.from_dict(response)
            self._ready().authenticate_complete(_state(challenge), [credential], parsed)
        except Exception as error:  # noqa: BLE001 - untrusted CBOR/COSE bytes fail many ways
            raise PasskeyRefused(f"assertion refused: {error}") from None
        data = parsed.response.authenticator_data
        eligible, backed_up = _flags(data)
        return Proven(sign_count=data.counter, backup_eligible=eligible, backed_up=backed_up)
