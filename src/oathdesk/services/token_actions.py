"""The lifecycle actions an operator can take on one token, for the consoles.

Which actions to offer is read from the lifecycle table and the role grants (nothing decided
here); doing one calls the same vault operation or service as the CLI's `oathdesk token ...`,
which checks the role and the state again and writes the audit record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from oathdesk.errors import InvalidInput
from oathdesk.seed import generate_secret
from oathdesk.services.token_checks import confirm_delivery, verify_token
from oathdesk.vault.lifecycle import (
    REASSIGNABLE,
    SECRET_STATES,
    TRANSITIONS,
    TokenKind,
    TokenState,
)
from oathdesk.vault.roles import Permission, allowed
from oathdesk.vault.vault import Actor, Token, Vault
from oathdesk.vault.work import SHIPPING_MOVES


@dataclass(frozen=True)
class ActionSpec:
    name: str
    label: str
    target: TokenState | None  # None: a check that moves nothing
    fields: tuple[str, ...] = ()  # form fields it takes
    required: tuple[str, ...] = ()  # ... and those it cannot do without
    destructive: bool = False  # asks for confirmation first

    @property
    def permission(self) -> Permission:
        if self.target is None:
            return Permission.LOOK_UP
        return Permission.SHIP if self.target in SHIPPING_MOVES else Permission.MANAGE_TOKENS


ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec("assign", "Assign to a user", TokenState.ASSIGNED, ("upn",), ("upn",)),
        ActionSpec("burned", "Seed burned onto it", TokenState.BURNED),
        ActionSpec("registered", "Registered in Entra", TokenState.REGISTERED),
        ActionSpec(
            "ship",
            "Shipped",
            TokenState.SHIPPED,
            ("carrier", "tracking"),
            ("carrier", "tracking"),
        ),
        ActionSpec("verify", "Check a code", None, ("code", "next_code"), ("code",)),
        ActionSpec("deliver", "Delivered", TokenState.DELIVERED, ("override_reason",)),
        ActionSpec("lost", "Lost", TokenState.LOST, ("reason",), ("reason",), destructive=True),
        ActionSpec(
            "revoke", "Revoke", TokenState.REVOKED, ("reason",), ("reason",), destructive=True
        ),
        ActionSpec(
            "retire", "Retire", TokenState.RETIRED, ("reason",), ("reason",), destructive=True
        ),
        ActionSpec(
            "purge", "Purge the seed", TokenState.SECRET_PURGED, ("reason",), destructive=True
        ),
        # A programmable token to another user with a new seed, generated here (never shown):
        # burning it then writes that seed onto the token (`oathdesk burn`).
        ActionSpec(
            "reassign",
            "Reassign to another user",
            TokenState.ASSIGNED,
            ("upn",),
            ("upn",),
            destructive=True,
        ),
    )
}

FIELD_LABELS = {
    "upn": "the user's UPN",
    "carrier": "the carrier",
    "tracking": "the tracking reference",
    "code": "the code the user reads off the token",
    "reason": "a reason",
}


def action_spec(name: str) -> ActionSpec:
    spec = ACTIONS.get(name)
    if spec is None:
        raise InvalidInput(f"unknown token action {name!r}; use one of {', '.join(ACTIONS)}")
    return spec


def available_actions(token: Token, role: str) -> list[str]:
    """The actions ``role`` may take on ``token`` in its current state, in lifecycle order."""
    offered = []
    for spec in ACTIONS.values():
        if not allowed(role, spec.permission):
            continue
        if spec.target is None:
            usable = token.has_secret and token.state in SECRET_STATES and token.upn is not None
        elif spec.target is TokenState.BURNED and token.kind is TokenKind.CLASSIC:
            usable = False
        elif spec.name == "reassign":
            usable = token.kind is TokenKind.PROGRAMMABLE and token.state in REASSIGNABLE
        else:
            usable = spec.target in TRANSITIONS[token.state]
        if usable:
            offered.append(spec.name)
    return offered


@dataclass(frozen=True)
class ActionOutcome:
    token: Token
    message: str
    ok: bool = True  # False: done and audited, but the answer is "no" (a code did not match)


def _expected_version(fields: Mapping[str, str]) -> int | None:
    text = fields.get("version", "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise InvalidInput("the form's token version is not a number; reload the page")
    return int(text)


def perform(
    vault: Vault, actor: Actor, serial: str, name: str, fields: Mapping[str, str]
) -> ActionOutcome:
    """Do action ``name`` on token ``serial`` with the operator's form ``fields``."""
    spec = action_spec(name)
    values = {key: fields.get(key, "").strip() for key in spec.fields}
    for key in spec.required:
        if not values[key]:
            raise InvalidInput(f"{spec.label.lower()}: give {FIELD_LABELS.get(key, key)}")
    version = _expected_version(fields)
    if name == "assign":
        token = vault.assign(actor, serial, values["upn"], expected_version=version)
        return ActionOutcome(token, f"token {token.serial} is assigned to {token.upn}")
    if name == "verify":
        return _verify(vault, actor, serial, values["code"], values["next_code"] or None)
    if name == "deliver":
        token = confirm_delivery(
            vault, actor, serial, override_reason=values["override_reason"] or None
        )
        return ActionOutcome(token, f"token {token.serial} is now delivered")
    if name == "reassign":
        # The same vault operation as `oathdesk token reassign --generate` and the API's.
        algorithm = vault.get_token(serial).algorithm.value
        token = vault.reassign(actor, serial, values["upn"], generate_secret(algorithm))
        return ActionOutcome(
            token,
            f"token {token.serial} is reassigned to {token.upn} with a new seed; "
            "its old seed is erased: burn it again before it is sent",
        )
    if name == "purge":
        token = vault.purge(actor, serial, reason=values["reason"] or "delivered and working")
        return ActionOutcome(token, f"the secret of token {token.serial} is erased")
    assert spec.target is not None
    token = vault.move(
        actor,
        serial,
        spec.target,
        details={"reason": values["reason"]} if "reason" in values else None,
        carrier=values.get("carrier") or None,
        tracking=values.get("tracking") or None,
        expected_version=version,
    )
    erased = "; its secret is erased" if spec.destructive else ""
    return ActionOutcome(token, f"token {token.serial} is now {token.state.value}{erased}")


def _verify(
    vault: Vault, actor: Actor, serial: str, code: str, next_code: str | None
) -> ActionOutcome:
    token = vault.get_token(serial)
    if token.upn is None:
        raise InvalidInput(f"token {serial} is not assigned to anyone; assign it first")
    result = verify_token(vault, actor, token.upn, code, next_code, serial=serial)
    found = result.measurement
    if found is None:
        return ActionOutcome(
            result.token,
            f"no match for token {serial} within a day either way: ask the user to read the "
            "code again, or check the token and the user",
            ok=False,
        )
    where = "inside" if result.inside_window else "OUTSIDE"
    return ActionOutcome(
        result.token,
        f"token {serial}: match, drift {found.drift_seconds:+d} s, {where} the "
        f"{result.profile} sign-in window; measurement recorded",
        ok=result.inside_window,
    )
