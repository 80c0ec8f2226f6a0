"""The service's queues by logical name. A deployment's real queue is `<SSPR_QUEUE_PREFIX>-<name>` (default
prefix "sspr", so e.g. `sspr-notifications`), and its poison queue `<real name>-poison`; the prefix lets several
deployments (or test runs) share one storage account without taking each other's messages."""

NOTIFICATIONS = "notifications"  # verification codes and reminders to send (ids only)
ENABLEMENT = "enablement"  # enablement run shards
SIGNIN_EVENTS = "signin-events"  # users who signed in (from the sign-in log stream)
COMPLIANCE = "compliance"  # compliance run shards


def trigger_queue(name: str) -> str:
    """The queue name for a trigger binding: the Functions host resolves %SSPR_QUEUE_PREFIX% from app settings."""
    return f"%SSPR_QUEUE_PREFIX%-{name}"
