"""Checking an Entra ID token ourselves, and reading who it names and which role it grants.

msal no longer validates ID tokens (its issue #911, from 1.38): it checks only the state and
the nonce of the flow. So every check that makes a sign-in trustworthy is here, with PyJWT:
the signature (RS256 only, a key of the tenant's JWKS), the issuer (the discovery issuer filled
from ``tid``, and ``tid`` pinned to the configured tenant), the audience (our client id), the
nonce (this flow's, so a token cannot be replayed into another sign-in), and the times.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jwt

from oathdesk.identity.errors import SsoRefused
from oathdesk.identity.settings import APP_ROLES, SsoSettings, is_guid

LEEWAY_SECONDS = 120  # clocks differ a little; Microsoft's own libraries allowed as much
ALGORITHM = "RS256"  # what Entra signs with; never "none", never an HMAC with a public key
REQUIRED = ("iss", "aud", "exp", "iat", "tid", "oid", "nonce")
# The strongest role wins when several are assigned.
_RANK = ("admin", "helpdesk", "auditor")


class KeySource(Protocol):
    def key_for(self, kid: str) -> Any: ...


@dataclass(frozen=True)
class IdentityClaims:
    """Who signed in: keyed by ``tid`` + ``oid``; the UPN and name are for people to read."""

    tid: str
    oid: str
    upn: str
    name: str
    app_roles: frozenset[str]
    role: str  # the oathdesk role granted: admin, helpdesk or auditor


def _refused(reason: str, what: str) -> SsoRefused:
    return SsoRefused(reason, f"Microsoft sign-in refused: {what}")


def check_id_token(
    raw: str,
    *,
    settings: SsoSettings,
    keys: KeySource,
    issuer_template: str,
    expected_nonce: str,
    now: float,
) -> IdentityClaims:
    """The ID token's claims once every check passed; ``SsoRefused`` (with a reason) otherwise."""
    try:
        header = jwt.get_unverified_header(raw)
    except jwt.PyJWTError:
        raise _refused("malformed", "the ID token cannot be read; try again") from None
    if header.get("alg") != ALGORITHM:
        raise _refused("algorithm", f"the ID token is not signed with {ALGORITHM}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _refused("unknown_key", "the ID token does not name its signing key")
    key = keys.key_for(kid)
    try:
        claims: dict[str, Any] = jwt.decode(
            raw,
            key,
            algorithms=[ALGORITHM],
            audience=settings.client_id,
            # The times are checked below against ``now`` (the caller's clock, testable).
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "require": list(REQUIRED),
            },
        )
    except jwt.InvalidSignatureError:
        raise _refused("signature", "the ID token's signature does not verify") from None
    except jwt.InvalidAudienceError:
        raise _refused(
            "audience",
            "the ID token is for another application; check the client id (`oathdesk sso show`)",
        ) from None
    except jwt.MissingRequiredClaimError as missing:
        raise _refused("claims", f"the ID token lacks the {missing.claim!r} claim") from None
    except jwt.PyJWTError:
        raise _refused("malformed", "the ID token cannot be read; try again") from None
    return _checked(claims, settings, issuer_template, expected_nonce, now)


def _checked(
    claims: Mapping[str, Any],
    settings: SsoSettings,
    issuer_template: str,
    expected_nonce: str,
    now: float,
) -> IdentityClaims:
    tid = str(claims["tid"]).lower()
    if tid != settings.tenant:
        raise _refused(
            "tenant", "the account belongs to another Entra tenant; sign in with your work account"
        )
    if claims["iss"] != issuer_template.replace("{tenantid}", str(claims["tid"])):
        raise _refused("issuer", "the ID token comes from an unexpected issuer")
    nonce = claims["nonce"]
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce, expected_nonce):
        raise _refused("nonce", "the ID token belongs to another sign-in; start again")
    _check_times(claims, now)
    oid = str(claims["oid"]).lower()
    if not is_guid(oid):
        raise _refused("claims", "the ID token's object id (oid) is not a GUID")
    app_roles = _strings(claims.get("roles"))
    try:
        role = _role(app_roles, claims, settings.group_roles)
    except SsoRefused as refused:
        refused.tid, refused.oid = tid, oid
        raise
    upn = str(claims.get("preferred_username") or claims.get("upn") or oid)
    return IdentityClaims(
        tid=tid,
        oid=oid,
        upn=upn[:128],
        name=str(claims.get("name") or upn)[:256],
        app_roles=frozenset(app_roles),
        role=role,
    )


def _check_times(claims: Mapping[str, Any], now: float) -> None:
    try:
        exp, iat = float(claims["exp"]), float(claims["iat"])
        nbf = float(claims.get("nbf", iat))
    except (TypeError, ValueError):
        raise _refused("claims", "the ID token's times cannot be read") from None
    if exp <= now - LEEWAY_SECONDS:
        raise _refused("expired", "the ID token has expired; sign in again")
    if nbf > now + LEEWAY_SECONDS or iat > now + LEEWAY_SECONDS:
        raise _refused("not_yet_valid", "the ID token is not valid yet; check this server's clock")


def _strings(value: object) -> list[str]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [item for item in value if isinstance(item, str)]
    return []


def _role(app_roles: list[str], claims: Mapping[str, Any], group_roles: Mapping[str, str]) -> str:
    granted = {APP_ROLES[value] for value in app_roles if value in APP_ROLES}
    if group_roles:
        names = claims.get("_claim_names")
        overage = isinstance(names, Mapping) and "groups" in names
        if overage and not granted:
            # Over 200 groups Entra sends a pointer instead of the list. Following it needs a
            # Graph permission beyond `openid profile`; app roles need none, so we refuse.
            raise _refused(
                "groups_overage",
                "your account is in too many groups for a group mapping; ask an admin to "
                "assign you an oathdesk app role in Entra instead",
            )
        groups = {group.lower() for group in _strings(claims.get("groups"))}
        granted |= {role for group, role in group_roles.items() if group.lower() in groups}
    for role in _RANK:
        if role in granted:
            return role
    raise _refused(
        "no_role",
        "your account has no oathdesk role; ask an admin to assign you oathdesk.helpdesk, "
        "oathdesk.admin or oathdesk.auditor in Entra",
    )
