"""The local Functions host (devtools/funchost) runs a real function app: HTTP, queues, timers, admin API, lifecycle.

Everything is real: a `python -m devtools.funchost` process serving tests/devtools/hostapp against Azurite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from devtools.processes import REPO_ROOT
from devtools.stack import FunctionHost, start_function_host

HOSTAPP = Path(__file__).resolve().parent / "hostapp"
FUNCTION_KEY = "hostapp-function-key"
MASTER_KEY = "hostapp-master-key"


def hostapp_settings(connection_string: str, **overrides: str) -> dict[str, str]:
    settings = {
        "AzureWebJobsStorage": connection_string,
        "HOSTAPP_PREFIX": f"fh{uuid.uuid4().hex[:10]}",
        "HOSTAPP_SCHEDULE": "*/1 * * * * *",
        "FUNCHOST_FUNCTION_KEY": FUNCTION_KEY,
        "FUNCHOST_MASTER_KEY": MASTER_KEY,
        "FUNCHOST_QUEUE_LEASE_SECONDS": "2",
    }
    settings.update(overrides)
    return settings


class Queues:
    """The test's view of the host app's queues on Azurite."""

    def __init__(self, connection_string: str, prefix: str) -> None:
        self.connection_string = connection_string
        self.prefix = prefix

    def client(self, name: str, *, base64_policy: bool = True) -> QueueClient:
        policies: dict[str, Any] = (
            {"message_encode_policy": TextBase64EncodePolicy(), "message_decode_policy": TextBase64DecodePolicy()}
            if base64_policy else {})
        client = QueueClient.from_connection_string(self.connection_string, f"{self.prefix}-{name}", **policies)
        try:
            client.create_queue()
        except Exception:  # exists already
            pass
        return client

    def take(self, name: str, count: int, timeout: float = 15.0, *, base64_policy: bool = True) -> list[str]:
        """Wait until `count` messages arrived on the queue and remove them; their decoded contents."""
        client = self.client(name, base64_policy=base64_policy)
        found: list[str] = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            for message in client.receive_messages(messages_per_page=32, max_messages=32):
                found.append(message.content)
                client.delete_message(message)
            if len(found) < count:
                time.sleep(0.2)
        assert len(found) >= count, f"expected {count} message(s) on {name}, got {found}"
        return found

    def peek(self, name: str) -> list[str]:
        return [message.content for message in self.client(name).peek_messages(max_messages=32)]

    def is_empty(self, name: str) -> bool:
        properties = self.client(name).get_queue_properties()
        return properties.approximate_message_count == 0


@pytest.fixture(scope="module")
def host(azurite: Any) -> Iterator[tuple[FunctionHost, Queues]]:
    settings = hostapp_settings(azurite.connection_string)
    running = start_function_host(HOSTAPP, settings)
    try:
        yield running, Queues(azurite.connection_string, settings["HOSTAPP_PREFIX"])
    finally:
        running.stop()


@pytest.fixture()
def http(host: tuple[FunctionHost, Queues]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=host[0].base_url, timeout=10) as client:
        yield client


@pytest.fixture()
def queues(host: tuple[FunctionHost, Queues]) -> Queues:
    return host[1]


# --- HTTP triggers ---------------------------------------------------------------------------------------------

def test_route_parameter_reaches_the_function(http: httpx.Client) -> None:
    response = http.get("/api/items/42")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"id": "42"}
    assert http.get("/api/ITEMS/7").json() == {"id": "7"}


def test_route_constraints_and_optional_parameters_are_honoured(http: httpx.Client) -> None:
    guid = str(uuid.uuid4())
    assert http.get(f"/api/things/{guid}/5").json() == {"id": guid, "n": "5"}
    assert http.get(f"/api/things/{guid}").json() == {"id": guid}
    assert http.get("/api/things/not-a-guid").status_code == 404
    assert http.get(f"/api/things/{guid}/five").status_code == 404


def test_unknown_path_is_404_and_wrong_method_is_405(http: httpx.Client) -> None:
    assert http.get("/api/nothing-here").status_code == 404
    assert http.get("/items/42").status_code == 404  # outside the route prefix
    response = http.delete("/api/items/42")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


def test_function_level_route_needs_a_key(http: httpx.Client) -> None:
    refused = http.get("/api/keyed")
    assert refused.status_code == 401 and refused.content == b""
    assert http.get("/api/keyed", headers={"x-functions-key": "wrong"}).status_code == 401
    assert http.get("/api/keyed", headers={"x-functions-key": FUNCTION_KEY}).text == "keyed"
    assert http.get("/api/keyed", params={"code": FUNCTION_KEY}).status_code == 200
    assert http.get("/api/keyed", headers={"x-functions-key": MASTER_KEY}).status_code == 200


def test_admin_level_route_refuses_the_function_key(http: httpx.Client) -> None:
    assert http.get("/api/masteronly").status_code == 401
    assert http.get("/api/masteronly", headers={"x-functions-key": FUNCTION_KEY}).status_code == 401
    assert http.get("/api/masteronly", params={"code": MASTER_KEY}).text == "admin"


def test_anonymous_route_accepts_any_method_when_none_is_declared(http: httpx.Client) -> None:
    assert http.get("/api/open").text == "open"
    response = http.put("/api/open")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")


def test_request_and_response_are_mapped_faithfully(host: tuple[FunctionHost, Queues], http: httpx.Client) -> None:
    response = http.post("/api/echo?x=1&y=two", content=b'{"hello": "world"}',
                         headers={"X-Custom": "value", "Content-Type": "application/json"})
    assert response.status_code == 201
    assert response.headers["x-echo"] == "yes"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    echoed = response.json()
    assert echoed["method"] == "POST"
    assert echoed["url"] == f"{host[0].base_url}/api/echo?x=1&y=two"
    assert echoed["body"] == '{"hello": "world"}'
    assert echoed["params"] == {"x": "1", "y": "two"}
    assert echoed["headers"]["x-custom"] == "value"
    assert echoed["headers"]["content-type"] == "application/json"
    assert echoed["function_name"] == "echo"
    uuid.UUID(echoed["invocation_id"])


def test_the_peer_is_appended_to_x_forwarded_for_as_azures_front_end_appends_it(http: httpx.Client) -> None:
    alone = http.post("/api/echo", content=b"{}").json()["headers"]["x-forwarded-for"]
    host, _, port = alone.rpartition(":")
    assert host == "127.0.0.1" and port.isdigit(), alone
    chained = http.post("/api/echo", content=b"{}", headers={"X-Forwarded-For": "192.0.2.66, 10.0.0.1"})
    supplied, _, appended = chained.json()["headers"]["x-forwarded-for"].rpartition(", ")
    assert supplied == "192.0.2.66, 10.0.0.1"  # what the caller sent stays, on the left
    assert appended.startswith("127.0.0.1:"), appended


def test_function_exception_is_a_bare_500_and_the_traceback_is_logged(host: tuple[FunctionHost, Queues],
                                                                     http: httpx.Client) -> None:
    response = http.get("/api/boom")
    assert response.status_code == 500
    assert response.content == b""
    deadline = time.monotonic() + 5
    while "secret internal detail" not in host[0].process.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "RuntimeError: secret internal detail" in host[0].process.output()


def test_log_lines_carry_no_query_strings_and_no_raw_newlines(host: tuple[FunctionHost, Queues],
                                                             http: httpx.Client) -> None:
    http.get("/api/keyed", params={"code": FUNCTION_KEY})
    http.post("/api/echo?marker=1", content=b"")
    time.sleep(0.3)
    output = host[0].process.output()
    assert FUNCTION_KEY not in output
    assert "echo [HTTP POST /api/echo]" in output and "marker=1" not in output
    assert "echo invoked\\nwith a newline in the message" in output


# --- Queues ----------------------------------------------------------------------------------------------------

def test_output_binding_messages_arrive_decoded(http: httpx.Client, queues: Queues) -> None:
    first, second = f"one-{uuid.uuid4()}", f"two-{uuid.uuid4()}"
    assert http.post("/api/enqueue", content=f"{first}\n{second}".encode()).status_code == 202
    seen = [json.loads(text) for text in queues.take("seen", 2)]
    assert sorted(record["body"] for record in seen) == sorted([first, second])
    assert all(record["dequeue_count"] == 1 for record in seen)


def test_message_sent_with_the_base64_policy_is_received_with_its_body(queues: Queues) -> None:
    body = json.dumps({"user": "åsa@contoso.com", "id": str(uuid.uuid4())})
    queues.client("work").send_message(body)
    (record,) = [json.loads(text) for text in queues.take("seen", 1)]
    assert record["body"] == body


def test_failing_message_is_poisoned_after_exactly_five_attempts(queues: Queues) -> None:
    body = f"doomed-{uuid.uuid4()}"
    queues.client("fail").send_message(body)
    (poisoned,) = queues.take("fail-poison", 1, timeout=30)
    assert poisoned == body  # still base64 on the wire, decoded here by the policy
    attempts = [json.loads(text) for text in queues.take("attempts", 5, timeout=5)]
    assert sorted(a["dequeue_count"] for a in attempts) == [1, 2, 3, 4, 5]
    assert all(a["body"] == body for a in attempts)
    time.sleep(1.5)  # longer than visibilityTimeout: a sixth attempt would have happened by now
    assert queues.peek("attempts") == []
    assert queues.is_empty("fail")


def test_message_that_is_not_base64_ends_in_poison_untouched(queues: Queues) -> None:
    raw = f"not base64 !! {uuid.uuid4()}"
    queues.client("work", base64_policy=False).send_message(raw)
    (poisoned,) = queues.take("work-poison", 1, timeout=30, base64_policy=False)
    assert poisoned == raw
    assert queues.is_empty("work")


def test_long_running_message_keeps_its_lease(queues: Queues) -> None:
    queues.client("slow").send_message("3.5")  # longer than the 2 s lease the test host uses
    (done,) = [json.loads(text) for text in queues.take("slowdone", 1, timeout=15)]
    assert done == {"dequeue_count": 1}
    time.sleep(1.0)
    assert queues.peek("slowdone") == [] and queues.is_empty("slow")


# --- Timers and the admin API ----------------------------------------------------------------------------------

def test_timer_fires_on_its_schedule(queues: Queues) -> None:
    ticks = [json.loads(text) for text in queues.take("ticks", 2, timeout=10)]
    assert ticks[0] == {"past_due": False}


def test_warmup_runs_at_start_and_on_request(http: httpx.Client, queues: Queues) -> None:
    assert queues.take("warmups", 1) == ["warm"]
    assert http.post("/admin/warmup", headers={"x-functions-key": FUNCTION_KEY}).status_code == 401
    assert http.post("/admin/warmup", headers={"x-functions-key": MASTER_KEY}).status_code == 200
    assert queues.take("warmups", 1) == ["warm"]


def test_admin_status_needs_the_master_key(http: httpx.Client) -> None:
    assert http.get("/admin/host/status").status_code == 401
    assert http.get("/admin/host/status", headers={"x-functions-key": FUNCTION_KEY}).status_code == 401
    status = http.get("/admin/host/status", headers={"x-functions-key": MASTER_KEY})
    assert status.status_code == 200 and status.json()["state"] == "Running"


def test_admin_api_invokes_a_queue_function(http: httpx.Client, queues: Queues) -> None:
    body = f"from-admin-{uuid.uuid4()}"
    response = http.post("/admin/functions/record", json={"input": body}, headers={"x-functions-key": MASTER_KEY})
    assert response.status_code == 202
    (record,) = [json.loads(text) for text in queues.take("seen", 1)]
    assert record["body"] == body
    assert http.post("/admin/functions/nope", json={}, headers={"x-functions-key": MASTER_KEY}).status_code == 404


# --- Lifecycle -------------------------------------------------------------------------------------------------

def test_import_error_exits_1_and_shows_the_message(azurite: Any) -> None:
    env = {**os.environ, **hostapp_settings(azurite.connection_string), "HOSTAPP_FAIL_IMPORT": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "devtools.funchost", "--app-dir", str(HOSTAPP), "--port", "0",
         "--settings", os.devnull],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "hostapp configuration is invalid: HOSTAPP_FAIL_IMPORT is set" in result.stderr
    assert "funchost ready" not in result.stdout


def test_sigterm_lets_the_running_request_finish_then_exits_0(azurite: Any) -> None:
    running = start_function_host(HOSTAPP, hostapp_settings(azurite.connection_string), "--no-timers")
    outcome: dict[str, Any] = {}

    def slow_request() -> None:
        outcome["response"] = httpx.get(f"{running.base_url}/api/slow", params={"s": "1.5"}, timeout=10)

    worker = threading.Thread(target=slow_request)
    worker.start()
    time.sleep(0.5)
    assert running.stop() == 0
    worker.join(10)
    assert outcome["response"].status_code == 200 and outcome["response"].text == "slept"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{running.base_url}/api/open", timeout=2)
    assert "tick [" not in running.process.output()  # --no-timers


@pytest.mark.parametrize("route", ["admin/policy", "Admin", "administration/x", "adminonly"])
def test_routes_starting_with_admin_are_refused_as_azure_refuses_them(route: str) -> None:
    from devtools.funchost.loader import FunctionSpec
    from devtools.funchost.routes import RouteError, compile_route

    spec = FunctionSpec(name="f", kind="httpTrigger", trigger={"route": route}, user_function=print, is_async=False,
                        parameters=[], annotations={})
    with pytest.raises(RouteError, match="built in routes"):
        compile_route(spec, "api")
    compile_route(FunctionSpec(name="f", kind="httpTrigger", trigger={"route": "manage/" + route},
                               user_function=print, is_async=False, parameters=[], annotations={}), "api")


def test_the_app_declares_no_route_azure_would_refuse() -> None:
    # In a process of its own: FunctionApp.get_functions() may be called once per app.
    script = ("import function_app; print('\\n'.join(str(f.get_trigger().route or f.get_function_name()) "
              "for f in function_app.app.get_functions() if f.get_trigger().get_binding_name() == 'httpTrigger'))")
    repo = Path(__file__).resolve().parents[2]
    sample = json.loads((repo / "local.settings.json.sample").read_text())["Values"]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True,
                          cwd=repo, env={**os.environ, **{k: str(v) for k, v in sample.items()}})
    routes = done.stdout.split()
    assert "manage/policy" in routes and "reset/flows" in routes
    assert not [r for r in routes if r.lower().startswith("admin")]
