"""Imports the app's `function_app` module, reads its functions once and classifies their triggers and bindings."""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func

from .settings import resolve_app_setting_expression

log = logging.getLogger("funchost")

HTTP, QUEUE, TIMER, WARMUP = "http", "queue", "timer", "warmup"
_TRIGGER_KINDS = {"httpTrigger": HTTP, "queueTrigger": QUEUE, "timerTrigger": TIMER, "warmupTrigger": WARMUP}


class AppLoadError(Exception):
    """The app could not be imported or declares nothing the host can run."""


@dataclass(frozen=True)
class QueueOutput:
    """A `queue` output binding: the parameter (or `$return`) and where its messages go."""

    name: str
    queue_name: str
    connection: str


@dataclass
class FunctionSpec:
    """One function as the host runs it."""

    name: str
    kind: str
    trigger: dict[str, Any]
    user_function: Callable[..., Any]
    is_async: bool
    parameters: list[str]
    annotations: dict[str, Any]
    queue_outputs: list[QueueOutput] = field(default_factory=list)
    http_output: str | None = None

    @property
    def trigger_arg(self) -> str:
        return str(self.trigger["name"])

    @property
    def function_directory(self) -> str:
        return os.path.dirname(inspect.getfile(self.user_function))


def import_app(app_dir: Path) -> func.FunctionApp:
    """Import `function_app` from app_dir (first on sys.path) and return its FunctionApp."""
    app_dir = app_dir.resolve()
    sys.path.insert(0, str(app_dir))
    module = importlib.import_module("function_app")
    candidate = getattr(module, "app", None)
    if isinstance(candidate, func.FunctionApp):
        return candidate
    found = [value for value in vars(module).values() if isinstance(value, func.FunctionApp)]
    if len(found) != 1:
        raise AppLoadError(f"{app_dir}/function_app.py must define exactly one func.FunctionApp, found {len(found)}")
    return found[0]


def read_functions(app: func.FunctionApp) -> list[FunctionSpec]:
    """Call `app.get_functions()` once and turn each function into a FunctionSpec; unsupported ones are skipped."""
    specs: list[FunctionSpec] = []
    for function in app.get_functions():
        spec = _to_spec(function)
        if spec is not None:
            specs.append(spec)
    return specs


def _to_spec(function: Any) -> FunctionSpec | None:
    name = function.get_function_name()
    bindings = function.get_dict_repr()["bindings"]
    triggers = [b for b in bindings if b["type"] in _TRIGGER_KINDS or b["type"].endswith("Trigger")]
    if len(triggers) != 1 or triggers[0]["type"] not in _TRIGGER_KINDS:
        kinds = ", ".join(b["type"] for b in triggers) or "none"
        log.warning("function %s skipped: trigger %s is not supported by funchost", name, kinds)
        return None
    trigger = dict(triggers[0])
    kind = _TRIGGER_KINDS[trigger["type"]]
    if os.environ.get(f"AzureWebJobs.{name}.Disabled", "").lower() in ("1", "true"):
        log.info("function %s is disabled by AzureWebJobs.%s.Disabled", name, name)
        return None

    user_function = function.get_user_function()
    signature = inspect.signature(user_function)
    spec = FunctionSpec(
        name=name,
        kind=kind,
        trigger=trigger,
        user_function=user_function,
        is_async=inspect.iscoroutinefunction(user_function),
        parameters=list(signature.parameters),
        annotations={p.name: p.annotation for p in signature.parameters.values()},
    )
    for binding in bindings:
        if binding is triggers[0] or binding["type"] == trigger["type"]:
            continue
        if binding["type"] == "queue" and str(binding.get("direction", "")).upper() == "OUT":
            spec.queue_outputs.append(QueueOutput(
                name=binding["name"],
                queue_name=resolve_app_setting_expression(binding["queueName"]).lower(),
                connection=binding.get("connection") or "AzureWebJobsStorage",
            ))
        elif binding["type"] == "http" and kind == HTTP:
            spec.http_output = binding["name"]
        else:
            log.warning("function %s skipped: binding %s (%s) is not supported by funchost",
                        name, binding.get("name"), binding["type"])
            return None
    if kind == QUEUE:
        trigger["queueName"] = resolve_app_setting_expression(trigger["queueName"]).lower()
        trigger.setdefault("connection", "AzureWebJobsStorage")
        if not trigger.get("connection"):
            trigger["connection"] = "AzureWebJobsStorage"
    if kind == TIMER:
        trigger["schedule"] = resolve_app_setting_expression(str(trigger["schedule"]))
    return spec
