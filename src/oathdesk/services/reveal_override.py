"""An admin approves one reveal beyond the per-user limit, for one call, instead of raising the
limit for everyone (``settings reveal_limit_per_user``).

The approval is an audit record (``reveal.override_approved``: the admin, the user, the ticket,
until when); the next reveal for that user within OVERRIDE_WINDOW, by another operator, uses it
and names it in its own record (services/reveal.py). The admin confirms with their own password
and current code, so a session left open is not enough.
"""

from __future__ import annotations

from datetime import UTC, datetime

from oathdesk.errors import InvalidInput, PermissionDenied
from oathdesk.services.reveal import OVERRIDE_WINDOW
from oathdesk.timetext import iso_utc
from oathdesk.vault.operators import OperatorDirectory
from oathdesk.vault.overrides import APPROVED_ACTION
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Actor, Vault


def approve_one_more_reveal(
    vault: Vault,
    admin: Actor,
    upn: str,
    *,
    ticket: str,
    password: str,
    code: str,
    client: str | None = None,
) -> datetime:
    """Record the approval; returns until when it can be used."""
    # Changing the limits is the admin's (settings); this is the narrow form of it.
    require(admin, Permission.SETTINGS)
    if not ticket.strip():
        raise InvalidInput("give the ticket reference of the call the extra reveal is for")
    user = vault.get_user(upn)
    confirmed = OperatorDirectory(vault).authenticate(
        admin.name, password, code.replace(" ", ""), client=client
    )
    if confirmed.name != admin.name:
        raise PermissionDenied("confirm with your own password and code")
    return record_approval(vault, admin, user.upn, ticket=ticket)


def check_request(vault: Vault, admin: Actor, upn: str, *, ticket: str) -> str:
    """What an approval needs before the admin confirms; returns the user's UPN."""
    require(admin, Permission.SETTINGS)
    if not ticket.strip():
        raise InvalidInput("give the ticket reference of the call the extra reveal is for")
    return vault.get_user(upn).upn


def record_approval(
    vault: Vault,
    admin: Actor,
    upn: str,
    *,
    ticket: str,
    confirmed_by: dict[str, str] | None = None,
) -> datetime:
    """The approval's audit record once the admin confirmed (their password and code, or a
    fresh Microsoft sign-in: ``confirmed_by`` then names the method and the admin's oid)."""
    require(admin, Permission.SETTINGS)
    until = datetime.now(UTC) + OVERRIDE_WINDOW
    with vault.transaction() as conn:
        vault.audit(
            conn,
            admin,
            APPROVED_ACTION,
            upn=upn,
            details={
                "ticket": ticket.strip()[:128],
                "until": iso_utc(until),
                "reveals": 1,
                **(confirmed_by or {}),
            },
        )
    return until
