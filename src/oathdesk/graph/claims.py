"""What an access token says about itself: who, which app, which permissions. Pure.

The token is read, not verified: it came straight from the identity platform over TLS, and
oathdesk only uses it to tell the operator what was granted (Graph enforces the rest).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def token_claims(access_token: str) -> dict[str, Any]:
    """The JWT payload, or {} when the token is not a readable JWT."""
    parts = access_token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def granted_permissions(claims: dict[str, Any]) -> frozenset[str]:
    """Application permissions (``roles``) or delegated ones (``scp``, space-separated)."""
    roles = claims.get("roles")
    found: set[str] = set()
    if isinstance(roles, list):
        found.update(str(role) for role in roles)
    scopes = claims.get("scp")
    if isinstance(scopes, str):
        found.update(scopes.split())
    return frozenset(found)


def signed_in_as(claims: dict[str, Any], fallback: str) -> str:
    """A readable name for whoever the token speaks for."""
    for key in ("upn", "preferred_username", "unique_name"):
        value = claims.get(key)
        if isinstance(value, str) and value:
            return value
    name = claims.get("app_displayname")
    if isinstance(name, str) and name:
        return f"app {name}"
    app = claims.get("appid") or claims.get("azp")
    return f"app {app}" if isinstance(app, str) and app else fallback
