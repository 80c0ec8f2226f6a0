"""Compiles HTTP trigger route templates (`{id}`, `{id?}`, `{id:guid}`, `{*rest}`) and matches request paths."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from .loader import FunctionSpec

_TOKEN = re.compile(r"\{([^{}]+)\}")
_CONSTRAINT = re.compile(r"([a-zA-Z]+)(?:\((.*)\))?$")
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)

# Constraints that narrow what a segment may look like; the rest are checked on the matched value.
_PATTERNS = {
    "int": r"-?\d+", "long": r"-?\d+", "bool": r"(?:true|false)", "alpha": r"[A-Za-z]+",
    "decimal": r"-?\d+(?:\.\d+)?", "double": r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?",
    "float": r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?",
}


class RouteError(Exception):
    """A route template the host cannot understand."""


@dataclass
class Parameter:
    """One `{...}` in a template."""

    name: str
    group: str
    optional: bool = False
    catch_all: bool = False
    default: str | None = None
    checks: list[Callable[[str], bool]] = field(default_factory=list)


@dataclass
class Route:
    """An HTTP trigger's compiled route."""

    spec: FunctionSpec
    template: str
    pattern: re.Pattern[str]
    parameters: list[Parameter]
    methods: frozenset[str] | None
    auth_level: str
    precedence: tuple[int, ...]

    def match(self, path: str) -> dict[str, str] | None:
        """Route params (strings) when path matches the template and its constraints, else None."""
        found = self.pattern.match(path)
        if not found:
            return None
        values: dict[str, str] = {}
        for parameter in self.parameters:
            value = found.group(parameter.group)
            if value is None or value == "":
                if parameter.default is not None:
                    values[parameter.name] = parameter.default
                continue
            if not all(check(value) for check in parameter.checks):
                return None
            values[parameter.name] = value
        return values

    def allows(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


def compile_route(spec: FunctionSpec, route_prefix: str) -> Route:
    """Build the Route for an HTTP-triggered function."""
    template = str(spec.trigger.get("route") or spec.name).strip("/")
    if template.lower().startswith("admin"):
        # As Azure's host does (azure-functions-host#1781): /admin is its own API, whatever the route prefix.
        raise RouteError(f"route {template!r}: the specified route conflicts with one or more built in routes"
                         " (a route may not start with 'admin' in Azure Functions)")
    methods = spec.trigger.get("methods")
    method_set = frozenset(str(getattr(m, "value", m)).upper() for m in methods) if methods else None
    auth = str(getattr(spec.trigger.get("authLevel"), "value", spec.trigger.get("authLevel") or "FUNCTION")).upper()
    regex = "^"
    precedence: list[int] = []
    parameters: list[Parameter] = []
    prefix = route_prefix.strip("/")
    if prefix:
        regex += "/" + "/".join(re.escape(part) for part in prefix.split("/"))
    segments = template.split("/") if template else []
    for segment in segments:
        whole = _TOKEN.fullmatch(segment)
        if whole:
            parameter, pattern = _parameter(whole.group(1), len(parameters))
            parameters.append(parameter)
            if parameter.catch_all:
                regex += f"(?:/(?P<{parameter.group}>.*))?"
                precedence.append(5)
            elif parameter.optional or parameter.default is not None:
                regex += f"(?:/(?P<{parameter.group}>{pattern}))?"
                precedence.append(4)
            else:
                regex += f"/(?P<{parameter.group}>{pattern})"
                precedence.append(2 if parameter.checks or pattern != "[^/]+" else 3)
            continue
        part_regex, position = "", 0
        for token in _TOKEN.finditer(segment):
            part_regex += re.escape(segment[position:token.start()])
            parameter, pattern = _parameter(token.group(1), len(parameters))
            if parameter.catch_all or parameter.optional:
                raise RouteError(f"route {template!r}: optional and catch-all parameters must fill a whole segment")
            parameters.append(parameter)
            part_regex += f"(?P<{parameter.group}>{pattern.replace('[^/]+', '[^/]+?')})"
            position = token.end()
        part_regex += re.escape(segment[position:])
        if "{" in segment[position:] or "}" in segment[position:]:
            raise RouteError(f"route {template!r}: unbalanced braces in {segment!r}")
        regex += "/" + part_regex
        precedence.append(0 if position == 0 else 1)
    regex += "/?$"
    return Route(spec=spec, template=template, pattern=re.compile(regex, re.IGNORECASE), parameters=parameters,
                 methods=method_set, auth_level=auth, precedence=tuple(precedence))


def order(routes: list[Route]) -> list[Route]:
    """Literal segments before parameters, constrained before free, catch-alls last (like ASP.NET routing)."""
    return sorted(routes, key=lambda r: (*r.precedence, 9))


def _parameter(text: str, index: int) -> tuple[Parameter, str]:
    group = f"p{index}"
    catch_all = text.startswith("*")
    text = text.lstrip("*")
    default = None
    if "=" in text:
        text, default = text.split("=", 1)
    optional = text.endswith("?")
    text = text.rstrip("?")
    name, *constraints = _split_constraints(text)
    if not name.isidentifier() and not re.fullmatch(r"[\w-]+", name):
        raise RouteError(f"route parameter {name!r} is not a valid name")
    parameter = Parameter(name=name, group=group, optional=optional, catch_all=catch_all, default=default)
    pattern = "[^/]+"
    for constraint in constraints:
        pattern = _apply_constraint(parameter, constraint, pattern)
    return parameter, pattern


def _split_constraints(text: str) -> list[str]:
    """`id:int:min(1)` -> ["id", "int", "min(1)"], keeping colons inside `regex(...)`."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == ":" and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    parts.append(current)
    return parts


def _apply_constraint(parameter: Parameter, constraint: str, pattern: str) -> str:
    found = _CONSTRAINT.match(constraint)
    if not found:
        raise RouteError(f"route constraint {constraint!r} is not understood")
    kind, argument = found.group(1).lower(), found.group(2)
    checks = parameter.checks
    if kind in _PATTERNS:
        if kind == "int":
            checks.append(lambda v: _INT32[0] <= int(v) <= _INT32[1])
        if kind == "long":
            checks.append(lambda v: _INT64[0] <= int(v) <= _INT64[1])
        return _PATTERNS[kind]
    if kind == "guid":
        checks.append(_parses(uuid.UUID))
    elif kind == "datetime":
        checks.append(_parses(datetime.fromisoformat))
    elif kind in ("minlength", "maxlength", "length", "min", "max", "range"):
        numbers = [int(n) for n in (argument or "").split(",") if n.strip()]
        if not numbers:
            raise RouteError(f"route constraint {constraint!r} needs a number")
        if kind == "minlength":
            checks.append(lambda v: len(v) >= numbers[0])
        elif kind == "maxlength":
            checks.append(lambda v: len(v) <= numbers[0])
        elif kind == "length":
            low, high = (numbers[0], numbers[-1])
            checks.append(lambda v: low <= len(v) <= high)
        else:
            low = numbers[0] if kind in ("min", "range") else None
            high = numbers[-1] if kind in ("max", "range") else None
            checks.append(lambda v: _in_range(v, low, high))
    elif kind == "regex":
        expression = re.compile(argument or "", re.IGNORECASE)
        checks.append(lambda v: bool(expression.search(v)))
    else:
        raise RouteError(f"route constraint {kind!r} is not supported by funchost")
    return pattern


def _parses(parse: Callable[[str], object]) -> Callable[[str], bool]:
    """The check that a value parses by `parse` (which raises ValueError when it does not)."""

    def check(value: str) -> bool:
        try:
            parse(value)
        except ValueError:
            return False
        return True

    return check


def _in_range(value: str, low: int | None, high: int | None) -> bool:
    try:
        number = int(value)
    except ValueError:
        return False
    return (low is None or number >= low) and (high is None or number <= high)
