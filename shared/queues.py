"""The service's queues by logical name. A deployment's real queue is `<SSPR_QUEUE_PREFIX>-<name>` (default
prefix "sspr", so e.g. `sspr-notifications`), and its poison queue `<real name>-poison`; the prefix lets several
deployments (or test runs) share one storage account without taking each other's messages."""

NOTIFICATIONS = "notifications"  # codes, reminders, reset notices, sessions to revoke (ids only)
ENABLEMENT = "enablement"  # enablement run shards
SIGNIN_EVENTS = "signin-events"  # users who signed in (from the sign-in log stream)
COMPLIANCE = "compliance"  # compliance run shards
EXPIRY_REMINDERS = "expiry-reminders"  # password-expiry reminder run pages


def trigger_queue(name: str) -> str:
    """The queue name for a trigger binding: the Functions host resolves %SSPR_QUEUE_PREFIX% from app settings."""
    return f"%SSPR_QUEUE_PREFIX%-{name}"
ONPREM_JOBS = "onprem-jobs"  # password jobs for the on-premises agent (shared/domain/onprem_jobs.py JOBS_QUEUE)
ONPREM_RESULTS = "onprem-results"  # the agent's verdicts (RESULTS_QUEUE)
