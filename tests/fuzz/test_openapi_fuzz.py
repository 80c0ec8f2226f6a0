"""Every operation of /api/openapi.json, fuzzed by schemathesis against a running local host (issue 8 part 3).

For each operation schemathesis generates valid and invalid requests (bounded and derandomised: the same requests
every run) and checks each answer: no 5xx, a status code the document lists, the documented content type, and a
body that matches the documented schema. Callers carry the credentials the route asks for (an SSPR.Admin user for
admin routes, an ordinary user for me/..., Entra's authentication events app for the hook, the function key for
the sign-in log stream), so the fuzzer reaches the handlers and not only the token check.

Schemathesis' own pytest decorator does not run under pytest 9 (it sets the removed `Function._nodeid`), so each
operation runs as a hypothesis test of its own here, one subtest per operation and generation mode.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devtools.stack import FUNCTION_KEY, FunctionHost, GraphEmulator
from shared.adapters.proof_of_work import solve
from tests.integration.tokens import AUTH_EVENTS_APP_ID, AUTH_EVENTS_SECRET, app_token, bearer, user_token

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ADMIN = "admin@contoso.example"
USER = "casey@contoso.example"
# Per operation and mode: 10 keeps `make test` near 30 s on 2 cores; a deeper run: FUZZ_EXAMPLES=200 with --timeout=0.
EXAMPLES_PER_MODE = int(os.environ.get("FUZZ_EXAMPLES", "10"))


def credentials(path: str, emulator: GraphEmulator) -> dict[str, str]:
    """What the route's documented access asks for."""
    if path.startswith("/api/manage/"):
        return bearer(user_token(emulator, ADMIN))
    if path.startswith("/api/me/"):
        return bearer(user_token(emulator, USER))
    if path == "/api/hooks/token-issuance-start":
        return bearer(app_token(emulator, AUTH_EVENTS_APP_ID, AUTH_EVENTS_SECRET))
    if path == "/api/hooks/signin-events":
        return {"x-functions-key": FUNCTION_KEY}
    return {}


def fuzz(operation: Any, mode: GenerationMode, base_url: str, credentials: dict[str, str], **fixed: Any) -> None:
    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @settings(max_examples=EXAMPLES_PER_MODE, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    def one_operation(case: schemathesis.Case) -> None:
        mine = {name.lower() for name in credentials}
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in mine} | credentials
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)

    try:
        one_operation()
    except Unsatisfiable:
        # Nothing of this operation can be made invalid (no body, no constrained parameter): nothing to send.
        if mode is not GenerationMode.NEGATIVE:
            raise


def live_reset_flow(host: FunctionHost) -> tuple[str, str]:
    """A started reset flow (id, secret), so the flow's steps are fuzzed past the id and secret check."""
    with httpx.Client(base_url=f"{host.base_url}/api", timeout=30) as api:
        challenge = api.get("/reset/pow").json()
        started = api.post("/reset/flows", json={"username": USER, "altcha": solve(challenge)},
                           headers={"X-Forwarded-For": "192.0.2.80"})
    assert started.status_code == 201, started.text
    return started.json()["flowId"], started.json()["flowSecret"]


@pytest.mark.slow
@pytest.mark.timeout(600)  # every operation twice (positive, negative): minutes on a busy 2-core machine
def test_every_operation_answers_as_documented_and_never_5xx(
        api_schema: schemathesis.BaseSchema, api_document: dict[str, Any], fuzz_host: FunctionHost,
        fuzz_emulator: GraphEmulator, subtests: pytest.Subtests) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    documented = [(method, path) for path, entries in api_document["paths"].items() for method in entries]
    assert len(operations) == len(documented) > 40, "an operation of the document is not fuzzed"
    flow_id, flow_secret = live_reset_flow(fuzz_host)
    for operation in operations:
        headers = credentials(operation.path, fuzz_emulator)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            with subtests.test(msg=f"{operation.label} {mode.value}"):
                fuzz(operation, mode, fuzz_host.base_url, headers)
            if "{flowId}" in operation.path:
                with subtests.test(msg=f"{operation.label} {mode.value} in a live flow"):
                    fuzz(operation, mode, fuzz_host.base_url, {**headers, "X-Flow-Secret": flow_secret},
                         path_parameters={"flowId": flow_id})
