"""Password expiration: GET/PUT /api/manage/password-expiration per verified domain, and one user's "never expires".

PUT takes a list of domains (a domain left out keeps its policy). Entra's admin center sets one value for the
whole organisation; do the same here by sending every domain that GET returns with the same values.
"""

from typing import Annotated

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from functions import api, composition
from functions.openapi_spec import Operation
from shared.domain.access import Access
from shared.domain.password_expiration import DomainExpiration
from shared.services.password_expiration import domains_document

bp = func.Blueprint()


class DomainExpirationInput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: Annotated[str, Field(min_length=1, max_length=255, description="a verified, managed domain name")]
    validityDays: int | None = Field(description="days a password stays valid, 14-730; null: never expires")
    notificationDays: int = Field(description="days of warning before expiry, 1-30 and less than validityDays")


class PasswordExpirationUpdate(BaseModel):
    """Body of PUT /api/manage/password-expiration."""

    model_config = ConfigDict(extra="forbid", strict=True)

    domains: Annotated[list[DomainExpirationInput], Field(min_length=1, max_length=100)]


class NeverExpiresUpdate(BaseModel):
    """Body of PUT /api/manage/users/{id}/password-never-expires."""

    model_config = ConfigDict(extra="forbid", strict=True)

    neverExpires: bool


class DomainExpirationDocument(BaseModel):
    id: str
    isDefault: bool
    authenticationType: str
    validityDays: int | None
    never: bool
    notificationDays: int | None


class PasswordExpirationDocument(BaseModel):
    """Each verified domain's password expiration policy (validityDays null and never true: never expires)."""

    domains: list[DomainExpirationDocument]


class UserPasswordExpiryDocument(BaseModel):
    """A user's password expiry flag and the combined passwordPolicies now in the directory."""

    id: str
    neverExpires: bool
    passwordPolicies: str


OPERATIONS = [
    Operation("get", "manage/password-expiration", "Password expiration policy per verified domain",
              "password-expiration", "admin-read", responses={200: PasswordExpirationDocument}),
    Operation("put", "manage/password-expiration", "Change the password expiration policy of verified domains",
              "password-expiration", "admin-write", request=PasswordExpirationUpdate,
              responses={200: PasswordExpirationDocument},
              description="Domains left out keep their policy. For one organisation-wide policy, as Entra's admin"
                          " center sets it, send every domain GET returns with the same values."),
    Operation("put", "manage/users/{id}/password-never-expires", "Let one user's password never expire (or expire)",
              "password-expiration", "admin-write", request=NeverExpiresUpdate,
              responses={200: UserPasswordExpiryDocument}, extra_errors=(404,),
              description="Sets passwordPolicies DisablePasswordExpiration on or off; other values such as"
                          " DisableStrongPassword are kept."),
]


@bp.route(route="manage/password-expiration", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def get_password_expiration(req: func.HttpRequest) -> func.HttpResponse:
    await api.authenticate(req, Access.READ)
    domains = await composition.root.password_expiration.organisation_policy()
    return api.json_response(domains_document(domains))


@bp.route(route="manage/password-expiration", methods=["PUT"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def put_password_expiration(req: func.HttpRequest) -> func.HttpResponse:
    principal = await api.authenticate(req, Access.WRITE)
    body = api.parse_json(req, PasswordExpirationUpdate)
    changes = [DomainExpiration(d.id, d.validityDays, d.notificationDays) for d in body.domains]
    domains = await composition.root.password_expiration.update_organisation_policy(
        changes, principal.actor(), api.client_ip(req)
    )
    return api.json_response(domains_document(domains))


@bp.route(route="manage/users/{id}/password-never-expires", methods=["PUT"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def put_password_never_expires(req: func.HttpRequest) -> func.HttpResponse:
    principal = await api.authenticate(req, Access.WRITE)
    body = api.parse_json(req, NeverExpiresUpdate)
    expiry = await composition.root.password_expiration.set_never_expires(
        req.route_params.get("id", ""), body.neverExpires, principal.actor(), api.client_ip(req)
    )
    return api.json_response(expiry.as_dict())
