"""The composition root: settings validated at import (fail closed), adapters built once per process.

Blueprints take their services from here. Adapters are created lazily on first use, inside the event loop
that runs the async functions, because async SDK clients bind to the loop that first uses them.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shared.adapters.audit_store import AuditStore
from shared.adapters.credentials import graph_credential
from shared.adapters.enablement_store import EnablementQueue, EnablementStore
from shared.adapters.graph import GraphGateway
from shared.adapters.policy_store import PolicyStore
from shared.adapters.reminder_store import MessageQueues, ReminderStore
from shared.adapters.security_info_store import SecurityInfoStore
from shared.adapters.storage import StorageClients
from shared.adapters.tokens import TokenValidator
from shared.config import Settings, load_settings
from shared.services.audit import AuditLog
from shared.services.enablement import EnablementService
from shared.services.health import HealthProbe
from shared.services.password_expiration import PasswordExpirationService
from shared.services.policy import PolicyCache, PolicyService
from shared.services.signin import RegistrationReminders, SignInEventIntake, SignInHook
from shared.services.tenant import EnablementRows, TenantEligibilityService

if TYPE_CHECKING:  # imported lazily below, so a process pays for them only when it uses them
    from shared.adapters.phone import PhoneSender
    from shared.adapters.secret_box import SecretBox
    from shared.services.compliance import ComplianceService
    from shared.services.maintenance import MaintenanceService
    from shared.services.methods.authenticator_app import AuthenticatorAppCodes
    from shared.services.notifications import NotificationService
    from shared.services.registration.app import AuthenticatorAppService
    from shared.services.registration.flow import RegistrationService
    from shared.services.registration.questions import SecurityQuestionsService
    from shared.services.registration.security_info import SecurityInfoService
    from shared.services.reset.flow import ResetService
    from shared.services.scope_sync import ScopeSyncService
    from shared.services.throttle import ThrottleService

log = logging.getLogger("sspr")

settings: Settings = load_settings()

_storage: StorageClients | None = None
_graph: GraphGateway | None = None
_tokens: TokenValidator | None = None


def storage() -> StorageClients:
    global _storage
    if _storage is None:
        _storage = StorageClients.from_settings(settings)
    return _storage


def graph() -> GraphGateway:
    global _graph
    if _graph is None:
        _graph = GraphGateway.create(settings, graph_credential(settings))
    return _graph


def tokens() -> TokenValidator:
    """Validates Entra access tokens issued to this API (audience: its app id, or api://<app id>)."""
    global _tokens
    if _tokens is None:
        _tokens = TokenValidator(
            openid_configuration_url=settings.openid_configuration_url,
            issuer=settings.issuer,
            v1_issuer=settings.v1_issuer,
            audiences=[str(settings.api_client_id), f"api://{settings.api_client_id}"],
            tenant_id=str(settings.tenant_id),
        )
    return _tokens


def audit() -> AuditLog:
    return AuditLog(AuditStore(storage()))


def utc_now() -> datetime:
    return datetime.now(UTC)


def tenant_eligibility() -> TenantEligibilityService:
    # Scope: the Enablement table once a run completed, all enabled members before that.
    return TenantEligibilityService(graph(), EnablementRows(EnablementStore(storage())))


def password_expiration() -> PasswordExpirationService:
    return PasswordExpirationService(graph(), AuditStore(storage()), utc_now)


def policy() -> PolicyService:
    # The policy is the source of truth of the scope: saving a scope change starts an enablement run.
    return PolicyService(PolicyStore(storage()), AuditStore(storage()), utc_now, enablement(), cache=policy_cache())


_policy_cache: PolicyCache | None = None


def policy_cache() -> PolicyCache:
    """The policy as hot paths read it: one storage read per 30 s per process (shared/services/policy.py)."""
    global _policy_cache
    if _policy_cache is None:
        _policy_cache = PolicyCache(PolicyStore(storage()))
    return _policy_cache


_enablement: EnablementService | None = None


def enablement() -> EnablementService:
    """One per process: its store bounds the table transactions this process has in flight."""
    global _enablement
    if _enablement is None:
        _enablement = EnablementService(EnablementStore(storage()), EnablementQueue(storage()), graph(),
                                        AuditStore(storage()), utc_now)
    return _enablement


# ---- sign-in (hook, streamed sign-in events, registration reminders) -------------------------------------------

_signin_hook: SignInHook | None = None


def signin_hook() -> SignInHook:
    """One per process: the hook is the hottest path, so its stores and the policy cache are built once."""
    global _signin_hook
    if _signin_hook is None:
        _signin_hook = SignInHook(SecurityInfoStore(storage()), EnablementStore(storage()), policy_cache(),
                                  settings.page_url("register"), utc_now)
    return _signin_hook


async def authenticate_calling_app(token: str, app_id: str) -> None:
    """A valid access token for this API, requested by app `app_id` (D3); Unauthenticated otherwise."""
    from shared.adapters.tokens import require_calling_app

    require_calling_app(await tokens().validate(token), app_id)


def signin_events() -> SignInEventIntake:
    return SignInEventIntake(MessageQueues(storage()))


def registration_reminders() -> RegistrationReminders:
    return RegistrationReminders(SecurityInfoStore(storage()), EnablementStore(storage()), policy_cache(),
                                 ReminderStore(storage()), MessageQueues(storage()),
                                 timedelta(days=settings.registration_reminder_days), utc_now)


# ---- compliance runs -------------------------------------------------------------------------------------------

_compliance: ComplianceService | None = None


def compliance() -> ComplianceService:
    """One per process: its store bounds the table transactions and its pacer the reports requests in flight."""
    from shared.adapters.compliance_store import ComplianceQueue, ComplianceStore
    from shared.services.compliance import ComplianceService

    global _compliance
    if _compliance is None:
        _compliance = ComplianceService(ComplianceStore(storage()), ComplianceQueue(storage()), graph(),
                                        policy_cache(), ReminderStore(storage()), MessageQueues(storage()),
                                        timedelta(days=settings.registration_reminder_days), AuditStore(storage()),
                                        utc_now)
    return _compliance


# ---- maintenance timers: purge of expired state, scope re-sync ---------------------------------------------------


def maintenance() -> MaintenanceService:
    from shared.adapters.challenge_store import ChallengeStore
    from shared.adapters.compliance_store import ComplianceStore
    from shared.adapters.mail import MailLedger
    from shared.adapters.proof_of_work import ProofOfWork
    from shared.adapters.reset_store import ResetFlowStore
    from shared.adapters.throttle_store import ThrottleStore
    from shared.services.maintenance import MaintenanceService

    return MaintenanceService(ChallengeStore(storage()), SecurityInfoStore(storage()), ThrottleStore(storage()),
                              MailLedger(storage()), ReminderStore(storage()), EnablementStore(storage()),
                              timedelta(days=settings.registration_reminder_days), utc_now,
                              reset_flows=ResetFlowStore(storage()), proofs=ProofOfWork(storage(), code_key(), utc_now),
                              compliance=ComplianceStore(storage()))


def scope_sync() -> ScopeSyncService:
    from shared.adapters.sync_store import SyncStore
    from shared.services.scope_sync import ScopeSyncService

    return ScopeSyncService(SyncStore(storage()), EnablementStore(storage()), PolicyStore(storage()), graph(),
                            AuditStore(storage()), utc_now)


# ---- registration of security info, one-time codes and the notifications worker ----------------------------

_phone: PhoneSender | None = None
_code_key: bytes | None = None


def phone() -> PhoneSender:
    """The SMS / voice sender of SSPR_SMS_PROVIDER (emulator, acs or none), one per process."""
    from shared.adapters.phone import phone_sender

    global _phone
    if _phone is None:
        _phone = phone_sender(settings)
    return _phone


def code_key() -> bytes:
    global _code_key
    if _code_key is None:
        import base64

        _code_key = base64.b64decode(settings.code_hmac_key)
    return _code_key


def code_throttle() -> ThrottleService:
    from shared.adapters.throttle_store import ThrottleStore
    from shared.services.throttle import ThrottleService

    return ThrottleService(ThrottleStore(storage()), AuditStore(storage()), utc_now)


def security_info() -> SecurityInfoService:
    """Registration's one saver of security info: the policy as saved (no cache), admins asked of Graph."""
    from shared.services.registration.security_info import CurrentPolicy, SecurityInfoService

    return SecurityInfoService(SecurityInfoStore(storage()), graph(), CurrentPolicy(PolicyStore(storage())),
                               AuditStore(storage()), utc_now)


def registration() -> RegistrationService:
    from shared.adapters.challenge_store import ChallengeStore
    from shared.adapters.notification_queue import NotificationQueue
    from shared.services.methods import standard_methods
    from shared.services.registration.flow import RegistrationService

    return RegistrationService(
        security_info(), ChallengeStore(storage()), code_throttle(), NotificationQueue(storage()),
        standard_methods(phone()), AuditStore(storage()), code_key(), utc_now,
    )


def notifications() -> NotificationService:
    from shared.adapters.challenge_store import ChallengeStore
    from shared.adapters.mail import MailLedger, MailSender
    from shared.adapters.reset_store import ResetFlowStore
    from shared.services.notifications import CodeDelivery, NotificationService, ReminderMails, ResetNotices

    mail, ledger = MailSender(graph(), settings.mail_sender), MailLedger(storage())
    return NotificationService(
        CodeDelivery(ChallengeStore(storage()), mail, phone(), graph(), policy_cache(), code_key(), utc_now,
                     reset_challenges=ResetFlowStore(storage()).challenges),
        ResetNotices(mail, graph(), ledger, policy_cache(), utc_now, security_info=SecurityInfoStore(storage())),
        ReminderMails(mail, graph(), ledger, settings.page_url("register"), utc_now),
    )


# ---- authenticator app (TOTP) and security questions ----------------------------------------------------------

_secret_box: SecretBox | None = None


def secret_box() -> SecretBox:
    """AES-256-GCM for TOTP seeds, keyed from SSPR_TOTP_ENCRYPTION_KEY (HKDF), one per process."""
    from shared.adapters.secret_box import SecretBox

    global _secret_box
    if _secret_box is None:
        _secret_box = SecretBox.from_base64(settings.totp_encryption_key)
    return _secret_box


def authenticator_app() -> AuthenticatorAppService:
    from shared.services.registration.app import AuthenticatorAppService

    return AuthenticatorAppService(SecurityInfoStore(storage()), secret_box(), code_throttle(), graph(),
                                   security_info(), AuditStore(storage()), utc_now)


def authenticator_app_codes() -> AuthenticatorAppCodes:
    """Checks codes of registered authenticator apps (for the reset flow)."""
    from shared.services.methods.authenticator_app import AuthenticatorAppCodes

    return AuthenticatorAppCodes(SecurityInfoStore(storage()), secret_box())


def security_questions() -> SecurityQuestionsService:
    from shared.services.registration.questions import SecurityQuestionsService

    return SecurityQuestionsService(security_info(), AuditStore(storage()), utc_now)


# ---- the self-service reset (one per process: it caches the tenant's subscriptions for 10 minutes) ---------------

_reset: ResetService | None = None


def reset() -> ResetService:
    from shared.adapters.notification_queue import NotificationQueue
    from shared.adapters.proof_of_work import ProofOfWork
    from shared.adapters.reset_store import ResetFlowStore
    from shared.services.methods import standard_methods
    from shared.services.methods.authenticator_app import AuthenticatorAppCodes
    from shared.services.password_targets import PasswordTargets
    from shared.services.password_targets.entra import EntraTarget
    from shared.services.reset.audit import ResetAudit
    from shared.services.reset.challenges import ResetChallenges
    from shared.services.reset.flow import ResetService
    from shared.services.reset.offer import ResetOffer
    from shared.services.reset.pace import StepDeadline
    from shared.services.reset.password import PasswordStep
    from shared.services.reset.state import ResetFlows
    from shared.services.reset.user import UserResolver

    global _reset
    if _reset is None:
        flows = ResetFlowStore(storage())
        queue = NotificationQueue(storage())
        audit = ResetAudit(AuditStore(storage()), utc_now)
        users = UserResolver(graph(), SecurityInfoStore(storage()), EnablementStore(storage()))
        methods = standard_methods(phone(), AuthenticatorAppCodes(SecurityInfoStore(storage()), secret_box()))
        _reset = ResetService(
            ResetFlows(flows, code_key(), utc_now, StepDeadline(settings.reset_step_deadline_ms / 1000)),
            ProofOfWork(storage(), code_key(), utc_now),
            ResetOffer(policy_cache(), methods, settings.page_url("register")), code_throttle(), users,
            ResetChallenges(flows.challenges, queue, code_key(), utc_now),
            PasswordStep(users, PasswordTargets([EntraTarget(graph())]), queue, audit, utc_now), audit,
        )
    return _reset


_health: HealthProbe | None = None


def health() -> HealthProbe:
    global _health
    if _health is None:
        _health = HealthProbe(storage(), graph())
    return _health


def load_common_passwords() -> None:
    """Read and index the banned-password list now (~30 ms), so a user's first keystroke does not pay it."""
    from shared.adapters.common_passwords import common_passwords

    common_passwords()
