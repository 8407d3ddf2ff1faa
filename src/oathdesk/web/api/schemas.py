"""Response models shared by several resources (a token, a user); never with a secret."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, Field

from oathdesk.otp import Algorithm
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.models import Token, User

# Text that may be named in a one-line error message: no control characters (no line breaks).
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
UPN_FIELD = Field(min_length=3, max_length=320, pattern=ONE_LINE, description="user principal name")
SERIAL_FIELD = Field(
    min_length=1, max_length=64, pattern=ONE_LINE, description="serial number on the token"
)
REASON_FIELD = Field(min_length=1, max_length=500, pattern=ONE_LINE)
# Path parameters
UpnPath = Annotated[str, Path(min_length=1, max_length=320, pattern=ONE_LINE)]
SerialPath = Annotated[str, Path(min_length=1, max_length=64, pattern=ONE_LINE)]
NamePath = Annotated[str, Path(min_length=1, max_length=128, pattern=ONE_LINE)]
KeyIdPath = Annotated[str, Path(min_length=1, max_length=32, pattern=ONE_LINE)]


class TokenOut(BaseModel):
    serial: str
    manufacturer: str
    model: str
    kind: TokenKind
    algorithm: Algorithm
    digits: int
    period: int
    state: TokenState
    upn: str | None
    carrier: str
    tracking: str
    drift_seconds: int | None
    drift_measured_at: datetime | None
    created_at: datetime
    updated_at: datetime
    assigned_at: datetime | None
    burned_at: datetime | None
    registered_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    purged_at: datetime | None
    closed_at: datetime | None
    has_secret: bool = Field(description="whether the vault still holds the seed")
    version: int = Field(description="send it back as expected_version to avoid lost updates")

    @classmethod
    def of(cls, token: Token) -> TokenOut:
        return cls(
            serial=token.serial,
            manufacturer=token.manufacturer,
            model=token.model,
            kind=token.kind,
            algorithm=token.algorithm,
            digits=token.digits,
            period=token.period,
            state=token.state,
            upn=token.upn,
            carrier=token.carrier,
            tracking=token.tracking,
            drift_seconds=token.drift_seconds,
            drift_measured_at=token.drift_measured_at,
            created_at=token.created_at,
            updated_at=token.updated_at,
            assigned_at=token.assigned_at,
            burned_at=token.burned_at,
            registered_at=token.registered_at,
            shipped_at=token.shipped_at,
            delivered_at=token.delivered_at,
            purged_at=token.purged_at,
            closed_at=token.closed_at,
            has_secret=token.has_secret,
            version=token.version,
        )


class UserOut(BaseModel):
    upn: str
    display_name: str
    phone: str
    notes: str
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            upn=user.upn,
            display_name=user.display_name,
            phone=user.phone,
            notes=user.notes,
            created_at=user.created_at,
        )


class UserDetailOut(UserOut):
    tokens: list[TokenOut]
