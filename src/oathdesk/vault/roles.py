"""Roles and what they may do, in one place: the vault's operations, services and interfaces all
call ``require`` before acting.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol, overload

from oathdesk.errors import InvalidInput, PermissionDenied


class Role(StrEnum):
    ADMIN = "admin"  # everything
    HELPDESK = "helpdesk"  # look up, reveal codes, move tokens through shipping
    AUDITOR = "auditor"  # read the audit log only

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise InvalidInput(f"unknown role {text!r}; use admin, helpdesk or auditor") from None


class Permission(StrEnum):
    LOOK_UP = "look_up"
    REVEAL = "reveal"
    SHIP = "ship"  # move tokens through burned/registered/shipped/delivered
    MANAGE_TOKENS = "manage_tokens"  # add, import, assign, reassign, purge, lost, revoke
    MANAGE_USERS = "manage_users"
    EXPORT_SECRETS = "export_secrets"
    MANAGE_OPERATORS = "manage_operators"
    SETTINGS = "settings"
    READ_AUDIT = "read_audit"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.HELPDESK: frozenset({Permission.LOOK_UP, Permission.REVEAL, Permission.SHIP}),
    Role.AUDITOR: frozenset({Permission.READ_AUDIT}),
}


class Acting(Protocol):
    """Anything that names who acts and in which role (``oathdesk.vault.models.Actor``)."""

    @property
    def name(self) -> str: ...

    @property
    def role(self) -> str: ...


def allowed(role: str, permission: Permission) -> bool:
    try:
        return permission in GRANTS[Role(role)]
    except ValueError:
        return False  # an unknown role may do nothing


@overload
def require(actor: Acting, permission: Permission, /) -> None: ...


@overload
def require(actor_name: str, role: str, permission: Permission, /) -> None: ...


def require(
    actor: Acting | str, role_or_permission: str, permission: Permission | None = None, /
) -> None:
    """Raise PermissionDenied unless the actor's role grants ``permission``.

    Called as ``require(actor, permission)``, or ``require(name, role, permission)``.
    """
    if isinstance(actor, str):
        name, role = actor, role_or_permission
    else:
        name, role = actor.name, actor.role
        permission = Permission(role_or_permission)
    if permission is None:
        raise TypeError("require() needs a permission")
    if not allowed(role, permission):
        raise PermissionDenied(
            f"{name} ({role}) may not {permission.value.replace('_', ' ')}; ask an admin"
        )
