"""Maintenance timers: the daily purge of expired state (security.md E4) and the scope re-sync from Graph delta.

Schedules are app settings (6-field NCRONTAB, UTC): SSPR_MAINTENANCE_SCHEDULE (default daily 03:00) and
SSPR_SCOPE_SYNC_SCHEDULE (default every 15 minutes). Each timer is one service call; a failure is logged by the
host and the next occurrence tries again (both jobs are idempotent and resume from their stored state).
"""

import azure.functions as func

from functions import composition

bp = func.Blueprint()


@bp.timer_trigger(schedule="%SSPR_MAINTENANCE_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def purge_expired_state(timer: func.TimerRequest) -> None:
    await composition.root.maintenance.purge_expired()


@bp.timer_trigger(schedule="%SSPR_SCOPE_SYNC_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def sync_enablement_scope(timer: func.TimerRequest) -> None:
    await composition.root.scope_sync.sync()
