"""A real Samba AD domain controller for the tests and the local run: provision into a folder, start, stop.

It serves LDAPS on 127.0.0.1 with a certificate of a CA made here (IP and DNS names of the loopback), so a
client that checks the host name against the certificate, as the agent does, can connect. The domain's
password rules stay Samba's defaults (complexity on, history 24); the minimum age is set to 0 so tests can
change a password twice, a lockout threshold is set so tests can lock an account out, and `old password
allowed period` is 0 (Samba's default of 60 minutes, like Windows' NTLM grace, would let the old password
bind for an hour after a reset).

Needs Debian's `samba-ad-dc` (samba-tool and the samba daemon); it runs as root.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devtools.processes import ManagedProcess, OneProcessService, port_open

REALM = "SSPR.TEST"
DOMAIN = "SSPR"
BASE_DN = "DC=sspr,DC=test"
ADMIN_DN = f"CN=Administrator,CN=Users,{BASE_DN}"
ADMIN_PASSWORD = "Adm1n!Passw0rd-dc"
LOCKOUT_THRESHOLD = 3
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with the ldb bindings samba-tool itself uses

MISSING = (
    "Samba AD DC is not installed: run `apt-get update && apt-get install -y samba-ad-dc ldap-utils` "
    "(the tests of the on-premises agent need a real domain controller)"
)


def samba_installed() -> bool:
    return shutil.which("samba-tool") is not None and shutil.which("samba") is not None


def _write_certificates(tls_dir: Path) -> None:
    """A CA and a server certificate for 127.0.0.1 / localhost, written where smb.conf will point."""
    tls_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SSPR test domain CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (tls_dir / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tls_dir / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = tls_dir / "key.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_path, 0o600)  # samba refuses a key file others can read


@dataclass
class SambaDC(OneProcessService):
    """One provisioned domain under `location`, served by one `samba -i -M single` process."""

    location: Path
    ldaps_port: int = 636  # Samba has no setting for its LDAP ports: one DC per machine at a time
    echo: bool = False
    _process: ManagedProcess | None = None

    @property
    def conf(self) -> Path:
        return self.location / "etc" / "smb.conf"

    @property
    def ca_file(self) -> Path:
        return self.location / "sspr-tls" / "ca.pem"

    @property
    def url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    def samba_tool(self, *args: str) -> str:
        """Run samba-tool on the domain's database directly (not over the network)."""
        done = subprocess.run(
            ["samba-tool", *args, "-s", str(self.conf), "-H", f"tdb://{self.location}/private/sam.ldb"],
            capture_output=True, text=True, timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"samba-tool {args[0]} failed: {done.stderr[-2000:]}")
        return done.stdout

    def provision(self) -> SambaDC:
        if not samba_installed():
            raise RuntimeError(MISSING)
        self.location.mkdir(parents=True, exist_ok=True)
        tls = self.location / "sspr-tls"
        _write_certificates(tls)
        done = subprocess.run(
            [
                "samba-tool", "domain", "provision", f"--realm={REALM}", f"--domain={DOMAIN}",
                "--server-role=dc", f"--targetdir={self.location}", "--dns-backend=NONE",
                f"--adminpass={ADMIN_PASSWORD}", "--use-rfc2307",
                "--option=interfaces=lo", "--option=bind interfaces only=yes",
                "--option=server services=ldap", f"--option=pid directory={self.location}",
                "--option=old password allowed period=0",
                f"--option=log file={self.location}/log.samba",
                "--option=tls enabled=yes", f"--option=tls keyfile={tls}/key.pem",
                f"--option=tls certfile={tls}/cert.pem", f"--option=tls cafile={tls}/ca.pem",
            ],
            capture_output=True, text=True, timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"samba-tool domain provision failed: {done.stderr[-3000:]}")
        self.samba_tool("domain", "passwordsettings", "set", "--min-pwd-age=0",
                        f"--account-lockout-threshold={LOCKOUT_THRESHOLD}", "--account-lockout-duration=30",
                        "--reset-account-lockout-after=30")
        return self

    def start(self, timeout: float = 60.0) -> SambaDC:
        if port_open(self.ldaps_port):
            raise RuntimeError(f"port {self.ldaps_port} is taken: another samba (or LDAP server) runs here")
        self._process = ManagedProcess(
            "samba", ["samba", "-i", "-M", "single", "-s", str(self.conf), "--option=old password allowed period=0"],
            echo=self.echo)
        self._process.start()
        self.wait_ready(timeout)
        return self

    def write_raw(self, dn: str, attribute: str, value: str) -> None:
        """Write one attribute straight into the domain's database file, past Samba's checks (no ldb modules): what
        LDAP refuses on purpose, such as a `pwdLastSet` in the past (only 0 and -1 may be written over LDAP), so a
        test can have a password that was set weeks ago. Debian's system Python carries the ldb bindings
        (python3-ldb, with samba-ad-dc); the running DC reads the change at once."""
        partition = self.location / "private" / "sam.ldb.d" / f"{BASE_DN.upper()}.ldb"
        script = ("import sys, ldb\n"
                  "db = ldb.Ldb(url='tdb://' + sys.argv[1], options=['modules:'])\n"
                  "m = ldb.Message(ldb.Dn(db, sys.argv[2]))\n"
                  "m[sys.argv[3]] = ldb.MessageElement(sys.argv[4], ldb.FLAG_MOD_REPLACE, sys.argv[3])\n"
                  "db.modify(m)\n")
        done = subprocess.run([SYSTEM_PYTHON, "-c", script, str(partition), dn, attribute, value],
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"raw write of {attribute} on {dn} failed: {done.stderr[-2000:]}")

    def password_settings(self) -> dict[str, str]:
        """The domain's password settings as samba-tool shows them ("Maximum password age (days)": "42", ...)."""
        lines = self.samba_tool("domain", "passwordsettings", "show").splitlines()
        return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines) if v.strip()}

    @contextmanager
    def hung(self) -> Iterator[None]:
        """The DC frozen (SIGSTOP) for the block, as a domain controller that stops answering mid-job; then on."""
        if self._process is None or self._process.proc is None:
            raise RuntimeError("the DC is not running")
        group = os.getpgid(self._process.proc.pid)
        os.killpg(group, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(group, signal.SIGCONT)

    def wait_ready(self, timeout: float) -> None:
        """Until a TLS handshake on the LDAPS port succeeds with the CA (the port opens before TLS is up)."""
        import socket

        context = ssl.create_default_context(cafile=str(self.ca_file))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and not self._process.running:
                raise RuntimeError(f"samba exited:\n{self._process.output(40)}")
            try:
                with socket.create_connection(("127.0.0.1", self.ldaps_port), timeout=1) as raw:
                    with context.wrap_socket(raw, server_hostname="127.0.0.1"):
                        return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"samba LDAPS did not answer within {timeout:.0f} s")

