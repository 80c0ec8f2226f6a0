"""Host lifecycle: load settings and the app, start the HTTP, queue and timer triggers, announce readiness, drain."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import sys
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from azure.functions.queue import QueueMessage as FunctionQueueMessage
from azure.functions.warmup import WarmUpContext  # not exported as func.WarmUpContext by azure-functions 1.26

from . import logs
from .http import HttpFrontend, Keys
from .invoker import Invoker
from .loader import QUEUE, TIMER, WARMUP, FunctionSpec, import_app, read_functions
from .queues import QueueListener
from .settings import HostConfig, apply_local_settings, flag
from .storage import QueueStore
from .timers import TimerLocks, TimerRunner, host_id

log = logging.getLogger("funchost")

FUNCTION_KEY_SETTING = "FUNCHOST_FUNCTION_KEY"
MASTER_KEY_SETTING = "FUNCHOST_MASTER_KEY"
DISABLE_TIMERS_SETTING = "FUNCHOST_DISABLE_TIMERS"


@dataclass(frozen=True)
class HostOptions:
    """Command-line choices."""

    app_dir: Path
    host: str
    port: int
    settings_path: Path
    timers_enabled: bool = True
    grace_seconds: float = 10.0


class Host:
    """One running host: every trigger the app declares, until SIGINT/SIGTERM."""

    def __init__(self, options: HostOptions) -> None:
        self.options = options
        self._stop = asyncio.Event()

    async def run(self) -> int:
        """Load the app and serve until stopped; 1 when the app cannot be loaded, else 0."""
        options = self.options
        try:
            apply_local_settings(options.settings_path)
            config = HostConfig.load(options.app_dir / "host.json")
            specs = read_functions(import_app(options.app_dir))
            timers_enabled = options.timers_enabled and not flag(DISABLE_TIMERS_SETTING)
            store = QueueStore()
            invoker = Invoker(store, config.queues.message_encoding)
            # Hosts on one storage account and host id are instances of one app: a timer runs on one at a time.
            singleton = timers_enabled and any(s.kind == TIMER for s in specs) and bool(
                os.environ.get("AzureWebJobsStorage") or os.environ.get("AzureWebJobsStorage__blobServiceUri"))
            locks = TimerLocks(host_id(str(options.app_dir.resolve()))) if singleton else None
            timers = {s.name: TimerRunner(s, invoker, enabled=timers_enabled, locks=locks)
                      for s in specs if s.kind == TIMER}
            listeners = [QueueListener(s, store, invoker, config.queues) for s in specs if s.kind == QUEUE]
            keys = Keys(function=_key(FUNCTION_KEY_SETTING, "function"), master=_key(MASTER_KEY_SETTING, "master"))
        except Exception as exc:
            _report_load_failure(exc)
            return 1

        async def admin_invoke(spec: FunctionSpec, text: str) -> None:
            if spec.kind == TIMER:
                await timers[spec.name].fire(past_due=False, detail="timer admin")
            elif spec.kind == QUEUE:
                await _invoke_queue_from_admin(invoker, spec, text)

        async def warm_up() -> None:
            for spec in (s for s in specs if s.kind == WARMUP):
                await _run_warmup(invoker, spec)

        frontend = HttpFrontend(specs, config.route_prefix, keys, invoker, admin_invoke, specs, warm_up)
        runner = web.AppRunner(frontend.application(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, options.host, options.port, shutdown_timeout=options.grace_seconds)
        try:
            await site.start()
            for listener in listeners:
                await listener.start()
        except Exception as exc:
            _report_load_failure(exc)
            await runner.cleanup()
            await store.close()
            return 1
        await warm_up()  # like a new instance in Azure: warm before the first request
        for timer in timers.values():
            timer.start()

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stop.set)
        _describe(specs, frontend, timers_enabled, options, config.route_prefix)
        print(f"funchost ready http://{options.host}:{options.port}", flush=True)

        await self._stop.wait()
        # Like the real worker, the process ends with the app's own SDK clients still open: no hook closes them,
        # so aiohttp's "Unclosed client session" reports at exit are noise, not faults.
        loop.set_exception_handler(_ignore_unclosed_sessions)
        log.info("stopping: no new work; waiting up to %.0f s for running invocations", options.grace_seconds)
        deadline = time.monotonic() + options.grace_seconds
        await asyncio.gather(
            runner.cleanup(),
            *(listener.stop(options.grace_seconds) for listener in listeners),
            *(asyncio.wait_for(timer.stop(), options.grace_seconds) for timer in timers.values()),
            return_exceptions=True,
        )
        drained = await invoker.drain(max(0.0, deadline - time.monotonic()))
        await store.close()
        if locks is not None:
            await locks.close()
        invoker.close(wait=False)
        if not drained:
            log.warning("stopped with %d invocation(s) still running after the grace period", invoker.in_flight)
            logging.shutdown()
            os._exit(0)  # worker threads cannot be interrupted; do not hang on them
        log.info("stopped")
        return 0


def _ignore_unclosed_sessions(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    if str(context.get("message", "")).startswith(("Unclosed client session", "Unclosed connector")):
        return
    loop.default_exception_handler(context)


def _key(setting: str, kind: str) -> str:
    value = os.environ.get(setting)
    if value:
        return value
    value = secrets.token_urlsafe(32)
    print(f"funchost: {setting} is not set; generated {kind} key for this run: {value}", file=sys.stderr, flush=True)
    return value


def _report_load_failure(exc: BaseException) -> None:
    traceback.print_exception(exc, file=sys.stderr)
    message = str(exc) or type(exc).__name__
    print(f"funchost: cannot start the app: {type(exc).__name__}: {message}", file=sys.stderr, flush=True)


async def _invoke_queue_from_admin(invoker: Invoker, spec: FunctionSpec, text: str) -> None:
    now = datetime.now(UTC)
    message = FunctionQueueMessage(id=str(uuid.uuid4()), body=text.encode("utf-8"), dequeue_count=1,
                                insertion_time=now, expiration_time=now + timedelta(days=7), time_next_visible=now)
    detail = f"queue {spec.trigger['queueName']} id={message.id} admin"
    started = time.perf_counter()
    outcome = "Succeeded"
    try:
        await invoker.invoke(spec, message)
    except Exception:
        log.exception("function %s failed (%s)", spec.name, detail)
        outcome = "Failed"
    logs.invocation(spec.name, detail, (time.perf_counter() - started) * 1000, outcome)


async def _run_warmup(invoker: Invoker, spec: FunctionSpec) -> None:
    started = time.perf_counter()
    outcome = "Succeeded"
    try:
        await invoker.invoke(spec, WarmUpContext())
    except Exception:
        log.exception("function %s failed (warmup)", spec.name)
        outcome = "Failed"
    logs.invocation(spec.name, "warmup", (time.perf_counter() - started) * 1000, outcome)


def _describe(specs: list[FunctionSpec], frontend: HttpFrontend, timers_enabled: bool, options: HostOptions,
              prefix: str) -> None:
    for route in frontend.routes:
        methods = ",".join(sorted(route.methods)) if route.methods else "ALL"
        path = "/" + "/".join(p for p in (prefix, route.template) if p)
        log.info("function %s: [%s] http://%s:%d%s (%s)", route.spec.name, methods, options.host, options.port,
                 path, route.auth_level.lower())
    for spec in specs:
        if spec.kind == QUEUE:
            log.info("function %s: queue %s (connection %s)", spec.name, spec.trigger["queueName"],
                     spec.trigger["connection"])
        elif spec.kind == WARMUP:
            log.info("function %s: warmup (at start and POST /admin/warmup)", spec.name)
        elif spec.kind == TIMER:
            state = "" if timers_enabled else " - schedule disabled"
            log.info("function %s: timer %s%s", spec.name, spec.trigger["schedule"], state)
