"""Exports that contain secrets: admin only, audited, written 0600 by the interface."""

from __future__ import annotations

from collections.abc import Callable

from oathdesk.errors import NotFound
from oathdesk.formats.entra_csv import EntraToken, write_entra_csv
from oathdesk.formats.graph_json import graph_delta_body
from oathdesk.formats.qr_sheet import qr_sheet
from oathdesk.formats.records import SeedRecord
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Actor, Token, Vault

EXPORTS = ("entra-csv", "graph-json", "qr-sheet")

# Which tokens each export is for.
SELECTORS: dict[str, Callable[[Token], bool]] = {
    # Classic tokens assigned to a user and not yet registered in Entra.
    "entra-csv": lambda t: t.kind is TokenKind.CLASSIC and t.state is TokenState.ASSIGNED,
    "graph-json": lambda t: (
        t.state in (TokenState.IN_STOCK, TokenState.ASSIGNED, TokenState.BURNED)
    ),
    # Programmable tokens waiting to be burned.
    "qr-sheet": lambda t: t.kind is TokenKind.PROGRAMMABLE and t.state is TokenState.ASSIGNED,
}


def export_secrets(
    vault: Vault, actor: Actor, kind: str, *, header_spelling: str = "time interval"
) -> tuple[str, int]:
    """The export's text and how many tokens it holds; one audit record names them all."""
    require(actor.name, actor.role, Permission.EXPORT_SECRETS)
    chosen = [t for t in vault.list_tokens() if t.has_secret and SELECTORS[kind](t)]
    if kind == "entra-csv":
        chosen = [t for t in chosen if t.algorithm.value == "sha1" and t.period in (30, 60)]
    if not chosen:
        raise NotFound(f"no token is ready for a {kind} export")
    records: list[SeedRecord] = []
    with vault.transaction() as conn:
        for token in chosen:
            secret = vault.read_secret(conn, actor, token, purpose=f"export:{kind}", audit=False)
            records.append(
                SeedRecord(
                    0,
                    secret,
                    token.upn,
                    token.serial,
                    token.manufacturer,
                    token.model,
                    token.algorithm.value,
                    token.digits,
                    token.period,
                )
            )
        vault.audit(
            conn,
            actor,
            "tokens.exported",
            details={"format": kind, "serials": [t.serial for t in chosen]},
        )
    if kind == "entra-csv":
        entra = [
            EntraToken(
                0,
                r.upn or "",
                r.serial or "",
                r.secret,
                r.period,
                r.manufacturer or "",
                r.model or "",
            )
            for r in records
        ]
        return write_entra_csv(entra, header_spelling=header_spelling), len(records)
    if kind == "graph-json":
        return graph_delta_body(records), len(records)
    return qr_sheet(records), len(records)
