"""Response models shared by several resources (a token, a user); never with a secret."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

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
    # Read straight off the vault's Token (its id stays out: it is not in this model).
    model_config = ConfigDict(from_attributes=True)

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
        return cls.model_validate(token)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    upn: str
    display_name: str
    phone: str
    notes: str
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls.model_validate(user)


class UserDetailOut(UserOut):
    tokens: list[TokenOut]
