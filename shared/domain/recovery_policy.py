"""The policy's recovery parts: how a passkey counts, the Temporary Access Pass outcome, and Entra's own methods.

Each is a sub-document of the policy with defaults that change nothing, so documents saved before them stay valid.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt
from pydantic.alias_generators import to_camel

from shared.domain.policy_rules import Rule, only_with, range_rule

PASSKEY_TWICE_FOR_ADMINS_NEEDS_TWICE = Rule(
    "PASSKEY_TWICE_FOR_ADMINS_NEEDS_TWICE", "passkeys.countsAsTwoForAdministrators",
    "needs passkeys.countsAsTwoMethods: administrators are never judged more loosely than other users",
)
# Entra's own bounds for a pass's lifetime (10 minutes to 30 days); the tenant's TAP policy may narrow them.
TAP_MINIMUM_MINUTES = 10
TAP_MAXIMUM_MINUTES = 43200
TAP_LIFETIME_RANGE = range_rule("TAP_LIFETIME_RANGE", "temporaryAccessPass.lifetimeMinutes", TAP_MINIMUM_MINUTES,
                                TAP_MAXIMUM_MINUTES, " minutes (Entra's bounds; the tenant's TAP policy may narrow them)")


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, alias_generator=to_camel)


class Passkeys(_Part):
    """`counts_as_two_methods`: a passkey proven with user verification (something the user has, unlocked by their
    PIN or biometric) is two factors, so it may satisfy a policy that requires two methods on its own. Off by
    default; for administrators only when `counts_as_two_for_administrators` says so as well (security.md A12)."""

    counts_as_two_methods: StrictBool = False
    counts_as_two_for_administrators: StrictBool = False

    _admins_only_with_everyone = only_with("counts_as_two_for_administrators", "counts_as_two_methods",
                                           PASSKEY_TWICE_FOR_ADMINS_NEEDS_TWICE)


class TemporaryAccessPass(_Part):
    """Recovering into passwordless: a user who proved who they are may leave the reset with a Temporary Access
    Pass (Entra's time-limited passcode) to sign in and register a passkey or the Authenticator app in Entra.
    `instead_of_password`: offered in place of choosing a new password; `after_password`: offered once more right
    after a new password was set. `lifetime_minutes` and `one_time_use` ask Entra for the pass; the tenant's TAP
    policy (enabled, its minimum and maximum lifetime, one-time only) is checked when the pass is made."""

    instead_of_password: StrictBool = False
    after_password: StrictBool = False
    lifetime_minutes: Annotated[StrictInt, TAP_LIFETIME_RANGE] = 60
    one_time_use: StrictBool = True

    @property
    def offered(self) -> bool:
        return self.instead_of_password or self.after_password


class EntraMethods(_Part):
    """`count`: the phone and email methods a user registered in Entra (for MFA or Entra's SSPR) count as
    registered here and receive codes like the user's own, so an organisation that rolled out MFA does not make
    everyone register twice. Read by the compliance sweep and on demand, never by the sign-in hook."""

    count: StrictBool = False
