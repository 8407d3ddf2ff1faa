"""Entra connection and single-object operations: login, logout, status, turning the hardware
OATH method on, per-user MFA state and default method, unassigning and deleting tokens.

Bulk work lives next door: ``entra_push`` (create, assign, activate) and ``entra_reconcile``
(compare Entra with the vault).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from oathdesk.errors import Conflict, InvalidInput, NotFound
from oathdesk.graph import operations as ops
from oathdesk.graph.api import MFA_STATES, Device
from oathdesk.graph.auth import TokenSource, certificate_thumbprint
from oathdesk.graph.errors import GraphError
from oathdesk.graph.settings import AuthKind, GraphSettings
from oathdesk.services.entra_session import EntraSession
from oathdesk.services.entra_store import journal, save_connection
from oathdesk.upn import validate_upn
from oathdesk.vault.entra_records import forget_journal
from oathdesk.vault.models import Actor
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Vault

PREFERRED_METHODS = ("oath",)


@dataclass(frozen=True)
class LoginResult:
    signed_in_as: str
    permissions: frozenset[str]
    missing: tuple[str, ...]
    thumbprint: str = ""


def login(
    vault: Vault,
    actor: Actor,
    settings: GraphSettings,
    *,
    secret: str | None,
    show: Callable[[str], None],
) -> LoginResult:
    """Sign in right away (a failed sign-in stores nothing), then keep the connection."""
    require(actor, Permission.SETTINGS)
    thumbprint = ""
    if settings.auth is AuthKind.CERTIFICATE:
        thumbprint = certificate_thumbprint(secret or "")
    elif settings.auth is AuthKind.CLIENT_SECRET and not (secret and secret.strip()):
        raise InvalidInput("the client secret is empty; paste its Value from the app registration")
    tokens = TokenSource(settings, secret=secret)
    if settings.auth is AuthKind.DEVICE_CODE:
        tokens.device_code_sign_in(show)
    else:
        tokens.token()
    who = tokens.who()
    granted = tokens.permissions()
    save_connection(
        vault, actor, settings, secret=secret, cache_text=tokens.cache_text(), signed_in_as=who
    )
    missing = tuple(p for p in ops.NEEDED if not ops.covered(p, granted))
    return LoginResult(who, granted, missing, thumbprint)


@dataclass(frozen=True)
class StatusReport:
    signed_in_as: str
    auth: str
    tenant: str
    graph_url: str
    policy_state: str  # enabled | disabled | unknown
    policy_problem: str  # why the state is unknown
    permissions: frozenset[str]
    missing: tuple[str, ...]
    permissions_known: bool


def status(session: EntraSession) -> StatusReport:
    settings = session.settings
    claims = session.tokens.claims()
    granted = session.tokens.permissions()
    known = "roles" in claims or "scp" in claims
    policy_problem = ""
    try:
        state = session.api.policy_state()
    except GraphError as error:
        state, policy_problem = "unknown", error.message
    missing = tuple(p for p in ops.NEEDED if known and not ops.covered(p, granted))
    return StatusReport(
        session.tokens.who(),
        settings.auth.value,
        settings.tenant_id,
        settings.graph_url,
        state,
        policy_problem,
        granted,
        missing,
        known,
    )


def enable_hardware_oath(session: EntraSession) -> str:
    """PATCH the method policy to enabled; returns the state read back."""
    session.api.enable_policy()
    return session.api.policy_state()


def mfa_state(session: EntraSession, upn: str, new_state: str | None = None) -> str:
    upn = validate_upn(upn)
    if new_state is not None:
        if new_state not in MFA_STATES:
            raise InvalidInput(f"per-user MFA state is one of {', '.join(MFA_STATES)}")
        session.api.set_mfa_state(upn, new_state)
    return session.api.mfa_state(upn)


def default_method(session: EntraSession, upn: str, method: str) -> None:
    upn = validate_upn(upn)
    if method not in PREFERRED_METHODS:
        raise InvalidInput("the default method oathdesk sets is 'oath' (the hardware token)")
    session.api.set_preferred_method(upn, method)


def _one_device(session: EntraSession, serial: str, *, assigned: bool) -> Device:
    """The device with ``serial`` to act on. Entra may hold a serial more than once (a spare
    beside the user's token): only one of them can be assigned (``assigned``) or the one spare
    to delete, so pick that one; ask a person only when several fit."""
    found = session.api.device_by_serial(serial)
    if not found:
        raise NotFound(f"no token with serial {serial} in Entra's inventory")
    if len(found) == 1:
        return found[0]
    fitting = [d for d in found if bool(d.assigned_to) == assigned] or found
    if len(fitting) > 1:
        listed = "; ".join(f"{d.id} ({d.status})" for d in fitting)
        raise Conflict(
            f"serial {serial} is in Entra's inventory {len(found)} times ({listed}); remove the "
            "duplicates in the Entra admin center first"
        )
    return fitting[0]


def unassign(session: EntraSession, serial: str) -> Device:
    """Take a token away from its user in Entra (it returns to 'available')."""
    device = _one_device(session, serial, assigned=True)
    if not device.assigned_to:
        raise Conflict(f"token {serial} is not assigned to anyone in Entra; nothing to unassign")
    session.api.unassign(device.assigned_to, device.id, serial=serial)
    return device


def delete(session: EntraSession, serial: str) -> Device:
    """Delete a token from Entra's inventory; only an unassigned one can go."""
    device = _one_device(session, serial, assigned=False)
    if device.assigned_to:
        owner = device.assigned_name or device.assigned_to
        raise Conflict(
            f"token {serial} is still assigned to {owner} in Entra; run "
            f"`oathdesk entra unassign {serial}` first"
        )
    session.api.delete_device(device.id, serial=serial)
    entry = journal(session.vault, [serial]).get(serial)
    if entry is None or entry.device_id in (None, device.id):  # not when a spare went
        with session.vault.transaction() as conn:
            forget_journal(conn, serial)
    return device
