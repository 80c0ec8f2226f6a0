"""Typed settings of the service, read once from app settings / environment and refused when unsafe.

Every setting is an app setting in Azure (or a `Values` entry of local.settings.json). `load_settings()`
validates all of them at start and raises `ConfigurationError` naming each bad setting and what to put there,
so a misconfigured app stops at start instead of failing one request at a time (security.md D7).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.domain.client_address import MAX_TRUSTED_HOPS
from shared.domain.ids import is_guid
from shared.domain.relying_party import rp_id_problem
from shared.endpoints import (
    is_development_storage,
    is_loopback_url,
    require_https_unless_loopback,
)

# The pages are HTTP functions under the app's route prefix (a route may not start with "admin": the Functions
# host reserves it), so every page lives at <SSPR_PUBLIC_BASE_URL>/api/pages/<name>.
PAGES_PATH = "/api/pages"

KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("
MIN_KEY_BYTES = 32
# Microsoft's own apps that any user of any tenant may sign in to and ask for a token (public clients), and the
# authentication events service (app-only): none of them is a client of this service's user routes.
PUBLIC_CLIENT_APP_IDS = {
    "04b07795-8ddb-461a-bbee-02f9e1bf7b46": "the Azure CLI",
    "1950a258-227b-4e31-a9cf-717495945fc2": "Azure PowerShell",
    "14d82eec-204b-4c2f-b7e8-296a70dab67e": "Microsoft Graph PowerShell",
    "de8bc8b5-d9f9-48b1-a8ad-b748da725064": "Graph Explorer",
    "99045fe1-7639-4a75-9d4a-577b6ca3810f": "the Entra authentication events service",
}


class ConfigurationError(Exception):
    """The app settings are missing, contradictory or unsafe; the message names every setting at fault."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"The SSPR service cannot start; fix these app settings:\n{lines}")


class Environment(StrEnum):
    AZURE = "azure"
    DEV = "dev"


class SmsProvider(StrEnum):
    NONE = "none"  # no SMS or voice: phone methods cannot be verified
    ACS = "acs"  # Azure Communication Services (SMS_ENDPOINT = the ACS resource endpoint)
    EMULATOR = "emulator"  # the dev Graph emulator's outbox (SMS_ENDPOINT = its base URL)


class GraphCredentialKind(StrEnum):
    CLIENT_SECRET = "client_secret"
    MANAGED_IDENTITY = "managed_identity"


class Settings(BaseSettings):
    """The service's app settings. Field aliases are the app setting names an admin types."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True, env_ignore_empty=True)

    environment: Environment = Field(Environment.AZURE, alias="SSPR_ENVIRONMENT")

    # Storage: a connection string, or identity-based (Functions' `<connection>__*` convention).
    storage_connection_string: str | None = Field(None, alias="AzureWebJobsStorage")
    storage_account_name: str | None = Field(None, alias="AzureWebJobsStorage__accountName")
    storage_table_service_uri: str | None = Field(None, alias="AzureWebJobsStorage__tableServiceUri")
    storage_queue_service_uri: str | None = Field(None, alias="AzureWebJobsStorage__queueServiceUri")
    storage_client_id: str | None = Field(None, alias="AzureWebJobsStorage__clientId")
    table_prefix: str = Field("sspr", alias="SSPR_TABLE_PREFIX", pattern=r"^[A-Za-z][A-Za-z0-9]{0,19}$")
    # Required (no default): queue trigger bindings name their queues as %SSPR_QUEUE_PREFIX%-<name>.
    queue_prefix: str = Field(alias="SSPR_QUEUE_PREFIX", pattern=r"^[a-z][a-z0-9]{0,19}$")

    # Entra and Graph.
    tenant_id: UUID = Field(alias="SSPR_TENANT_ID")
    api_client_id: UUID = Field(alias="SSPR_API_CLIENT_ID")
    # The only client app whose user tokens may register security info (D2): the pages' SPA registration.
    pages_client_id: UUID = Field(alias="SSPR_PAGES_CLIENT_ID")
    # The client apps whose user tokens any route accepts, admin routes included (D8); empty = the pages app only.
    client_app_ids: Annotated[tuple[str, ...], NoDecode] = Field((), alias="SSPR_ALLOWED_CLIENT_APP_IDS")
    authority_host: str = Field("https://login.microsoftonline.com", alias="SSPR_AUTHORITY_HOST")
    graph_base_url: str = Field("https://graph.microsoft.com/v1.0", alias="SSPR_GRAPH_BASE_URL")
    graph_credential: GraphCredentialKind = Field(GraphCredentialKind.MANAGED_IDENTITY, alias="SSPR_GRAPH_CREDENTIAL")
    graph_client_secret: str | None = Field(None, alias="SSPR_GRAPH_CLIENT_SECRET", repr=False)
    managed_identity_client_id: str | None = Field(None, alias="SSPR_MANAGED_IDENTITY_CLIENT_ID")
    graph_max_concurrency: int = Field(8, alias="SSPR_GRAPH_MAX_CONCURRENCY", ge=1, le=64)
    graph_timeout_seconds: float = Field(10.0, alias="SSPR_GRAPH_TIMEOUT_SECONDS", gt=0, le=60)

    # Timers: 6-field NCRONTAB in UTC, seconds first. Required, with no default here: the timer bindings read them
    # as %NAME%, and the Functions host cannot start a timer whose app setting is missing.
    maintenance_schedule: str = Field(alias="SSPR_MAINTENANCE_SCHEDULE")
    scope_sync_schedule: str = Field(alias="SSPR_SCOPE_SYNC_SCHEDULE")
    compliance_schedule: str = Field(alias="SSPR_COMPLIANCE_SCHEDULE")
    expiry_schedule: str = Field(alias="SSPR_EXPIRY_SCHEDULE")
    helpdesk_digest_schedule: str = Field("0 30 6 * * *", alias="SSPR_HELPDESK_DIGEST_SCHEDULE")

    # Keys (Key Vault references in Azure). Base64 of at least 32 random bytes each.
    code_hmac_key: str = Field(alias="SSPR_CODE_HMAC_KEY", repr=False)
    totp_encryption_key: str = Field(alias="SSPR_TOTP_ENCRYPTION_KEY", repr=False)

    # Outgoing messages.
    mail_sender: str = Field(alias="SSPR_MAIL_SENDER", min_length=3, max_length=256)
    sms_provider: SmsProvider = Field(SmsProvider.NONE, alias="SSPR_SMS_PROVIDER")
    sms_endpoint: str | None = Field(None, alias="SSPR_SMS_ENDPOINT")
    sms_sender_number: str | None = Field(None, alias="SSPR_SMS_SENDER_NUMBER")
    registration_reminder_days: int = Field(7, alias="SSPR_REGISTRATION_REMINDER_DAYS", ge=1, le=90)
    # Users per Graph page of a password expiry run, so per queue message and checkpoint (Graph's most: 999).
    expiry_page_size: int = Field(999, alias="SSPR_EXPIRY_PAGE_SIZE", ge=10, le=999)

    # The proxies in front of Azure's front end whose X-Forwarded-For entries are believed (G6): 0 = none, the
    # address the platform itself appended; 1 = Azure Front Door (or one other proxy) in front of the app.
    trusted_proxy_hops: int = Field(0, alias="SSPR_TRUSTED_PROXY_HOPS", ge=0, le=MAX_TRUSTED_HOPS)

    # When every anonymous reset step answers, from its start (security.md C6): above the proof step's p99.
    reset_step_deadline_ms: int = Field(400, alias="SSPR_RESET_STEP_DEADLINE_MS", ge=0, le=5000)
    # When every answer of the change page's change leaves, from its start (C6): above the agent's usual time for a
    # change (its poll interval, LDAPS, the ledger), so a wrong current password takes as long as a name of nobody.
    change_deadline_ms: int = Field(3000, alias="SSPR_CHANGE_DEADLINE_MS", ge=0, le=20000)

    # The on-premises agent (docs/onprem.md): the key passwords are sealed to (unset: no writeback), how long a
    # reset waits in its request for AD's answer, and how long a job may wait for an agent (then it never applies).
    onprem_agent_public_key: str | None = Field(None, alias="SSPR_ONPREM_AGENT_PUBLIC_KEY")
    onprem_wait_seconds: float = Field(8.0, alias="SSPR_ONPREM_WAIT_SECONDS", gt=0, le=60)
    onprem_job_seconds: int = Field(60, alias="SSPR_ONPREM_JOB_SECONDS", ge=10, le=600)

    # Pages and browsers.
    public_base_url: str = Field(alias="SSPR_PUBLIC_BASE_URL")
    # Where the reset page sends a person who has a new password: the organisation's sign-in portal.
    sign_in_url: str = Field("https://myapps.microsoft.com", alias="SSPR_SIGN_IN_URL")
    # Passkeys' relying party (shared/domain/relying_party.py): the pages' origin; its id their host or a parent.
    passkey_rp_id: str | None = Field(None, alias="SSPR_PASSKEY_RP_ID", max_length=253)
    passkey_rp_name: str = Field("Password reset", alias="SSPR_PASSKEY_RP_NAME", min_length=1, max_length=64)
    cors_allowed_origins: Annotated[tuple[str, ...], NoDecode] = Field((), alias="SSPR_CORS_ALLOWED_ORIGINS")

    @model_validator(mode="before")
    @classmethod
    def _refuse_unresolved_key_vault_references(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if v != ""}  # an empty app setting means "not set"
            unresolved = sorted(k for k, v in data.items() if isinstance(v, str) and KEY_VAULT_REFERENCE in v)
            if unresolved:
                raise ValueError(
                    "unresolved Key Vault reference in "
                    + ", ".join(unresolved)
                    + ": give the Function App's managed identity the 'Key Vault Secrets User' role on the vault"
                    " and check the secret URI; the platform resolves the reference before the app starts"
                )
        return data

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
        return value

    @field_validator("cors_allowed_origins")
    @classmethod
    def _no_wildcard_origin(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        for origin in origins:
            if "*" in origin:
                raise ValueError("a wildcard origin is refused: list the pages' exact origins, comma-separated")
            require_https_unless_loopback(origin)
        return origins

    @field_validator("client_app_ids", mode="before")
    @classmethod
    def _split_client_app_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(i.strip() for i in value.split(",") if i.strip())
        return value

    @field_validator("client_app_ids")
    @classmethod
    def _client_app_ids(cls, ids: tuple[str, ...]) -> tuple[str, ...]:
        for app_id in ids:
            if not is_guid(app_id):
                raise ValueError(f"must be application (client) ids (GUIDs), comma-separated; {app_id!r} is not one"
                                 " (a wildcard is refused)")
            if app_id.lower() in PUBLIC_CLIENT_APP_IDS:
                raise ValueError(f"{app_id} is {PUBLIC_CLIENT_APP_IDS[app_id.lower()]}, which anyone in the tenant"
                                 " can use: list only this deployment's own client apps")
        return tuple(i.lower() for i in ids)

    @field_validator("maintenance_schedule", "scope_sync_schedule", "compliance_schedule", "expiry_schedule",
                     "helpdesk_digest_schedule")
    @classmethod
    def _six_field_ncrontab(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 6 or not all(re.fullmatch(r"[0-9*/,\-A-Za-z?]+", f) for f in fields):
            raise ValueError(f"must be a 6-field NCRONTAB expression (seconds first, UTC), e.g. '0 0 3 * * *'; got {value!r}")
        return value

    @field_validator("code_hmac_key", "totp_encryption_key")
    @classmethod
    def _strong_key(cls, value: str) -> str:
        try:
            raw = base64.b64decode(value, validate=True)
        except (ValueError, binascii.Error):
            raise ValueError("must be base64 (e.g. `openssl rand -base64 32`)") from None
        if len(raw) < MIN_KEY_BYTES:
            raise ValueError(f"must hold at least {MIN_KEY_BYTES} random bytes (e.g. `openssl rand -base64 32`)")
        return value

    @field_validator("onprem_agent_public_key")
    @classmethod
    def _x25519_public_key(cls, value: str | None) -> str | None:
        try:
            if value is None or len(base64.b64decode(value, validate=True)) == 32:
                return value
        except (ValueError, binascii.Error):
            pass
        raise ValueError("must be the agent's public key as `python -m onprem_agent keygen` prints it")

    @field_validator("authority_host")
    @classmethod
    def _authority(cls, value: str) -> str:
        return require_https_unless_loopback(value)

    @field_validator("graph_base_url")
    @classmethod
    def _graph(cls, value: str) -> str:
        return require_https_unless_loopback(value)

    @field_validator("public_base_url")
    @classmethod
    def _public(cls, value: str) -> str:
        return require_https_unless_loopback(value).rstrip("/")

    @field_validator("sign_in_url")
    @classmethod
    def _sign_in(cls, value: str) -> str:
        return require_https_unless_loopback(value)

    def page_url(self, page: str) -> str:
        """Where users open a page (`register`, `reset`): the function app serves them under PAGES_PATH."""
        return f"{self.public_base_url}{PAGES_PATH}/{page}"

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        problems: list[str] = []
        identity_storage = self.storage_account_name or self.storage_table_service_uri or self.storage_queue_service_uri
        if not self.storage_connection_string and not identity_storage:
            problems.append(
                "AzureWebJobsStorage is not set: put a storage connection string there"
                " ('UseDevelopmentStorage=true' for Azurite), or use an identity-based connection with"
                " AzureWebJobsStorage__accountName"
            )
        if self.storage_connection_string and identity_storage:
            problems.append(
                "AzureWebJobsStorage and AzureWebJobsStorage__* are both set: keep one way to reach storage"
            )
        if self.graph_credential is GraphCredentialKind.CLIENT_SECRET and not self.graph_client_secret:
            problems.append(
                "SSPR_GRAPH_CLIENT_SECRET is empty but SSPR_GRAPH_CREDENTIAL is 'client_secret': put the app's"
                " client secret there (a Key Vault reference in Azure), or use 'managed_identity'"
            )
        if self.graph_credential is GraphCredentialKind.MANAGED_IDENTITY and self.graph_client_secret:
            problems.append(
                "SSPR_GRAPH_CLIENT_SECRET is set but SSPR_GRAPH_CREDENTIAL is 'managed_identity': remove the"
                " secret, or set SSPR_GRAPH_CREDENTIAL=client_secret"
            )
        if self.environment is Environment.AZURE:
            for name, url in (("SSPR_AUTHORITY_HOST", self.authority_host), ("SSPR_GRAPH_BASE_URL", self.graph_base_url)):
                if is_loopback_url(url):
                    problems.append(f"{name} points at localhost but SSPR_ENVIRONMENT is 'azure': set SSPR_ENVIRONMENT=dev")
            if self.storage_connection_string and is_development_storage(self.storage_connection_string):
                problems.append(
                    "AzureWebJobsStorage points at the local storage emulator but SSPR_ENVIRONMENT is 'azure'"
                )
        if is_loopback_url(self.authority_host) and self.graph_credential is GraphCredentialKind.MANAGED_IDENTITY:
            problems.append(
                "SSPR_AUTHORITY_HOST is a local emulator, which has no managed identity: set"
                " SSPR_GRAPH_CREDENTIAL=client_secret and the emulator's dev secret"
            )
        if self.code_hmac_key == self.totp_encryption_key:
            problems.append("SSPR_TOTP_ENCRYPTION_KEY must differ from SSPR_CODE_HMAC_KEY: one key, one purpose")
        if self.sms_provider is not SmsProvider.NONE and not self.sms_endpoint:
            problems.append(
                f"SSPR_SMS_ENDPOINT is empty but SSPR_SMS_PROVIDER is '{self.sms_provider}': put the provider's URL there"
            )
        if self.sms_provider is SmsProvider.ACS and not self.sms_sender_number:
            problems.append("SSPR_SMS_SENDER_NUMBER is empty: put the ACS phone number (E.164) that sends the codes")
        if self.sms_provider is SmsProvider.EMULATOR and self.environment is Environment.AZURE:
            problems.append("SSPR_SMS_PROVIDER is 'emulator' but SSPR_ENVIRONMENT is 'azure': use 'acs' or 'none'")
        if rp_problem := rp_id_problem(self.public_base_url, self.passkey_rp_id):
            problems.append(f"SSPR_PASSKEY_RP_ID: {rp_problem}")
        if self.sms_endpoint:
            try:
                require_https_unless_loopback(self.sms_endpoint)
            except ValueError as exc:
                problems.append(f"SSPR_SMS_ENDPOINT {exc}")
        if self.onprem_wait_seconds >= self.onprem_job_seconds:
            problems.append("SSPR_ONPREM_WAIT_SECONDS must be shorter than SSPR_ONPREM_JOB_SECONDS: a reset waits"
                            " for AD's answer only while its job can still apply")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @cached_property
    def allowed_client_app_ids(self) -> frozenset[str]:
        """Lower-case app ids whose user tokens are accepted: SSPR_ALLOWED_CLIENT_APP_IDS, else the pages app."""
        return frozenset(self.client_app_ids or (str(self.pages_client_id).lower(),))

    @cached_property
    def issuer(self) -> str:
        """The `iss` of Entra v2 tokens for this tenant."""
        return f"{self.authority_host}/{self.tenant_id}/v2.0"

    @cached_property
    def v1_issuer(self) -> str | None:
        """The `iss` of Entra v1 access tokens (https://sts.windows.net/<tid>/), on the public cloud only."""
        if urlsplit(self.authority_host).hostname == "login.microsoftonline.com":
            return f"https://sts.windows.net/{self.tenant_id}/"
        return None

    @cached_property
    def openid_configuration_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @cached_property
    def graph_uses_local_authority(self) -> bool:
        return is_loopback_url(self.authority_host)


_MISSING_HINTS = {
    "SSPR_MAINTENANCE_SCHEDULE": "a 6-field NCRONTAB in UTC for the purge, e.g. '0 0 3 * * *' (daily 03:00)",
    "SSPR_SCOPE_SYNC_SCHEDULE": "a 6-field NCRONTAB in UTC for the scope re-sync, e.g. '0 */15 * * * *'",
    "SSPR_COMPLIANCE_SCHEDULE": "a 6-field NCRONTAB in UTC for compliance runs, e.g. '0 0 2 * * *' (daily 02:00)",
    "SSPR_EXPIRY_SCHEDULE": "a 6-field NCRONTAB in UTC for password expiry runs, e.g. '0 0 6 * * *' (daily 06:00)",
    "SSPR_QUEUE_PREFIX": "the prefix of this deployment's queue names, e.g. sspr (lower-case letters and digits)",
    "SSPR_CODE_HMAC_KEY": "base64 of 32 random bytes (`openssl rand -base64 32`; a Key Vault reference in Azure)",
    "SSPR_TOTP_ENCRYPTION_KEY": "base64 of 32 random bytes, not the code key (a Key Vault reference in Azure)",
    "SSPR_MAIL_SENDER": "the UPN of the mailbox that sends codes and notices, e.g. no-reply@contoso.com",
    "SSPR_TENANT_ID": "the Entra tenant id (a GUID, Entra admin center > Overview)",
    "SSPR_API_CLIENT_ID": "the application (client) id of this service's app registration (a GUID)",
    "SSPR_PAGES_CLIENT_ID": "the application (client) id of the pages' single-page app registration (a GUID)",
    "SSPR_PUBLIC_BASE_URL": "the public https URL where the pages are served, e.g. https://sspr.contoso.com",
}


def _describe(error: Mapping[str, Any]) -> str:
    loc = error.get("loc") or ()
    name = str(loc[0]) if loc else ""
    field = Settings.model_fields.get(name)
    setting = field.alias if field and field.alias else name
    if error.get("type") == "missing":
        hint = _MISSING_HINTS.get(setting, "a value")
        return f"{setting} is missing: put {hint} there"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if not setting:
        return message
    return f"{setting}: {message}"


def load_settings(values: dict[str, str] | None = None) -> Settings:
    """Read and validate every setting (from `values` if given, else the environment); fail closed."""
    try:
        if values is None:
            return Settings()  # type: ignore[call-arg]
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems: list[str] = []
        for error in exc.errors(include_url=False):
            for part in re.split(r"; (?=[A-Z])", _describe(error)):
                problems.append(part)
        raise ConfigurationError(problems) from None
