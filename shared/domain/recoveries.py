"""Recoveries, as the compliance dashboard counts them: who got back into their account, by themselves or with the
helpdesk, read from the audit by Entra's (and this service's) activity names. A recovery is a successful outcome:

- SELF_SERVICE: "Reset password (self-service)", "Unlock user account (self-service)".
- HELPDESK_ASSISTED: "Reset password (helpdesk-verified)" (the user set their password through an agent's link),
  "Unlock user account (helpdesk)", "Unblock user from self-service password reset (helpdesk)".
"""

from __future__ import annotations

from shared.domain.audit import Activity

SELF_SERVICE = (Activity.RESET_SELF_SERVICE, Activity.UNLOCK_SELF_SERVICE)
HELPDESK_ASSISTED = (Activity.RESET_HELPDESK_LINK, Activity.HELPDESK_UNLOCK, Activity.HELPDESK_BLOCK_CLEARED)
MAX_DAYS = 90
