"""The Graph connection as kept in the vault: settings in clear, the client secret or
certificate and msal's token cache encrypted with the data key, bound (AAD) to the row, the
tenant and the app so that a ciphertext moved elsewhere does not decrypt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from oathdesk.errors import NotFound
from oathdesk.graph.settings import AuthKind, GraphSettings
from oathdesk.vault import db
from oathdesk.vault.models import Actor, utc_now
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.schema import graph_connection, graph_push_journal
from oathdesk.vault.vault import Vault

ROW_ID = 1
NOT_SIGNED_IN = (
    "oathdesk is not connected to Entra; run `oathdesk entra login --tenant ID --client-id ID "
    "--client-secret -` (or --certificate PEM, or --device-code) first"
)


@dataclass(frozen=True)
class StoredConnection:
    settings: GraphSettings
    signed_in_as: str
    secret: str | None = field(repr=False)
    cache_text: str | None = field(repr=False)


def _record(settings: GraphSettings) -> str:
    return f"graph_connection:{ROW_ID}"


def _label(settings: GraphSettings, what: str) -> str:
    return f"{what}|{settings.tenant_id}|{settings.client_id}"


def _sealed(vault: Vault, settings: GraphSettings, text: str | None, what: str) -> dict[str, Any]:
    if text is None:
        return {f"{what}_nonce": None, f"{what}_ciphertext": None}
    nonce, ciphertext = vault.encrypt_for(text.encode(), _record(settings), _label(settings, what))
    return {f"{what}_nonce": nonce, f"{what}_ciphertext": ciphertext}


def save_connection(
    vault: Vault,
    actor: Actor,
    settings: GraphSettings,
    *,
    secret: str | None,
    cache_text: str | None,
    signed_in_as: str,
) -> None:
    """Store (replace) the connection, audited without any secret."""
    require(actor, Permission.SETTINGS)
    values = {
        "tenant_id": settings.tenant_id,
        "client_id": settings.client_id,
        "auth": settings.auth.value,
        "authority_host": settings.authority_host,
        "graph_url": settings.graph_url,
        "ca_bundle": settings.ca_bundle,
        "signed_in_as": signed_in_as,
        "updated_at": utc_now(),
        **_sealed(vault, settings, secret, "credential"),
        **_sealed(vault, settings, cache_text, "cache"),
    }
    with vault.unit_of_work(actor) as work:
        work.conn.execute(graph_connection.delete())
        work.conn.execute(graph_connection.insert().values(id=ROW_ID, **values))
        work.audit(
            "entra.login",
            details={
                "tenant": settings.tenant_id,
                "client_id": settings.client_id,
                "auth": settings.auth.value,
                "authority_host": settings.authority_host,
                "graph_url": settings.graph_url,
                "signed_in_as": signed_in_as,
            },
        )


def save_token_cache(vault: Vault, settings: GraphSettings, cache_text: str) -> None:
    """Keep msal's refreshed token cache (a refresh is not an operator action: no record)."""
    sealed = _sealed(vault, settings, cache_text, "cache")
    with vault.transaction() as conn:
        conn.execute(
            graph_connection.update()
            .where(graph_connection.c.id == ROW_ID)
            .values(updated_at=utc_now(), **sealed)
        )


def load_connection(vault: Vault) -> StoredConnection:
    with db.reading(vault.engine) as conn:
        row = conn.execute(
            sa.select(graph_connection).where(graph_connection.c.id == ROW_ID)
        ).first()
    if row is None:
        raise NotFound(NOT_SIGNED_IN)
    settings = GraphSettings(
        tenant_id=row.tenant_id,
        client_id=row.client_id,
        auth=AuthKind(row.auth),
        authority_host=row.authority_host,
        graph_url=row.graph_url,
        ca_bundle=row.ca_bundle,
    )

    def opened(nonce: bytes | None, ciphertext: bytes | None, what: str) -> str | None:
        if nonce is None or ciphertext is None:
            return None
        plain = vault.decrypt_for(nonce, ciphertext, _record(settings), _label(settings, what))
        return plain.decode()

    return StoredConnection(
        settings,
        row.signed_in_as,
        opened(row.credential_nonce, row.credential_ciphertext, "credential"),
        opened(row.cache_nonce, row.cache_ciphertext, "cache"),
    )


def delete_connection(vault: Vault, actor: Actor) -> bool:
    """Forget the connection and its credentials; False when there was none."""
    require(actor, Permission.SETTINGS)
    with vault.unit_of_work(actor) as work:
        gone = work.conn.execute(graph_connection.delete()).rowcount
        if gone:
            work.audit("entra.logout")
    return bool(gone)


# -- the push journal ----------------------------------------------------------------------------


@dataclass(frozen=True)
class JournalEntry:
    serial: str
    upn: str
    step: str  # creating | created | activated
    device_id: str | None
    attempts: int
    last_error: str


def journal(vault: Vault, serials: list[str] | None = None) -> dict[str, JournalEntry]:
    query = sa.select(graph_push_journal)
    if serials is not None:
        query = query.where(graph_push_journal.c.serial.in_(serials))
    with db.reading(vault.engine) as conn:
        rows = conn.execute(query).all()
    return {
        row.serial: JournalEntry(
            row.serial, row.upn, row.step, row.device_id, row.attempts, row.last_error
        )
        for row in rows
    }


def write_journal(
    conn: sa.Connection,
    serial: str,
    *,
    upn: str,
    step: str,
    device_id: str | None = None,
    error: str = "",
    attempted: bool = False,
) -> None:
    """Insert or update one serial's journal row inside the caller's transaction."""
    now = utc_now()
    current = conn.execute(
        sa.select(graph_push_journal).where(graph_push_journal.c.serial == serial)
    ).first()
    values: dict[str, Any] = {"upn": upn, "step": step, "last_error": error, "updated_at": now}
    if device_id is not None:
        values["device_id"] = device_id
    if step == "activated":
        values["activated_at"] = now
    if current is None:
        conn.execute(
            graph_push_journal.insert().values(serial=serial, attempts=int(attempted), **values)
        )
        return
    if attempted:
        values["attempts"] = current.attempts + 1
    conn.execute(
        graph_push_journal.update().where(graph_push_journal.c.serial == serial).values(**values)
    )


def forget_journal(conn: sa.Connection, serial: str) -> None:
    conn.execute(graph_push_journal.delete().where(graph_push_journal.c.serial == serial))
