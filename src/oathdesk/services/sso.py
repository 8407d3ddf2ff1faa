"""Sign-in with Entra ID, orchestrated: the settings (vault) turned into the identity adapter's
provider, a sign-in started and finished, the operator created or refreshed, every outcome
audited. The web layer only sets the flow cookie, redirects and starts the session.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from oathdesk.errors import InvalidInput, NotFound
from oathdesk.graph.auth import split_certificate_pem
from oathdesk.identity.discovery import fetch_discovery
from oathdesk.identity.errors import AccessTokenRefused, SsoRefused
from oathdesk.identity.flow import Provider
from oathdesk.identity.settings import CredentialKind, LocalSignIn, SsoSettings
from oathdesk.identity.tokens import AppClaims, IdentityClaims
from oathdesk.vault import sso as stored
from oathdesk.vault.models import Actor
from oathdesk.vault.operators import OperatorDirectory
from oathdesk.vault.vault import Vault

APP_PREFIX = "app:"  # the audit actor of an automation app: app:<its application id (azp)>
API_TOKENS_OFF = (
    "Entra access token refused: this oathdesk accepts API keys only; an admin turns Entra "
    "access tokens on with `oathdesk sso api-audience CLIENT-ID`"
)
NO_FLOW = (
    "Microsoft sign-in refused: this browser has no sign-in in progress (it expired after "
    "10 minutes, or was already used); start again"
)

_providers: dict[tuple[object, ...], Provider] = {}
_providers_lock = threading.Lock()


@dataclass(frozen=True)
class Started:
    cookie: str  # the random value the browser keeps (a flow cookie); only its hash is stored
    auth_uri: str  # where the browser goes now


def settings_of(row: stored.StoredSso) -> SsoSettings:
    return SsoSettings(
        tenant_id=row.tenant_id,
        client_id=row.client_id,
        credential=CredentialKind(row.credential_kind),
        redirect_url=row.redirect_url,
        authority_host=row.authority_host,
        ca_bundle=row.ca_bundle,
        group_roles=dict(row.group_roles),
    )


def enabled_settings(vault: Vault) -> stored.StoredSso | None:
    row = stored.load_settings(vault)
    return row if row is not None and row.enabled else None


def local_policy(vault: Vault) -> LocalSignIn:
    return LocalSignIn(stored.local_sign_in_policy(vault))


def configure(
    vault: Vault,
    actor: Actor,
    settings: SsoSettings,
    *,
    credential: str,
    api_audience: str | None = None,
) -> str:
    """Check the settings against the tenant (its OpenID configuration must answer) and store
    them, enabled; returns the issuer the tenant's ID tokens will carry. The credential itself
    can only be proved by a sign-in: Entra checks it when a code is redeemed. ``api_audience``
    (a client id) lets the REST API accept Entra access tokens; None keeps what was stored."""
    if settings.credential is CredentialKind.CERTIFICATE:
        split_certificate_pem(credential)  # one clear line now rather than at the first sign-in
    elif not credential.strip():
        raise InvalidInput("the client secret is empty; copy its Value from Certificates & secrets")
    issuer = fetch_discovery(settings).issuer_for(settings.tenant)
    stored.save_settings(
        vault,
        actor,
        {
            "tenant_id": settings.tenant,
            "client_id": settings.client_id.lower(),
            "credential_kind": settings.credential.value,
            "redirect_url": settings.redirect_url,
            "authority_host": settings.authority_host,
            "ca_bundle": settings.ca_bundle,
            "group_roles": dict(settings.group_roles),
            **({"api_audience": api_audience} if api_audience else {}),
        },
        credential=credential.strip(),
    )
    return issuer


def provider_for(row: stored.StoredSso) -> Provider:
    """One provider per stored configuration, so discovery and keys stay cached between
    sign-ins; a new configuration (or credential) makes a new one."""
    settings = settings_of(row)
    key = (
        settings.tenant,
        settings.client_id,
        settings.credential,
        settings.redirect_url,
        settings.authority_host,
        settings.ca_bundle,
        tuple(sorted(settings.group_roles.items())),
        hashlib.sha256(row.credential.encode()).hexdigest(),
    )
    with _providers_lock:
        if key not in _providers:
            _providers.clear()  # one configuration at a time: the old one's cache is dead weight
            _providers[key] = Provider(settings, row.credential)
        return _providers[key]


def flow_hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def start_sign_in(vault: Vault, next_path: str) -> Started:
    row = enabled_settings(vault)
    if row is None:
        raise NotFound(stored.NOT_CONFIGURED)
    flow = provider_for(row).start()
    cookie = secrets.token_urlsafe(32)
    stored.put_flow(vault, flow_hash(cookie), flow, next_path)
    return Started(cookie, str(flow["auth_uri"]))


def finish_sign_in(
    vault: Vault, cookie: str, params: Mapping[str, str], *, client: str
) -> tuple[Actor, str]:
    """The signed-in operator and where to go next; ``SsoRefused`` (audited) otherwise."""
    directory = OperatorDirectory(vault)
    row = enabled_settings(vault)
    taken = stored.take_flow(vault, flow_hash(cookie)) if cookie else None
    with refusals_audited(directory, client=client):
        if row is None:
            raise SsoRefused(
                "not_configured", f"Microsoft sign-in refused: {stored.NOT_CONFIGURED}"
            )
        if taken is None:
            raise SsoRefused("no_flow", NO_FLOW)
        flow, next_path = taken
        claims = provider_for(row).finish(flow, params)
    return sign_in_from_claims(directory, claims, client=client), next_path


@contextmanager
def refusals_audited(directory: OperatorDirectory, *, client: str) -> Iterator[None]:
    """Audit an ``SsoRefused`` raised inside (``operator.sso_refused``: the reason, the client's
    address, and the oid and tid when the token was good enough to say) and raise it on. A
    sign-in and an approval (services/sso_approval.py) record their refusals through this, so
    the two read alike in the audit log."""
    try:
        yield
    except SsoRefused as refused:
        directory.refuse_sso(reason=refused.reason, client=client, oid=refused.oid, tid=refused.tid)
        raise


def sign_in_from_claims(
    directory: OperatorDirectory, claims: IdentityClaims, *, client: str
) -> Actor:
    """The operator checked ID-token claims name, created or refreshed by (tid, oid): the role
    re-read, a disabled or name-clashing account refused (``SignInRefused``, audited there).
    An approval's fresh sign-in goes through this too: an approval is a sign-in."""
    return directory.sign_in_sso(
        tid=claims.tid,
        oid=claims.oid,
        upn=claims.upn,
        display_name=claims.name,
        role=claims.role,
        app_roles=claims.app_roles,
        client=client,
    )


def authenticate_app(vault: Vault, raw: str) -> tuple[Actor, AppClaims]:
    """The automation app an Entra access token names, acting as ``app:<azp>`` with the role of
    its app role; ``AccessTokenRefused`` otherwise. A refusal is audited when the token proved
    who sent it (its signature verified: an app without a role); tokens that prove nothing are
    not, so noise from the internet cannot fill the audit log."""
    row = enabled_settings(vault)
    if row is None or not row.api_audience:
        raise AccessTokenRefused("api_tokens_off", API_TOKENS_OFF)
    try:
        claims = provider_for(row).check_access_token(raw, audience=row.api_audience)
    except SsoRefused as refused:
        azp = getattr(refused, "azp", "")
        if azp:
            with vault.unit_of_work(Actor(f"{APP_PREFIX}{azp}", "none")) as work:
                work.audit(
                    "api_token.refused",
                    details={"reason": refused.reason, "oid": refused.oid, "tid": refused.tid},
                )
        if isinstance(refused, AccessTokenRefused):
            raise
        raise AccessTokenRefused(refused.reason, refused.message) from None
    return Actor(f"{APP_PREFIX}{claims.azp}", claims.role), claims
