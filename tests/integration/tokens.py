"""The emulator's tokens for the tests: kept where the tests import them from; they live in devtools.tokens, which
the benchmarks use too."""

from devtools.stack import PAGES_APP_ID
from devtools.tokens import (
    API_SCOPE,
    AUTH_EVENTS_APP_ID,
    AUTH_EVENTS_SECRET,
    DEMO_PASSWORD,
    OTHER_APP_ID,
    OTHER_APP_SECRET,
    app_token,
    bearer,
    crafted_token,
    events_token,
    graph_token,
    token_issuance_start,
    user_token,
)

__all__ = ["API_SCOPE", "AUTH_EVENTS_APP_ID", "AUTH_EVENTS_SECRET", "DEMO_PASSWORD", "OTHER_APP_ID",
           "OTHER_APP_SECRET", "PAGES_APP_ID", "app_token", "bearer", "crafted_token", "events_token", "graph_token",
           "token_issuance_start", "user_token"]
