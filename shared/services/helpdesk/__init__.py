"""Helpdesk-verified recovery (issue 18): an agent with app role SSPR.Helpdesk finds a caller, proves who is calling
through the user's own registered methods, and takes audited actions that never show or set a password.

flow.py holds HelpdeskService. Nothing is imported here: a blueprint that needs only the response models must not
import the whole flow at the app's start (issue 20, cold start).
"""
