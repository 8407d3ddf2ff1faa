"""``/users``: the people tokens are for."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field, SecretStr

from oathdesk.services.reveal_override import approve_one_more_reveal
from oathdesk.vault import lookup
from oathdesk.vault.roles import Permission, require
from oathdesk.web.api.auth import ApiActor, VaultDep
from oathdesk.web.api.errors import ApiRoute, responses
from oathdesk.web.api.paging import LIMIT_DEFAULT, Cursor, Limit, PageOut, page_out
from oathdesk.web.api.schemas import ONE_LINE, UPN_FIELD, TokenOut, UpnPath, UserDetailOut, UserOut

router = APIRouter(tags=["users"], route_class=ApiRoute)


class UserIn(BaseModel):
    upn: str = UPN_FIELD
    display_name: str = Field(default="", max_length=256, pattern=ONE_LINE)
    phone: str = Field(
        default="", max_length=64, pattern=ONE_LINE, description="on file, for identity callbacks"
    )
    notes: str = Field(default="", max_length=2000)


class UserPatch(BaseModel):
    """What to change; a field left out stays as it is, "" clears it."""

    display_name: str | None = Field(default=None, max_length=256, pattern=ONE_LINE)
    phone: str | None = Field(
        default=None,
        max_length=64,
        pattern=ONE_LINE,
        description="international form with the country code; stored as E.164",
    )
    notes: str | None = Field(default=None, max_length=2000)


@router.get("/users", response_model=PageOut[UserOut], responses=responses(400, 403))
def list_users(
    request: Request,
    response: Response,
    actor: ApiActor,
    vault: VaultDep,
    limit: Limit = LIMIT_DEFAULT,
    cursor: Cursor = None,
) -> PageOut[UserOut]:
    """Users by UPN, a page at a time."""
    require(actor, Permission.LOOK_UP)
    return page_out(
        request, response, lookup.user_page(vault, cursor=cursor, limit=limit), UserOut.of
    )


@router.post(
    "/users",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 403, 409),
)
def add_user(body: UserIn, actor: ApiActor, vault: VaultDep) -> UserOut:
    """Add a user (admin)."""
    user = vault.add_user(
        actor, body.upn, display_name=body.display_name, phone=body.phone, notes=body.notes
    )
    return UserOut.of(user)


@router.get("/users/{upn}", response_model=UserDetailOut, responses=responses(403, 404))
def show_user(upn: UpnPath, actor: ApiActor, vault: VaultDep) -> UserDetailOut:
    """A user with their tokens."""
    require(actor, Permission.LOOK_UP)
    user = vault.get_user(upn)
    owned = vault.list_tokens(upn=user.upn)
    return UserDetailOut(
        **UserOut.of(user).model_dump(), tokens=[TokenOut.of(token) for token in owned]
    )


@router.patch("/users/{upn}", response_model=UserOut, responses=responses(400, 403, 404))
def edit_user(upn: UpnPath, body: UserPatch, actor: ApiActor, vault: VaultDep) -> UserOut:
    """Change a user's display name, phone number on file or notes (admin): one
    ``user.updated`` audit record with each changed field before and after."""
    user = vault.update_user(
        actor, upn, display_name=body.display_name, phone=body.phone, notes=body.notes
    )
    return UserOut.of(user)


class RevealApprovalIn(BaseModel):
    """The admin's own password and current code confirm the approval (a key alone is not
    enough: it may sit in a script)."""

    ticket: str = Field(min_length=1, max_length=128, pattern=ONE_LINE)
    password: SecretStr = Field(min_length=1, max_length=1024)
    code: SecretStr = Field(min_length=6, max_length=10)


class RevealApprovalOut(BaseModel):
    upn: str
    reveals: int
    until: datetime


@router.post(
    "/users/{upn}/reveal-approvals",
    response_model=RevealApprovalOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 403, 404),
)
def approve_reveal(
    upn: UpnPath, body: RevealApprovalIn, actor: ApiActor, vault: VaultDep
) -> RevealApprovalOut:
    """Approve one reveal beyond the per-user limit for one call (admin): the next reveal for
    the user within 10 minutes, by another operator; a ``reveal.override_approved`` record."""
    until = approve_one_more_reveal(
        vault,
        actor,
        upn,
        ticket=body.ticket,
        password=body.password.get_secret_value(),
        code=body.code.get_secret_value(),
    )
    return RevealApprovalOut(upn=upn.strip().lower(), reveals=1, until=until)
