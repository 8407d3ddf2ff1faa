"""``/settings``: the vault's policy (acceptance profile, retention, reveal limits, four-eyes)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from oathdesk.errors import InvalidInput
from oathdesk.vault.models import VaultSettings
from oathdesk.vault.roles import Permission, require
from oathdesk.web.api.auth import ApiActor, VaultDep
from oathdesk.web.api.errors import ApiRoute, responses

router = APIRouter(tags=["settings"], route_class=ApiRoute)

Profile = Literal["entra", "entra-activation", "legacy"]


class SettingsOut(BaseModel):
    acceptance_profile: str
    retention_days: int
    undelivered_warning_days: int
    max_tokens_per_user: int
    reveal_limit_per_user: int
    reveal_limit_per_operator: int
    four_eyes: bool

    @classmethod
    def of(cls, current: VaultSettings) -> SettingsOut:
        return cls(**current.__dict__)


class SettingsPatch(BaseModel):
    """Only the settings given change; the ranges are those of `oathdesk settings set`."""

    acceptance_profile: Profile | None = None
    retention_days: int | None = Field(default=None, ge=0, le=3650)
    undelivered_warning_days: int | None = Field(default=None, ge=1, le=3650)
    max_tokens_per_user: int | None = Field(default=None, ge=1, le=100)
    reveal_limit_per_user: int | None = Field(default=None, ge=0, le=1000)
    reveal_limit_per_operator: int | None = Field(default=None, ge=0, le=100_000)
    four_eyes: bool | None = None


@router.get("/settings", response_model=SettingsOut, responses=responses(403))
def show_settings(actor: ApiActor, vault: VaultDep) -> SettingsOut:
    """The current policy."""
    require(actor, Permission.LOOK_UP)
    return SettingsOut.of(vault.settings())


@router.patch("/settings", response_model=SettingsOut, responses=responses(400, 403))
def change_settings(body: SettingsPatch, actor: ApiActor, vault: VaultDep) -> SettingsOut:
    """Change some settings (admin); one audit record names the changes."""
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise InvalidInput('give at least one setting to change, e.g. {"four_eyes": true}')
    return SettingsOut.of(vault.update_settings(actor, **changes))
