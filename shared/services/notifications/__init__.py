"""The notifications worker's use cases, each idempotent: verification codes, password reset notices and
registration reminders, with their mail bodies rendered from shared/templates/mail.

Queue `sspr-notifications` carries ids only (never codes). `worker.NotificationService` dispatches a message
to `code_delivery.CodeDelivery`, `notices.ResetNotices` or `reminders.ReminderMails`; the two mail-only use
cases send once per message through the ledger (`once.mail_once`).
"""

from shared.services.notifications.code_delivery import CodeDelivery
from shared.services.notifications.notices import ResetNotices
from shared.services.notifications.once import REMINDER_LEASE
from shared.services.notifications.reminders import ReminderMails
from shared.services.notifications.worker import NotificationService

__all__ = ["REMINDER_LEASE", "CodeDelivery", "NotificationService", "ReminderMails", "ResetNotices"]
