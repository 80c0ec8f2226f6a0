"""Password-expiry reminder runs: start one (the daily timer or an admin), judge every user page by page, remind.

Conflict policy: **refuse**, as for compliance runs: a start while a run is queued or running is 409 naming it
(`runningRunId`); a run with no checkpoint for 15 minutes counts as stalled and is failed by the next start.

A run is a chain of page messages on queue `<prefix>-expiry-reminders`, each `{"runId", "step": "page", "index"}`:

    page n   read Graph page n (every user with the password facts, 999 a page) at the cursor in its page row ->
             store page n+1's cursor and enqueue it at once (any instance reads it while this one works) -> judge
             each user as of the run's creation by the rules the run started with -> upsert the per-user rows ->
             queue the reminders due (shared/services/expiry_reminder_queueing.py) -> checkpoint: page done + the
             run's counters in one transaction (ETags); the page that makes every page of the known count done
             completes the run, which is then audited once

Every step is idempotent: rows are upserts keyed by user, reminders have deterministic ids and claimed stages, a
page already done changes nothing, and a duplicate loses the checkpoint's ETag race, so counters move once and a
crash resumes from the last checkpointed page without mailing anyone twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Literal, Protocol

from shared.adapters.audit_store import AuditStore
from shared.adapters.expiry_reminder_store import (
    ExpiryFilter,
    ExpiryReminderQueue,
    ExpiryReminderStore,
    PageShard,
    user_entity,
)
from shared.adapters.graph.expiry import PAGE_SIZE, ExpiryPage
from shared.domain.audit import Activity, Actor, AuditEvent, AuditService
from shared.domain.expiry_reminders import ExpiryReminderMessage, Run, Tally, rules_document, rules_from
from shared.domain.password_expiration import VerifiedDomain
from shared.domain.password_expiry import ExpiryRules, password_expiry
from shared.domain.policy import Policy
from shared.domain.runs import TERMINAL, RunState
from shared.errors import GraphError, GraphUnavailable, NotFound
from shared.services.expiry_reminder_queueing import DueUser, ExpiryReminderQueueing
from shared.services.runs import RunBook, RunNames, run_event

log = logging.getLogger("sspr.expiry")


class ExpiryReminderDirectory(Protocol):
    """What a reminder run reads of the directory: the domains' expiry policies and every user's password facts
    (with AD's expiry of the synced users the on-premises agents report: shared/services/onprem/expiry.py)."""

    async def verified_domains(self) -> list[VerifiedDomain]: ...

    async def expiry_page(self, cursor: str | None, page_size: int = PAGE_SIZE) -> ExpiryPage: ...


class Policies(Protocol):
    async def get(self) -> Policy: ...


class ExpiryReminderService:
    def __init__(self, store: ExpiryReminderStore, queue: ExpiryReminderQueue, directory: ExpiryReminderDirectory,
                 policies: Policies, reminders: ExpiryReminderQueueing, audit: AuditStore,
                 clock: Callable[[], datetime], page_size: int = PAGE_SIZE) -> None:
        self._store = store
        self._queue = queue
        self._directory = directory
        self._policies = policies
        self._reminders = reminders
        self._audit = audit
        self._clock = clock
        self._page_size = page_size
        self._runs = RunBook(store.runs, "expiry reminders", self._record_completion, clock,
                             RunNames("expiry reminder run", "Password expiry run"))

    # ---- starting a run --------------------------------------------------------------------------------------

    async def start(self, trigger: Literal["manual", "timer"], actor: Actor, client_ip: str | None = None,
                    send_reminders: bool = True) -> Run:
        """409 while a run is going; otherwise read the rules, create the run, enqueue its first page, audit."""
        now = self._clock()
        lock = await self._runs.free_lock(now)
        policy = (await self._policies.get()).expiry_reminders
        rules = ExpiryRules.of(await self._directory.verified_domains(), policy.cloud_policy_for_synced_users)
        run = Run(id=str(uuid.uuid4()), trigger=trigger, requested_by=actor.id, created_at=now, updated_at=now,
                  rules=rules_document(rules, policy.stages, policy.sms),
                  send_reminders=send_reminders and policy.enabled)
        await self._store.create_run(run)
        await self._runs.claim(run, lambda: self._store.claim_lock(lock, run.id))
        await self._queue.send(ExpiryReminderMessage(runId=run.id, index=0))
        await self._audit.write(AuditEvent(
            time=now, activity=Activity.EXPIRY_RUN_STARTED, service=AuditService.SSPR_ADMIN, actor=actor,
            client_ip=client_ip, flow_id=run.id,
            details={"trigger": trigger, "sendReminders": run.send_reminders, "remindersRequested": send_reminders,
                     "rules": run.rules},
        ))
        return run

    # ---- reading runs ----------------------------------------------------------------------------------------

    async def status(self, run_id: str) -> Run:
        return await self._runs.find(run_id, "password expiry run")

    async def history(self, limit: int) -> list[Run]:
        return await self._store.latest_runs(limit)

    async def latest_completed(self) -> Run:
        run = await self._store.latest_completed_run()
        if run is None:
            raise NotFound("no password expiry run has completed yet")
        return run

    async def users(self, run_id: str, where: ExpiryFilter, page_size: int,
                    continuation: dict[str, str] | None) -> tuple[list[dict[str, object]], str | None]:
        run = await self.status(run_id)
        if run.rows_purged:
            raise NotFound(f"the per-user rows of password expiry run {run_id} were purged")
        return await self._store.user_rows(run.id, where, page_size, continuation)

    # ---- the worker's side ---------------------------------------------------------------------------------

    async def process(self, message: ExpiryReminderMessage, final_attempt: bool) -> None:
        """Run one page. Raises to have the queue retry it (transient faults); never counts or mails twice."""
        run_id, index = message.runId.lower(), message.index
        run, etag, page = await self._runs.load_shard(run_id, lambda: self._store.get_page(run_id, index),
                                                      f"page {index}")
        if run.state in TERMINAL:
            await self._runs.finish(run, etag)
            return
        if page.done:
            return  # a duplicate, or a redelivery after the checkpoint
        if run.state is RunState.QUEUED:
            run, etag = await self._runs.mark_started(run, etag)
        try:
            directory_page = await self._directory.expiry_page(page.cursor, self._page_size)
        except GraphError as error:
            await self._runs.fail(run_id, f"Microsoft Graph refused page {index + 1} ({error.status} {error.code})")
            return
        except GraphUnavailable:
            if final_attempt:
                await self._runs.fail(run_id, f"page {index + 1}: Microsoft Graph stayed throttled or unavailable")
            else:
                await self._runs.note(run_id, f"page {index + 1}: Microsoft Graph throttled or unavailable; retrying")
            raise
        if directory_page.next_link:
            await self._store.add_page(run_id, index + 1, directory_page.next_link)
            await self._queue.send(ExpiryReminderMessage(runId=run_id, index=index + 1))
        rules, stages, sms = rules_from(run.rules)
        now = run.created_at  # every page judges as of the run's start: a redelivery gives the same rows
        judged = [DueUser(u, password_expiry(u, rules, now, directory_page.on_premises.get(u.user_id)))
                  for u in directory_page.users]
        # The rows name each user's stage as decided, and are written while the reminders go out.
        decisions = await self._reminders.decide(run_id, judged, stages, now) if run.send_reminders else []
        decided = {d.user.facts.user_id: d.stage for d in decisions}
        rows = [user_entity(run_id, d.facts, d.expiry, now, decided.get(d.facts.user_id)) for d in judged]
        transactions, queued = await asyncio.gather(self._store.write_users(rows),
                                                    self._reminders.queue(run_id, decisions, sms, now))
        tally = Tally().add_users((d.expiry for d in judged), now).with_reminders(queued.values())
        await self._checkpoint(run, etag, page, tally, transactions, directory_page)

    async def _checkpoint(self, run: Run, etag: str, page: PageShard, tally: Tally, transactions: int,
                          directory_page: ExpiryPage) -> None:
        async def write(current: Run, current_etag: str) -> Run:
            updated = current.after_page(tally, transactions, directory_page.next_link is None, page.index,
                                         directory_page.count, self._clock())
            await self._store.checkpoint_page(updated, current_etag, page, tally)
            return updated

        updated = await self._runs.checkpoint(run, etag, page, lambda: self._store.get_page(run.id, page.index),
                                              write)
        if updated is not None and updated.state is RunState.COMPLETED:
            await self._runs.finish_latest(run.id)

    async def _record_completion(self, run: Run) -> None:
        t, now = run.tally, self._clock()
        await self._audit.write(run_event(run, Activity.EXPIRY_RUN_COMPLETED, now, outcome=True, details={
            "users": t.users, "byState": dict(t.by_state), "within": dict(t.within),
            "remindersByStage": dict(t.reminders), "remindersSent": t.reminders_sent}))
        if run.send_reminders:
            await self._audit.write(run_event(run, Activity.EXPIRY_REMINDERS_SENT, now, {
                "count": t.reminders_sent, "byStage": dict(t.reminders)}))
