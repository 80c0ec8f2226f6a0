"""Run the emulator: ``python -m devtools.graph_emulator --host 127.0.0.1 --port 7072 [--users N] [--seed S]``.

Prints ``graph-emulator ready http://<host>:<port>`` once it serves, and stops cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time

from aiohttp import web

from .app import create_app
from .state import STATE


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.graph_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7072, help="0 picks a free port")
    parser.add_argument("--users", type=int, default=None,
                        help="generate N users instead of the fixture's filler (named demo users stay)")
    parser.add_argument("--seed", type=int, default=None, help="seed for generated users (fixture default)")
    parser.add_argument("--fixture", default=None, help="tenant fixture JSON (default: the demo tenant)")
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    app = create_app(fixture=args.fixture, users=args.users, seed=args.seed)
    if args.access_log:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    runner = web.AppRunner(app, access_log=logging.getLogger("aiohttp.access") if args.access_log else None,
                           handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, reuse_address=True)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://{args.host}:{port}"
    app[STATE].base_url = base
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"graph-emulator ready {base}", flush=True)
    print(f"graph-emulator: {len(app[STATE].tenant.users)} users, started in "
          f"{time.perf_counter() - started:.2f} s", file=sys.stderr, flush=True)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
