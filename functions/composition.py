"""The composition root: one container that builds every adapter and service once per process, on first use.

Settings are validated at import (fail closed). Blueprints reach services only through `root`; nothing else in
`functions/` builds an adapter. Each property is built lazily, inside the event loop that runs the async
functions (async SDK clients bind to the loop that first uses them), and its imports stay inside it, so a process
pays only for what it serves: the sign-in hook's cold start never imports the reset flow or zxcvbn.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from shared.config import Settings, load_settings
from shared.domain.clock import utc_now

if TYPE_CHECKING:
    from shared.adapters.audit_store import AuditStore
    from shared.adapters.enablement_store import EnablementStore
    from shared.adapters.graph import GraphGateway
    from shared.adapters.notification_queue import NotificationQueue
    from shared.adapters.phone import PhoneSender
    from shared.adapters.policy_store import PolicyStore
    from shared.adapters.reminder_store import MessageQueues, ReminderStore
    from shared.adapters.reset_store import ResetFlowStore
    from shared.adapters.secret_box import SecretBox
    from shared.adapters.security_info_store import SecurityInfoStore
    from shared.adapters.storage import StorageClients
    from shared.adapters.tokens import TokenValidator
    from shared.services.audit import AuditLog
    from shared.services.compliance import ComplianceService
    from shared.services.enablement import EnablementService
    from shared.services.health import HealthProbe
    from shared.services.maintenance import MaintenanceService
    from shared.services.notifications import NotificationService
    from shared.services.password_expiration import PasswordExpirationService
    from shared.services.policy import PolicyCache, PolicyService
    from shared.services.registration.app import AuthenticatorAppService
    from shared.services.registration.flow import RegistrationService
    from shared.services.registration.questions import SecurityQuestionsService
    from shared.services.registration.security_info import SecurityInfoService
    from shared.services.reset.flow import ResetService
    from shared.services.scope_sync import ScopeSyncService
    from shared.services.signin import RegistrationReminders, SignInEventIntake, SignInHook
    from shared.services.tenant import TenantEligibilityService
    from shared.services.throttle import ThrottleService


class Root:
    """Every adapter and service of one process, each built once, on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # ---- the outside world ---------------------------------------------------------------------------------

    @cached_property
    def storage(self) -> StorageClients:
        from shared.adapters.storage import StorageClients

        return StorageClients.from_settings(self.settings)

    @cached_property
    def graph(self) -> GraphGateway:
        from shared.adapters.credentials import graph_credential
        from shared.adapters.graph import GraphGateway

        return GraphGateway.create(self.settings, graph_credential(self.settings))

    @cached_property
    def tokens(self) -> TokenValidator:
        """Validates Entra access tokens issued to this API (audience: its app id, or api://<app id>)."""
        from shared.adapters.tokens import TokenValidator

        s = self.settings
        return TokenValidator(openid_configuration_url=s.openid_configuration_url, issuer=s.issuer,
                              v1_issuer=s.v1_issuer, audiences=[str(s.api_client_id), f"api://{s.api_client_id}"],
                              tenant_id=str(s.tenant_id))

    @cached_property
    def phone(self) -> PhoneSender:
        """The SMS / voice sender of SSPR_SMS_PROVIDER (emulator, acs or none)."""
        from shared.adapters.phone import phone_sender

        return phone_sender(self.settings)

    @cached_property
    def code_key(self) -> bytes:
        return base64.b64decode(self.settings.code_hmac_key)

    @cached_property
    def secret_box(self) -> SecretBox:
        """AES-256-GCM for TOTP seeds, keyed from SSPR_TOTP_ENCRYPTION_KEY (HKDF)."""
        from shared.adapters.secret_box import SecretBox

        return SecretBox.from_base64(self.settings.totp_encryption_key)

    # ---- stores (thin, stateless wrappers over the storage clients) ----------------------------------------

    @cached_property
    def audit_store(self) -> AuditStore:
        from shared.adapters.audit_store import AuditStore

        return AuditStore(self.storage)

    @cached_property
    def policy_store(self) -> PolicyStore:
        from shared.adapters.policy_store import PolicyStore

        return PolicyStore(self.storage)

    @cached_property
    def enablement_store(self) -> EnablementStore:
        from shared.adapters.enablement_store import EnablementStore

        return EnablementStore(self.storage)

    @cached_property
    def security_info_store(self) -> SecurityInfoStore:
        from shared.adapters.security_info_store import SecurityInfoStore

        return SecurityInfoStore(self.storage)

    @cached_property
    def reminder_store(self) -> ReminderStore:
        from shared.adapters.reminder_store import ReminderStore

        return ReminderStore(self.storage)

    @cached_property
    def message_queues(self) -> MessageQueues:
        from shared.adapters.reminder_store import MessageQueues

        return MessageQueues(self.storage)

    @cached_property
    def reset_flow_store(self) -> ResetFlowStore:
        from shared.adapters.reset_store import ResetFlowStore

        return ResetFlowStore(self.storage)

    @cached_property
    def notification_queue(self) -> NotificationQueue:
        from shared.adapters.notification_queue import NotificationQueue

        return NotificationQueue(self.storage)

    @property
    def reminder_interval(self) -> timedelta:
        return timedelta(days=self.settings.registration_reminder_days)

    # ---- admin: policy, enablement, tenant, audit, password expiration -------------------------------------

    @cached_property
    def audit(self) -> AuditLog:
        from shared.services.audit import AuditLog

        return AuditLog(self.audit_store)

    @cached_property
    def policy_cache(self) -> PolicyCache:
        """The policy as hot paths read it: one storage read per 30 s per process."""
        from shared.services.policy import PolicyCache

        return PolicyCache(self.policy_store)

    @cached_property
    def policy(self) -> PolicyService:
        """The source of truth of the scope: saving a scope change starts an enablement run."""
        from shared.services.policy import PolicyService

        return PolicyService(self.policy_store, self.audit_store, utc_now, self.enablement, cache=self.policy_cache)

    @cached_property
    def enablement(self) -> EnablementService:
        """Its store bounds the table transactions this process has in flight."""
        from shared.adapters.enablement_store import EnablementQueue
        from shared.services.enablement import EnablementService

        return EnablementService(self.enablement_store, EnablementQueue(self.storage), self.graph, self.audit_store,
                                 utc_now)

    @cached_property
    def tenant_eligibility(self) -> TenantEligibilityService:
        """Scope: the Enablement table once a run completed, all enabled members before that."""
        from shared.services.tenant import EnablementRows, TenantEligibilityService

        return TenantEligibilityService(self.graph, EnablementRows(self.enablement_store))

    @cached_property
    def password_expiration(self) -> PasswordExpirationService:
        from shared.services.password_expiration import PasswordExpirationService

        return PasswordExpirationService(self.graph, self.audit_store, utc_now)

    # ---- sign-in: the hook, streamed sign-in events, registration reminders --------------------------------

    @cached_property
    def signin_hook(self) -> SignInHook:
        """The hottest path: its stores and the policy cache are built once."""
        from shared.services.signin import SignInHook

        return SignInHook(self.security_info_store, self.enablement_store, self.policy_cache,
                          self.settings.page_url("register"), utc_now)

    async def authenticate_calling_app(self, token: str, app_id: str) -> None:
        """A valid access token for this API, requested by app `app_id` (D3); Unauthenticated otherwise."""
        from shared.adapters.tokens import require_calling_app

        require_calling_app(await self.tokens.validate(token), app_id)

    @cached_property
    def signin_events(self) -> SignInEventIntake:
        from shared.services.signin import SignInEventIntake

        return SignInEventIntake(self.message_queues)

    @cached_property
    def registration_reminders(self) -> RegistrationReminders:
        from shared.services.signin import RegistrationReminders

        return RegistrationReminders(self.security_info_store, self.enablement_store, self.policy_cache,
                                     self.reminder_store, self.message_queues, self.reminder_interval, utc_now)

    # ---- jobs: compliance runs, purge, scope re-sync --------------------------------------------------------

    @cached_property
    def compliance(self) -> ComplianceService:
        """Its store bounds the table transactions and its pacer the reports requests in flight."""
        from shared.adapters.compliance_store import ComplianceQueue, ComplianceStore
        from shared.services.compliance import ComplianceService
        from shared.services.compliance_reminders import ComplianceReminders

        reminders = ComplianceReminders(self.reminder_store, self.message_queues, self.reminder_interval)
        return ComplianceService(ComplianceStore(self.storage), ComplianceQueue(self.storage), self.graph,
                                 self.policy_cache, reminders, self.audit_store, utc_now)

    @cached_property
    def maintenance(self) -> MaintenanceService:
        from shared.adapters.challenge_store import ChallengeStore
        from shared.adapters.compliance_store import ComplianceStore
        from shared.adapters.mail import MailLedger
        from shared.adapters.proof_of_work import ProofOfWork
        from shared.adapters.throttle_store import ThrottleStore
        from shared.services.maintenance import MaintenanceService, standard_purges

        storage = self.storage
        purges = standard_purges(ChallengeStore(storage), self.security_info_store, ThrottleStore(storage),
                                 MailLedger(storage), self.reminder_store, self.enablement_store,
                                 self.reminder_interval, reset_flows=self.reset_flow_store,
                                 proofs=ProofOfWork(storage, self.code_key, utc_now),
                                 compliance=ComplianceStore(storage))
        return MaintenanceService(purges, utc_now)

    @cached_property
    def scope_sync(self) -> ScopeSyncService:
        from shared.adapters.sync_store import SyncStore
        from shared.services.scope_sync import ScopeSyncService

        return ScopeSyncService(SyncStore(self.storage), self.enablement_store, self.policy_store, self.graph,
                                self.audit_store, utc_now)

    # ---- registration of security info and the notifications worker ----------------------------------------

    @cached_property
    def throttle(self) -> ThrottleService:
        from shared.adapters.throttle_store import ThrottleStore
        from shared.services.throttle import ThrottleService

        return ThrottleService(ThrottleStore(self.storage), self.audit_store, utc_now)

    @cached_property
    def security_info(self) -> SecurityInfoService:
        """Registration's one saver of security info: the policy as saved (no cache), admins asked of Graph."""
        from shared.services.registration.security_info import CurrentPolicy, SecurityInfoService

        return SecurityInfoService(self.security_info_store, self.graph, CurrentPolicy(self.policy_store),
                                   self.audit_store, utc_now)

    @cached_property
    def registration(self) -> RegistrationService:
        from shared.adapters.challenge_store import ChallengeStore
        from shared.services.methods import standard_methods
        from shared.services.registration.flow import RegistrationService

        return RegistrationService(self.security_info, ChallengeStore(self.storage), self.throttle,
                                   self.notification_queue, standard_methods(self.phone), self.audit_store,
                                   self.code_key, utc_now)

    @cached_property
    def authenticator_app(self) -> AuthenticatorAppService:
        from shared.services.registration.app import AuthenticatorAppService

        return AuthenticatorAppService(self.security_info_store, self.secret_box, self.throttle, self.graph,
                                       self.security_info, self.audit_store, utc_now)

    @cached_property
    def security_questions(self) -> SecurityQuestionsService:
        from shared.services.registration.questions import SecurityQuestionsService

        return SecurityQuestionsService(self.security_info, self.audit_store, utc_now)

    @cached_property
    def notifications(self) -> NotificationService:
        from shared.adapters.challenge_store import ChallengeStore
        from shared.adapters.mail import MailLedger, MailSender
        from shared.services.notifications import CodeDelivery, NotificationService, ReminderMails, ResetNotices

        mail, ledger, graph = MailSender(self.graph, self.settings.mail_sender), MailLedger(self.storage), self.graph
        return NotificationService(
            CodeDelivery(ChallengeStore(self.storage), mail, self.phone, graph, self.policy_cache, self.code_key,
                         utc_now, reset_challenges=self.reset_flow_store.challenges),
            ResetNotices(mail, graph, ledger, self.policy_cache, utc_now, security_info=self.security_info_store),
            ReminderMails(mail, graph, ledger, self.settings.page_url("register"), utc_now),
        )

    # ---- the self-service reset (its resolver caches the tenant's subscriptions for 10 minutes) ------------

    @cached_property
    def reset(self) -> ResetService:
        from shared.adapters.proof_of_work import ProofOfWork
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

        flows, queue, key = self.reset_flow_store, self.notification_queue, self.code_key
        audit = ResetAudit(self.audit_store, utc_now)
        users = UserResolver(self.graph, self.security_info_store, self.enablement_store)
        methods = standard_methods(self.phone, AuthenticatorAppCodes(self.security_info_store, self.secret_box))
        return ResetService(
            ResetFlows(flows, key, utc_now, StepDeadline(self.settings.reset_step_deadline_ms / 1000)),
            ProofOfWork(self.storage, key, utc_now),
            ResetOffer(self.policy_cache, methods, self.settings.page_url("register")), self.throttle, users,
            ResetChallenges(flows.challenges, queue, key, utc_now),
            PasswordStep(users, PasswordTargets([EntraTarget(self.graph)]), queue, audit, utc_now), audit,
        )

    # ---- health and warm-up ---------------------------------------------------------------------------------

    @cached_property
    def health(self) -> HealthProbe:
        from shared.services.health import HealthProbe

        return HealthProbe(self.storage, self.graph)

    def load_common_passwords(self) -> None:
        """Read and index the banned-password list now (~30 ms), so a user's first keystroke does not pay it."""
        from shared.adapters.common_passwords import common_passwords

        common_passwords()


root = Root(load_settings())
settings: Settings = root.settings
