"""On-premises agent: jobs/s at 20 concurrent resets, against raw LDAPS unicodePwd modifies in the same run.

Workload: a real Samba AD DC (devtools/samba_dc.py) and Azurite; N users; the baseline is N raw admin
`unicodePwd` replaces over LDAPS from 20 threads (one connection each, already bound); the figure is the agent
(concurrency 20) taking N sealed reset jobs from the queue, claiming each in the ledger, applying and publishing
the result, timed from the first enqueue to the last ledger row done. Ratio: agent jobs/s / raw modifies/s.
Samba runs `-M single` (one process), so the DC serialises the modifies; a Windows DC would go further.
"""

from __future__ import annotations

import argparse
import ssl
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ldap3
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient, TextBase64DecodePolicy, TextBase64EncodePolicy
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from benchmarks.baseline import percentile, report
from devtools.azurite import Azurite
from devtools.samba_dc import ADMIN_DN, ADMIN_PASSWORD, BASE_DN, SambaDC
from onprem_agent.__main__ import build
from onprem_agent.config import AgentConfig
from onprem_agent.unsealing import public_base64
from shared.adapters.job_sealing import JobSealer
from shared.domain.onprem_jobs import JOBS_QUEUE, LEDGER_TABLE, JobKind, OnPremJob

CONCURRENCY = 20
OU = f"OU=Bench,{BASE_DN}"


def _connect(dc: SambaDC) -> ldap3.Connection:
    tls = ldap3.Tls(ca_certs_file=str(dc.ca_file), validate=ssl.CERT_REQUIRED)
    server = ldap3.Server("127.0.0.1", port=dc.ldaps_port, use_ssl=True, tls=tls)
    return ldap3.Connection(server, ADMIN_DN, ADMIN_PASSWORD, auto_bind=True, raise_exceptions=True)


def _quoted(password: str) -> bytes:
    return f'"{password}"'.encode("utf-16-le")


def _users(dc: SambaDC, count: int) -> list[tuple[str, str]]:
    """`count` users under OU=Bench: (dn, objectSid)."""
    admin = _connect(dc)
    admin.add(OU, ["organizationalUnit"])
    users = []
    for i in range(count):
        dn = f"CN=bench{i},{OU}"
        admin.add(dn, ["user"], {"sAMAccountName": f"bench{i}", "unicodePwd": _quoted("B3nch!Start#0"),
                                 "userAccountControl": 512})
        admin.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["objectSid"])
        raw = admin.response[0]["raw_attributes"]["objectSid"][0]
        subs = [int.from_bytes(raw[8 + 4 * k:12 + 4 * k], "little") for k in range(raw[1])]
        users.append((dn, "-".join(["S", str(raw[0]), str(int.from_bytes(raw[2:8], "big")), *map(str, subs)])))
    admin.unbind()
    return users


def _raw(dc: SambaDC, users: list[tuple[str, str]]) -> tuple[float, list[float]]:
    """Raw modifies/s at CONCURRENCY threads, and each modify's latency (ms)."""
    local = threading.local()
    samples: list[float] = []

    def reset(index: int) -> None:
        conn = getattr(local, "conn", None) or _connect(dc)
        local.conn = conn
        t0 = time.perf_counter()
        conn.modify(users[index][0], {"unicodePwd": [(ldap3.MODIFY_REPLACE, [_quoted(f"R4w!Pass#{index}")])]})
        samples.append((time.perf_counter() - t0) * 1000)

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(lambda _: _connect(dc).unbind(), range(CONCURRENCY)))  # warm the DC's TLS
        started = time.perf_counter()
        list(pool.map(reset, range(len(users))))
        elapsed = time.perf_counter() - started
    return len(users) / elapsed, samples


def _agent(dc: SambaDC, azurite: Azurite, folder: Path, users: list[tuple[str, str]]) -> float:
    key = X25519PrivateKey.generate()
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (folder / "conn").write_text(azurite.connection_string)
    (folder / "bind").write_text(ADMIN_PASSWORD)
    prefix = "b" + uuid.uuid4().hex[:8]
    config = AgentConfig.model_validate({
        "agent_id": "bench", "private_key_files": [str(folder / "key.pem")], "concurrency": CONCURRENCY,
        "storage": {"connection_string_file": str(folder / "conn"), "prefix": prefix},
        "directory": {"servers": [f"127.0.0.1:{dc.ldaps_port}"], "ca_file": str(dc.ca_file), "base_dn": BASE_DN,
                      "allowed_ous": [OU], "bind_dn": ADMIN_DN, "bind_password_file": str(folder / "bind")},
    })
    agent = build(config)
    sealer = JobSealer.from_base64(public_base64(key))
    queue = QueueServiceClient.from_connection_string(azurite.connection_string).get_queue_client(
        JOBS_QUEUE.format(prefix=prefix), message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy())
    ledger = TableServiceClient.from_connection_string(azurite.connection_string).get_table_client(
        LEDGER_TABLE.format(prefix=prefix))
    expires = datetime.now(UTC) + timedelta(minutes=5)
    jobs = []
    for i, (_, sid) in enumerate(users):
        job_id = str(uuid.uuid4())
        jobs.append(OnPremJob(job_id=job_id, kind=JobKind.RESET, object_sid=sid, expires_at=expires,
                              password=sealer.seal(f"Ag3nt!Pass#{i}", job_id, expires)))
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop, CONCURRENCY, 0.05, 600.0))
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda j: queue.send_message(j.model_dump_json()), jobs))
    runner.start()
    try:
        while True:
            done = sum(1 for e in ledger.query_entities("state eq 'done'", select=["PartitionKey"]))
            if done >= len(jobs):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        runner.join(30)
    if agent.counts.applied != len(jobs):
        raise RuntimeError(f"only {agent.counts.applied} of {len(jobs)} resets applied")
    return len(jobs) / elapsed


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=60)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sspr-bench-onprem-") as location:
        folder = Path(location)
        azurite = Azurite(folder / "azurite").start()
        dc = SambaDC(folder / "dc").provision().start()
        try:
            users = _users(dc, args.users)
            raw_rate, samples = _raw(dc, users)
            agent_rate = _agent(dc, azurite, folder, users)
        finally:
            dc.stop()
            azurite.stop()
    result = {
        "workload": f"{args.users} resets at {CONCURRENCY} concurrent, Samba AD DC (single process) + Azurite",
        "figure": f"agent {agent_rate:.1f} jobs/s (queue, claim, LDAPS modify, result)",
        "baseline": (f"raw LDAPS unicodePwd modify {raw_rate:.1f}/s "
                     f"(p50 {percentile(samples, 0.5):.0f} ms, p99 {percentile(samples, 0.99):.0f} ms)"),
        "ratio": f"agent / raw = {agent_rate / raw_rate:.2f}",
        "target": "agent >= 0.5x raw",
    }
    return report(result)


if __name__ == "__main__":
    main()
