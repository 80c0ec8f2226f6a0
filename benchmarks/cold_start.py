"""Cold start: a new host process spawned, to its first sign-in hook answer and to its first health answer.

Workload: Azurite with the policy and a few users' rows, the Graph emulator; the local host spawned `--runs`
times with the product's function_app, each run timed from the spawn to the host's ready line (which comes after
the warm-up trigger, as a new Azure instance warms before traffic) and to the first answer: in half the runs the
first request is POST /api/hooks/token-issuance-start, in the other half GET /api/health. Medians. The same host
spawned on a one-route app shows what the local host itself costs (not the product's). Ratio: spawn -> first hook
answer / a bare `python -c "import azure.functions"` process, the least any Python function app pays.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from benchmarks.baseline import report
from benchmarks.hook import HOOK, seed
from benchmarks.kit import bench_stack
from devtools.stack import Stack, start_function_host
from devtools.tokens import events_token, token_issuance_start

ONE_ROUTE_APP = '''
import azure.functions as func

app = func.FunctionApp()


@app.route(route="ping", auth_level=func.AuthLevel.ANONYMOUS)
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong")
'''


def bare_import_seconds() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import azure.functions"], check=True)
    return time.perf_counter() - started


def cold_run(stack: Stack, first_request: str, token: str, user: str) -> tuple[float, float]:
    """(spawn -> ready, spawn -> first answer) in seconds of one new host whose first request is `first_request`."""
    started = time.perf_counter()
    host = stack.start_host()
    ready = time.perf_counter() - started
    with httpx.Client(base_url=host.base_url, timeout=10) as http:
        if first_request == "hook":
            answer = http.post(HOOK, json=token_issuance_start(user), headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200 and answer.json()["data"]["actions"][0]["claims"], answer.text
        else:
            answer = http.get("/api/health")
            assert answer.status_code == 200, answer.text
    first = time.perf_counter() - started
    stack.stop_host()
    return ready, first


def one_route_run(stack: Stack, app_dir: Path) -> float:
    """Spawn -> first answer of the local host on the one-route app: the host's own share of a cold start."""
    started = time.perf_counter()
    host = start_function_host(app_dir, stack.settings)
    try:
        httpx.get(f"{host.base_url}/api/ping", timeout=10).raise_for_status()
        return time.perf_counter() - started
    finally:
        host.stop()


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="cold starts per first request (hook, health)")
    args = parser.parse_args(argv)
    users = [str(uuid.uuid4()) for _ in range(20)]
    with bench_stack() as stack, tempfile.TemporaryDirectory(prefix="sspr-one-route-") as one_route:
        asyncio.run(seed(stack.settings, users))
        token = events_token(stack.emulator)
        (Path(one_route) / "function_app.py").write_text(ONE_ROUTE_APP)
        (Path(one_route) / "host.json").write_text('{"version": "2.0"}')
        bare = statistics.median(bare_import_seconds() for _ in range(args.runs))
        host_only = statistics.median(one_route_run(stack, Path(one_route)) for _ in range(args.runs))
        hook_runs, health_runs = [], []
        for i in range(args.runs):  # interleaved, so a slow moment of the machine falls on both
            hook_runs.append(cold_run(stack, "hook", token, users[i % len(users)]))
            health_runs.append(cold_run(stack, "health", token, users[0]))
            print(f"   run {i + 1}: spawn->ready {hook_runs[-1][0]:.2f} s, ->hook answer {hook_runs[-1][1]:.2f} s; "
                  f"spawn->ready {health_runs[-1][0]:.2f} s, ->health answer {health_runs[-1][1]:.2f} s", flush=True)
    ready = statistics.median(r for r, _ in hook_runs + health_runs)
    hook = statistics.median(f for _, f in hook_runs)
    health = statistics.median(f for _, f in health_runs)
    line = (f"spawn->ready {ready:.2f} s; spawn->first hook answer {hook:.2f} s; spawn->first health answer "
            f"{health:.2f} s; local host on a one-route app spawn->first answer {host_only:.2f} s (devtools, not "
            f"the product)")
    print(f"   {line}", flush=True)
    return report(
        workload=f"{args.runs} cold host starts per first request (hook, health), medians",
        figure=line,
        baseline=f"bare `python -c 'import azure.functions'` {bare:.2f} s",
        ratio=f"spawn->first hook answer / bare import = {hook / bare:.1f}x",
        target="spawn->first hook answer < 1 s (Entra's budget for the hook, cold start included)",
    )


if __name__ == "__main__":
    main()
