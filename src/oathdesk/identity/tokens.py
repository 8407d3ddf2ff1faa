"""Checking an Entra ID token ourselves, and reading who it names and which role it grants.

msal no longer validates ID tokens (its issue #911, from 1.38): it checks only the state and
the nonce of the flow. So every check that makes a sign-in trustworthy is here, with PyJWT:
the signature (RS256 only, a key of the tenant's JWKS), the issuer (the discovery issuer filled
from ``tid``, and ``tid`` pinned to the configured tenant), the audience (our client id), the
nonce (this flow's, so a token cannot be replayed into another sign-in), and the times.

The REST API's Entra access tokens (``check_access_token``) go through the same signature,
issuer, tenant and time checks; they differ in their audience (the API's), in having no nonce,
and in naming an app (client credentials), not a person.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jwt

from oathdesk.identity.errors import AccessTokenRefused, SsoRefused
from oathdesk.identity.settings import APP_ROLES, SsoSettings, is_guid

LEEWAY_SECONDS = 120  # clocks differ a little; Microsoft's own libraries allowed as much
ALGORITHM = "RS256"  # what Entra signs with; never "none", never an HMAC with a public key
REQUIRED = ("iss", "aud", "exp", "iat", "tid", "oid", "nonce")
# An app-only access token (client credentials) names the app by azp and its service principal
# by oid; ver 2.0 only (v1 tokens carry another issuer, https://sts.windows.net/{tid}/).
ACCESS_REQUIRED = ("iss", "aud", "exp", "iat", "tid", "oid", "azp", "ver")
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
    # When the person last entered their credentials at Entra (epoch seconds), if the token says:
    # an approval needs a fresh sign-in and checks it itself (check_recent_sign_in).
    auth_time: float | None = None


@dataclass(frozen=True)
class AppClaims:
    """An automation app calling the REST API: its service principal (``tid`` + ``oid``) and
    its application id (``azp``), and the oathdesk role its app roles grant."""

    tid: str
    oid: str
    azp: str
    app_roles: frozenset[str]
    role: str


@dataclass(frozen=True)
class _Kind:
    """Which token is checked: its refusals name it and start the way its caller expects."""

    noun: str
    prefix: str
    error: type[SsoRefused]

    def refused(self, reason: str, what: str) -> SsoRefused:
        return self.error(reason, f"{self.prefix}: {what}")


_ID_TOKEN = _Kind("the ID token", "Microsoft sign-in refused", SsoRefused)
_ACCESS_TOKEN = _Kind("the access token", "Entra access token refused", AccessTokenRefused)


def _refused(reason: str, what: str) -> SsoRefused:
    return _ID_TOKEN.refused(reason, what)


def _verified(
    raw: str, kind: _Kind, *, keys: KeySource, audience: str, required: Sequence[str]
) -> dict[str, Any]:
    """The claims of a token whose RS256 signature verifies with a key of the tenant's JWKS
    and whose ``aud`` is ``audience``; the other checks are the caller's."""
    noun = kind.noun
    try:
        header = jwt.get_unverified_header(raw)
    except jwt.PyJWTError:
        raise kind.refused("malformed", f"{noun} cannot be read; try again") from None
    if header.get("alg") != ALGORITHM:
        raise kind.refused("algorithm", f"{noun} is not signed with {ALGORITHM}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise kind.refused("unknown_key", f"{noun} does not name its signing key")
    try:
        key = keys.key_for(kid)
    except SsoRefused as unknown:
        raise kind.refused(
            unknown.reason,
            f"{noun} was signed with a key the tenant does not publish; try again, and tell "
            "an admin if it persists",
        ) from None
    try:
        claims: dict[str, Any] = jwt.decode(
            raw,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            # The times are checked below against ``now`` (the caller's clock, testable).
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "require": list(required),
            },
        )
    except jwt.InvalidSignatureError:
        raise kind.refused("signature", f"{noun}'s signature does not verify") from None
    except jwt.InvalidAudienceError:
        if kind is _ACCESS_TOKEN:
            # PyJWT checks the signature before the claims, so these claims are signed ones.
            _check_version(jwt.decode(raw, options={"verify_signature": False}))
        what = "application" if kind is _ID_TOKEN else "API"
        raise kind.refused(
            "audience",
            f"{noun} is for another {what}; check the client id (`oathdesk sso show`)",
        ) from None
    except jwt.MissingRequiredClaimError as missing:
        raise kind.refused("claims", f"{noun} lacks the {missing.claim!r} claim") from None
    except jwt.PyJWTError:
        raise kind.refused("malformed", f"{noun} cannot be read; try again") from None
    return claims


def _check_tenant_and_issuer(
    claims: Mapping[str, Any], kind: _Kind, tenant: str, issuer_template: str
) -> str:
    """The token's tenant, once it is ours and the issuer is the tenant's own."""
    tid = str(claims["tid"]).lower()
    if tid != tenant:
        what = (
            "the account belongs to another Entra tenant; sign in with your work account"
            if kind is _ID_TOKEN
            else "the app belongs to another Entra tenant"
        )
        raise kind.refused("tenant", what)
    if claims["iss"] != issuer_template.replace("{tenantid}", str(claims["tid"])):
        extra = "" if kind is _ID_TOKEN else " (only v2.0 tokens: see docs/sso.md)"
        raise kind.refused("issuer", f"{kind.noun} comes from an unexpected issuer{extra}")
    return tid


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
    claims = _verified(raw, _ID_TOKEN, keys=keys, audience=settings.client_id, required=REQUIRED)
    return _checked(claims, settings, issuer_template, expected_nonce, now)


def _checked(
    claims: Mapping[str, Any],
    settings: SsoSettings,
    issuer_template: str,
    expected_nonce: str,
    now: float,
) -> IdentityClaims:
    tid = _check_tenant_and_issuer(claims, _ID_TOKEN, settings.tenant, issuer_template)
    nonce = claims["nonce"]
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce, expected_nonce):
        raise _refused("nonce", "the ID token belongs to another sign-in; start again")
    _check_times(claims, now, _ID_TOKEN)
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
        auth_time=_auth_time(claims.get("auth_time")),
    )


def _auth_time(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def check_recent_sign_in(
    claims: IdentityClaims, *, max_age: int, now: float, skew: int = LEEWAY_SECONDS
) -> None:
    """The person entered their credentials at Entra within ``max_age`` seconds. ``prompt=login``
    and ``max_age`` ask Entra for that, but they travel through the browser, which can drop
    them; the token's ``auth_time`` is what Entra signed, so it is what counts."""
    if claims.auth_time is None:
        raise _refused(
            "auth_time",
            "the ID token does not say when you signed in (auth_time); an admin adds the "
            "auth_time optional claim to the app registration (docs/sso.md)",
        )
    if claims.auth_time < now - max_age - skew or claims.auth_time > now + skew:
        raise _refused(
            "auth_time",
            f"the approval needs a sign-in made within the last {max_age // 60} minutes; "
            "approve again and enter your Microsoft password",
        )


def _check_times(claims: Mapping[str, Any], now: float, kind: _Kind) -> None:
    try:
        exp, iat = float(claims["exp"]), float(claims["iat"])
        nbf = float(claims.get("nbf", iat))
    except (TypeError, ValueError):
        raise kind.refused("claims", f"{kind.noun}'s times cannot be read") from None
    if exp <= now - LEEWAY_SECONDS:
        again = "sign in again" if kind is _ID_TOKEN else "request a new one"
        raise kind.refused("expired", f"{kind.noun} has expired; {again}")
    if nbf > now + LEEWAY_SECONDS or iat > now + LEEWAY_SECONDS:
        raise kind.refused(
            "not_yet_valid", f"{kind.noun} is not valid yet; check this server's clock"
        )


def _check_version(claims: Mapping[str, Any]) -> None:
    """v2.0 only: a v1 token has another issuer (sts.windows.net) and audience (the App ID URI);
    the API app's manifest decides which one Entra issues."""
    if str(claims.get("ver")) != "2.0":
        raise _ACCESS_TOKEN.refused(
            "version",
            "the access token is not a v2.0 token; set requestedAccessTokenVersion to 2 in the "
            "manifest of oathdesk's app registration (docs/sso.md)",
        )


def check_access_token(
    raw: str,
    *,
    tenant: str,
    audience: str,
    keys: KeySource,
    issuer_template: str,
    now: float,
) -> AppClaims:
    """An app-only Entra v2.0 access token for the API (``audience``) of our tenant, checked like
    an ID token (signature, issuer, tenant, times), with an oathdesk app role;
    ``AccessTokenRefused`` (401 at the API) otherwise."""
    kind = _ACCESS_TOKEN
    claims = _verified(raw, kind, keys=keys, audience=audience, required=ACCESS_REQUIRED)
    _check_version(claims)
    tid = _check_tenant_and_issuer(claims, kind, tenant, issuer_template)
    _check_times(claims, now, kind)
    # A person's delegated token (scp, idtyp user) must not act as an app: the API is for
    # automation apps; people use the console.
    if "scp" in claims or claims.get("idtyp", "app") != "app":
        raise kind.refused(
            "delegated",
            "the access token was issued to a person, not an app; use a client-credentials "
            "token of an automation app",
        )
    oid, azp = str(claims["oid"]).lower(), str(claims["azp"]).lower()
    if not is_guid(oid) or not is_guid(azp):
        raise kind.refused("claims", "the access token's oid or azp is not a GUID")
    app_roles = _strings(claims.get("roles"))
    granted = {APP_ROLES[value] for value in app_roles if value in APP_ROLES}
    role = next((role for role in _RANK if role in granted), None)
    if role is None:
        refused = kind.refused(
            "no_role",
            "the app has no oathdesk role; grant it the oathdesk.helpdesk, oathdesk.admin or "
            "oathdesk.auditor application permission in Entra and admin-consent it",
        )
        refused.tid, refused.oid = tid, oid
        if isinstance(refused, AccessTokenRefused):
            refused.azp = azp
        raise refused
    return AppClaims(tid=tid, oid=oid, azp=azp, app_roles=frozenset(app_roles), role=role)


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
