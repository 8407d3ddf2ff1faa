"""The token lifecycle: which state may follow which, and the message when a move is illegal.

in_stock -> assigned -> burned (programmable only) -> registered -> shipped -> delivered
-> secret_purged; lost, revoked and retired end a token's working life from most states.
A stock token may also go straight to registered without a user (`entra push --stock`: Entra
holds it for a user to self-assign); `entra sync` then gives it the user Entra names.
"""

from __future__ import annotations

from enum import StrEnum

from oathdesk.errors import Conflict


class TokenState(StrEnum):
    IN_STOCK = "in_stock"
    ASSIGNED = "assigned"
    BURNED = "burned"
    REGISTERED = "registered"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    SECRET_PURGED = "secret_purged"  # noqa: S105 (a state name, not a password)
    LOST = "lost"
    REVOKED = "revoked"
    RETIRED = "retired"


class TokenKind(StrEnum):
    PROGRAMMABLE = "programmable"
    CLASSIC = "classic"


S = TokenState
_ACTIVE = (S.IN_STOCK, S.ASSIGNED, S.BURNED, S.REGISTERED, S.SHIPPED, S.DELIVERED)

TRANSITIONS: dict[TokenState, tuple[TokenState, ...]] = {
    S.IN_STOCK: (S.ASSIGNED, S.REGISTERED, S.LOST, S.RETIRED),
    S.ASSIGNED: (S.BURNED, S.REGISTERED, S.LOST, S.REVOKED, S.RETIRED),
    S.BURNED: (S.REGISTERED, S.LOST, S.REVOKED, S.RETIRED),
    S.REGISTERED: (S.SHIPPED, S.DELIVERED, S.LOST, S.REVOKED, S.RETIRED),
    S.SHIPPED: (S.DELIVERED, S.LOST, S.REVOKED, S.RETIRED),
    S.DELIVERED: (S.SECRET_PURGED, S.LOST, S.REVOKED, S.RETIRED),
    S.SECRET_PURGED: (S.LOST, S.REVOKED, S.RETIRED),
    S.LOST: (S.RETIRED,),
    S.REVOKED: (S.RETIRED,),
    S.RETIRED: (),
}

# States in which the vault may still hold the seed; reveal and burn need one of these.
SECRET_STATES = frozenset(_ACTIVE)
# Entering one of these ends the token's working life; its seed is erased on the way.
CLOSING = frozenset((S.LOST, S.REVOKED, S.RETIRED))
# The user is waiting for these tokens (the undelivered warning chases them).
WAITING = (S.ASSIGNED, S.BURNED, S.REGISTERED, S.SHIPPED)
# Tokens a user holds or is about to hold: they count against the per-user limit (Entra's 5).
HELD = (S.ASSIGNED, S.BURNED, S.REGISTERED, S.SHIPPED, S.DELIVERED, S.SECRET_PURGED)
# The token column stamped with the time a state is entered.
STAMP_COLUMN: dict[TokenState, str] = {
    S.ASSIGNED: "assigned_at",
    S.BURNED: "burned_at",
    S.REGISTERED: "registered_at",
    S.SHIPPED: "shipped_at",
    S.DELIVERED: "delivered_at",
    S.SECRET_PURGED: "purged_at",
    S.LOST: "closed_at",
    S.REVOKED: "closed_at",
    S.RETIRED: "closed_at",
}
# States from which a programmable token may be given to another user with a new seed.
REASSIGNABLE = frozenset(
    (S.ASSIGNED, S.BURNED, S.REGISTERED, S.SHIPPED, S.DELIVERED, S.SECRET_PURGED)
)


def check_transition(serial: str, kind: TokenKind, current: TokenState, target: TokenState) -> None:
    """Raise Conflict, naming the allowed next steps, unless current -> target is legal."""
    allowed = TRANSITIONS[current]
    if target == S.BURNED and kind is TokenKind.CLASSIC:
        raise Conflict(
            f"token {serial} is a classic token with a factory seed; it cannot be burned"
        )
    if target in allowed:
        return
    options = [
        state.value for state in allowed if not (state == S.BURNED and kind is TokenKind.CLASSIC)
    ]
    hint = f"next it can be: {', '.join(options)}" if options else "it is retired for good"
    raise Conflict(f"token {serial} is {current.value}, so it cannot become {target.value}; {hint}")
