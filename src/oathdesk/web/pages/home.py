"""The start page: a search box, how many tokens are in each state, and tokens to chase."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from oathdesk.vault.console import token_state_counts, undelivered_tokens
from oathdesk.vault.housekeeping import COUNTED_UP_TO
from oathdesk.vault.lifecycle import TokenState
from oathdesk.vault.models import Actor, Token
from oathdesk.vault.roles import Permission, allowed
from oathdesk.web.deps import current_actor, get_vault, render

router = APIRouter()

SHOWN_UNDELIVERED = 20


@router.get("/")
def home(request: Request, actor: Actor = Depends(current_actor)) -> Response:  # noqa: B008
    vault = get_vault(request)
    can_look_up = allowed(actor.role, Permission.LOOK_UP)
    counts: list[tuple[str, int]] = []
    late: list[Token] = []
    late_total = warning_days = 0
    if can_look_up:
        stored = token_state_counts(vault)
        counts = [(state.value, stored.get(state.value, 0)) for state in TokenState]
        warning_days = vault.settings().undelivered_warning_days
        late, late_total = undelivered_tokens(
            vault, limit=SHOWN_UNDELIVERED, warning_days=warning_days
        )
    return render(
        request,
        "home.html",
        {
            "can_look_up": can_look_up,
            "can_read_audit": allowed(actor.role, Permission.READ_AUDIT),
            "counts": counts,
            "total": sum(count for _, count in counts),
            "late": late,
            "late_total": late_total,
            "warning_days": warning_days,
            "counted_up_to": COUNTED_UP_TO,
        },
    )
