"""Warm-up trigger: a new instance gets what the sign-in hook and health need before traffic (signing keys, a storage
connection, a Graph token), and leaves the user flows' heavy imports to a background thread, so it takes traffic in
well under Entra's one-second hook budget."""

import logging

import azure.functions as func
from azure.functions.warmup import WarmUpContext  # not exported by azure.functions 1.26 despite __all__

from functions import composition

bp = func.Blueprint()


@bp.warm_up_trigger("warmup_context")
async def warmup(warmup_context: WarmUpContext) -> None:
    try:
        await composition.root.tokens.prefetch()  # the first sign-in must not wait for the tenant's signing keys
    except Exception:  # noqa: BLE001 - best effort; a request fetches them again
        logging.getLogger("sspr").warning("warm-up: signing keys not reachable yet")
    try:
        await composition.root.storage.ping()
    except Exception:  # noqa: BLE001 - warm-up is best effort; /api/health reports the failure
        logging.getLogger("sspr").warning("warm-up: storage not reachable yet")
    try:
        await composition.root.graph.reachable()  # health's probe, and the Graph token every Graph call needs
    except Exception:  # noqa: BLE001 - best effort; /api/health reports the failure
        logging.getLogger("sspr").warning("warm-up: Graph not reachable yet")
    composition.root.signin_hook  # noqa: B018 - built before the first sign-in, not during it
    composition.root.warm_user_flows_in_background()
