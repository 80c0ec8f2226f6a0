"""Active Directory over LDAPS (ldap3): find a user by objectSid in the configured OUs, reset, unlock, read state.

Every connection is LDAPS with the DC's certificate and host name checked against the configured CA; the bind is
a simple bind inside that TLS session, never in clear. Several DCs are tried in order (failover); each worker
thread keeps its own connection. AD's refusals are mapped to a `Verdict` with AD's rule.
"""

from __future__ import annotations

import logging
import ssl
import struct
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException, LDAPSocketOpenError
from ldap3.utils.conv import escape_bytes

from onprem_agent.config import DirectoryConfig
from shared.domain.onprem_jobs import AccountState, Verdict

log = logging.getLogger("onprem_agent.directory")

POLICY_HINTS_OID = "1.2.840.113556.1.4.2239"  # LDAP_SERVER_POLICY_HINTS_OID: a reset obeys history, as a change
POLICY_HINTS_VALUE = b"\x30\x03\x02\x01\x01"  # BER SEQUENCE { INTEGER 1 }: flags = enforce
UF_ACCOUNTDISABLE = 0x2
UF_LOCKOUT = 0x10  # in msDS-User-Account-Control-Computed
NEVER = {0, 0x7FFFFFFFFFFFFFFF}
STATE_ATTRIBUTES = ["userAccountControl", "msDS-User-Account-Control-Computed", "lockoutTime", "accountExpires",
                    "msDS-UserPasswordExpiryTimeComputed", "pwdLastSet"]


class DirectoryUnavailable(Exception):
    """No configured domain controller answered."""


def sid_bytes(sid: str) -> bytes:
    """S-1-5-21-a-b-c-rid in its binary form (revision, count, 48-bit authority, little-endian sub-authorities)."""
    parts = sid.split("-")
    sub = [int(p) for p in parts[3:]]
    return struct.pack("<BB", int(parts[1]), len(sub)) + int(parts[2]).to_bytes(6, "big") + struct.pack(
        f"<{len(sub)}I", *sub)


def filetime(value: int) -> datetime | None:
    if value in NEVER or value < 0:
        return None
    return datetime(1601, 1, 1, tzinfo=UTC) + timedelta(microseconds=value // 10)


@dataclass(frozen=True)
class Account:
    dn: str
    state: AccountState
    pwd_last_set: datetime | None
    in_scope: bool


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    rule: str = ""


def map_ldap_result(result: dict[str, Any]) -> Outcome:
    """AD's answer to a modify as a verdict. `constraintViolation` with 0000052D is the password policy; Samba
    names the rule in its message, Windows DCs do not (then the verdict says only "the policy")."""
    code = result.get("result", 80)
    message = str(result.get("message", ""))
    if code == 0:
        return Outcome(Verdict.APPLIED)
    if code == 19 and "0000052D" in message.upper():
        rule = message.split("check_password_restrictions:", 1)[-1].strip()[:300]
        low = message.lower()
        if "history" in low:
            return Outcome(Verdict.REFUSED_HISTORY, rule)
        if "too young" in low or ("minimum" in low and "age" in low):
            return Outcome(Verdict.REFUSED_MINIMUM_AGE, rule)
        if "complexity" in low or "too short" in low or "too long" in low:
            return Outcome(Verdict.REFUSED_COMPLEXITY, rule)
        return Outcome(Verdict.REFUSED_POLICY, "the password does not meet the domain's password policy")
    if code == 50:
        return Outcome(Verdict.FAILED, "the agent's service account may not change this account")
    return Outcome(Verdict.FAILED, f"the domain controller answered {result.get('description', code)}")


class Directory:
    """The domain controllers of one domain, reached by one service account."""

    def __init__(self, config: DirectoryConfig, bind_password: str) -> None:
        self._config = config
        self._password = bind_password
        self._local = threading.local()
        tls = ldap3.Tls(ca_certs_file=str(config.ca_file), validate=ssl.CERT_REQUIRED,
                        version=ssl.PROTOCOL_TLS_CLIENT)
        self.servers = [
            ldap3.Server(host, port=port, use_ssl=True, tls=tls, get_info=ldap3.DSA,
                         connect_timeout=config.connect_timeout_s)
            for host, port in config.servers
        ]
        self.reached: dict[str, datetime] = {}
        self.policy_hints: dict[str, bool] = {}

    def _connect(self) -> ldap3.Connection:
        last: Exception | None = None
        for server in self.servers:
            name = f"{server.host}:{server.port}"
            try:
                conn = ldap3.Connection(server, self._config.bind_dn, self._password, auto_bind=True,
                                        receive_timeout=self._config.receive_timeout_s, raise_exceptions=False)
            except LDAPException as exc:
                log.warning("domain controller %s not reached: %s", name, type(exc).__name__)
                last = exc
                continue
            controls = {c[0] for c in (server.info.supported_controls if server.info else [])}
            self.policy_hints[name] = POLICY_HINTS_OID in controls
            self.reached[name] = datetime.now(UTC)
            return conn
        raise DirectoryUnavailable(f"no domain controller answered ({type(last).__name__})")

    def _connection(self) -> ldap3.Connection:
        conn: ldap3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or not conn.bound:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _call(self, op: str, *args: Any, **kwargs: Any) -> tuple[ldap3.Connection, bool]:
        """One operation on this thread's connection; reconnects (next DC on failure) once if the link broke."""
        for attempt in range(2):
            conn = self._connection()
            try:
                ok = getattr(conn, op)(*args, **kwargs)
                return conn, bool(ok)
            except (LDAPSocketOpenError, LDAPException, OSError) as exc:
                log.warning("LDAP %s failed (%s); reconnecting", op, type(exc).__name__)
                self._local.conn = None
                if attempt:
                    raise DirectoryUnavailable(f"LDAP {op} failed") from None
        raise DirectoryUnavailable(f"LDAP {op} failed")

    def check(self) -> dict[str, bool]:
        """Connect and report, per DC reached, whether it supports the policy-hints control."""
        self._connection()
        return dict(self.policy_hints)

    def find(self, object_sid: str) -> Account | None:
        """The account with this objectSid anywhere in the domain (so "not in scope" differs from "not found")."""
        flt = f"(&(objectClass=user)(objectSid={escape_bytes(sid_bytes(object_sid))}))"
        conn, _ = self._call("search", self._config.base_dn, flt, ldap3.SUBTREE, attributes=STATE_ATTRIBUTES)
        if not conn.response:
            return None
        entries = [e for e in conn.response if e.get("type") == "searchResEntry"]
        if len(entries) != 1:
            return None
        entry = entries[0]
        raw = entry["raw_attributes"]

        def number(name: str) -> int:
            values = raw.get(name) or [b"0"]
            return int(values[0])

        uac = number("userAccountControl")
        computed = number("msDS-User-Account-Control-Computed")
        expires = filetime(number("accountExpires"))
        dn = str(entry["dn"])
        state = AccountState(
            locked=bool(computed & UF_LOCKOUT),
            disabled=bool(uac & UF_ACCOUNTDISABLE),
            expired=expires is not None and expires <= datetime.now(UTC),
            password_expires_at=filetime(number("msDS-UserPasswordExpiryTimeComputed")),
        )
        return Account(dn, state, filetime(number("pwdLastSet")), self._in_scope(dn))

    def _in_scope(self, dn: str) -> bool:
        low = dn.lower().replace(", ", ",")
        return any(low.endswith("," + ou.lower().replace(", ", ",")) for ou in self._config.allowed_ous)

    def reset(self, dn: str, password: str, must_change: bool) -> Outcome:
        """Admin reset: replace unicodePwd (with the policy-hints control where the DC has it)."""
        value = f'"{password}"'.encode("utf-16-le")
        changes: dict[str, Any] = {"unicodePwd": [(ldap3.MODIFY_REPLACE, [value])]}
        if must_change:
            changes["pwdLastSet"] = [(ldap3.MODIFY_REPLACE, ["0"])]
        conn = self._connection()
        name = f"{conn.server.host}:{conn.server.port}"
        controls = [(POLICY_HINTS_OID, True, POLICY_HINTS_VALUE)] if self.policy_hints.get(name) else None
        conn, _ = self._call("modify", dn, changes, controls=controls)
        return map_ldap_result(conn.result)

    def unlock(self, dn: str) -> Outcome:
        conn, _ = self._call("modify", dn, {"lockoutTime": [(ldap3.MODIFY_REPLACE, ["0"])]})
        return map_ldap_result(conn.result)
