"""Mail sent as the service's mailbox through Graph (codes, notices, reminders)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.adapters.graph.client import GraphPart


@dataclass(frozen=True)
class InlineImage:
    """An image the HTML body shows as `<img src="cid:<content_id>">` (a fileAttachment with isInline true)."""

    content_id: str
    name: str
    content_type: str
    data: bytes


class GraphMail(GraphPart):
    """POST /users/{sender}/sendMail."""

    async def send_mail(self, sender: str, to: list[str], subject: str, html: str,
                        inline: Sequence[InlineImage] = ()) -> None:
        """POST /users/{sender}/sendMail (HTML body, its inline images attached), not saved to Sent Items."""
        from msgraph.generated.models.body_type import BodyType
        from msgraph.generated.models.email_address import EmailAddress
        from msgraph.generated.models.file_attachment import FileAttachment
        from msgraph.generated.models.item_body import ItemBody
        from msgraph.generated.models.message import Message
        from msgraph.generated.models.recipient import Recipient
        from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody

        message = Message(
            subject=subject,
            body=ItemBody(content_type=BodyType.Html, content=html),
            to_recipients=[Recipient(email_address=EmailAddress(address=address)) for address in to],
        )
        if inline:
            message.attachments = [
                FileAttachment(odata_type="#microsoft.graph.fileAttachment", name=image.name,
                               content_type=image.content_type, content_bytes=image.data,
                               content_id=image.content_id, is_inline=True)
                for image in inline
            ]
        body = SendMailPostRequestBody(message=message, save_to_sent_items=False)
        await self._graph.call(lambda: self._sdk.users.by_user_id(sender).send_mail.post(body))
