"""What the sign-in pages share: the sign-in page itself, and the throttle a Microsoft sign-in
and a Microsoft approval (approvals.py) go through, since both are answers from Entra at the
shared redirect URL.

Not a page module (it has no router); auth.py and approvals.py import it.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from fastapi.responses import Response

from oathdesk.services import sso
from oathdesk.vault.console import audit_signin_throttled
from oathdesk.vault.operators import ANONYMOUS
from oathdesk.web.deps import get_alerts, get_config, get_vault, render
from oathdesk.web.security import (
    SignInThrottled,
    check_signin_rate,
    client_ip,
    note_signin_failure,
)


def signin_page(
    request: Request,
    *,
    error: str = "",
    name: str = "",
    next_path: str = "/",
    status: int = 200,
    retry_at: datetime | None = None,
) -> Response:
    """/signin as a page: first shown, or again with a refusal's one line and its status."""
    vault = get_vault(request)
    context = {
        "error": error,
        "retry_at": retry_at,
        "name": name,
        "next_path": next_path,
        "sso": sso.enabled_settings(vault) is not None,
        "local_policy": sso.local_policy(vault).value,
    }
    return render(request, "signin.html", context, status_code=status)


def sso_throttled(request: Request) -> Response | None:
    """The sign-in page (429) when this address failed too often: refused Microsoft sign-ins
    count in the same throttle as local ones, or forged callbacks would be free to try."""
    vault, config = get_vault(request), get_config(request)
    try:
        check_signin_rate(vault, config, client_ip(request, config), "")
    except SignInThrottled as throttled:
        return signin_page(request, error=throttled.message, status=429)
    return None


def note_sso_failure(request: Request) -> None:
    """Count a refused Microsoft sign-in or approval against this address; the failure that
    starts a throttle is audited and alerted, as a local sign-in's is."""
    vault, config = get_vault(request), get_config(request)
    ip = client_ip(request, config)
    if note_signin_failure(vault, config, ip, ""):
        audit_signin_throttled(vault, ANONYMOUS, ip=ip, name="")
        get_alerts(request).emit("console.signin_throttled", client=ip, operator="")
