"""Reset flows: complete self-service resets (start, send, verify, password) by 20 concurrent users, through the
local host, the notifications worker and the emulator.

Workload: `--users` emulator users, each enabled (Enablement rows) and registered with an alternate email (security
info rows written through SecurityInfoStore), seeded before the timed phase; proof-of-work challenges are fetched
and solved before the timed phase too (the browser's work, not the service's). Then `--concurrency` virtual users,
each from its own client IP, run flows back to back until every user has reset once: start (POST /reset/flows),
send (POST .../proofs with the registered address), delivery (the notifications worker sends the code: polled in
the emulator's outbox), verify (POST .../code) and password (POST .../password: rules, Graph PATCH, revoke, notice).
With `--method passkey` each user is seeded with a passkey of a software authenticator
(devtools/passkey_authenticator.py) instead, and a flow is start, options (POST .../passkey/options), passkey (the
assertion, POST .../passkey: resolve, signature, counter) and password: no code, no delivery.
Figures: flows/s over the timed phase, p50/p99 per step. Baseline: raw Azurite single-entity inserts/s with the
same concurrency, measured in the same run; one flow costs about 20 storage operations (flow and challenge rows
under ETags, throttle and budget rows, audit events, queue messages), so the ratio says how close the flow comes
to what the storage account allows.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from azure.data.tables.aio import TableServiceClient

from benchmarks.baseline import percentile, report
from benchmarks.kit import bench_stack
from devtools.passkey_authenticator import SoftPasskey
from devtools.stack import GraphEmulator
from devtools.tokens import DEMO_PASSWORD
from shared.adapters.enablement_store import EnablementStore
from shared.adapters.policy_store import NEVER_SAVED, PolicyStore
from shared.adapters.proof_of_work import solve
from shared.adapters.security_info_store import SecurityInfoStore
from shared.adapters.storage import StorageClients
from shared.config import load_settings
from shared.domain.enablement import EnabledUser, Scope
from shared.domain.policy import DEFAULT_DOCUMENT, Method, Policy
from shared.domain.security_info import RegisteredMethod, SecurityInfoSummary

STEPS = ("start", "send", "delivery", "verify", "options", "passkey", "password")
ORIGIN = "http://localhost:7071"  # the bench host's SSPR_PUBLIC_BASE_URL: the passkeys' relying party


def create_users(emulator: GraphEmulator, count: int,
                 extra: Callable[[int], dict[str, object]] = lambda _: {}) -> list[tuple[str, str, str]]:
    """(id, upn, alternate email) of `count` new emulator users; `extra(i)`: more fields of the i-th."""
    users = []
    with httpx.Client(base_url=emulator.base_url, timeout=10) as http:
        for i in range(count):
            upn = f"bench-{uuid.uuid4().hex[:10]}@contoso.example"
            made = http.post("/_emulator/users", json={"userPrincipalName": upn, "displayName": "Bench User",
                                                       "givenName": "Bench", "surname": "User", "mail": upn,
                                                       "password": DEMO_PASSWORD, **extra(i)})
            made.raise_for_status()
            users.append((made.json()["id"], upn, upn.replace("@contoso.example", "@alt.example")))
    return users


def passkey_row(key: SoftPasskey, now: datetime) -> RegisteredMethod:
    """The user's passkey method row as registration would have saved it, for `key`."""
    from fido2.cose import ES256
    from fido2.utils import websafe_encode
    from fido2.webauthn import AttestedCredentialData

    from shared.domain import passkeys

    key.user_handle = websafe_encode(uuid.uuid4().bytes * 2)
    data = AttestedCredentialData.create(b"\0" * 16, key.credential_id, ES256.from_cryptography_key(key.key.public_key()))
    keys = passkeys.UserPasskeys(handle=key.user_handle, passkeys=(passkeys.Passkey(
        id=key.id, name="Bench", credential=websafe_encode(bytes(data)), sign_count=0, backup_eligible=False,
        backed_up=False, created_at=now),))
    return RegisteredMethod(Method.PASSKEY, now, secret=passkeys.encode(keys))


async def seed(settings: dict[str, str], users: list[tuple[str, str, str]],
               keys: dict[str, SoftPasskey] | None = None, **policy: object) -> None:
    storage = StorageClients.from_settings(load_settings(settings))
    try:
        document = {**DEFAULT_DOCUMENT, "scope": "all",
                    "methodsAllowed": {**DEFAULT_DOCUMENT["methodsAllowed"], "passkey": True}, **policy}
        await PolicyStore(storage).replace(Policy.model_validate(document), NEVER_SAVED, "benchmark")
        await EnablementStore(storage).write_users([EnabledUser(u, "Member", Scope.ALL, None, 1) for u, _, _ in users])
        info = SecurityInfoStore(storage)
        now = datetime.now(UTC)
        for user_id, _, email in users:
            if keys is not None:
                summary = SecurityInfoSummary(user_id).with_method(Method.PASSKEY, now)
                await info.save(summary, put=[passkey_row(keys[user_id], now)])
                continue
            summary = SecurityInfoSummary(user_id).with_method(Method.EMAIL, now)
            await info.save(summary, put=[RegisteredMethod(Method.EMAIL, now, contact=email)])
    finally:
        await storage.close()


async def raw_insert_throughput(connection_string: str, inserts: int, concurrency: int) -> float:
    """Raw single-entity inserts/s on Azurite, `concurrency` in flight: one storage operation each."""
    name = "bench" + uuid.uuid4().hex[:10]
    async with TableServiceClient.from_connection_string(connection_string) as service:
        table = await service.create_table(name)
        try:
            slots = asyncio.Semaphore(concurrency)

            async def insert(i: int) -> None:
                async with slots:
                    await table.create_entity({"PartitionKey": str(uuid.uuid4()), "RowKey": "flow", "n": i,
                                               "payload": "x" * 200})

            started = time.perf_counter()
            await asyncio.gather(*(insert(i) for i in range(inserts)))
            seconds = time.perf_counter() - started
        finally:
            await service.delete_table(name)
    return inserts / seconds


async def run_flows(base_url: str, emulator: GraphEmulator, users: list[tuple[str, str, str]],
                    solutions: list[str], concurrency: int,
                    keys: dict[str, SoftPasskey] | None = None) -> tuple[dict[str, list[float]], float, int]:
    samples: dict[str, list[float]] = defaultdict(list)
    queue: asyncio.Queue[tuple[int, tuple[str, str, str]]] = asyncio.Queue()
    for item in enumerate(users):
        queue.put_nowait(item)
    failures = 0

    async def one(http: httpx.AsyncClient, outbox: httpx.AsyncClient, ip: str, index: int,
                  user: tuple[str, str, str]) -> None:
        nonlocal failures
        user_id, upn, email = user

        async def timed(step: str, call: object) -> httpx.Response:
            started = time.perf_counter()
            response: httpx.Response = await call  # type: ignore[misc]
            samples[step].append((time.perf_counter() - started) * 1000)
            return response

        started = await timed("start", http.post("/api/reset/flows", json={"username": upn, "altcha": solutions[index]},
                                                 headers={"X-Forwarded-For": ip}))
        if started.status_code != 201:
            failures += 1
            return
        headers = {"X-Forwarded-For": ip, "X-Flow-Secret": started.json()["flowSecret"]}
        flow = f"/api/reset/flows/{started.json()['flowId']}"
        if keys is not None:  # a passkey: options, the assertion, the password; no code
            options = await timed("options", http.post(f"{flow}/passkey/options", headers=headers))
            credential = keys[user_id].get(options.json()["publicKey"], ORIGIN)
            proven = await timed("passkey", http.post(f"{flow}/passkey", json={"credential": credential},
                                                      headers=headers))
            done = await timed("password", http.post(f"{flow}/password", headers=headers,
                                                     json={"password": f"Bench-{uuid.uuid4().hex[:12]}-Zq!"}))
            if options.status_code != 200 or proven.status_code != 200 or done.status_code != 200:
                failures += 1
            return
        sent = await timed("send", http.post(f"{flow}/proofs", json={"method": "email", "contact": email},
                                              headers=headers))
        sent_at = time.perf_counter()
        code = ""
        while time.perf_counter() - sent_at < 30 and not code:
            mails = (await outbox.get("/_emulator/outbox", params={"to": email})).json()["value"]
            if mails:
                code = next(w for w in mails[0]["body"].replace("<", " ").replace(">", " ").split()
                            if w.isdigit() and len(w) == 8)
            else:
                await asyncio.sleep(0.05)  # polling the outbox: the worker is another process
        samples["delivery"].append((time.perf_counter() - sent_at) * 1000)
        verified = await timed("verify", http.post(f"{flow}/proofs/email/code", json={"code": code}, headers=headers))
        password = f"Bench-{uuid.uuid4().hex[:12]}-Zq!"
        done = await timed("password", http.post(f"{flow}/password", json={"password": password}, headers=headers))
        if sent.status_code != 202 or verified.status_code != 200 or done.status_code != 200:
            failures += 1

    async def worker(ip: str) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http, \
                httpx.AsyncClient(base_url=emulator.base_url, timeout=30) as outbox:
            while not queue.empty():
                index, user = queue.get_nowait()
                await one(http, outbox, ip, index, user)

    started = time.perf_counter()
    await asyncio.gather(*(worker(f"10.9.{i}.{i + 1}") for i in range(concurrency)))
    return samples, time.perf_counter() - started, failures


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=200, help="flows to run (one per user)")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--method", choices=("email", "passkey"), default="email",
                        help="how each user proves possession: an email code, or a passkey (no code)")
    args = parser.parse_args(argv)
    with bench_stack() as stack:
        users = create_users(stack.emulator, args.users)
        keys = {u: SoftPasskey("localhost") for u, _, _ in users} if args.method == "passkey" else None
        asyncio.run(seed(stack.settings, users, keys))
        raw = asyncio.run(raw_insert_throughput(stack.azurite.connection_string, 4000, args.concurrency))
        host = stack.start_host()
        with httpx.Client(base_url=host.base_url, timeout=30) as http:
            solutions = [solve(http.get("/api/reset/pow").json()) for _ in users]
        samples, seconds, failures = asyncio.run(
            run_flows(host.base_url, stack.emulator, users, solutions, args.concurrency, keys))
    flows_per_second = args.users / seconds
    steps = ", ".join(f"{s} p50 {percentile(samples[s], 0.5):.0f} / p99 {percentile(samples[s], 0.99):.0f} ms"
                      for s in STEPS if samples[s])
    return report(
        workload=(f"{args.users} complete resets (start, " + (
            "passkey options, passkey assertion" if keys else "send, code delivery, verify") +
            f", password via Graph) by {args.concurrency} concurrent users, each from its own IP; {args.method} "
            f"method; proof-of-work solved beforehand"),
        figure=f"{flows_per_second:.1f} flows/s ({seconds:.1f} s); {steps}; {failures} failed flows",
        baseline=f"raw Azurite single-entity inserts {raw:.0f}/s at {args.concurrency} in flight",
        ratio=f"flows/s / raw inserts/s = {flows_per_second / raw:.3f} (x ~20 storage ops per flow = "
              f"{flows_per_second * 20 / raw:.0%})",
        target="every flow completes; p99 of each user-facing step < 1 s at 20 concurrent users",
    )


if __name__ == "__main__":
    main()
