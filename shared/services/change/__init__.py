"""The self-service change of a synced user's password in on-premises AD (the change page): its service and parts."""

from shared.services.change.service import PasswordChangeService

__all__ = ["PasswordChangeService"]
