"""Exports that contain secrets: admin only, audited, written 0600 by the interface.

Each export takes the tokens in the right states (``SELECTIONS``), leaves out those the target
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

__all__ = ["ALL_EXPORTS", "EXPORTS", "SELECTIONS", "ExportResult", "export", "export_secrets"]

EXPORTS = ("entra-csv", "graph-json", "qr-sheet")
# EXPORTS are what the web console offers; the command line also writes otpauth URI lists.
ALL_EXPORTS = (*EXPORTS, "otpauth")


@dataclass(frozen=True)
class Selection:
    """Which tokens an export is for: asked of the vault, so a vault of 100,000 tokens in stock
    is not read whole to find the few that are assigned."""

    states: frozenset[TokenState]
    kind: TokenKind | None = None  # None: either kind


_WAITING_TO_BURN = Selection(frozenset({TokenState.ASSIGNED}), TokenKind.PROGRAMMABLE)
SELECTIONS: dict[str, Selection] = {
    # Tokens assigned to a user whose seed Entra does not know yet: classic ones not registered,
    # and programmable ones with a seed oathdesk generated (`burn --generate`, `token add
    # --generate`, `seeds generate`), before or after burning (classic tokens are never burned).
    # Registered tokens are left out: Entra has their seed already.
    "entra-csv": Selection(frozenset({TokenState.ASSIGNED, TokenState.BURNED})),
    "graph-json": Selection(
        frozenset({TokenState.IN_STOCK, TokenState.ASSIGNED, TokenState.BURNED})
    ),
    # Programmable tokens waiting to be burned.
    "qr-sheet": _WAITING_TO_BURN,
    "otpauth": _WAITING_TO_BURN,
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
    if kind not in SELECTIONS:
        raise NotFound(f"no export {kind!r}; use one of {', '.join(ALL_EXPORTS)}")
    selection = SELECTIONS[kind]
    candidates = vault.list_tokens(states=selection.states, kind=selection.kind)
    left_out: list[Problem] = []
    excluded: set[str] = set()
    check = CHECKS.get(kind)
    fit: list[Token] = []
    for token in candidates:
        if not token.has_secret:
            continue
        # Checked before the secret is decrypted: a token left out is not read at all.
        problems = check([_record(token, b"")]) if check else []
        if problems:
            left_out += problems
            excluded.add(token.serial)
        else:
            fit.append(token)
    records: list[SeedRecord] = []
    with vault.transaction() as conn:
        for token, secret in zip(fit, vault.read_secrets(conn, actor, fit), strict=True):
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
                f"no token is ready for {_article(kind)} {kind} export"
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


def _article(word: str) -> str:
    """'a' or 'an' for the export names ("an entra-csv", "an otpauth", "a qr-sheet")."""
    return "an" if word[:1] in "aeiou" else "a"


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
