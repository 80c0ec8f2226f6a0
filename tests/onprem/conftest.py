"""A real Samba AD DC (once per session) with an in-scope and an out-of-scope OU, a service account delegated only
"Reset password" and write lockoutTime/pwdLastSet on the in-scope OU, and helpers to make users and agents.

Tests that need the DC fail (never skip) with the install command when Samba is missing.
"""

from __future__ import annotations

import ssl
import struct
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ldap3
import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64DecodePolicy, TextBase64EncodePolicy
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from devtools.azurite import Azurite
from devtools.samba_dc import ADMIN_DN, ADMIN_PASSWORD, BASE_DN, MISSING, SambaDC, samba_installed
from onprem_agent.__main__ import build
from onprem_agent.agent import Agent
from onprem_agent.config import AgentConfig
from onprem_agent.unsealing import public_base64
from shared.adapters.job_sealing import JobSealer
from shared.domain.onprem_jobs import JOBS_QUEUE, LEDGER_TABLE, RESULTS_QUEUE, JobKind, OnPremJob

STAFF_OU = f"OU=Staff,{BASE_DN}"
ELSEWHERE_OU = f"OU=Elsewhere,{BASE_DN}"
SERVICE_ACCOUNT = "sspr-agent"
SERVICE_DN = f"CN={SERVICE_ACCOUNT},CN=Users,{BASE_DN}"
SERVICE_PASSWORD = "Svc!Agent#Pass2026"
USER_CLASS = "bf967aba-0de6-11d0-a285-00aa003049e2"
RESET_PASSWORD_RIGHT = "00299570-246d-11d0-a768-00aa006e0529"
LOCKOUT_TIME = "28630ebf-41d5-11d1-a9c1-0000f80367c1"
PWD_LAST_SET = "bf967a0a-0de6-11d0-a285-00aa003049e2"


def sid_text(raw: bytes) -> str:
    count = raw[1]
    authority = int.from_bytes(raw[2:8], "big")
    subs = struct.unpack(f"<{count}I", raw[8:8 + 4 * count])
    return "-".join(["S", str(raw[0]), str(authority), *map(str, subs)])


def quoted(password: str) -> bytes:
    return f'"{password}"'.encode("utf-16-le")


@dataclass
class Domain:
    dc: SambaDC
    service_sid: str

    def connect(self, dn: str = ADMIN_DN, password: str = ADMIN_PASSWORD) -> ldap3.Connection:
        tls = ldap3.Tls(ca_certs_file=str(self.dc.ca_file), validate=ssl.CERT_REQUIRED)
        server = ldap3.Server("127.0.0.1", port=self.dc.ldaps_port, use_ssl=True, tls=tls, get_info=ldap3.DSA)
        return ldap3.Connection(server, dn, password, auto_bind=True, raise_exceptions=False)

    def binds(self, dn: str, password: str) -> bool:
        try:
            conn = self.connect(dn, password)
        except ldap3.core.exceptions.LDAPBindError:
            return False
        conn.unbind()
        return True

    def make_user(self, ou: str = STAFF_OU, password: str = "St4rt!Passw0rd") -> tuple[str, str, str]:
        """A new enabled user in `ou`: (dn, objectSid, password)."""
        name = "u" + uuid.uuid4().hex[:10]
        dn = f"CN={name},{ou}"
        admin = self.connect()
        admin.add(dn, ["user"], {"sAMAccountName": name, "unicodePwd": quoted(password),
                                 "userAccountControl": 512})
        if admin.result["result"] != 0:
            raise RuntimeError(f"could not create {dn}: {admin.result}")
        admin.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["objectSid"])
        sid = sid_text(admin.response[0]["raw_attributes"]["objectSid"][0])
        admin.unbind()
        return dn, sid, password

    def attribute(self, dn: str, name: str) -> int:
        admin = self.connect()
        admin.search(dn, "(objectClass=*)", ldap3.BASE, attributes=[name])
        values = admin.response[0]["raw_attributes"].get(name) or [b"0"]
        admin.unbind()
        return int(values[0])


def _delegate(dc: SambaDC, sid: str) -> None:
    """What docs/onprem.md tells an admin to grant: Reset password, write lockoutTime and pwdLastSet on users
    under the chosen OU, nothing else."""
    sddl = "".join([
        f"(OA;CIIO;CR;{RESET_PASSWORD_RIGHT};{USER_CLASS};{sid})",
        f"(OA;CIIO;WP;{LOCKOUT_TIME};{USER_CLASS};{sid})",
        f"(OA;CIIO;WP;{PWD_LAST_SET};{USER_CLASS};{sid})",
    ])
    dc.samba_tool("dsacl", "set", f"--objectdn={STAFF_OU}", f"--sddl={sddl}")


@pytest.fixture(scope="session")
def domain() -> Iterator[Domain]:
    if not samba_installed():
        pytest.fail(MISSING)
    with tempfile.TemporaryDirectory(prefix="sspr-samba-") as location:
        dc = SambaDC(Path(location) / "dc").provision()
        dc.start()
        try:
            admin = Domain(dc, "").connect()
            for ou in (STAFF_OU, ELSEWHERE_OU):
                admin.add(ou, ["organizationalUnit"])
            admin.add(SERVICE_DN, ["user"], {"sAMAccountName": SERVICE_ACCOUNT,
                                             "unicodePwd": quoted(SERVICE_PASSWORD), "userAccountControl": 512})
            admin.search(SERVICE_DN, "(objectClass=*)", ldap3.BASE, attributes=["objectSid"])
            sid = sid_text(admin.response[0]["raw_attributes"]["objectSid"][0])
            admin.unbind()
            _delegate(dc, sid)
            yield Domain(dc, sid)
        finally:
            dc.stop()


@dataclass
class Site:
    """One deployment's queues and ledger on Azurite, the agent's key, and a way to make agents for it."""

    domain: Domain
    azurite: Azurite
    folder: Path
    prefix: str
    key: X25519PrivateKey

    @property
    def sealer(self) -> JobSealer:
        return JobSealer.from_base64(public_base64(self.key))

    def queue(self, template: str) -> QueueClient:
        service = QueueServiceClient.from_connection_string(self.azurite.connection_string)
        return service.get_queue_client(template.format(prefix=self.prefix),
                                        message_encode_policy=TextBase64EncodePolicy(),
                                        message_decode_policy=TextBase64DecodePolicy())

    def ledger_row(self, job_id: str) -> dict[str, object]:
        tables = TableServiceClient.from_connection_string(self.azurite.connection_string)
        return dict(tables.get_table_client(LEDGER_TABLE.format(prefix=self.prefix)).get_entity(job_id, "job"))

    def config(self, agent_id: str = "agent-1", servers: list[str] | None = None, **extra: object) -> AgentConfig:
        conn = self.folder / "storage.conn"
        conn.write_text(self.azurite.connection_string)
        secret = self.folder / "bind.password"
        secret.write_text(SERVICE_PASSWORD)
        data: dict[str, object] = {
            "agent_id": agent_id,
            "private_key_files": [str(self.folder / "agent-key.pem")],
            "storage": {"connection_string_file": str(conn), "prefix": self.prefix},
            "directory": {
                "servers": servers or [f"127.0.0.1:{self.domain.dc.ldaps_port}"],
                "ca_file": str(self.domain.dc.ca_file), "base_dn": BASE_DN, "allowed_ous": [STAFF_OU],
                "bind_dn": SERVICE_DN, "bind_password_file": str(secret),
            },
            "lease_s": 2.0, "poll_s": 0.2, "heartbeat_s": 5.0,
            **extra,
        }
        return AgentConfig.model_validate(data)

    def agent(self, agent_id: str = "agent-1", servers: list[str] | None = None) -> Agent:
        return build(self.config(agent_id, servers))

    def job(self, kind: JobKind, sid: str, password: str | None = None, ttl: float = 30.0,
            must_change: bool = False) -> OnPremJob:
        job_id = str(uuid.uuid4())
        expires = datetime.now(UTC) + timedelta(seconds=ttl)
        sealed = self.sealer.seal(password, job_id, expires) if password is not None else None
        return OnPremJob(job_id=job_id, kind=kind, object_sid=sid, expires_at=expires, password=sealed,
                         must_change_at_next_logon=must_change)

    def send(self, job: OnPremJob) -> None:
        jobs = self.queue(JOBS_QUEUE)
        try:
            jobs.create_queue()
        except Exception:
            pass
        jobs.send_message(job.model_dump_json())

    def results(self) -> list[str]:
        return [m.content for m in self.queue(RESULTS_QUEUE).receive_messages(max_messages=32)]


@pytest.fixture
def site(domain: Domain, azurite: Azurite, tmp_path: Path) -> Site:
    from cryptography.hazmat.primitives import serialization

    key = X25519PrivateKey.generate()
    (tmp_path / "agent-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return Site(domain, azurite, tmp_path, "t" + uuid.uuid4().hex[:10], key)
