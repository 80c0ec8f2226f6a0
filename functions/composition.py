"""The composition root: one container that builds every adapter and service once per process, on first use.

Settings are validated at import (fail closed). Blueprints reach services only through `root`; nothing else in
`functions/` builds an adapter. Each property is built lazily, inside the event loop that runs the async
functions (async SDK clients bind to the loop that first uses them), and its imports stay inside it, so a process
pays only for what it serves: the sign-in hook's cold start never imports the reset flow or zxcvbn.
"""

from __future__ import annotations

import base64
import logging
import threading
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from shared.config import Settings, load_settings
from shared.domain.clock import utc_now

if TYPE_CHECKING:
    from shared.adapters.audit_store import AuditStore
    from shared.adapters.change_store import ChangeStore
    from shared.adapters.enablement_store import EnablementStore
    from shared.adapters.graph import GraphGateway
    from shared.adapters.helpdesk_store import HelpdeskStore
    from shared.adapters.notification_queue import NotificationQueue
    from shared.adapters.onprem_store import OnPremStore
    from shared.adapters.phone import PhoneSender
    from shared.adapters.policy_store import PolicyStore
    from shared.adapters.proof_of_work import ProofOfWork
    from shared.adapters.reminder_store import MessageQueues, ReminderStore
    from shared.adapters.reset_store import ResetFlowStore
    from shared.adapters.secret_box import SecretBox
    from shared.adapters.security_info_store import SecurityInfoStore
    from shared.adapters.storage import StorageClients
    from shared.adapters.tokens import TokenValidator
    from shared.services.audit import AuditLog
    from shared.services.branding import BrandingService
    from shared.services.change.service import PasswordChangeService
    from shared.services.compliance import ComplianceService
    from shared.services.directory import GroupPicker, UserNames
    from shared.services.enablement import EnablementService
    from shared.services.entra_methods import EntraMethods
    from shared.services.expiry_reminders import ExpiryReminderService
    from shared.services.health import HealthProbe
    from shared.services.helpdesk.flow import HelpdeskService
    from shared.services.maintenance import MaintenanceService
    from shared.services.methods.passkey import PasskeyMethod
    from shared.services.notifications import NotificationService
    from shared.services.onprem.agents import AgentRoster
    from shared.services.onprem.expiry import SyncedExpiryDirectory
    from shared.services.onprem.jobs import OnPremJobs
    from shared.services.onprem.verdicts import OnPremVerdicts
    from shared.services.password_expiration import PasswordExpirationService
    from shared.services.password_targets.base import PasswordTargets
    from shared.services.policy import PolicyCache, PolicyService
    from shared.services.recoveries import Recoveries
    from shared.services.registration.app import AuthenticatorAppService
    from shared.services.registration.flow import RegistrationService
    from shared.services.registration.passkeys import PasskeyRegistration
    from shared.services.registration.questions import SecurityQuestionsService
    from shared.services.registration.security_info import SecurityInfoService
    from shared.services.reset.access_pass import ResetAccessPass
    from shared.services.reset.flow import ResetService
    from shared.services.reset.helpdesk_link import HelpdeskLinkEntry
    from shared.services.reset.passkey import ResetPasskeys
    from shared.services.reset.user import UserResolver
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
    def recoveries(self) -> Recoveries:
        """Self-service and helpdesk-assisted recoveries per day, from the audit (the compliance dashboard)."""
        from shared.services.recoveries import Recoveries

        return Recoveries(self.audit_store, utc_now)

    @cached_property
    def policy_cache(self) -> PolicyCache:
        """The policy as hot paths read it: one storage read per 30 s per process."""
        from shared.services.policy import PolicyCache

        return PolicyCache(self.policy_store)

    @cached_property
    def policy(self) -> PolicyService:
        """The source of truth of the scope: saving a scope change starts an enablement run."""
        from shared.services.policy import PolicyService

        return PolicyService(self.policy_store, self.audit_store, utc_now, self.enablement, cache=self.policy_cache,
                             agent_key_configured=self.settings.onprem_agent_public_key is not None)

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

        return TenantEligibilityService(self.graph, EnablementRows(self.enablement_store), self.agents,
                                        self.policy_cache)

    @cached_property
    def group_picker(self) -> GroupPicker:
        from shared.services.directory import GroupPicker

        return GroupPicker(self.graph)

    @cached_property
    def user_names(self) -> UserNames:
        from shared.services.directory import UserNames

        return UserNames(self.graph)

    @cached_property
    def branding(self) -> BrandingService:
        """The organisation's name and Entra company branding, read once an hour, for pages and mails."""
        from shared.services.branding import BrandingService

        return BrandingService(self.graph, utc_now)

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
    def expiry_reminders(self) -> ExpiryReminderService:
        """Password expiry runs: who expires when, and the reminders due (each stage once per password)."""
        from shared.adapters.expiry_reminder_store import ExpiryReminderQueue, ExpiryReminderStore
        from shared.adapters.reminder_store import ExpirySlots
        from shared.services.expiry_reminder_queueing import ExpiryReminderQueueing
        from shared.services.expiry_reminders import ExpiryReminderService
        from shared.services.registration.security_info import CurrentPolicy

        reminders = ExpiryReminderQueueing(ExpirySlots(self.storage), self.message_queues)
        # A run starts once a day: it reads the policy as saved (no cache), so it always runs by the latest rules.
        return ExpiryReminderService(ExpiryReminderStore(self.storage), ExpiryReminderQueue(self.storage),
                                     self.synced_expiry, CurrentPolicy(self.policy_store), reminders,
                                     self.audit_store, utc_now, page_size=self.settings.expiry_page_size)

    @cached_property
    def synced_expiry(self) -> SyncedExpiryDirectory:
        """Graph's users with the on-premises agents' report of AD's password expiry of the synced ones."""
        from shared.services.onprem.expiry import SyncedExpiryDirectory

        return SyncedExpiryDirectory(self.graph, self.onprem_store, utc_now)

    @cached_property
    def maintenance(self) -> MaintenanceService:
        from shared.adapters.challenge_store import ChallengeStore
        from shared.adapters.compliance_store import ComplianceStore
        from shared.adapters.expiry_reminder_store import ExpiryReminderStore
        from shared.adapters.mail import MailLedger
        from shared.adapters.throttle_store import ThrottleStore
        from shared.services.maintenance import MaintenanceService, standard_purges

        storage = self.storage
        purges = standard_purges(ChallengeStore(storage), self.security_info_store, ThrottleStore(storage),
                                 MailLedger(storage), self.reminder_store, self.enablement_store,
                                 self.reminder_interval, reset_flows=self.reset_flow_store,
                                 proofs=self.proof_of_work,
                                 compliance=ComplianceStore(storage), expiry=ExpiryReminderStore(storage),
                                 changes=self.change_store, helpdesk=self.helpdesk_store)
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
                                   self.audit_store, utc_now, self.reset_users, self.entra_methods)

    @cached_property
    def entra_methods(self) -> EntraMethods:
        """Phone and email methods registered in Entra, read on demand when the policy counts them."""
        from shared.services.entra_methods import EntraMethods

        return EntraMethods(self.graph, self.security_info_store, self.policy_cache, utc_now)

    @cached_property
    def registration(self) -> RegistrationService:
        from shared.adapters.challenge_store import ChallengeStore
        from shared.services.methods import standard_methods
        from shared.services.registration.flow import RegistrationService

        return RegistrationService(self.security_info, ChallengeStore(self.storage), self.throttle,
                                   self.notification_queue, standard_methods(self.phone, passkey=self.passkey_method),
                                   self.audit_store, self.code_key, utc_now)

    @cached_property
    def passkey_method(self) -> PasskeyMethod:
        """WebAuthn against the pages' origin (SSPR_PUBLIC_BASE_URL; the RP id SSPR_PASSKEY_RP_ID or its host)."""
        from shared.domain.relying_party import relying_party
        from shared.services.methods.passkey import PasskeyMethod

        s = self.settings
        return PasskeyMethod(relying_party(s.public_base_url, s.passkey_rp_id, s.passkey_rp_name))

    @cached_property
    def passkey_registration(self) -> PasskeyRegistration:
        from shared.adapters.passkey_store import PasskeyStore
        from shared.services.registration.passkeys import PasskeyRegistration

        return PasskeyRegistration(self.security_info, PasskeyStore(self.storage), self.passkey_method, self.throttle,
                                   self.audit_store, utc_now)

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
        from shared.services.notifications import (
            CodeDelivery,
            ExpiryLinks,
            ExpiryReminderMails,
            HelpdeskConfirms,
            HelpdeskDigests,
            HelpdeskLinks,
            HelpdeskNotices,
            NotificationService,
            Outbox,
            ReminderMails,
            ResetNotices,
            SessionRevocations,
        )
        from shared.services.notifications.branded import BrandedMail

        mail = BrandedMail(MailSender(self.graph, self.settings.mail_sender), self.branding)
        out = Outbox(mail, self.graph, MailLedger(self.storage), utc_now)
        links = ExpiryLinks(self.settings.page_url("change"), self.settings.page_url("reset"))
        return NotificationService(
            CodeDelivery({"registration": ChallengeStore(self.storage), "reset": self.reset_flow_store.challenges,
                          "helpdesk": self.helpdesk_store.challenges}, mail, self.phone, self.graph,
                         self.policy_cache, self.code_key, utc_now),
            ResetNotices(out, self.policy_cache, security_info=self.security_info_store),
            ReminderMails(out, self.settings.page_url("register")),
            SessionRevocations(self.password_targets),
            ExpiryReminderMails(out, self.phone, self.security_info_store, links, self.synced_expiry),
            (HelpdeskNotices(out, self.policy_cache, self.helpdesk_store, self.security_info_store),
             HelpdeskLinks(out, self.helpdesk_store, self.settings.page_url("reset"), self.code_key),
             HelpdeskConfirms(out, self.helpdesk_store, self.security_info_store, self.settings.page_url("reset")),
             HelpdeskDigests(out, self.audit_store)),
        )

    @cached_property
    def password_targets(self) -> PasswordTargets:
        """Every directory a reset writes to (the reset's password step and the notifications worker's revokes):
        Entra through Graph, and on-premises AD through the agent (which also unlocks)."""
        from shared.services.password_targets.base import ONPREM_AD, PasswordTargets
        from shared.services.password_targets.entra import EntraTarget
        from shared.services.password_targets.onprem_ad import OnPremAdTarget

        onprem = OnPremAdTarget(self.onprem_jobs, self.graph)
        return PasswordTargets([EntraTarget(self.graph), onprem], unlockers={ONPREM_AD: onprem})

    # ---- the self-service reset (its resolver caches the tenant's subscriptions for 10 minutes) ------------

    @cached_property
    def reset(self) -> ResetService:
        from shared.services.methods import standard_methods
        from shared.services.methods.authenticator_app import AuthenticatorAppCodes
        from shared.services.reset.audit import ResetAudit
        from shared.services.reset.challenges import ResetChallenges
        from shared.services.reset.flow import ResetService
        from shared.services.reset.offer import ResetOffer
        from shared.services.reset.pace import StepDeadline
        from shared.services.reset.password import ChangeStep
        from shared.services.reset.state import ResetFlows

        flows, queue, key, s = self.reset_flow_store, self.notification_queue, self.code_key, self.settings
        audit = ResetAudit(self.audit_store, utc_now)
        users = self.reset_users
        methods = standard_methods(self.phone, AuthenticatorAppCodes(self.security_info_store, self.secret_box),
                                   self.passkey_method)
        return ResetService(
            ResetFlows(flows, key, utc_now, StepDeadline(s.reset_step_deadline_ms / 1000)),
            self.proof_of_work,
            ResetOffer(self.policy_cache, methods, s.page_url("register")), self.throttle, users,
            ResetChallenges(flows.challenges, queue, key, utc_now),
            ChangeStep(users, self.password_targets, queue, self.throttle, audit, utc_now, self.onprem_jobs.lifetime),
            audit,
        )

    @cached_property
    def reset_passkeys(self) -> ResetPasskeys:
        """The passkey proof of a reset, on the reset's own flows, offer, resolver and steps."""
        from shared.adapters.passkey_store import PasskeyStore
        from shared.services.reset.passkey import ResetPasskeys

        reset = self.reset
        return ResetPasskeys(reset.flows, reset.offer, self.passkey_method, reset.users, PasskeyStore(self.storage),
                             reset, self.throttle, reset.audit)

    @cached_property
    def reset_access_pass(self) -> ResetAccessPass:
        """A verified reset's Temporary Access Pass (Graph makes it; the tenant's TAP policy bounds it)."""
        from shared.services.reset.access_pass import ResetAccessPass

        reset = self.reset
        return ResetAccessPass(reset.flows, reset.offer, self.graph, self.notification_queue, self.throttle,
                               reset.audit, self.audit_store, utc_now)

    @cached_property
    def reset_users(self) -> UserResolver:
        """Who a user name names, and the tenant's facts (cached 10 minutes): the reset's and the change's."""
        from shared.services.reset.user import UserResolver

        return UserResolver(self.graph, self.security_info_store, self.enablement_store, self.agents,
                            self.entra_methods)

    # ---- the self-service change of a synced user's password (the change page) ------------------------------

    @cached_property
    def change_store(self) -> ChangeStore:
        from shared.adapters.change_store import ChangeStore

        return ChangeStore(self.storage)

    @cached_property
    def password_change(self) -> PasswordChangeService:
        from shared.services.change.accounts import ChangeAccounts
        from shared.services.change.limits import ChangeLimits
        from shared.services.change.outcomes import ChangeOutcomes
        from shared.services.change.requests import ChangeRequests
        from shared.services.change.rules import ChangeRules
        from shared.services.change.service import PasswordChangeService
        from shared.services.reset.pace import StepDeadline

        requests = ChangeRequests(self.change_store, self.code_key, utc_now)
        limits = ChangeLimits(self.proof_of_work, self.throttle, self.agents)
        outcomes = ChangeOutcomes(requests, limits, self.graph, self.notification_queue, self.reset_users,
                                  self.audit_store, utc_now)
        return PasswordChangeService(requests, limits, ChangeRules(self.reset_users),
                                     ChangeAccounts(self.graph, self.agents, self.onprem_jobs), self.onprem_jobs,
                                     outcomes, self.policy_cache,
                                     StepDeadline(self.settings.change_deadline_ms / 1000))

    @cached_property
    def onprem_verdicts(self) -> OnPremVerdicts:
        """The agents' results: to the reset flow or the change that waits for each."""
        from shared.services.onprem.verdicts import OnPremVerdicts

        return OnPremVerdicts(self.reset, self.password_change)

    @cached_property
    def proof_of_work(self) -> ProofOfWork:
        from shared.adapters.proof_of_work import ProofOfWork

        return ProofOfWork(self.storage, self.code_key, utc_now)

    @cached_property
    def reset_links(self) -> HelpdeskLinkEntry:
        """The reset's way in by a helpdesk's one-time link."""
        from shared.services.reset.helpdesk_link import HelpdeskLinkEntry

        reset = self.reset
        return HelpdeskLinkEntry(self.helpdesk_store, reset.flows, reset.users, reset.offer, reset.change,
                                 self.throttle, reset.audit, self.code_key)

    # ---- the helpdesk (issue 18; docs/helpdesk.md) ------------------------------------------------------------

    @cached_property
    def helpdesk_store(self) -> HelpdeskStore:
        from shared.adapters.helpdesk_store import HelpdeskStore

        return HelpdeskStore(self.storage)

    @cached_property
    def helpdesk(self) -> HelpdeskService:
        from shared.adapters.passkey_store import PasskeyStore
        from shared.services.helpdesk.access_pass import TenantAccessPass
        from shared.services.helpdesk.actions import HelpdeskActions
        from shared.services.helpdesk.audit import HelpdeskAudit
        from shared.services.helpdesk.caller import CallerFacts
        from shared.services.helpdesk.flow import HelpdeskService
        from shared.services.helpdesk.passkey import PasskeyConfirmation
        from shared.services.helpdesk.verification import HelpdeskVerification, Verifications

        info, audit = self.security_info_store, HelpdeskAudit(self.audit_store, utc_now)
        facts = CallerFacts(self.graph, info, self.enablement_store, self.throttle, self.audit_store,
                            self.policy_cache, utc_now, (self.password_targets, TenantAccessPass(self.graph)))
        verifications = Verifications(self.helpdesk_store, self.code_key, utc_now)
        verification = HelpdeskVerification(verifications, facts, info, self.reset.offer.methods, self.throttle,
                                            self.notification_queue, self.policy_cache, audit)
        actions = HelpdeskActions(verifications, facts, info, self.throttle, self.password_targets,
                                  self.notification_queue, audit, self.onprem_jobs.lifetime)
        passkey = PasskeyConfirmation(verifications, info, self.passkey_method, PasskeyStore(self.storage),
                                      self.throttle, self.notification_queue, audit)
        return HelpdeskService(facts, verification, actions, verifications, self.policy_cache, audit, passkey)

    # ---- the on-premises AD agent (docs/onprem.md) ------------------------------------------------------------

    @cached_property
    def onprem_store(self) -> OnPremStore:
        from shared.adapters.onprem_store import OnPremStore

        return OnPremStore(self.storage, self.settings.queue_prefix)

    @cached_property
    def onprem_jobs(self) -> OnPremJobs:
        """Sealed jobs to the agent and their verdicts, within SSPR_ONPREM_WAIT_SECONDS / _JOB_SECONDS."""
        from shared.adapters.job_sealing import JobSealer
        from shared.services.onprem.jobs import OnPremJobs

        s = self.settings
        sealer = JobSealer.from_base64(s.onprem_agent_public_key) if s.onprem_agent_public_key else None
        return OnPremJobs(self.onprem_store, sealer, utc_now, timedelta(seconds=s.onprem_wait_seconds),
                          timedelta(seconds=s.onprem_job_seconds))

    @cached_property
    def agents(self) -> AgentRoster:
        from shared.adapters.job_sealing import key_id, public_key_from_base64
        from shared.services.onprem.agents import AgentRoster

        key = self.settings.onprem_agent_public_key
        return AgentRoster(self.onprem_store, utc_now, key_id(public_key_from_base64(key)) if key else None)

    # ---- health and warm-up ---------------------------------------------------------------------------------

    @cached_property
    def health(self) -> HealthProbe:
        from shared.services.health import HealthProbe

        return HealthProbe(self.storage, self.graph,
                           agents=self.agents if self.settings.onprem_agent_public_key else None)

    def load_common_passwords(self) -> None:
        """Read and index the banned-password list now (~30 ms), so a user's first keystroke does not pay it."""
        from shared.adapters.common_passwords import common_passwords

        common_passwords()

    def warm_user_flows_in_background(self) -> threading.Thread:
        """Pay, in a thread of its own, what the user flows need and the sign-in hook and health do not: the Graph
        SDK's models (most of a second) and the banned-password list. The event loop serves meanwhile."""
        from shared.adapters.graph import GraphGateway

        def warm() -> None:
            try:
                GraphGateway.load_sdk_models()
                self.load_common_passwords()
            except Exception:  # best effort: a request imports or loads what is missing itself
                logging.getLogger("sspr").warning("warm-up: the user flows' imports failed", exc_info=True)

        thread = threading.Thread(target=warm, name="sspr-warm-user-flows", daemon=True)
        thread.start()
        return thread


root = Root(load_settings())
settings: Settings = root.settings
