"""Sign-in with Entra ID as kept in the vault: the app registration (one row, its client secret
or certificate encrypted and bound to the row, the tenant and the app), the break-glass policy
for local sign-in, and the sign-ins in progress.

A sign-in in progress is msal's flow (state, nonce, PKCE verifier), encrypted, found by a hash
of the random value in the browser's flow cookie and taken (deleted) when the browser comes
back, so an answer can be used once, on any instance sharing the vault.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

import sqlalchemy as sa

from oathdesk.errors import InvalidInput, NotFound
from oathdesk.vault.models import Actor, utc_now
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.schema import sso_flows, sso_settings
from oathdesk.vault.vault import Vault

ROW_ID = 1
FLOW_LIFETIME = timedelta(minutes=10)  # time enough to type a password and approve MFA
LOCAL_POLICIES = ("on", "admins-only", "off")
NOT_CONFIGURED = (
    "sign-in with Entra ID is not configured; run `oathdesk sso configure --tenant ID "
    "--client-id ID --client-secret-file FILE --redirect-url URL` first"
)


@dataclass(frozen=True)
class StoredSso:
    """The stored settings, as plain values (the identity adapter builds its types from them)."""

    enabled: bool
    tenant_id: str
    client_id: str
    credential_kind: str
    redirect_url: str
    authority_host: str
    ca_bundle: str | None
    group_roles: dict[str, str]
    local_sign_in: str
    credential: str = field(repr=False)
    api_audience: str | None = None  # the REST API accepts Entra access tokens for it


def _aad(tenant_id: str, client_id: str) -> tuple[str, str]:
    return f"sso_settings:{ROW_ID}", f"credential|{tenant_id.lower()}|{client_id.lower()}"


def save_settings(
    vault: Vault, actor: Actor, values: Mapping[str, Any], *, credential: str
) -> None:
    """Store (replace) the app registration and enable sign-in; audited without the secret.
    ``values``: tenant_id, client_id, credential_kind, redirect_url, authority_host, ca_bundle,
    group_roles (a mapping), optionally api_audience (absent: kept as it was, like the
    break-glass policy; None: the API takes API keys only)."""
    require(actor, Permission.SETTINGS)
    tenant, client = str(values["tenant_id"]), str(values["client_id"])
    nonce, ciphertext = vault.encrypt_for(credential.encode(), *_aad(tenant, client))
    row = {
        "enabled": True,
        "tenant_id": tenant,
        "client_id": client,
        "credential_kind": str(values["credential_kind"]),
        "redirect_url": str(values["redirect_url"]),
        "authority_host": str(values["authority_host"]),
        "ca_bundle": values.get("ca_bundle"),
        "group_roles": json.dumps(dict(values.get("group_roles") or {}), sort_keys=True),
        "credential_nonce": nonce,
        "credential_ciphertext": ciphertext,
        "updated_at": utc_now(),
    }
    if "api_audience" in values:
        row["api_audience"] = values["api_audience"]
    with vault.unit_of_work(actor) as work:
        exists = work.conn.execute(
            sa.select(sso_settings.c.id).where(sso_settings.c.id == ROW_ID)
        ).first()
        if exists:
            work.conn.execute(sso_settings.update().where(sso_settings.c.id == ROW_ID).values(row))
        else:
            work.conn.execute(sso_settings.insert().values(id=ROW_ID, **row))
        work.audit(
            "sso.configured",
            details={
                "tenant": tenant,
                "client_id": client,
                "credential": row["credential_kind"],
                "redirect_url": row["redirect_url"],
                "authority_host": row["authority_host"],
                "groups_mapped": len(values.get("group_roles") or {}),
                **({"api_audience": row["api_audience"]} if "api_audience" in row else {}),
            },
        )


def load_settings(vault: Vault) -> StoredSso | None:
    with vault.reading() as conn:
        row = conn.execute(sa.select(sso_settings).where(sso_settings.c.id == ROW_ID)).first()
    if row is None:
        return None
    plain = vault.decrypt_for(
        row.credential_nonce, row.credential_ciphertext, *_aad(row.tenant_id, row.client_id)
    )
    return StoredSso(
        enabled=bool(row.enabled),
        tenant_id=row.tenant_id,
        client_id=row.client_id,
        credential_kind=row.credential_kind,
        redirect_url=row.redirect_url,
        authority_host=row.authority_host,
        ca_bundle=row.ca_bundle,
        group_roles=dict(json.loads(row.group_roles or "{}")),
        local_sign_in=row.local_sign_in,
        credential=plain.decode(),
        api_audience=row.api_audience,
    )


def set_enabled(vault: Vault, actor: Actor, enabled: bool) -> None:
    require(actor, Permission.SETTINGS)
    with vault.unit_of_work(actor) as work:
        changed = work.conn.execute(
            sso_settings.update().where(sso_settings.c.id == ROW_ID).values(enabled=enabled)
        ).rowcount
        if not changed:
            raise NotFound(NOT_CONFIGURED)
        work.audit("sso.enabled" if enabled else "sso.disabled")


def set_local_sign_in(vault: Vault, actor: Actor, policy: str) -> None:
    """The break-glass policy: on, admins-only or off (only while sign-in with Entra is on)."""
    require(actor, Permission.SETTINGS)
    if policy not in LOCAL_POLICIES:
        raise InvalidInput(f"unknown local sign-in policy {policy!r}; use on, admins-only or off")
    with vault.unit_of_work(actor) as work:
        row = work.conn.execute(
            sa.select(sso_settings.c.enabled).where(sso_settings.c.id == ROW_ID)
        ).first()
        if row is None:
            raise NotFound(NOT_CONFIGURED)
        work.conn.execute(
            sso_settings.update().where(sso_settings.c.id == ROW_ID).values(local_sign_in=policy)
        )
        work.audit("sso.local_sign_in", details={"policy": policy})


def set_api_audience(vault: Vault, actor: Actor, audience: str | None) -> None:
    """Accept Entra access tokens for ``audience`` at the REST API, or (None) API keys only."""
    require(actor, Permission.SETTINGS)
    with vault.unit_of_work(actor) as work:
        changed = work.conn.execute(
            sso_settings.update()
            .where(sso_settings.c.id == ROW_ID)
            .values(api_audience=audience, updated_at=utc_now())
        ).rowcount
        if not changed:
            raise NotFound(NOT_CONFIGURED)
        work.audit("sso.api_audience", details={"api_audience": audience})


def local_sign_in_policy(vault: Vault) -> str:
    """Who may sign in locally now: the stored policy while Entra sign-in is enabled, else "on"
    (with Entra sign-in off, local accounts are the only way in and cannot be switched off)."""
    with vault.reading() as conn:
        row = conn.execute(
            sa.select(sso_settings.c.enabled, sso_settings.c.local_sign_in).where(
                sso_settings.c.id == ROW_ID
            )
        ).first()
    if row is None or not row.enabled:
        return "on"
    return str(row.local_sign_in)


# -- sign-ins in progress ----------------------------------------------------------------------


def _flow_aad(id_hash: str) -> tuple[str, str]:
    return f"sso_flow:{id_hash}", "msal auth code flow"


def put_flow(vault: Vault, id_hash: str, flow: Mapping[str, Any], next_path: str) -> None:
    """Keep a flow until its browser comes back; flows older than their lifetime go too."""
    nonce, ciphertext = vault.encrypt_for(json.dumps(dict(flow)).encode(), *_flow_aad(id_hash))
    now = utc_now()
    with vault.transaction() as conn:
        conn.execute(sso_flows.delete().where(sso_flows.c.created_at < now - FLOW_LIFETIME))
        conn.execute(
            sso_flows.insert().values(
                id_hash=id_hash,
                flow_nonce=nonce,
                flow_ciphertext=ciphertext,
                next_path=next_path,
                created_at=now,
            )
        )


def take_flow(vault: Vault, id_hash: str) -> tuple[dict[str, Any], str] | None:
    """The flow and where to go after it, once: it is deleted in the same transaction. None when
    unknown, already used or expired."""
    with vault.transaction() as conn:
        row = conn.execute(sa.select(sso_flows).where(sso_flows.c.id_hash == id_hash)).first()
        if row is None:
            return None
        conn.execute(sso_flows.delete().where(sso_flows.c.id_hash == id_hash))
    # SQLite hands back naive datetimes; they were written in UTC.
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    if created < utc_now() - FLOW_LIFETIME:
        return None
    plain = vault.decrypt_for(row.flow_nonce, row.flow_ciphertext, *_flow_aad(id_hash))
    return dict(json.loads(plain)), str(row.next_path)
