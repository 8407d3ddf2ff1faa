"""/settings (admin): acceptance profile, retention, reveal limits, four-eyes rule.

Values are parsed and range-checked by ``services.settings_input`` and saved in one audited
change by ``Vault.update_settings``; a bad value refuses the whole form and says why, field by
field, keeping what was typed.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from oathdesk.errors import OathdeskError
from oathdesk.services.settings_input import (
    LABELS,
    PROFILE_CHOICES,
    RANGES,
    SettingsRefused,
    change_settings,
)
from oathdesk.vault.vault import Actor, Vault
from oathdesk.web.deps import flash, render, verify_csrf
from oathdesk.web.pages.helpdesk_common import AdminDep, VaultDep, form_text, status_for

router = APIRouter()


def _page(
    request: Request,
    values: dict[str, Any],
    *,
    problems: dict[str, str] | None = None,
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "settings.html",
        {
            "values": values,
            "problems": problems or {},
            "error": error,
            "labels": LABELS,
            "profiles": PROFILE_CHOICES,
            "ranges": RANGES,
        },
        status_code=status_code,
    )


@router.get("/settings", response_class=HTMLResponse)
def settings_page(
    request: Request,
    vault: VaultDep,
    actor: AdminDep,
) -> HTMLResponse:
    return _page(request, asdict(vault.settings()))


def _save(request: Request, vault: Vault, actor: Actor, fields: dict[str, str]) -> Response:
    try:
        change = change_settings(vault, actor, fields)
    except SettingsRefused as refused:
        return _page(
            request, dict(fields), problems=refused.problems, error=refused.message, status_code=400
        )
    except OathdeskError as refused:
        return _page(request, dict(fields), error=refused.message, status_code=status_for(refused))
    if change.changed:
        named = ", ".join(f"{name} = {value}" for name, value in change.changed.items())
        flash(request, f"settings saved: {named}", "success")
    else:
        flash(request, "nothing changed", "info")
    return RedirectResponse("/settings", status_code=303)


@router.post("/settings", dependencies=[Depends(verify_csrf)])
async def settings_post(
    request: Request,
    vault: VaultDep,
    actor: AdminDep,
) -> Response:
    fields = await form_text(request)
    fields.pop("csrf_token", None)
    return await run_in_threadpool(_save, request, vault, actor, fields)
