"""The SSPR policy: every setting an admin can change (contracts.md section 1), its named rules and defaults.

Entra has no Graph API for its SSPR settings, so this service owns its own copy. The JSON document is the model
dumped by alias (camelCase); a PUT replaces it whole. Every setting must be present except the three whose absence
means "nothing": `groupId` (null), `helpdesk` (no custom link), `securityQuestions.customQuestions` (none) and
`onPremises` (no writeback to Active Directory) and `expiryReminders` (no reminders; shared/domain/expiry_policy.py).

Validation reports every violated rule at once, each at its camelCase field path, in two passes that pydantic
runs in one call: the shape (types, unknown or missing fields) and every rule whose inputs have the right shape.
A rule that compares two settings is checked on the later one (e.g. `resetCount` against `registerCount`), so it
needs only the earlier one to be well-formed. Each rule is a named `Rule` below; `RULES` lists them all.

Decisions (documented here so a reader of the API finds them):
- `methodsAllowed.appNotification` is accepted as a key, so a settings list mirroring Entra's fits, but only as
  `false`: this service cannot send push notifications. Authenticator app users allow `authenticatorApp` (TOTP).
- Security questions are never enough to reset alone (security.md A11): they need another allowed method AND
  `methodsRequired` 2, because with 1 method required a user could reset with the questions only.
- `daysUserMaySkip`: after a user skips the registration prompt at sign-in, they are not prompted again for this
  many days; 0 (Entra SSPR's behaviour) asks again at the next sign-in. At most 14, the bound Entra puts on
  snoozing its registration campaign.
- `includeGuests`: guest users (userType Guest) are in scope only when true, for All and Selected alike. Off by
  default: a guest's password belongs to their home tenant.
- Administrators are not a policy setting: they always need 2 methods and never security questions
  (security.md A12, A11), see `effective_requirements`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel

from shared.domain.address_rules import DNS_LABEL, EMAIL, MAX_EMAIL_LENGTH, MAX_URL_LENGTH  # noqa: F401
from shared.domain.expiry_policy import (  # noqa: F401 (RULES lists the rules)
    DEFAULT_EXPIRY_DOCUMENT,
    EXPIRY_STAGES_RANGE,
    EXPIRY_STAGES_UNIQUE,
    ExpiryReminders,
)
from shared.domain.helpdesk_policy import (  # noqa: F401 (RULES lists the rules)
    HELPDESK_EMAIL_ADDRESS,
    HELPDESK_URL_HTTPS,
    HELPDESK_URL_OR_EMAIL,
    PROTECTED_GROUP_IS_GUID,
    Helpdesk,
)
from shared.domain.ids import is_guid
from shared.domain.onprem_policy import UNLOCK_NEEDS_WRITEBACK, OnPremises  # noqa: F401 (RULES lists it)
from shared.domain.policy_rules import Rule, range_rule
from shared.domain.recovery_policy import (  # noqa: F401 (RULES lists them)
    PASSKEY_TWICE_FOR_ADMINS_NEEDS_TWICE,
    TAP_LIFETIME_RANGE,
    EntraMethods,
    Passkeys,
    TemporaryAccessPass,
)

# The rules, in the order of the JSON document. Bounds come from contracts.md section 1 and security.md A1/A4.
GROUP_ID_IS_GUID = Rule(
    "GROUP_ID_IS_GUID", "groupId", "must be a group object id (GUID), such as 5d6e1c47-5b73-4d0e-9f1a-2c3b4d5e6f70"
)
GROUP_REQUIRED_WHEN_SELECTED = Rule("GROUP_REQUIRED_WHEN_SELECTED", "groupId", "is required when scope is 'selected'")
GROUP_ONLY_WHEN_SELECTED = Rule("GROUP_ONLY_WHEN_SELECTED", "groupId", "must be null unless scope is 'selected'")
APP_NOTIFICATION_NOT_OFFERED = Rule(
    "APP_NOTIFICATION_NOT_OFFERED", "methodsAllowed.appNotification",
    "must be false: this service cannot send push notifications; allow authenticatorApp (app codes) instead",
)
SECURITY_QUESTIONS_NOT_ALONE = Rule(
    "SECURITY_QUESTIONS_NOT_ALONE", "methodsAllowed.securityQuestions",
    "cannot be the only method allowed: allow another method too",
)
METHODS_REQUIRED_ONE_OR_TWO = Rule("METHODS_REQUIRED_ONE_OR_TWO", "methodsRequired", "must be 1 or 2")
ENOUGH_METHODS_ALLOWED = Rule(
    "ENOUGH_METHODS_ALLOWED", "methodsRequired",
    "is {required} but only {allowed} method(s) are allowed: allow more methods or require fewer",
)
SECURITY_QUESTIONS_NEED_TWO_METHODS = Rule(
    "SECURITY_QUESTIONS_NEED_TWO_METHODS", "methodsRequired",
    "must be 2 while security questions are allowed: questions alone never reset a password",
)
REGISTER_COUNT_RANGE = range_rule("REGISTER_COUNT_RANGE", "securityQuestions.registerCount", 3, 5)
RESET_COUNT_RANGE = range_rule("RESET_COUNT_RANGE", "securityQuestions.resetCount", 3, 5)
RESET_COUNT_NOT_ABOVE_REGISTER_COUNT = Rule(
    "RESET_COUNT_NOT_ABOVE_REGISTER_COUNT", "securityQuestions.resetCount",
    "must not be more than registerCount ({register_count}): a reset asks only questions the user registered",
)
CUSTOM_QUESTIONS_AT_MOST_20 = Rule(
    "CUSTOM_QUESTIONS_AT_MOST_20", "securityQuestions.customQuestions", "may hold at most 20 questions"
)
CUSTOM_QUESTION_LENGTH = Rule(
    "CUSTOM_QUESTION_LENGTH", "securityQuestions.customQuestions[i]", "must be 1 to 200 characters (not only spaces)"
)
CUSTOM_QUESTION_ONE_LINE = Rule(
    "CUSTOM_QUESTION_ONE_LINE", "securityQuestions.customQuestions[i]", "must be one line without control characters"
)
CUSTOM_QUESTIONS_UNIQUE = Rule(
    "CUSTOM_QUESTIONS_UNIQUE", "securityQuestions.customQuestions",
    "question [{index}] repeats question [{first}] (case and spacing do not matter)",
)
DAYS_USER_MAY_SKIP_RANGE = range_rule(
    "DAYS_USER_MAY_SKIP_RANGE", "daysUserMaySkip", 0, 14, " (0 = asked again at the next sign-in)"
)
RECONFIRM_DAYS_RANGE = range_rule("RECONFIRM_DAYS_RANGE", "reconfirmDays", 0, 730, " (0 = never)")
CODE_LENGTH_RANGE = range_rule("CODE_LENGTH_RANGE", "codes.length", 6, 10, " digits")
EMAIL_CODE_TTL_RANGE = range_rule("EMAIL_CODE_TTL_RANGE", "codes.emailTtlMinutes", 1, 15, " minutes")
SMS_CODE_TTL_RANGE = range_rule("SMS_CODE_TTL_RANGE", "codes.smsTtlMinutes", 1, 10, " minutes")
VOICE_CODE_TTL_RANGE = range_rule("VOICE_CODE_TTL_RANGE", "codes.voiceTtlMinutes", 1, 10, " minutes")

RULES: tuple[Rule, ...] = tuple(v for k, v in sorted(globals().items()) if isinstance(v, Rule) and k == v.name)


class Scope(StrEnum):
    """Who may use SSPR: nobody, the members (nested too) of one group, or every user."""

    NONE = "none"
    SELECTED = "selected"
    ALL = "all"


class Method(StrEnum):
    """A way to prove who you are, as the policy and the JSON name it."""

    EMAIL = "email"
    MOBILE_PHONE = "mobilePhone"  # SMS code
    OFFICE_PHONE = "officePhone"  # voice call
    AUTHENTICATOR_APP = "authenticatorApp"  # TOTP code
    APP_NOTIFICATION = "appNotification"  # push; not offered by this service
    SECURITY_QUESTIONS = "securityQuestions"
    PASSKEY = "passkey"  # WebAuthn, user verification required (shared/domain/passkeys.py)


class _Document(BaseModel):
    """Strict JSON: exact types, no unknown fields, camelCase names only, immutable once built."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, alias_generator=to_camel)


class MethodsAllowed(_Document):
    """Which methods users may register and reset with. Security questions come last: their rule reads the rest."""

    email: StrictBool
    mobile_phone: StrictBool
    office_phone: StrictBool
    authenticator_app: StrictBool
    app_notification: StrictBool
    passkey: StrictBool = False  # absent in documents saved before passkeys: off
    security_questions: StrictBool

    @field_validator("app_notification")
    @classmethod
    def _no_push(cls, value: bool) -> bool:
        if value:
            raise APP_NOTIFICATION_NOT_OFFERED.violated()
        return value

    @field_validator("security_questions")
    @classmethod
    def _questions_never_alone(cls, value: bool, info: ValidationInfo) -> bool:
        others = [info.data.get(m) for m in ("email", "mobile_phone", "office_phone", "authenticator_app", "passkey")]
        if value and None not in others and not any(others):
            raise SECURITY_QUESTIONS_NOT_ALONE.violated()
        return value

    def methods(self) -> frozenset[Method]:
        return frozenset(m for m in Method if getattr(self, _attribute(m)))


def _attribute(method: Method) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", method.value).lower()


def _question_key(text: str) -> str:
    return " ".join(text.split()).casefold()


def _custom_question(text: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in text):
        raise CUSTOM_QUESTION_ONE_LINE.violated()
    if not text.strip() or len(text) > 200:
        raise CUSTOM_QUESTION_LENGTH.violated()
    return text.strip()


class SecurityQuestions(_Document):
    """How many questions a user registers and answers at reset, and the organisation's own questions."""

    register_count: Annotated[StrictInt, REGISTER_COUNT_RANGE]
    reset_count: Annotated[StrictInt, RESET_COUNT_RANGE]
    # Lax only on the container, so a JSON array becomes an immutable tuple; items stay strict strings.
    custom_questions: Annotated[tuple[Annotated[str, AfterValidator(_custom_question)], ...], Field(strict=False)] = ()

    @field_validator("reset_count")
    @classmethod
    def _reset_within_registered(cls, value: int, info: ValidationInfo) -> int:
        register_count = info.data.get("register_count")
        if register_count is not None and value > register_count:
            raise RESET_COUNT_NOT_ABOVE_REGISTER_COUNT.violated(register_count=register_count)
        return value

    @field_validator("custom_questions")
    @classmethod
    def _few_and_distinct(cls, questions: tuple[str, ...]) -> tuple[str, ...]:
        if len(questions) > 20:
            raise CUSTOM_QUESTIONS_AT_MOST_20.violated()
        seen: dict[str, int] = {}
        for index, question in enumerate(questions):
            first = seen.setdefault(_question_key(question), index)
            if first != index:
                raise CUSTOM_QUESTIONS_UNIQUE.violated(index=index, first=first)
        return questions


class Codes(_Document):
    """One-time codes: digits, and how long a code lives per channel (security.md A1, A4)."""

    length: Annotated[StrictInt, CODE_LENGTH_RANGE]
    email_ttl_minutes: Annotated[StrictInt, EMAIL_CODE_TTL_RANGE]
    sms_ttl_minutes: Annotated[StrictInt, SMS_CODE_TTL_RANGE]
    voice_ttl_minutes: Annotated[StrictInt, VOICE_CODE_TTL_RANGE]


class Policy(_Document):
    """The SSPR policy document. Build it from JSON with `Policy.model_validate(...)`; every rule holds on it."""

    scope: Annotated[Scope, Field(strict=False)]  # lax only to turn the JSON string into the enum
    group_id: Annotated[str | None, Field(validate_default=True)] = None
    include_guests: StrictBool
    methods_allowed: MethodsAllowed
    methods_required: StrictInt
    security_questions: SecurityQuestions
    require_registration_at_sign_in: StrictBool
    days_user_may_skip: Annotated[StrictInt, DAYS_USER_MAY_SKIP_RANGE]
    reconfirm_days: Annotated[StrictInt, RECONFIRM_DAYS_RANGE]
    notify_users_on_reset: StrictBool
    notify_admins_on_admin_reset: StrictBool
    helpdesk: Helpdesk = Helpdesk()
    codes: Codes
    on_premises: OnPremises = OnPremises()
    passkeys: Passkeys = Passkeys()
    temporary_access_pass: TemporaryAccessPass = TemporaryAccessPass()
    entra_methods: EntraMethods = EntraMethods()
    expiry_reminders: ExpiryReminders = ExpiryReminders()

    @field_validator("group_id")
    @classmethod
    def _group_iff_selected(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not is_guid(value):
            raise GROUP_ID_IS_GUID.violated()
        scope = info.data.get("scope")
        if scope == Scope.SELECTED and value is None:
            raise GROUP_REQUIRED_WHEN_SELECTED.violated()
        if scope in (Scope.NONE, Scope.ALL) and value is not None:
            raise GROUP_ONLY_WHEN_SELECTED.violated()
        return value.lower() if value else None

    @field_validator("methods_required")
    @classmethod
    def _reachable(cls, value: int, info: ValidationInfo) -> int:
        if value not in (1, 2):
            raise METHODS_REQUIRED_ONE_OR_TWO.violated()
        allowed: MethodsAllowed | None = info.data.get("methods_allowed")
        if allowed is None:
            return value
        methods = allowed.methods()
        if len(methods) < value:
            raise ENOUGH_METHODS_ALLOWED.violated(required=value, allowed=len(methods))
        if Method.SECURITY_QUESTIONS in methods and value < 2:
            raise SECURITY_QUESTIONS_NEED_TWO_METHODS.violated()
        return value

    def as_document(self) -> dict[str, Any]:
        """The JSON document (camelCase), as GET returns it and PUT takes it."""
        return self.model_dump(mode="json", by_alias=True)


DEFAULT_DOCUMENT: dict[str, Any] = {
    # Nobody until an admin opts in: deploying the service must not change what any user can do.
    "scope": "none",
    "groupId": None,
    # A guest's password belongs to their home tenant.
    "includeGuests": False,
    # Entra's usual choice. Office phone (voice) off: calls cost money and few users have a direct line.
    # Security questions off: knowledge-based answers are refused by ASVS and NIST SP 800-63B.
    "methodsAllowed": {
        "email": True, "mobilePhone": True, "officePhone": False, "authenticatorApp": True,
        "appNotification": False, "passkey": False, "securityQuestions": False,
    },
    # Entra's default: 2 would lock out every user who registered only one method. Admins need 2 regardless.
    "methodsRequired": 1,
    # Entra's defaults (5 to register, 3 to reset), used only if an admin turns questions on.
    "securityQuestions": {"registerCount": 5, "resetCount": 3, "customQuestions": []},
    "requireRegistrationAtSignIn": True,
    "daysUserMaySkip": 0,
    "reconfirmDays": 180,
    # Both on: a reset nobody is told about is how an account takeover stays unnoticed.
    "notifyUsersOnReset": True,
    "notifyAdminsOnAdminReset": True,
    # Actions on administrators and the protected group wait for a second helpdesk agent (shared/domain/helpdesk.py).
    "helpdesk": {"url": None, "email": None, "privilegedCallers": "four-eyes", "protectedGroupId": None},
    # security.md A1/A4: 8 digits, 5 minutes on every channel.
    "codes": {"length": 8, "emailTtlMinutes": 5, "smsTtlMinutes": 5, "voiceTtlMinutes": 5},
    # Off until an admin has installed the on-premises agent (docs/onprem.md).
    "onPremises": {"writeback": False, "unlockWithoutReset": False},
    # Off until an admin turns them on (shared/domain/recovery_policy.py says what each does).
    "passkeys": {"countsAsTwoMethods": False, "countsAsTwoForAdministrators": False},
    "temporaryAccessPass": {"insteadOfPassword": False, "afterPassword": False, "lifetimeMinutes": 60,
                            "oneTimeUse": True},
    "entraMethods": {"count": False},
    # Off until an admin turns them on; the daily run still shows who expires when (shared/domain/expiry_policy.py).
    "expiryReminders": DEFAULT_EXPIRY_DOCUMENT,
}
DEFAULT_POLICY = Policy.model_validate(DEFAULT_DOCUMENT)


@dataclass(frozen=True)
class Requirements:
    """What one user must prove to reset: how many methods, chosen from which."""

    methods_required: int
    methods_allowed: frozenset[Method]

    @property
    def satisfiable(self) -> bool:
        """False when the policy leaves fewer allowed methods than required (e.g. an admin with only questions)."""
        return len(self.methods_allowed) >= self.methods_required


ADMIN_METHODS_REQUIRED = 2


def effective_requirements(policy: Policy, is_admin: bool) -> Requirements:
    """The policy as it applies to one user. Administrators (any directory role) always need 2 methods and never
    use security questions, whatever the policy says (security.md A11, A12); they keep the policy's other
    methods, so an organisation that turned SMS off has turned it off for its admins too."""
    allowed = policy.methods_allowed.methods()
    if is_admin:
        return Requirements(ADMIN_METHODS_REQUIRED, allowed - {Method.SECURITY_QUESTIONS})
    return Requirements(policy.methods_required, allowed)
