"""`make run ONPREM=1`: a Samba AD DC, the demo's synced users in it, and the real on-premises agent.

The DC is provisioned once into .data/samba (about 30 s; later starts take a few seconds), the agent's key is
kept in .data/onprem, and the emulator's two synced demo users (synced.user and synced.p1) are joined to their AD
accounts by SID, so they can reset and unlock through the pages with the demo password. Samba listens on
127.0.0.1:636 (LDAPS), so this needs root, like the tests that use it.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from devtools.onprem_site import STAFF_OU, AdUser, AgentSite, Domain, running_domain
from devtools.processes import ManagedProcess
from devtools.samba_dc import samba_installed

DEMO_PASSWORD = "Demo-Pass-2026!"  # the demo tenant's password (README): also the AD password of its synced users
SYNCED_DEMO_USERS = {  # emulator user id -> sAMAccountName (devtools/graph_emulator/fixture/demo_tenant.json)
    "c0ffee00-5e1f-4ea5-b0a7-000000001005": "ssynced",
    "c0ffee00-5e1f-4ea5-b0a7-000000001006": "psynced",
}


@dataclass
class OnPremRun:
    domain: Domain
    site: AgentSite
    agent: ManagedProcess | None = None

    @property
    def public_key(self) -> str:
        return self.site.public_key


def start_domain(data_dir: Path, storage_connection: str, prefix: str) -> OnPremRun:
    if not samba_installed():
        raise RuntimeError("ONPREM=1 needs Samba AD DC: apt-get install -y samba-ad-dc (as root)")
    domain = running_domain(data_dir / "samba" / "dc", echo=False)
    site = AgentSite.create(domain, storage_connection, data_dir / "onprem", prefix)
    return OnPremRun(domain, site)


def join_demo_users(run: OnPremRun, emulator_url: str) -> list[AdUser]:
    """Each synced demo user gets its AD account (made on the first run), and the emulator reports its real SID."""
    joined = []
    for user_id, sam in SYNCED_DEMO_USERS.items():
        ad = run.domain.find_user(sam) or run.domain.make_user(STAFF_OU, DEMO_PASSWORD, name=sam)
        body = json.dumps({"onPremisesSecurityIdentifier": ad.sid, "onPremisesDistinguishedName": ad.dn}).encode()
        request = urllib.request.Request(f"{emulator_url}/_emulator/users/{user_id}", data=body, method="PATCH",
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=10).close()
        joined.append(ad)
    return joined


def start_agent(run: OnPremRun) -> ManagedProcess:
    """The real agent program, its log echoed with the others'."""
    run.agent = run.site.start_agent("agent-demo", echo=True, lease_s=60.0, poll_s=1.0, heartbeat_s=15.0)
    return run.agent


def turn_on_writeback(host_url: str, emulator_url: str, tenant_id: str) -> bool:
    """Turn on the policy's on-premises writeback and unlock as the demo admin would; True when it was off."""
    form = urllib.parse.urlencode({
        "grant_type": "password", "client_id": "c0ffee00-5e1f-4ea5-b0a7-0000000000a2",
        "username": "admin@contoso.example", "password": DEMO_PASSWORD,
        "scope": "api://c0ffee00-5e1f-4ea5-b0a7-0000000000a1/access_as_user"}).encode()
    with urllib.request.urlopen(f"{emulator_url}/{tenant_id}/oauth2/v2.0/token", data=form, timeout=10) as answer:
        token = json.load(answer)["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with urllib.request.urlopen(urllib.request.Request(f"{host_url}/api/manage/policy", headers=headers),
                                timeout=30) as answer:
        policy, etag = json.load(answer), answer.headers["ETag"]
    if policy.get("onPremises", {}).get("writeback"):
        return False
    policy["onPremises"] = {"writeback": True, "unlockWithoutReset": True}
    request = urllib.request.Request(f"{host_url}/api/manage/policy", data=json.dumps(policy).encode(), method="PUT",
                                     headers={**headers, "If-Match": etag})
    urllib.request.urlopen(request, timeout=30).close()
    return True
