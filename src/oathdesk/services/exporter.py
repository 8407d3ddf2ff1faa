"""Exports that contain secrets: admin only, audited, written 0600 by the interface.

Each export takes the tokens in the right states (``SELECTIONS``), leaves out those the target
cannot take (an Entra CSV means SHA-1, 6 digits, 30 or 60 s; Graph takes SHA-1/SHA-256, 6
digits, 30 or 60 s, a serial and a model) and says which and why, then reads the secrets of the
others in one transaction with one audit record naming every exported serial.

An Entra CSV streams (``open_export``): its tokens are chosen and its audit record committed
without decrypting a secret (an Entra CSV row is checked by the secret's length alone, known
from the ciphertext), and only then are the secrets decrypted a chunk at a time and written as
they go. So an export is never
unaudited, and its first bytes leave at once; the record says what was requested, also when
the receiver goes away before the end.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from oathdesk.errors import NotFound
from oathdesk.formats.entra_csv import HEADER_SPELLINGS
from oathdesk.formats.entra_export import (
    entra_csv_header,
    entra_csv_problems,
    entra_csv_rows,
    plainly_fit,
)
from oathdesk.formats.graph_json import graph_delta_body, graph_problems
from oathdesk.formats.otpauth_list import write_otpauth_list
from oathdesk.formats.problems import Problem
from oathdesk.formats.qr_sheet import qr_sheet
from oathdesk.formats.records import SeedRecord
from oathdesk.vault.export_rows import ExportColumns
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Actor, Token, Vault

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "ALL_EXPORTS",
    "EXPORTS",
    "SELECTIONS",
    "ExportResult",
    "ExportStream",
    "export",
    "export_secrets",
    "open_export",
]

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


@dataclass(frozen=True)
class ExportStream:
    """An export whose audit record is committed: how many tokens it holds, what it left out
    (as ``ExportResult``), and its text in chunks, produced as they are read."""

    count: int
    left_out: list[Problem]
    left_out_tokens: int
    chunks: Iterator[str]


# Tokens per chunk of a streamed export: about 100 KB of CSV.
STREAM_CHUNK = 2000


def open_export(
    vault: Vault, actor: Actor, kind: str, *, header_spelling: str = "time interval"
) -> ExportStream:
    """The export of ``kind``, audited before this returns. An Entra CSV streams; the other
    exports are made whole first (a QR sheet or Graph body is small beside its rendering)."""
    require(actor.name, actor.role, Permission.EXPORT_SECRETS)
    if kind != "entra-csv":
        result = export(vault, actor, kind, header_spelling=header_spelling)
        return ExportStream(
            result.count, result.left_out, result.left_out_tokens, iter([result.text])
        )
    if header_spelling not in HEADER_SPELLINGS:
        raise ValueError(f"header spelling must be one of {HEADER_SPELLINGS}")
    selection = SELECTIONS[kind]
    left_out: list[Problem] = []
    excluded: set[str] = set()
    with vault.transaction() as conn:
        rows = vault.export_rows(conn, actor, selection.states, selection.kind)
        if _plainly_fit(rows):
            chosen = rows
        else:
            keep = []
            for position in range(len(rows)):
                if _plainly_fit(rows, position):
                    keep.append(position)
                    continue
                # The full checks, with a stand-in of the secret's length: they look at no more.
                problems = entra_csv_problems([_row_record(rows, position)])
                if problems:
                    left_out += problems
                    excluded.add(rows.serials[position])
                else:
                    keep.append(position)
            chosen = rows.only(keep)
        _audit_export(vault, conn, actor, kind, chosen.serials, excluded, left_out)
    parts = vault.decrypt_export(actor, chosen, chunk=STREAM_CHUNK)
    return ExportStream(len(chosen), left_out, len(excluded), _entra_chunks(header_spelling, parts))


def _entra_chunks(
    header_spelling: str, parts: Iterator[tuple[ExportColumns, list[bytes]]]
) -> Iterator[str]:
    yield entra_csv_header(header_spelling)
    written = 0
    for part, secrets in parts:
        text = entra_csv_rows(
            part.upns,
            part.serials,
            secrets,
            part.periods,
            part.manufacturers,
            part.models,
            first_position=written + 1,
        )
        del secrets  # the decrypted chunk goes before its text leaves
        yield text
        written += len(part)


def _plainly_fit(rows: ExportColumns, position: int | None = None) -> bool:
    """``plainly_fit`` of all of ``rows``, or of the one at ``position``."""
    if position is not None:
        rows = rows.part(position, position + 1)
    return plainly_fit(
        rows.upns,
        rows.serials,
        rows.manufacturers,
        rows.models,
        # Every combination of the values found: more than the tokens have, never fewer, so
        # a "yes" still holds; three sets found at C speed, not a tuple per token.
        set(itertools.product(set(rows.algorithms), set(rows.digits), set(rows.periods))),
        rows.longest_secret(),
    )


def _row_record(rows: ExportColumns, position: int) -> SeedRecord:
    return SeedRecord(
        0,
        bytes(rows.secret_length(position)),
        rows.upns[position],
        rows.serials[position],
        rows.manufacturers[position],
        rows.models[position],
        rows.algorithms[position],
        rows.digits[position],
        rows.periods[position],
    )


def export(
    vault: Vault, actor: Actor, kind: str, *, header_spelling: str = "time interval"
) -> ExportResult:
    """The export of ``kind``; one audit record names every exported serial and the count
    left out."""
    require(actor.name, actor.role, Permission.EXPORT_SECRETS)
    if kind not in SELECTIONS:
        raise NotFound(f"no export {kind!r}; use one of {', '.join(ALL_EXPORTS)}")
    if kind == "entra-csv":
        stream = open_export(vault, actor, kind, header_spelling=header_spelling)
        text = "".join(stream.chunks)
        return ExportResult(text, stream.count, stream.left_out, stream.left_out_tokens)
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
        _audit_export(vault, conn, actor, kind, [r.serial for r in records], excluded, left_out)
    return ExportResult(_render(kind, records), len(records), left_out, len(excluded))


def export_secrets(
    vault: Vault, actor: Actor, kind: str, *, header_spelling: str = "time interval"
) -> tuple[str, int]:
    """The export's text and how many tokens it holds (see ``export`` for what it left out)."""
    result = export(vault, actor, kind, header_spelling=header_spelling)
    return result.text, result.count


def _audit_export(
    vault: Vault,
    conn: sa.Connection,
    actor: Actor,
    kind: str,
    serials: Sequence[str | None],
    excluded: set[str],
    left_out: list[Problem],
) -> None:
    """The export's record, in the transaction that read its rows; none at all is an error
    that says why (the first problem of those left out)."""
    if not serials:
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
            "serials": list(serials),
            **({"left_out": len(excluded)} if excluded else {}),
        },
    )


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


def _render(kind: str, records: list[SeedRecord]) -> str:
    """The text of the exports that are not streamed (entra-csv is: ``open_export``)."""
    if kind == "graph-json":
        return graph_delta_body(records)
    if kind == "otpauth":
        return write_otpauth_list(records)
    return qr_sheet(records)
