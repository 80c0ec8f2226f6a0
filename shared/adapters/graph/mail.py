"""Mail sent as the service's mailbox through Graph (codes, notices, reminders)."""

from __future__ import annotations

from shared.adapters.graph.client import GraphPart


class GraphMail(GraphPart):
    """POST /users/{sender}/sendMail."""

    async def send_mail(self, sender: str, to: list[str], subject: str, html: str) -> None:
        """POST /users/{sender}/sendMail (HTML body), not saved to Sent Items."""
        from msgraph.generated.models.body_type import BodyType
        from msgraph.generated.models.email_address import EmailAddress
        from msgraph.generated.models.item_body import ItemBody
        from msgraph.generated.models.message import Message
        from msgraph.generated.models.recipient import Recipient
        from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody

        message = Message(
            subject=subject,
            body=ItemBody(content_type=BodyType.Html, content=html),
            to_recipients=[Recipient(email_address=EmailAddress(address=address)) for address in to],
        )
        body = SendMailPostRequestBody(message=message, save_to_sent_items=False)
        await self._graph.call(lambda: self._sdk.users.by_user_id(sender).send_mail.post(body))
