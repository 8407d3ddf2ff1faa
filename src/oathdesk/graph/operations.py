"""What each Graph call is for, and the permission and Entra role it needs (for 403 messages).

Permissions are the least-privileged ones Microsoft's Graph beta reference names for each call;
the same name serves as an application permission (app-only sign-in) and a delegated one
(device-code sign-in, where the signed-in admin also needs the role).
"""

from __future__ import annotations

from typing import NamedTuple

POLICY_READ = "Policy.Read.All"
POLICY_WRITE = "Policy.ReadWrite.AuthenticationMethod"
METHODS_READ = "UserAuthenticationMethod.Read.All"
METHODS_WRITE = "UserAuthenticationMethod.ReadWrite.All"

POLICY_ADMIN = "Authentication Policy Administrator"
AUTH_ADMIN = "Authentication Administrator"

# Which granted permission also covers another (a ReadWrite grant covers the Read).
IMPLIED: dict[str, frozenset[str]] = {
    POLICY_READ: frozenset({POLICY_READ, POLICY_WRITE, "Policy.ReadWrite.All"}),
    POLICY_WRITE: frozenset({POLICY_WRITE}),
    METHODS_READ: frozenset({METHODS_READ, METHODS_WRITE}),
    METHODS_WRITE: frozenset({METHODS_WRITE}),
}


class Operation(NamedTuple):
    """A kind of Graph call: its audit name, what it does in words, what it needs."""

    name: str
    what: str
    permission: str
    role: str


READ_POLICY = Operation(
    "policy.read", "read the hardware OATH method policy", POLICY_READ, POLICY_ADMIN
)
UPDATE_POLICY = Operation(
    "policy.update", "turn on the hardware OATH method", POLICY_WRITE, POLICY_ADMIN
)
LIST_DEVICES = Operation(
    "devices.list", "list the hardware OATH token inventory", POLICY_READ, POLICY_ADMIN
)
CREATE_DEVICES = Operation(
    "devices.create", "create hardware OATH tokens in the inventory", POLICY_WRITE, POLICY_ADMIN
)
DELETE_DEVICE = Operation(
    "devices.delete", "delete a hardware OATH token from the inventory", POLICY_WRITE, POLICY_ADMIN
)
LIST_USERS = Operation(
    "users.list", "read the users tokens are assigned to", "User.Read.All", "Directory Readers"
)
LIST_METHODS = Operation("methods.list", "read a user's OATH methods", METHODS_READ, AUTH_ADMIN)
ACTIVATE = Operation(
    "methods.activate", "assign and activate a hardware OATH token", METHODS_WRITE, AUTH_ADMIN
)
UNASSIGN = Operation(
    "methods.unassign", "unassign a hardware OATH token from its user", METHODS_WRITE, AUTH_ADMIN
)
READ_REQUIREMENTS = Operation(
    "mfa.read", "read a user's per-user MFA state", POLICY_READ, AUTH_ADMIN
)
UPDATE_REQUIREMENTS = Operation(
    "mfa.update", "set a user's per-user MFA state", POLICY_WRITE, AUTH_ADMIN
)
UPDATE_PREFERENCES = Operation(
    "preferences.update", "set a user's default sign-in method", METHODS_WRITE, AUTH_ADMIN
)

# What `entra status` checks the credentials for, in the order it reports them.
NEEDED = (POLICY_READ, POLICY_WRITE, METHODS_READ, METHODS_WRITE)

PURPOSE: dict[str, str] = {
    POLICY_READ: "read the policy and the token inventory",
    POLICY_WRITE: "create and delete inventory tokens, turn the method on, set per-user MFA",
    METHODS_READ: "read users' OATH methods (entra pull)",
    METHODS_WRITE: "assign, activate and unassign tokens, set the default method",
}


def covered(permission: str, granted: frozenset[str]) -> bool:
    """Whether ``granted`` includes ``permission`` or one that implies it."""
    return bool(IMPLIED.get(permission, frozenset({permission})) & granted)
