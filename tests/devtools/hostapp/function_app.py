"""A small function app that exercises every feature of the local Functions host (tests/devtools/test_funchost.py).

Queue names carry the %HOSTAPP_PREFIX% app setting so each test run has queues of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os

import azure.functions as func
from azure.functions.warmup import WarmUpContext
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

if os.environ.get("HOSTAPP_FAIL_IMPORT"):
    raise RuntimeError("hostapp configuration is invalid: HOSTAPP_FAIL_IMPORT is set")

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
http_bp = func.Blueprint()
work_bp = func.Blueprint()


def _record(queue: str, text: str) -> None:
    """Write a record straight to a queue (used where an output binding would not be written: failures)."""
    client = QueueClient.from_connection_string(
        os.environ["AzureWebJobsStorage"], f"{os.environ['HOSTAPP_PREFIX']}-{queue}",
        message_encode_policy=TextBase64EncodePolicy())
    with client:
        try:
            client.create_queue()
        except Exception:  # already there
            pass
        client.send_message(text)


@http_bp.route(route="items/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def get_item(req: func.HttpRequest) -> func.HttpResponse:
    """Sync; a route parameter."""
    return func.HttpResponse(json.dumps({"id": req.route_params["id"]}), mimetype="application/json")


@http_bp.route(route="things/{id:guid}/{n:int?}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def get_thing(req: func.HttpRequest) -> dict:
    """Constraints and an optional parameter; returns a dict like the worker allows."""
    return dict(req.route_params)


@http_bp.route(route="open", auth_level=func.AuthLevel.ANONYMOUS)
def open_route(req: func.HttpRequest) -> str:
    return "open"


@http_bp.route(route="keyed", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def keyed(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("keyed")


@http_bp.route(route="masteronly", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin")


@http_bp.route(route="echo", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def echo(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """Async; everything the request carried, and a response with several headers and a status."""
    await asyncio.sleep(0)
    logging.info("echo invoked\nwith a newline in the message")
    payload = {
        "method": req.method,
        "url": req.url,
        "body": req.get_body().decode("utf-8"),
        "headers": dict(req.headers),
        "params": dict(req.params),
        "invocation_id": context.invocation_id,
        "function_name": context.function_name,
    }
    response = func.HttpResponse(json.dumps(payload), status_code=201, mimetype="application/json",
                                 headers={"X-Echo": "yes"})
    response.headers.add("Set-Cookie", "a=1")
    response.headers.add("Set-Cookie", "b=2")
    return response


@http_bp.route(route="boom", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret internal detail")


@http_bp.route(route="slow", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def slow(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(float(req.params.get("s", "1")))
    return func.HttpResponse("slept")


@http_bp.route(route="enqueue", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_bp.queue_output(arg_name="out", queue_name="%HOSTAPP_PREFIX%-work", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, out: func.Out[list[str]]) -> func.HttpResponse:
    """Output binding: one message per line of the body."""
    out.set(req.get_body().decode("utf-8").splitlines())
    return func.HttpResponse(status_code=202)


@work_bp.queue_trigger(arg_name="msg", queue_name="%HOSTAPP_PREFIX%-work", connection="AzureWebJobsStorage")
@work_bp.queue_output(arg_name="seen", queue_name="%HOSTAPP_PREFIX%-seen", connection="AzureWebJobsStorage")
async def record(msg: func.QueueMessage, seen: func.Out[str]) -> None:
    """Async queue trigger; records each message it saw through an output binding."""
    seen.set(json.dumps({"id": msg.id, "body": msg.get_body().decode("utf-8"), "dequeue_count": msg.dequeue_count}))


@work_bp.queue_trigger(arg_name="msg", queue_name="%HOSTAPP_PREFIX%-fail", connection="AzureWebJobsStorage")
def always_fails(msg: func.QueueMessage) -> None:
    """Sync queue trigger that records each attempt, then fails."""
    _record("attempts", json.dumps({"body": msg.get_body().decode("utf-8"), "dequeue_count": msg.dequeue_count}))
    raise ValueError("this function always fails")


@work_bp.timer_trigger(arg_name="timer", schedule="%HOSTAPP_SCHEDULE%", run_on_startup=False)
@work_bp.queue_output(arg_name="tick", queue_name="%HOSTAPP_PREFIX%-ticks", connection="AzureWebJobsStorage")
def tick(timer: func.TimerRequest, tick: func.Out[str]) -> None:
    tick.set(json.dumps({"past_due": timer.past_due}))


@work_bp.timer_trigger(arg_name="timer", schedule="%HOSTAPP_SCHEDULE%", run_on_startup=False)
@work_bp.queue_output(arg_name="stamp", queue_name="%HOSTAPP_PREFIX%-stamps", connection="AzureWebJobsStorage")
def stamp(timer: func.TimerRequest, stamp: func.Out[str]) -> None:
    """Which host process ran which occurrence (tests/devtools/test_timer_singleton.py)."""
    status = timer.schedule_status or {}
    stamp.set(json.dumps({"pid": os.getpid(), "next": status.get("Next"), "past_due": timer.past_due}))


@work_bp.queue_trigger(arg_name="msg", queue_name="%HOSTAPP_PREFIX%-slow", connection="AzureWebJobsStorage")
@work_bp.queue_output(arg_name="done", queue_name="%HOSTAPP_PREFIX%-slowdone", connection="AzureWebJobsStorage")
async def slow_worker(msg: func.QueueMessage, done: func.Out[str]) -> None:
    """Runs longer than the host's message lease (FUNCHOST_QUEUE_LEASE_SECONDS) to prove the lease is renewed."""
    await asyncio.sleep(float(msg.get_body()))
    done.set(json.dumps({"dequeue_count": msg.dequeue_count}))


@work_bp.warm_up_trigger(arg_name="warmup_context")
def warm(warmup_context: WarmUpContext) -> None:
    _record("warmups", "warm")


app.register_functions(http_bp)
app.register_functions(work_bp)
