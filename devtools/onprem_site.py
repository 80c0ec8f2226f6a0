"""An on-premises site for the tests and `make run`: a real Samba AD DC with the OUs and the least-privileged
service account docs/onprem.md describes, and the on-premises agent configured for it against Azurite.

- `provisioned_domain(location)`: provision and start the DC, add OU=Staff (served) and OU=Elsewhere (not served) and
  the agent's service account, delegated only "Reset password" and write lockoutTime / pwdLastSet on OU=Staff.
- `Domain`: LDAPS as an administrator or a user (bind checks), users made in an OU, an account locked out.
- `AgentSite`: one deployment's agent key, storage prefix and folder; an agent's config (in-process, or a TOML
  file for `python -m onprem_agent run`), and the public key the service is configured with.

The test domain requires 14 characters (Samba's default is 7), like many organisations' AD policies that are
stricter than Entra's 8: a password Entra's rules accept can still be refused by AD, with AD's rule.
"""

from __future__ import annotations

import ssl
import struct
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import ldap3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from devtools.processes import ManagedProcess
from devtools.samba_dc import ADMIN_DN, ADMIN_PASSWORD, BASE_DN, LOCKOUT_THRESHOLD, SambaDC

STAFF_OU = f"OU=Staff,{BASE_DN}"
ELSEWHERE_OU = f"OU=Elsewhere,{BASE_DN}"
SERVICE_ACCOUNT = "sspr-agent"
SERVICE_DN = f"CN={SERVICE_ACCOUNT},CN=Users,{BASE_DN}"
SERVICE_PASSWORD = "Svc!Agent#Pass2026"
MIN_PASSWORD_LENGTH = 14
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
    """How AD takes a password in unicodePwd: in double quotes, UTF-16LE."""
    return f'"{password}"'.encode("utf-16-le")


class AdUser(NamedTuple):
    dn: str
    sid: str
    password: str

    @property
    def sam(self) -> str:
        """The sAMAccountName (the tests name each user's CN after it)."""
        return self.dn.split(",", 1)[0].removeprefix("CN=")


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

    def find_user(self, sam: str, ou: str = STAFF_OU) -> AdUser | None:
        """The user `sam` made earlier in `ou` (its password is not known here: "")."""
        admin = self.connect()
        admin.search(f"CN={sam},{ou}", "(objectClass=user)", ldap3.BASE, attributes=["objectSid"])
        found = [e for e in admin.response if e.get("type") == "searchResEntry"]
        admin.unbind()
        if not found:
            return None
        return AdUser(f"CN={sam},{ou}", sid_text(found[0]["raw_attributes"]["objectSid"][0]), "")

    def make_user(self, ou: str = STAFF_OU, password: str = "St4rt!Passw0rd", name: str | None = None) -> AdUser:
        """A new enabled user in `ou`."""
        sam = name or "u" + uuid.uuid4().hex[:10]
        dn = f"CN={sam},{ou}"
        admin = self.connect()
        admin.add(dn, ["user"], {"sAMAccountName": sam, "unicodePwd": quoted(password), "userAccountControl": 512})
        if admin.result["result"] != 0:
            raise RuntimeError(f"could not create {dn}: {admin.result}")
        admin.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["objectSid"])
        sid = sid_text(admin.response[0]["raw_attributes"]["objectSid"][0])
        admin.unbind()
        return AdUser(dn, sid, password)

    def attribute(self, dn: str, name: str) -> int:
        admin = self.connect()
        admin.search(dn, "(objectClass=*)", ldap3.BASE, attributes=[name])
        values = admin.response[0]["raw_attributes"].get(name) or [b"0"]
        admin.unbind()
        return int(values[0])

    def set_password_age(self, dn: str, age: timedelta) -> None:
        """Make the account's password look set `age` ago (pwdLastSet in the past, written past Samba's checks)."""
        when = datetime.now(UTC) - age
        filetime = int((when - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds() * 10_000_000)
        self.dc.write_raw(dn, "pwdLastSet", str(filetime))

    def max_password_age(self) -> timedelta:
        """The domain's maximum password age (Samba's default: 42 days)."""
        return timedelta(days=int(self.dc.password_settings()["Maximum password age (days)"]))

    def set_user_account_control(self, dn: str, flags: int) -> None:
        admin = self.connect()
        admin.modify(dn, {"userAccountControl": [(ldap3.MODIFY_REPLACE, [str(flags)])]})
        if admin.result["result"] != 0:
            raise RuntimeError(f"userAccountControl of {dn}: {admin.result}")
        admin.unbind()

    def must_change_at_next_logon(self, dn: str) -> None:
        admin = self.connect()
        admin.modify(dn, {"pwdLastSet": [(ldap3.MODIFY_REPLACE, ["0"])]})
        if admin.result["result"] != 0:
            raise RuntimeError(f"pwdLastSet of {dn}: {admin.result}")
        admin.unbind()

    def lock_out(self, dn: str) -> None:
        """Lock the account out the way a person does: wrong passwords until the domain's threshold."""
        for _ in range(LOCKOUT_THRESHOLD):
            self.binds(dn, "Not-the-password-" + uuid.uuid4().hex[:6])
        if not self.attribute(dn, "lockoutTime"):
            raise RuntimeError(f"{dn} did not lock out")


def _delegate(dc: SambaDC, sid: str) -> None:
    """What docs/onprem.md tells an admin to grant: Reset password, write lockoutTime and pwdLastSet on users
    under the chosen OU, nothing else."""
    sddl = "".join([
        f"(OA;CIIO;CR;{RESET_PASSWORD_RIGHT};{USER_CLASS};{sid})",
        f"(OA;CIIO;WP;{LOCKOUT_TIME};{USER_CLASS};{sid})",
        f"(OA;CIIO;WP;{PWD_LAST_SET};{USER_CLASS};{sid})",
    ])
    dc.samba_tool("dsacl", "set", f"--objectdn={STAFF_OU}", f"--sddl={sddl}")


@contextmanager
def provisioned_domain(location: Path, echo: bool = False) -> Iterator[Domain]:
    """A provisioned, running test domain under `location` (stopped on exit)."""
    domain = running_domain(location, echo)
    try:
        yield domain
    finally:
        domain.dc.stop()


def running_domain(location: Path, echo: bool = False) -> Domain:
    """The test domain under `location`, provisioned there on first use (kept for the next start), and running."""
    dc = SambaDC(location, echo=echo)
    fresh = not dc.conf.exists()
    if fresh:
        dc.provision()
        dc.samba_tool("domain", "passwordsettings", "set", f"--min-pwd-length={MIN_PASSWORD_LENGTH}")
    dc.start()
    try:
        admin = Domain(dc, "").connect()
        if fresh:
            for ou in (STAFF_OU, ELSEWHERE_OU):
                admin.add(ou, ["organizationalUnit"])
            admin.add(SERVICE_DN, ["user"], {"sAMAccountName": SERVICE_ACCOUNT,
                                             "unicodePwd": quoted(SERVICE_PASSWORD), "userAccountControl": 512})
        admin.search(SERVICE_DN, "(objectClass=*)", ldap3.BASE, attributes=["objectSid"])
        sid = sid_text(admin.response[0]["raw_attributes"]["objectSid"][0])
        admin.unbind()
        if fresh:
            _delegate(dc, sid)
    except BaseException:
        dc.stop()
        raise
    return Domain(dc, sid)


@dataclass
class AgentSite:
    """One deployment's side of the agent: its key (the private half stays in `folder`), storage and prefix."""

    domain: Domain
    connection_string: str
    folder: Path
    prefix: str
    key: X25519PrivateKey

    @classmethod
    def create(cls, domain: Domain, connection_string: str, folder: Path, prefix: str | None = None) -> AgentSite:
        """The site in `folder`, with the agent key kept there (made on first use)."""
        folder.mkdir(parents=True, exist_ok=True)
        key_file = folder / "agent-key.pem"
        if key_file.exists():
            loaded = serialization.load_pem_private_key(key_file.read_bytes(), None)
            if not isinstance(loaded, X25519PrivateKey):
                raise RuntimeError(f"{key_file} is not an X25519 key")
            key = loaded
        else:
            key = X25519PrivateKey.generate()
            key_file.write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
            key_file.chmod(0o600)
        return cls(domain, connection_string, folder, prefix or "t" + uuid.uuid4().hex[:10], key)

    @property
    def public_key(self) -> str:
        """What the service's SSPR_ONPREM_AGENT_PUBLIC_KEY holds."""
        from onprem_agent.unsealing import public_base64

        return public_base64(self.key)

    def config_data(self, agent_id: str = "agent-1", servers: list[str] | None = None, timeouts: int | None = None,
                    **extra: object) -> dict[str, object]:
        """An agent's config for this site; `timeouts`: the DCs' connect and receive timeouts in seconds."""
        conn = self.folder / "storage.conn"
        conn.write_text(self.connection_string)
        secret = self.folder / "bind.password"
        secret.write_text(SERVICE_PASSWORD)
        return {
            "agent_id": agent_id,
            "private_key_files": [str(self.folder / "agent-key.pem")],
            "storage": {"connection_string_file": str(conn), "prefix": self.prefix},
            "directory": {
                "servers": servers or [f"127.0.0.1:{self.domain.dc.ldaps_port}"],
                "ca_file": str(self.domain.dc.ca_file), "base_dn": BASE_DN, "allowed_ous": [STAFF_OU],
                "bind_dn": SERVICE_DN, "bind_password_file": str(secret),
                **({"connect_timeout_s": timeouts, "receive_timeout_s": timeouts} if timeouts else {}),
            },
            "lease_s": 2.0, "poll_s": 0.2, "heartbeat_s": 5.0,
            **extra,
        }

    def start_agent(self, agent_id: str = "agent-1", echo: bool = False, **extra: object) -> ManagedProcess:
        """The real agent program (`python -m onprem_agent run`) on a TOML config written for it."""
        data = self.config_data(agent_id, **extra)
        path = self.folder / f"{agent_id}.toml"
        path.write_text(_toml(data))
        return ManagedProcess(f"agent {agent_id}", [sys.executable, "-m", "onprem_agent", "run", "--config",
                                                    str(path)], echo=echo).start()


class AgentRunner:
    """The real agent (onprem_agent) in a thread of the test process, stopped and started at will."""

    def __init__(self, site: AgentSite, agent_id: str = "agent-1", heartbeat_s: float = 2.0, concurrency: int = 4,
                 **config: Any) -> None:
        self._site = site
        self.agent_id = agent_id
        self._heartbeat_s = heartbeat_s
        self._concurrency = concurrency
        self._config = config
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> AgentRunner:
        from onprem_agent.__main__ import build
        from onprem_agent.config import AgentConfig

        agent = build(AgentConfig.model_validate(self._site.config_data(self.agent_id, **self._config)))
        agent.heartbeat()  # live before the first job, as after a real start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=agent.run, daemon=True,
                                        args=(self._stop, self._concurrency, 0.2, self._heartbeat_s))
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


def _toml(data: dict[str, object]) -> str:
    """The little TOML the agent's config needs: top-level values, then one table per section."""
    def value(v: object) -> str:
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return str(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for section, values in data.items():
        if isinstance(values, dict):
            lines += ["", f"[{section}]", *(f"{k} = {value(v)}" for k, v in values.items())]
    return "\n".join(lines) + "\n"
