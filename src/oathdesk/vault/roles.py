"""Roles and what they may do, in one place (services and interfaces call ``require``)."""

from __future__ import annotations

from enum import StrEnum

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
    MANAGE_TOKENS = "manage_tokens"  # add, import, assign, purge, lost, revoke
    EXPORT_SECRETS = "export_secrets"
    MANAGE_OPERATORS = "manage_operators"
    SETTINGS = "settings"
    READ_AUDIT = "read_audit"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.HELPDESK: frozenset({Permission.LOOK_UP, Permission.REVEAL, Permission.SHIP}),
    Role.AUDITOR: frozenset({Permission.READ_AUDIT}),
}


def allowed(role: str, permission: Permission) -> bool:
    return permission in GRANTS.get(Role(role), frozenset())


def require(actor_name: str, role: str, permission: Permission) -> None:
    if not allowed(role, permission):
        raise PermissionDenied(
            f"{actor_name} ({role}) may not {permission.value.replace('_', ' ')}; ask an admin"
        )
