"""Warm-up trigger: a new instance gets what the sign-in hook and health need before traffic (signing keys, a storage
connection, a Graph token), and leaves the user flows' heavy imports to a background thread, so it takes traffic in
well under Entra's one-second hook budget."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

import azure.functions as func
from azure.functions.warmup import WarmUpContext  # not exported by azure.functions 1.26 despite __all__

from functions import composition

bp = func.Blueprint()


@bp.warm_up_trigger("warmup_context")
async def warmup(warmup_context: WarmUpContext) -> None:
    root = composition.root
    # Concurrently: in Azure each is a round trip (Entra's keys, Storage, Entra's token and Graph).
    await asyncio.gather(
        _best_effort(root.tokens.prefetch, "signing keys"),  # the first sign-in must not wait for them
        _best_effort(root.storage.ping, "storage"),
        _best_effort(root.graph.reachable, "Graph"),  # health's probe, and the token every Graph call needs
    )
    root.signin_hook  # noqa: B018 - built before the first sign-in, not during it
    root.warm_user_flows_in_background()


async def _best_effort(step: Callable[[], Awaitable[object]], what: str) -> None:
    try:
        await step()
    except Exception:  # noqa: BLE001 - warm-up is best effort; a request tries again, /api/health reports it
        logging.getLogger("sspr").warning("warm-up: %s not reachable yet", what)
