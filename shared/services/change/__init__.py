"""The self-service change of a synced user's password in on-premises AD (the change page): its service and parts.

service.py holds PasswordChangeService. Nothing is imported here, so importing a part does not import them all.
"""
