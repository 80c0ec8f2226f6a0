"""The secrets canary for the on-premises path: after resets (applied and refused) and a user's change through the
agent, no queue message (as stored and base64-decoded), no row of its tables and no log line holds a password in
clear (H2)."""

from __future__ import annotations

import base64
import binascii
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from azure.data.tables import TableServiceClient

from shared.domain.onprem_jobs import AGENTS_TABLE, JOBS_QUEUE, LEDGER_TABLE, RESULTS_QUEUE, JobKind
from tests.onprem.conftest import Domain, Site


def _forms(text: str) -> list[str]:
    forms = [text]
    try:
        forms.append(base64.b64decode(text, validate=True).decode("utf-8", "replace"))
    except (binascii.Error, ValueError):
        pass
    return forms


def test_no_queue_table_or_log_holds_a_password_in_clear(
        site: Site, domain: Domain, caplog: pytest.LogCaptureFixture) -> None:
    _, sid, _ = domain.make_user()
    passwords = ["C4nary!Applied-7731", "Qz9x"]  # applied, and refused as too short
    for password in passwords:
        site.send(site.job(JobKind.RESET, sid, password))
    _, other, current = domain.make_user()
    passwords += [current, "C4nary!Changed-4417"]  # a user's own change: its current and its new password
    site.send(site.job(JobKind.CHANGE, other, passwords[-1], current=current))
    stored = [m.content for m in site.queue(JOBS_QUEUE).peek_messages(max_messages=32)]
    assert len(stored) == 3
    with caplog.at_level(logging.DEBUG):
        agent = site.agent()
        with ThreadPoolExecutor(2) as pool:
            agent.poll_once(pool, 4)
        agent.heartbeat()
    results = [m.content for m in site.queue(RESULTS_QUEUE).peek_messages(max_messages=32)]
    assert len(results) == 3
    tables = TableServiceClient.from_connection_string(site.connection_string)
    rows = [str(dict(e)) for name in (LEDGER_TABLE, AGENTS_TABLE)
            for e in tables.get_table_client(name.format(prefix=site.prefix)).list_entities()]
    assert len(rows) == 4
    sinks = [form for text in stored + results for form in _forms(text)] + rows + [caplog.text]
    leaks = [(p, s[:80]) for p in passwords for s in sinks if p in s]
    assert leaks == []
