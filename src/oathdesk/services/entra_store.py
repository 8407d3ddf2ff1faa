"""The Graph connection as kept in the vault: settings in clear, the client secret or
certificate and msal's token cache encrypted with the data key, bound (AAD) to the row, the
tenant and the app so that a ciphertext moved elsewhere does not decrypt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from oathdesk.errors import NotFound
from oathdesk.graph.settings import AuthKind, GraphSettings
from oathdesk.vault import entra_records
from oathdesk.vault.entra_records import ROW_ID, JournalEntry
from oathdesk.vault.models import Actor, utc_now
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Vault

__all__ = [
    "JournalEntry",
    "StoredConnection",
    "delete_connection",
    "journal",
    "load_connection",
    "save_connection",
    "save_token_cache",
]

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
        entra_records.replace_connection(work.conn, values)
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
        entra_records.update_connection(conn, {"updated_at": utc_now(), **sealed})


def load_connection(vault: Vault) -> StoredConnection:
    with vault.reading() as conn:
        row = entra_records.read_connection(conn)
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
        gone = entra_records.delete_connection(work.conn)
        if gone:
            work.audit("entra.logout")
    return gone


# -- the push journal ----------------------------------------------------------------------------


def journal(vault: Vault, serials: list[str] | None = None) -> dict[str, JournalEntry]:
    """How far `entra push` got, per serial (all serials, or these)."""
    with vault.reading() as conn:
        return entra_records.read_journal(conn, serials)
