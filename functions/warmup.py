"""Warm-up trigger: a new instance builds its clients and pays the Graph SDK's lazy imports before traffic."""

import logging

import azure.functions as func
from azure.functions.warmup import WarmUpContext  # not exported by azure.functions 1.26 despite __all__

from functions import composition

bp = func.Blueprint()


@bp.warm_up_trigger("warmup_context")
async def warmup(warmup_context: WarmUpContext) -> None:
    await composition.root.graph.warm_up()
    try:
        await composition.root.tokens.prefetch()  # the first sign-in must not wait for the tenant's signing keys
    except Exception:  # noqa: BLE001 - best effort; a request fetches them again
        logging.getLogger("sspr").warning("warm-up: signing keys not reachable yet")
    try:
        await composition.root.storage.ping()
    except Exception:  # noqa: BLE001 - warm-up is best effort; /api/health reports the failure
        logging.getLogger("sspr").warning("warm-up: storage not reachable yet")
    composition.root.load_common_passwords()  # the reset's banned-password list, paid here and not by a user
