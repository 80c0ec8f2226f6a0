"""Helpdesk-verified recovery (issue 18): an agent with app role SSPR.Helpdesk finds a caller, proves who is calling
through the user's own registered methods, and takes audited actions that never show or set a password."""

from shared.services.helpdesk.flow import HelpdeskService

__all__ = ["HelpdeskService"]
