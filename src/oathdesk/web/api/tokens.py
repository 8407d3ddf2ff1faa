"""``/tokens``: add tokens (the secret in the JSON body) and move them along their lifecycle.

Every move goes through the vault (one unit of work with its audit record) or the service the CLI
uses (delivery needs a fresh code check or a reason), so roles and state rules are the same.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field, SecretStr

from oathdesk.errors import InvalidInput
from oathdesk.otp import Algorithm
from oathdesk.seed import ParsedSeed, SeedForm, generate_secret, parse_seed
from oathdesk.services.token_checks import confirm_delivery
from oathdesk.vault import lookup
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.models import NewToken
from oathdesk.vault.roles import Permission, require
from oathdesk.web.api.auth import ApiActor, VaultDep
from oathdesk.web.api.errors import ApiRoute, responses
from oathdesk.web.api.paging import LIMIT_DEFAULT, Cursor, Limit, PageOut, page_out
from oathdesk.web.api.schemas import (
    ONE_LINE,
    REASON_FIELD,
    SERIAL_FIELD,
    UPN_FIELD,
    SerialPath,
    TokenOut,
)

router = APIRouter(tags=["tokens"], route_class=ApiRoute)

VERSION_FIELD = Field(
    default=None, ge=0, description="the version you were shown; a token changed since is refused"
)
SECRET_FIELD = Field(
    default=None,
    min_length=1,
    max_length=2048,
    description="base32, hex or an otpauth://totp URI; never echoed back",
)


class TokenIn(BaseModel):
    serial: str = SERIAL_FIELD
    model: str = Field(
        default="", max_length=128, pattern=ONE_LINE, description="e.g. C202, miniOTP-2-i"
    )
    manufacturer: str = Field(default="Token2", min_length=1, max_length=128, pattern=ONE_LINE)
    kind: TokenKind = TokenKind.PROGRAMMABLE
    upn: str | None = Field(
        default=None, min_length=3, max_length=320, pattern=ONE_LINE, description="assign now"
    )
    secret: SecretStr | None = SECRET_FIELD
    generate: bool = Field(default=False, description="a new random seed instead of secret")
    algorithm: Algorithm | None = None
    digits: int | None = Field(default=None, ge=6, le=10)
    period: int | None = Field(default=None, ge=1, le=3600)


def _seed(secret: SecretStr | None, generate: bool, algorithm: str) -> ParsedSeed:
    if generate == (secret is not None):
        raise InvalidInput("give either secret (base32, hex or otpauth URI) or generate: true")
    if secret is None:
        return ParsedSeed(generate_secret(algorithm), SeedForm.BASE32)
    return parse_seed(secret.get_secret_value())


@router.get("/tokens", response_model=PageOut[TokenOut], responses=responses(400, 403))
def list_tokens(
    request: Request,
    response: Response,
    actor: ApiActor,
    vault: VaultDep,
    state: Annotated[TokenState | None, Query()] = None,
    upn: Annotated[str | None, Query(max_length=320, pattern=ONE_LINE)] = None,
    kind: Annotated[TokenKind | None, Query()] = None,
    limit: Limit = LIMIT_DEFAULT,
    cursor: Cursor = None,
) -> PageOut[TokenOut]:
    """Tokens by serial, a page at a time; filter by state, user and kind."""
    require(actor, Permission.LOOK_UP)
    found = lookup.token_page(vault, state=state, upn=upn, kind=kind, cursor=cursor, limit=limit)
    return page_out(request, response, found, TokenOut.of)


@router.get("/tokens/{serial}", response_model=TokenOut, responses=responses(403, 404))
def show_token(serial: SerialPath, actor: ApiActor, vault: VaultDep) -> TokenOut:
    """One token (never its secret)."""
    require(actor, Permission.LOOK_UP)
    return TokenOut.of(vault.get_token(serial))


@router.post(
    "/tokens",
    response_model=TokenOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 403, 404, 409),
)
def add_token(body: TokenIn, actor: ApiActor, vault: VaultDep) -> TokenOut:
    """Add a token with its secret (admin); assigned at once when ``upn`` is given."""
    require(actor, Permission.MANAGE_TOKENS)
    seed = _seed(body.secret, body.generate, body.algorithm.value if body.algorithm else "sha1")
    item = NewToken(
        serial=body.serial.strip(),
        manufacturer=body.manufacturer,
        model=body.model or body.kind.value,
        kind=body.kind,
        secret=seed.secret,
        algorithm=body.algorithm or Algorithm.parse(seed.algorithm or "sha1"),
        digits=body.digits or seed.digits or 6,
        period=body.period or seed.period or 30,
        upn=body.upn,
    )
    return TokenOut.of(vault.add_token(actor, item, source="api"))


class Versioned(BaseModel):
    expected_version: int | None = VERSION_FIELD


class AssignIn(Versioned):
    upn: str = UPN_FIELD


class ShipIn(Versioned):
    carrier: str = Field(min_length=1, max_length=64, pattern=ONE_LINE, description="e.g. DHL")
    tracking: str = Field(min_length=1, max_length=128, pattern=ONE_LINE)


class ReasonIn(Versioned):
    reason: str = REASON_FIELD


class DeliverIn(BaseModel):
    override_reason: str | None = Field(
        default=None,
        max_length=500,
        pattern=ONE_LINE,
        description="needed unless a code the user read off the token was checked today",
    )


class PurgeIn(BaseModel):
    reason: str = Field(
        default="delivered and working", min_length=1, max_length=500, pattern=ONE_LINE
    )


class ReassignIn(BaseModel):
    upn: str = UPN_FIELD
    secret: SecretStr | None = SECRET_FIELD
    generate: bool = False


@router.post(
    "/tokens/{serial}/assign", response_model=TokenOut, responses=responses(400, 403, 404, 409)
)
def assign(serial: SerialPath, body: AssignIn, actor: ApiActor, vault: VaultDep) -> TokenOut:
    """Assign a token to a user (admin)."""
    token = vault.assign(actor, serial, body.upn, expected_version=body.expected_version)
    return TokenOut.of(token)


def _move(
    actor: ApiActor,
    vault: VaultDep,
    serial: SerialPath,
    target: TokenState,
    expected_version: int | None,
    **extra: Any,
) -> TokenOut:
    token = vault.move(actor, serial, target, expected_version=expected_version, **extra)
    return TokenOut.of(token)


MOVE_RESPONSES = responses(400, 403, 404, 409)


@router.post("/tokens/{serial}/burned", response_model=TokenOut, responses=MOVE_RESPONSES)
def burned(
    serial: SerialPath, actor: ApiActor, vault: VaultDep, body: Versioned | None = None
) -> TokenOut:
    """The seed was burned onto the (programmable) token."""
    return _move(actor, vault, serial, TokenState.BURNED, body.expected_version if body else None)


@router.post("/tokens/{serial}/registered", response_model=TokenOut, responses=MOVE_RESPONSES)
def registered(
    serial: SerialPath, actor: ApiActor, vault: VaultDep, body: Versioned | None = None
) -> TokenOut:
    """The token is registered in Entra."""
    version = body.expected_version if body else None
    return _move(actor, vault, serial, TokenState.REGISTERED, version)


@router.post("/tokens/{serial}/ship", response_model=TokenOut, responses=MOVE_RESPONSES)
def ship(serial: SerialPath, body: ShipIn, actor: ApiActor, vault: VaultDep) -> TokenOut:
    """The token is in the post."""
    return _move(
        actor,
        vault,
        serial,
        TokenState.SHIPPED,
        body.expected_version,
        carrier=body.carrier,
        tracking=body.tracking,
    )


@router.post("/tokens/{serial}/deliver", response_model=TokenOut, responses=MOVE_RESPONSES)
def deliver(
    serial: SerialPath, actor: ApiActor, vault: VaultDep, body: DeliverIn | None = None
) -> TokenOut:
    """The user has it and it works: after a code check today (POST /verify) or with a reason."""
    reason = body.override_reason if body else None
    return TokenOut.of(confirm_delivery(vault, actor, serial, override_reason=reason))


def _closing(name: str, target: TokenState, summary: str) -> None:
    def close(serial: SerialPath, body: ReasonIn, actor: ApiActor, vault: VaultDep) -> TokenOut:
        return _move(
            actor, vault, serial, target, body.expected_version, details={"reason": body.reason}
        )

    close.__name__ = name
    close.__doc__ = summary
    router.post(f"/tokens/{{serial}}/{name}", response_model=TokenOut, responses=MOVE_RESPONSES)(
        close
    )


_closing("lost", TokenState.LOST, "The token is lost; its secret is erased (admin).")
_closing("revoke", TokenState.REVOKED, "Revoke the token; its secret is erased (admin).")
_closing("retire", TokenState.RETIRED, "Take the token out of service for good (admin).")


@router.post("/tokens/{serial}/purge", response_model=TokenOut, responses=MOVE_RESPONSES)
def purge(
    serial: SerialPath, actor: ApiActor, vault: VaultDep, body: PurgeIn | None = None
) -> TokenOut:
    """Erase a delivered token's secret for good (admin)."""
    reason = body.reason if body else PurgeIn().reason
    return TokenOut.of(vault.purge(actor, serial, reason=reason))


@router.post("/tokens/{serial}/reassign", response_model=TokenOut, responses=MOVE_RESPONSES)
def reassign(serial: SerialPath, body: ReassignIn, actor: ApiActor, vault: VaultDep) -> TokenOut:
    """Give a programmable token to another user with a new seed (admin)."""
    require(actor, Permission.MANAGE_TOKENS)
    seed = _seed(body.secret, body.generate, "sha1")
    return TokenOut.of(vault.reassign(actor, serial, body.upn, seed.secret))


class PurgeDueIn(BaseModel):
    dry_run: bool = False


class PurgeDueOut(BaseModel):
    dry_run: bool
    purged: list[str]
    undelivered_warning: list[str]


@router.post("/purge-due", response_model=PurgeDueOut, responses=responses(403))
def purge_due(actor: ApiActor, vault: VaultDep, body: PurgeDueIn | None = None) -> PurgeDueOut:
    """Erase the secrets of tokens delivered more than the retention period ago (admin)."""
    require(actor, Permission.MANAGE_TOKENS)
    dry_run = body.dry_run if body else False
    purged = vault.purge_due(actor, dry_run=dry_run)
    return PurgeDueOut(
        dry_run=dry_run,
        purged=[t.serial for t in purged],
        undelivered_warning=[t.serial for t in vault.undelivered()],
    )


SerialText = Annotated[str, Field(min_length=1, max_length=64, pattern=ONE_LINE)]


class GenerateIn(BaseModel):
    count: int | None = Field(default=None, ge=1, le=100_000)
    serials: list[Annotated[str, Field(min_length=1, max_length=64, pattern=ONE_LINE)]] | None = (
        Field(default=None, max_length=100_000)
    )
    model: str = Field(default="programmable", min_length=1, max_length=128, pattern=ONE_LINE)
    algorithm: Literal["sha1", "sha256"] = "sha1"
    period: Literal[30, 60] = 30


class GenerateOut(BaseModel):
    created: int
    serials: list[str]


@router.post(
    "/seeds/generate",
    response_model=GenerateOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 403, 409),
)
def generate_seeds(body: GenerateIn, actor: ApiActor, vault: VaultDep) -> GenerateOut:
    """New programmable tokens in stock with CSPRNG seeds, ready to burn and export (admin)."""
    from datetime import UTC, datetime

    require(actor, Permission.MANAGE_TOKENS)
    if (body.count is None) == (body.serials is None):
        raise InvalidInput("give either count or serials")
    if body.serials is not None:
        names = [name.strip() for name in body.serials]
    else:
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        names = [f"batch-{stamp}-{i:05d}" for i in range(1, (body.count or 0) + 1)]
    items = [
        NewToken(
            name,
            "Token2",
            body.model,
            TokenKind.PROGRAMMABLE,
            generate_secret(body.algorithm),
            Algorithm(body.algorithm),
            6,
            body.period,
        )
        for name in names
    ]
    added = vault.add_tokens(actor, items, source="api seeds generate")
    return GenerateOut(created=added, serials=names)
