"""Active Directory over LDAPS (ldap3): find a user by objectSid in the configured OUs, reset, change, unlock, read
state.

Every connection is LDAPS with the DC's certificate and host name checked against the configured CA; the bind is
a simple bind inside that TLS session, never in clear. Several DCs are tried in order (failover); each worker
thread keeps its own connection. AD's refusals are mapped to a `Verdict` with AD's rule.
"""

from __future__ import annotations

import logging
import ssl
import struct
import threading
from collections.abc import Iterator
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
SCAN_ATTRIBUTES = ["objectSid", *STATE_ATTRIBUTES]
SCAN_FILTER = "(&(objectCategory=person)(objectClass=user))"
SCAN_PAGE_SIZE = 1000
PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"


class DirectoryUnavailable(Exception):
    """No configured domain controller answered."""


def sid_bytes(sid: str) -> bytes:
    """S-1-5-21-a-b-c-rid in its binary form (revision, count, 48-bit authority, little-endian sub-authorities)."""
    parts = sid.split("-")
    sub = [int(p) for p in parts[3:]]
    return struct.pack("<BB", int(parts[1]), len(sub)) + int(parts[2]).to_bytes(6, "big") + struct.pack(
        f"<{len(sub)}I", *sub)


def sid_text(raw: bytes) -> str:
    """A binary objectSid in its string form S-1-5-21-a-b-c-rid."""
    count = raw[1]
    authority = int.from_bytes(raw[2:8], "big")
    subs = struct.unpack(f"<{count}I", raw[8:8 + 4 * count])
    return "-".join(["S", str(raw[0]), str(authority), *map(str, subs)])


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
class ScannedAccount:
    """One account of a password-expiry scan: its SID, its state (expiry, must change, disabled), its pwdLastSet."""

    sid: str
    state: AccountState
    pwd_last_set: datetime | None


def _number(raw: dict[str, Any], name: str) -> int:
    values = raw.get(name) or [b"0"]
    return int(values[0])


def account_state(raw: dict[str, Any]) -> AccountState:
    """An account's state from its raw attributes (STATE_ATTRIBUTES). pwdLastSet 0 is "must change at next logon",
    and msDS-UserPasswordExpiryTimeComputed then says 0 too: not "never", but expired now."""
    uac = _number(raw, "userAccountControl")
    expires = filetime(_number(raw, "accountExpires"))
    must_change = _number(raw, "pwdLastSet") == 0
    return AccountState(
        locked=bool(_number(raw, "msDS-User-Account-Control-Computed") & UF_LOCKOUT),
        disabled=bool(uac & UF_ACCOUNTDISABLE),
        expired=expires is not None and expires <= datetime.now(UTC),
        password_expires_at=None if must_change else filetime(_number(raw, "msDS-UserPasswordExpiryTimeComputed")),
        must_change=must_change,
    )


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
    if code == 19 and message.upper().startswith("00000056"):  # ERROR_INVALID_PASSWORD: a change's current one
        return Outcome(Verdict.REFUSED_CURRENT_PASSWORD, "the current password is not the account's password")
    if code == 19 and message.upper().startswith("00000775"):  # ERROR_ACCOUNT_LOCKED_OUT: a change of a locked account
        return Outcome(Verdict.LOCKED_OUT, "the account is locked out")
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
        self.lockout: tuple[int, int] = (0, 0)  # the domain's lockoutThreshold and observation window in seconds

    def _bind(self, server: ldap3.Server) -> ldap3.Connection | None:
        """A bound connection to this DC (noting that it was reached, and whether it has the policy-hints control),
        or None when it does not answer."""
        name = f"{server.host}:{server.port}"
        try:
            conn = ldap3.Connection(server, self._config.bind_dn, self._password, auto_bind=True,
                                    receive_timeout=self._config.receive_timeout_s, raise_exceptions=False)
        except LDAPException as exc:
            log.warning("domain controller %s not reached: %s", name, type(exc).__name__)
            self.reached.pop(name, None)
            return None
        controls = {c[0] for c in (server.info.supported_controls if server.info else [])}
        self.policy_hints[name] = POLICY_HINTS_OID in controls
        self.reached[name] = datetime.now(UTC)
        return conn

    def _connect(self) -> ldap3.Connection:
        """The first DC in order that answers (failover)."""
        for server in self.servers:
            conn = self._bind(server)
            if conn is not None:
                return conn
        raise DirectoryUnavailable("no domain controller answered")

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

    def probe(self) -> list[str]:
        """Bind to every DC once (a connection of its own, closed at once): the DCs that answer now. A heartbeat
        carries them, so the service knows an idle agent can still reach AD."""
        for server in self.servers:
            conn = self._bind(server)
            if conn is not None:
                self._read_lockout_policy(conn)
                conn.unbind()
        return sorted(self.reached)

    def _read_lockout_policy(self, conn: ldap3.Connection) -> None:
        """The domain's lockoutThreshold and lockOutObservationWindow (a negative interval of 100 ns), readable by any
        authenticated user: the heartbeat carries them so the service never lets a change page lock an account."""
        conn.search(self._config.base_dn, "(objectClass=domain)", ldap3.BASE,
                    attributes=["lockoutThreshold", "lockOutObservationWindow"])
        entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
        if entries:
            raw = entries[0]["raw_attributes"]
            self.lockout = (_number(raw, "lockoutThreshold"),
                            abs(_number(raw, "lockOutObservationWindow")) // 10_000_000)

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
        dn = str(entries[0]["dn"])
        raw = entries[0]["raw_attributes"]
        return Account(dn, account_state(raw), filetime(_number(raw, "pwdLastSet")), self._in_scope(dn))

    def expiry_pages(self, page_size: int = SCAN_PAGE_SIZE) -> Iterator[list[ScannedAccount]]:
        """Every user account under the configured OUs with its password expiry, a page at a time: one paged
        subtree search per OU (the simple paged results control, RFC 2696; AD's MaxPageSize is 1000 by default), so
        a scan of 100,000 accounts is 100 requests, not 100,000."""
        for ou in self._config.allowed_ous:
            cookie: bytes | None = None
            while True:
                conn, _ = self._call("search", ou, SCAN_FILTER, ldap3.SUBTREE, attributes=SCAN_ATTRIBUTES,
                                     paged_size=page_size, paged_cookie=cookie)
                if conn.result.get("result", 0) not in (0,):
                    raise DirectoryUnavailable(f"the scan of {ou} failed: {conn.result.get('description')}")
                page = []
                for entry in conn.response or []:
                    if entry.get("type") != "searchResEntry":
                        continue
                    raw = entry["raw_attributes"]
                    sid = raw.get("objectSid") or []
                    if sid:
                        page.append(ScannedAccount(sid_text(sid[0]), account_state(raw),
                                                   filetime(_number(raw, "pwdLastSet"))))
                yield page
                controls = conn.result.get("controls") or {}
                cookie = controls.get(PAGED_RESULTS_OID, {}).get("value", {}).get("cookie") or None
                if not cookie:
                    break

    def _in_scope(self, dn: str) -> bool:
        low = dn.lower().replace(", ", ",")
        return any(low.endswith("," + ou.lower().replace(", ", ",")) for ou in self._config.allowed_ous)

    @property
    def allowed_ous(self) -> list[str]:
        return list(self._config.allowed_ous)

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

    def change(self, dn: str, current: str, new: str) -> Outcome:
        """The user's own change: delete the current `unicodePwd` value and add the new one in one modify, so AD
        checks the current password, history and minimum age as for a change at the logon screen. The service
        account needs no right for it: "Change Password" is AD's (and Samba's) default for everyone, and the
        current password is the proof. Works for an expired password and "must change at next logon" too."""
        changes = {"unicodePwd": [(ldap3.MODIFY_DELETE, [f'"{current}"'.encode("utf-16-le")]),
                                  (ldap3.MODIFY_ADD, [f'"{new}"'.encode("utf-16-le")])]}
        conn, _ = self._call("modify", dn, changes)
        return map_ldap_result(conn.result)

    def unlock(self, dn: str) -> Outcome:
        conn, _ = self._call("modify", dn, {"lockoutTime": [(ldap3.MODIFY_REPLACE, ["0"])]})
        return map_ldap_result(conn.result)
