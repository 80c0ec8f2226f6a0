"""Timers on several hosts of one app fire once per occurrence: the singleton listener lock (a blob lease, as the
Functions host takes it) lets one host run each schedule, and another takes over when that one is SIGKILLed.

Real hosts (`python -m devtools.funchost`, tests/devtools/hostapp) on one Azurite; the `stamp` timer fires every
second and writes which process ran which occurrence (its ScheduleStatus.Next) to a queue.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from devtools.stack import FunctionHost, start_function_host
from tests.devtools.test_funchost import HOSTAPP, Queues, hostapp_settings

LEASE_SECONDS = 15  # the shortest lease Blob Storage grants


@pytest.fixture()
def three_hosts(azurite: Any) -> Iterator[tuple[list[FunctionHost], Queues, dict[str, str]]]:
    settings = hostapp_settings(azurite.connection_string, FUNCHOST_TIMER_LEASE_SECONDS=str(LEASE_SECONDS),
                                FUNCHOST_TIMER_LOCK_POLL_SECONDS="1")
    hosts: list[FunctionHost] = []
    try:
        for _ in range(3):
            hosts.append(start_function_host(HOSTAPP, settings))
        yield hosts, Queues(azurite.connection_string, settings["HOSTAPP_PREFIX"]), settings
    finally:
        for host in hosts:
            host.stop()


def stamps(queues: Queues, seconds: float) -> list[dict[str, Any]]:
    """Every stamp written within `seconds` from now (and any left from before), taken off the queue."""
    client = queues.client("stamps")
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for message in client.receive_messages(messages_per_page=32, max_messages=32):
            found.append(json.loads(message.content))
            client.delete_message(message)
        time.sleep(0.2)
    return found


def occurrences(found: list[dict[str, Any]]) -> list[datetime]:
    return sorted(datetime.fromisoformat(s["next"]) for s in found)


def test_three_hosts_fire_each_occurrence_once_and_a_survivor_takes_over_from_a_killed_holder(
        three_hosts: tuple[list[FunctionHost], Queues, dict[str, str]], azurite: Any) -> None:
    hosts, queues, _ = three_hosts
    pids = {host.process.proc.pid: host for host in hosts if host.process.proc is not None}

    steady = stamps(queues, 8)
    holders = {s["pid"] for s in steady}
    assert len(holders) == 1 and holders <= pids.keys(), holders
    seen = occurrences(steady)
    assert len(seen) == len(set(seen)) >= 5, seen  # one run per occurrence, none twice

    blobs = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
        "azure-webjobs-hosts")
    names = {blob.name for blob in blobs.list_blobs()}
    assert any(n.startswith("locks/") and n.endswith("/stamp.Listener") for n in names), names
    assert any(n.startswith("timers/") and n.endswith("/stamp/status") for n in names), names

    (holder,) = holders
    pids[holder].process.kill()
    killed_at = time.monotonic()
    after = stamps(queues, LEASE_SECONDS + 12)
    new = [s for s in after if s["pid"] != holder]
    taken_over_within = time.monotonic() - killed_at
    assert new, f"no survivor took over within {taken_over_within:.0f} s"
    assert {s["pid"] for s in new} <= pids.keys() - {holder} and len({s["pid"] for s in new}) == 1, new
    # The occurrences missed while the lease ran out are made up by one past-due run, as the real host does.
    assert new[0]["past_due"] is True, new[:3]
    assert sum(s["past_due"] for s in new) == 1, new
    everything = occurrences(steady + after)
    assert len(everything) == len(set(everything)), everything
    assert len(new) >= 4, new


def test_a_holder_that_stops_gracefully_releases_the_lock_so_another_host_takes_over_at_once(
        three_hosts: tuple[list[FunctionHost], Queues, dict[str, str]]) -> None:
    hosts, queues, _ = three_hosts
    pids = {host.process.proc.pid: host for host in hosts if host.process.proc is not None}
    (holder,) = {s["pid"] for s in stamps(queues, 4)}
    pids[holder].stop()  # SIGTERM: the lease is released, not left to expire
    stopped_at = time.monotonic()
    after = stamps(queues, 6)
    new = [s for s in after if s["pid"] != holder]
    assert new and len({s["pid"] for s in new}) == 1, after
    assert time.monotonic() - stopped_at < LEASE_SECONDS  # well before the lease could have expired
    assert len(new) >= 3, new  # the survivor fired within the 6 s, not after a lease expiry
