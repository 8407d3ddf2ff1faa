"""The audit chain's records and MACs, without SQL: what a record is, the bytes its MAC covers,
and the keyed MACs of records and the head.

``audit`` appends records with these inside a transaction; ``audit_verify`` checks them on any
driver connection. Kept apart from both so that checking the chain (`oathdesk audit verify` on
SQLite, through ``quickread``) loads no SQLAlchemy.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from typing import Any

GENESIS = b"oathdesk audit chain genesis"
HEAD_ID = 1


def details_json(details: Mapping[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"))


def canonical_bytes(
    seq: int, at: str, actor: str, action: str, upn: str, serial: str, details: str
) -> bytes:
    """The bytes a record's MAC covers: the JSON array [seq, at, actor, action, upn, serial,
    details], each string escaped by the json module, details already canonical JSON."""
    quote = encode_basestring_ascii
    return (
        f"[{seq},{quote(at)},{quote(actor)},{quote(action)},{quote(upn)},{quote(serial)},{details}]"
    ).encode()


@dataclass(frozen=True)
class AuditEntry:
    """What to record; the chain adds the sequence number, time and MAC."""

    actor: str
    action: str
    upn: str = ""
    serial: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: str
    actor: str
    action: str
    upn: str
    serial: str
    details: dict[str, Any]

    def canonical(self, seq: int | None = None) -> bytes:
        """The MACed bytes; ``seq`` overrides the position (to test where a record came from)."""
        return canonical_bytes(
            self.seq if seq is None else seq,
            self.at,
            self.actor,
            self.action,
            self.upn,
            self.serial,
            details_json(self.details),
        )


def parse_record(
    seq: int, at: str, actor: str, action: str, upn: str, serial: str, details: str
) -> AuditRecord | None:
    """The record stored columns hold, or None when ``details`` is not a JSON object (edited)."""
    try:
        parsed = json.loads(details)
    except (TypeError, ValueError):
        return None
    if not isinstance(parsed, dict):
        return None
    return AuditRecord(seq, at, actor, action, upn, serial, parsed)


class ChainMacs:
    """The MACs of the chain under an unwrapped audit key (``audit_verify.MacSource``)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<key hidden>)"

    def record_mac(self, record: AuditRecord, previous: bytes, *, seq: int | None = None) -> bytes:
        """The MAC ``record`` carries after ``previous`` at position ``seq`` (default: its own;
        another position tells where a moved record came from)."""
        return hmac.new(self._key, record.canonical(seq) + previous, hashlib.sha256).digest()

    def macs_only(self) -> ChainMacs:
        """These MACs and nothing else, for a process that checks part of the chain (the key
        reaches it through the process's pipe, never its arguments)."""
        return ChainMacs(self._key)

    def keyed_hmac(self) -> hmac.HMAC:
        """A keyed HMAC-SHA256 whose ``copy()`` MACs one record without setting the key up again:
        checking a long chain spends most of its time here (``audit_verify``)."""
        return hmac.new(self._key, digestmod="sha256")

    def head_mac(self, seq: int, last_mac: bytes) -> bytes:
        return hmac.new(self._key, b"head|%d|" % seq + last_mac, hashlib.sha256).digest()

    def derived_key(self, purpose: bytes) -> bytes:
        """A key of its own for ``purpose`` (HKDF-SHA256 from the audit key): what it MACs can
        never pass for a record or the head, and it says nothing about the audit key."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(self._key)

    def genesis(self) -> bytes:
        return hmac.new(self._key, GENESIS, hashlib.sha256).digest()
