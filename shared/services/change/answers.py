"""The change API's answers (the OpenAPI document uses them too)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.services.reset.answers import ChangeWaiting

__all__ = ["ChangeDone", "ChangeStarted", "ChangeWaiting"]


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True)


class ChangeDone(_Body):
    changed: bool
    sessionsRevoked: bool = Field(description="false: the password is changed and the notice sent, but Graph could not "
                                              "end the other sign-ins yet; the service retries that from its queue")
    notified: list[str] = Field(description="the registered addresses the notice went to, masked")


class ChangeStarted(_Body):
    """AD has not given its verdict yet (a slow domain controller): ask GET /api/change/requests/{changeId} with the header
    X-Change-Secret after `retryAfterSeconds`."""

    pending: bool
    retryAfterSeconds: int
    changeId: str
    changeSecret: str

