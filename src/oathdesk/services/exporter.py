"""Exports that contain secrets: admin only, audited, written 0600 by the interface.

Each export takes the tokens in the right states (``SELECTORS``), leaves out those the target
cannot take (an Entra CSV means SHA-1, 6 digits, 30 or 60 s; Graph takes SHA-1/SHA-256, 6
digits, 30 or 60 s, a serial and a model) and says which and why, then reads the secrets of the
others in one transaction with one audit record naming every exported serial.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from oathdesk.errors import NotFound
from oathdesk.formats.entra_csv import EntraToken, write_entra_csv
from oathdesk.formats.entra_export import entra_csv_problems
from oathdesk.formats.graph_json import graph_delta_body, graph_problems
from oathdesk.formats.otpauth_list import write_otpauth_list
from oathdesk.formats.problems import Problem
from oathdesk.formats.qr_sheet import qr_sheet
from oathdesk.formats.records import SeedRecord
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Actor, Token, Vault

__all__ = ["ALL_EXPORTS", "EXPORTS", "SELECTORS", "ExportResult", "export", "export_secrets"]

EXPORTS = ("entra-csv", "graph-json", "qr-sheet")
# EXPORTS are what the web console offers; the command line also writes otpauth URI lists.
ALL_EXPORTS = (*EXPORTS, "otpauth")

# Which tokens each export is for.
SELECTORS: dict[str, Callable[[Token], bool]] = {
    # Classic tokens assigned to a user and not yet registered in Entra.
    "entra-csv": lambda t: t.kind is TokenKind.CLASSIC and t.state is TokenState.ASSIGNED,
    "graph-json": lambda t: (
        t.state in (TokenState.IN_STOCK, TokenState.ASSIGNED, TokenState.BURNED)
    ),
    # Programmable tokens waiting to be burned.
    "qr-sheet": lambda t: t.kind is TokenKind.PROGRAMMABLE and t.state is TokenState.ASSIGNED,
    "otpauth": lambda t: t.kind is TokenKind.PROGRAMMABLE and t.state is TokenState.ASSIGNED,
}

# Why the target cannot take a token (checked without its secret, except the secret's length).
CHECKS: dict[str, Callable[[list[SeedRecord]], list[Problem]]] = {
    "entra-csv": entra_csv_problems,
    "graph-json": graph_problems,
}


@dataclass(frozen=True)
class ExportResult:
    """The export's text, how many tokens it holds, and the tokens in the right state that it
    left out, one problem per reason (``message`` names the serial; never a secret)."""

    text: str
    count: int
    left_out: list[Problem]
    left_out_tokens: int = 0


def export(
    vault: Vault, actor: Actor, kind: str, *, header_spelling: str = "time interval"
) -> ExportResult:
    """The export of ``kind``; one audit record names every exported serial and the count
    left out."""
    require(actor.name, actor.role, Permission.EXPORT_SECRETS)
    if kind not in SELECTORS:
        raise NotFound(f"no export {kind!r}; use one of {', '.join(ALL_EXPORTS)}")
    candidates = [t for t in vault.list_tokens() if t.has_secret and SELECTORS[kind](t)]
    left_out: list[Problem] = []
    excluded: set[str] = set()
    check = CHECKS.get(kind)
    records: list[SeedRecord] = []
    with vault.transaction() as conn:
        for token in candidates:
            # Checked before the secret is decrypted: a token left out is not read at all.
            problems = check([_record(token, b"")]) if check else []
            if not problems:
                secret = vault.read_secret(
                    conn, actor, token, purpose=f"export:{kind}", audit=False
                )
                record = _record(token, secret)
                problems = check([record]) if check else []  # the secret's length
            if problems:
                left_out += problems
                excluded.add(token.serial)
            else:
                records.append(record)
        if not records:
            reason = f"; {left_out[0].message}" if left_out else ""
            raise NotFound(
                f"no token is ready for a {kind} export"
                + (f" ({len(excluded)} left out{reason})" if excluded else "")
            )
        vault.audit(
            conn,
            actor,
            "tokens.exported",
            details={
                "format": kind,
                "serials": [r.serial for r in records],
                **({"left_out": len(excluded)} if excluded else {}),
            },
        )
    return ExportResult(
        _render(kind, records, header_spelling), len(records), left_out, len(excluded)
    )


def export_secrets(
    vault: Vault, actor: Actor, kind: str, *, header_spelling: str = "time interval"
) -> tuple[str, int]:
    """The export's text and how many tokens it holds (see ``export`` for what it left out)."""
    result = export(vault, actor, kind, header_spelling=header_spelling)
    return result.text, result.count


def _record(token: Token, secret: bytes) -> SeedRecord:
    return SeedRecord(
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


def _render(kind: str, records: list[SeedRecord], header_spelling: str) -> str:
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
        return write_entra_csv(entra, header_spelling=header_spelling)
    if kind == "graph-json":
        return graph_delta_body(records)
    if kind == "otpauth":
        return write_otpauth_list(records)
    return qr_sheet(records)
