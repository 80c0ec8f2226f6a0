"""Queue trigger `sspr-notifications`: verification codes, password reset notices and registration reminders
(ids only, idempotent).

An invalid message raises before any side effect, so after the host's retries it rests in the poison queue.
"""

from __future__ import annotations

import azure.functions as func

from functions import composition
from shared import queues

bp = func.Blueprint()


@bp.queue_trigger(arg_name="message", queue_name=queues.trigger_queue(queues.NOTIFICATIONS), connection="AzureWebJobsStorage")
async def send_notification(message: func.QueueMessage) -> None:
    await composition.root.notifications.handle(message.get_body().decode("utf-8", errors="replace"))
