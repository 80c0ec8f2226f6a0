"""What the deployment scripts share: who signs in to Graph, the msgraph-sdk client, and how changes are reported.

Sign-in (`--auth`):
- `device-code` (default): an admin signs in on any browser with the Microsoft Graph Command Line Tools public
  client and consents to exactly the delegated scopes the script names.
- `azure-cli`: the token of `az login` (works when that token carries the scopes; see scripts/README.md).
- `client-secret`: a deployer app registration with application permissions, from the environment variables
  SSPR_DEPLOY_CLIENT_ID / SSPR_DEPLOY_CLIENT_SECRET (how the tests drive the scripts against the emulator).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

from azure.core.credentials import TokenCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.api_error import APIError
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient

from shared.adapters.credentials import LocalAuthorityCredential
from shared.endpoints import is_loopback_url

GRAPH_RESOURCE = "https://graph.microsoft.com"
# Microsoft's public client behind Connect-MgGraph: it may ask for any delegated Graph scope the admin consents to.
GRAPH_COMMAND_LINE_TOOLS = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
CLIENT_ID_VARIABLE = "SSPR_DEPLOY_CLIENT_ID"
CLIENT_SECRET_VARIABLE = "SSPR_DEPLOY_CLIENT_SECRET"

T = TypeVar("T")


class ScriptFailure(Exception):
    """Stops a script with a message for the admin (exit code 2); nothing after the failing step was done."""


def guid(value: str) -> str:
    """argparse type: a GUID, lower-case (ids reach Graph URLs and filters only in this form)."""
    try:
        return str(UUID(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a GUID: {value!r}") from None


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant-id", type=guid, required=True, help="the Entra tenant id")
    parser.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    parser.add_argument("--auth", choices=("device-code", "azure-cli", "client-secret"), default="device-code",
                        help="how to sign in to Graph (default: device-code)")
    parser.add_argument("--graph-base-url", default=f"{GRAPH_RESOURCE}/v1.0",
                        help="Graph endpoint (default https://graph.microsoft.com/v1.0; the emulator in tests)")
    parser.add_argument("--authority", default="https://login.microsoftonline.com",
                        help="Entra authority host (default https://login.microsoftonline.com)")


def credential(args: argparse.Namespace,
               delegated_scopes: tuple[str, ...]) -> tuple[TokenCredential | AsyncTokenCredential, list[str]]:
    """The credential and the scopes to ask it for."""
    default_scope = [f"{GRAPH_RESOURCE}/.default"]
    if args.auth == "client-secret":
        client_id, secret = os.environ.get(CLIENT_ID_VARIABLE), os.environ.get(CLIENT_SECRET_VARIABLE)
        if not client_id or not secret:
            raise ScriptFailure(f"--auth client-secret reads {CLIENT_ID_VARIABLE} and {CLIENT_SECRET_VARIABLE} "
                                "from the environment; set both")
        if is_loopback_url(args.authority):
            return LocalAuthorityCredential(args.authority, args.tenant_id, client_id, secret), default_scope
        from azure.identity.aio import ClientSecretCredential

        return ClientSecretCredential(args.tenant_id, client_id, secret, authority=args.authority), default_scope
    if args.auth == "azure-cli":
        from azure.identity.aio import AzureCliCredential

        return AzureCliCredential(tenant_id=args.tenant_id), default_scope
    from azure.identity import DeviceCodeCredential  # sync only; kiota awaits either kind

    return (DeviceCodeCredential(client_id=GRAPH_COMMAND_LINE_TOOLS, tenant_id=args.tenant_id,
                                 authority=args.authority),
            [f"{GRAPH_RESOURCE}/{scope}" for scope in delegated_scopes])


def graph_client(args: argparse.Namespace, delegated_scopes: tuple[str, ...]) -> GraphServiceClient:
    token_credential, scopes = credential(args, delegated_scopes)
    host = urlsplit(args.graph_base_url).hostname or ""
    auth = AzureIdentityAuthenticationProvider(token_credential, scopes=scopes, allowed_hosts=[host])
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = args.graph_base_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter)


async def call(what: str, pending: Awaitable[T]) -> T:
    """Awaits one Graph call; a refusal becomes a ScriptFailure naming the step and Graph's error code."""
    try:
        return await pending
    except APIError as exc:
        error = getattr(exc, "error", None)
        code = getattr(error, "code", None) or "unknown"
        message = getattr(error, "message", None) or ""
        raise ScriptFailure(f"{what}: Graph answered {exc.response_status_code} {code}. {message}".strip()) from None
    except ClientAuthenticationError as exc:
        raise ScriptFailure(f"{what}: sign-in failed: {exc.message}") from None


class Report:
    """Prints one line per thing checked, and a closing line saying whether anything changed."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run
        self.changes = 0

    def unchanged(self, what: str) -> None:
        print(f"  unchanged     {what}")

    def change(self, verb: str, what: str) -> bool:
        """Counts and prints a change; True when it should be made (not a dry run)."""
        self.changes += 1
        label = f"would {verb}" if self.dry_run else f"{verb}d" if verb.endswith("e") else f"{verb}ed"
        print(f"  {label:<13} {what}")
        return not self.dry_run

    def note(self, text: str) -> None:
        print(f"  note          {text}")

    def summary(self) -> str:
        if self.changes == 0:
            return "Nothing to change: everything was already in place."
        if self.dry_run:
            return f"Dry run: {self.changes} change(s) needed, none made."
        return f"Done: {self.changes} change(s) made."


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Runs a script's coroutine; a ScriptFailure prints its message and exits 2."""
    import asyncio

    try:
        asyncio.run(main())
    except ScriptFailure as failure:
        print(f"error: {failure}", file=sys.stderr)
        sys.exit(2)
