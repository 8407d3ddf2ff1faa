"""``/operators`` and their API keys; ``/me`` says who a key acts for.

Managing operators and creating keys is the admin's (MANAGE_OPERATORS); an operator may list and
revoke their own keys. A new key or TOTP enrolment is in the answer once and stored nowhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field, SecretStr

from oathdesk.vault.api_keys import ApiKey, ApiKeyStore
from oathdesk.vault.operators import Enrolment, OperatorDirectory
from oathdesk.vault.roles import Permission, Role, require
from oathdesk.web.api.auth import ApiActor, VaultDep
from oathdesk.web.api.errors import ApiRoute, responses
from oathdesk.web.api.paging import LIMIT_DEFAULT, Cursor, Limit, PageOut, page_out
from oathdesk.web.api.schemas import ONE_LINE, KeyIdPath, NamePath

router = APIRouter(tags=["operators and keys"], route_class=ApiRoute)

OperatorName = NamePath
KeyId = KeyIdPath


class MeOut(BaseModel):
    operator: str
    role: str
    key_id: str


class OperatorOut(BaseModel):
    name: str
    role: Role
    disabled: bool
    locked_until: datetime | None
    created_at: datetime


class OperatorIn(BaseModel):
    name: str = Field(min_length=1, max_length=128, pattern=ONE_LINE)
    role: Literal["admin", "helpdesk", "auditor"]
    password: SecretStr = Field(min_length=12, max_length=1024)


class EnrolmentOut(BaseModel):
    operator: str
    otpauth_uri: str = Field(description="shown once: the operator scans it into their app")

    @classmethod
    def of(cls, enrolment: Enrolment) -> EnrolmentOut:
        return cls(operator=enrolment.operator, otpauth_uri=enrolment.otpauth_uri)


class ApiKeyOut(BaseModel):
    id: str
    operator: str
    name: str
    status: str = Field(description="active, expired or revoked")
    created_at: datetime
    last_used_at: datetime | None = Field(description="to the minute")
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(
            id=key.id,
            operator=key.operator,
            name=key.name,
            status=key.status(),
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
        )


class ApiKeyIn(BaseModel):
    name: str = Field(
        min_length=1, max_length=128, pattern=ONE_LINE, description="what uses it, e.g. ci-export"
    )
    days: int | None = Field(
        default=365, ge=1, le=3650, description="lifetime in days; null: never expires"
    )


class CreatedKeyOut(ApiKeyOut):
    key: str = Field(description="the key itself, shown only now: odk_<id>_<secret>")


@router.get("/me", response_model=MeOut, responses=responses())
def me(request: Request, actor: ApiActor) -> MeOut:
    """Who this key acts for."""
    return MeOut(operator=actor.name, role=actor.role, key_id=request.state.api_key_id)


@router.get("/operators", response_model=PageOut[OperatorOut], responses=responses(400, 403))
def list_operators(
    request: Request,
    response: Response,
    actor: ApiActor,
    vault: VaultDep,
    limit: Limit = LIMIT_DEFAULT,
    cursor: Cursor = None,
) -> PageOut[OperatorOut]:
    """Operators by name, a page at a time (admin)."""
    require(actor, Permission.MANAGE_OPERATORS)
    found = OperatorDirectory(vault).page(cursor=cursor, limit=limit)
    return page_out(
        request,
        response,
        found,
        lambda o: OperatorOut(
            name=o.name,
            role=o.role,
            disabled=o.disabled,
            locked_until=o.locked_until,
            created_at=o.created_at,
        ),
    )


@router.post(
    "/operators",
    response_model=EnrolmentOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 403, 409),
)
def add_operator(
    body: OperatorIn, response: Response, actor: ApiActor, vault: VaultDep
) -> EnrolmentOut:
    """Add an operator (admin); the answer holds their TOTP enrolment URI, once."""
    enrolment = OperatorDirectory(vault).add(
        actor, body.name, body.role, body.password.get_secret_value()
    )
    response.headers["Cache-Control"] = "no-store"
    return EnrolmentOut.of(enrolment)


@router.post(
    "/operators/{name}/disable",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(403, 404),
)
def disable_operator(name: OperatorName, actor: ApiActor, vault: VaultDep) -> Response:
    """Disable an operator (admin): sign-ins and their API keys are refused from now on."""
    OperatorDirectory(vault).disable(actor, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/operators/{name}/keys", response_model=PageOut[ApiKeyOut], responses=responses(400, 403)
)
def list_keys(
    request: Request,
    response: Response,
    name: OperatorName,
    actor: ApiActor,
    vault: VaultDep,
    limit: Limit = LIMIT_DEFAULT,
    cursor: Cursor = None,
) -> PageOut[ApiKeyOut]:
    """An operator's API keys, oldest first, a page at a time (their own, or anyone's for an
    admin)."""
    found = ApiKeyStore(vault).page(actor, name, cursor=cursor, limit=limit)
    return page_out(request, response, found, ApiKeyOut.of)


@router.post(
    "/operators/{name}/keys",
    response_model=CreatedKeyOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 403, 404),
)
def create_key(
    name: OperatorName, body: ApiKeyIn, response: Response, actor: ApiActor, vault: VaultDep
) -> CreatedKeyOut:
    """A new API key for an operator (admin); the key is in the answer, once."""
    created = ApiKeyStore(vault).create(actor, name, body.name, days=body.days)
    response.headers["Cache-Control"] = "no-store"
    return CreatedKeyOut(**ApiKeyOut.of(created.key).model_dump(), key=created.secret_text)


@router.post("/keys/{key_id}/revoke", response_model=ApiKeyOut, responses=responses(403, 404))
def revoke_key(key_id: KeyId, actor: ApiActor, vault: VaultDep) -> ApiKeyOut:
    """Revoke a key for good (its operator or an admin)."""
    return ApiKeyOut.of(ApiKeyStore(vault).revoke(actor, key_id))
