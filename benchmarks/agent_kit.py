"""What the on-premises benchmarks share: a scratch Samba domain with its accounts beside Azurite, the DC
administrator's LDAPS connection, and jobs run through the real agent, timed from the first enqueue until the
ledger has every one done."""

from __future__ import annotations

import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import ldap3
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from devtools.azurite import Azurite
from devtools.onprem_site import STAFF_OU, AdUser, AgentSite, Domain, provisioned_domain
from devtools.samba_dc import ADMIN_DN, ADMIN_PASSWORD
from onprem_agent.agent import Agent
from shared.domain.onprem_jobs import JOBS_QUEUE, LEDGER_TABLE, OnPremJob


@contextmanager
def scratch_domain(name: str, accounts: int, threads: int = 1) -> Iterator[tuple[Path, Azurite, Domain, list[AdUser]]]:
    """A scratch folder, Azurite in it, and a provisioned Samba domain with `accounts` accounts in OU=Staff (made
    `threads` at a time); all gone on exit."""
    with tempfile.TemporaryDirectory(prefix=f"sspr-bench-{name}-") as location:
        folder = Path(location)
        azurite = Azurite(folder / "azurite").start()
        try:
            with provisioned_domain(folder / "dc") as domain, ThreadPoolExecutor(threads) as pool:
                users = list(pool.map(lambda _: domain.make_user(STAFF_OU, "B3nch!Start#Pass0"), range(accounts)))
                yield folder, azurite, domain, users
        finally:
            azurite.stop()


def ldaps_admin(domain: Domain) -> ldap3.Connection:
    """A bound LDAPS connection to the domain's DC as its administrator (the DC's CA verified)."""
    tls = ldap3.Tls(ca_certs_file=str(domain.dc.ca_file), validate=ssl.CERT_REQUIRED)
    server = ldap3.Server("127.0.0.1", port=domain.dc.ldaps_port, use_ssl=True, tls=tls)
    return ldap3.Connection(server, ADMIN_DN, ADMIN_PASSWORD, auto_bind=True, raise_exceptions=True)


def timed_jobs(agent: Agent, site: AgentSite, azurite: Azurite, jobs: list[OnPremJob], concurrency: int) -> float:
    """Seconds for `jobs` through `agent` (`concurrency` threads): all enqueued (8 at once), then the agent runs
    until the site's ledger has a done row for each; the agent is stopped on the way out."""
    queue = QueueServiceClient.from_connection_string(azurite.connection_string).get_queue_client(
        JOBS_QUEUE.format(prefix=site.prefix), message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy())
    ledger = TableServiceClient.from_connection_string(azurite.connection_string).get_table_client(
        LEDGER_TABLE.format(prefix=site.prefix))
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop, concurrency, 0.05, 600.0))
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda j: queue.send_message(j.model_dump_json()), jobs))
    runner.start()
    try:
        while sum(1 for _ in ledger.query_entities("state eq 'done'", select=["PartitionKey"])) < len(jobs):
            time.sleep(0.05)
        return time.perf_counter() - started
    finally:
        stop.set()
        runner.join(30)
