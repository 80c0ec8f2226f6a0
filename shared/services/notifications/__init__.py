"""The notifications worker's use cases, each idempotent: verification codes, password reset notices,
registration reminders and password-expiry reminders (their mail bodies rendered from shared/templates/mail), the
helpdesk's notices, one-time links and daily digest, and the end of a user's sessions when a reset could not end
them at once.

Queue `sspr-notifications` carries ids only (never codes). `worker.NotificationService` dispatches a message
to `code_delivery.CodeDelivery`, `notices.ResetNotices`, `reminders.ReminderMails`, `expiry.ExpiryReminderMails`
or `revocations.SessionRevocations`; the mail use cases send through one `outbox.Outbox`, once per
message (the ledger, `once.mail_once`).
"""

from shared.services.notifications.code_delivery import CodeDelivery
from shared.services.notifications.expiry import ExpiryLinks, ExpiryReminderMails
from shared.services.notifications.helpdesk import HelpdeskConfirms, HelpdeskDigests, HelpdeskLinks, HelpdeskNotices
from shared.services.notifications.notices import ResetNotices
from shared.services.notifications.once import REMINDER_LEASE
from shared.services.notifications.outbox import Outbox
from shared.services.notifications.reminders import ReminderMails
from shared.services.notifications.revocations import SessionRevocations
from shared.services.notifications.worker import NotificationService

__all__ = ["REMINDER_LEASE", "CodeDelivery", "ExpiryLinks", "ExpiryReminderMails", "HelpdeskConfirms", "HelpdeskDigests", "HelpdeskLinks",
           "HelpdeskNotices", "NotificationService", "Outbox", "ReminderMails", "ResetNotices", "SessionRevocations"]
