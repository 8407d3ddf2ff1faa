"""Checking the audit chain and naming every break: edited, moved, inserted or deleted records.

Each row is checked on its own (its MAC over its content, its position and the MAC it was chained
to) and against its neighbours (sequence gaps, the link to the previous row, the head). A row
whose MAC fails at its position is tried at nearby positions: if it verifies there, it was moved
(reordered or renumbered), not edited. Runs of rows with the same fault are named once.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from oathdesk.vault.audit import HEAD_ID, AuditRecord, record_from_row
from oathdesk.vault.schema import audit_head, audit_log

# How far from its place a moved record is looked for.
SEARCH_WINDOW = 256
# Rows searched in full; past this, only the offset of the previous moved row is tried.
FULL_SEARCHES = 200


class MacSource(Protocol):
    def record_mac(
        self, record: AuditRecord, previous: bytes, *, seq: int | None = None
    ) -> bytes: ...

    def head_mac(self, seq: int, last_mac: bytes) -> bytes: ...

    def genesis(self) -> bytes: ...


@dataclass(frozen=True)
class _Fault:
    """One bad row: ``moved_from`` is where its content belongs (None: edited or forged)."""

    seq: int
    moved_from: int | None


@dataclass(frozen=True)
class ChainPoint:
    """A record a check found intact, with its MAC: a later check of the records after it
    starts here instead of at the beginning (see ``ChainCheck``)."""

    seq: int
    mac: bytes = field(repr=False)


@dataclass(frozen=True)
class ChainCheck:
    problems: list[str]  # every break found, in plain words; empty: intact
    end: ChainPoint | None  # the last record, when the check found everything intact


def check_chain(
    chain: MacSource, conn: sa.Connection, *, after: ChainPoint | None = None
) -> ChainCheck:
    """Every break in plain words, in log order (none: intact), and where an intact log ends.

    The whole log, or only the records after ``after`` (an end point of an earlier check:
    they must chain on to it) and the head. The second is what is new since the first; a
    record before ``after`` edited since is found by the next whole check only."""
    problems: list[str] = []
    faults: list[_Fault] = []
    searcher = _MoveSearch(chain)
    expected_seq = 1 if after is None else after.seq + 1
    previous_mac: bytes | None = chain.genesis() if after is None else after.mac
    previous_ok = True

    def flush_faults() -> None:
        problems.extend(_describe_faults(faults))
        faults.clear()

    rows = sa.select(audit_log).order_by(audit_log.c.seq)
    if after is not None:
        # The record the last check ended at must still be there as it was: that catches the
        # end of the log cut off since (the head alone would still match).
        kept = conn.execute(
            sa.select(audit_log.c.mac).where(audit_log.c.seq == after.seq)
        ).scalar_one_or_none()
        if kept is None or not hmac.compare_digest(kept, after.mac):
            changed = f"record {after.seq}: changed or deleted since the last check"
            return ChainCheck([changed], None)
        rows = rows.where(audit_log.c.seq > after.seq)
    for row in conn.execute(rows):
        if row.seq > expected_seq:
            flush_faults()
            problems.append(f"{_span('record', expected_seq, row.seq - 1)} missing (deleted)")
            previous_mac = None  # the deleted predecessor's MAC is gone with it
        record = record_from_row(row)
        link = row.prev_mac if row.prev_mac is not None else previous_mac
        ok = True
        if record is None:
            flush_faults()
            problems.append(f"record {row.seq}: details are not a JSON object (edited)")
            ok = False
        elif link is not None and not hmac.compare_digest(chain.record_mac(record, link), row.mac):
            if faults and faults[-1].seq != row.seq - 1:
                flush_faults()
            faults.append(_Fault(row.seq, searcher.origin(record, row.seq, row.prev_mac, row.mac)))
            ok = False
        elif (
            row.prev_mac is not None
            and previous_ok
            and previous_mac is not None
            and not hmac.compare_digest(row.prev_mac, previous_mac)
        ):
            flush_faults()
            problems.append(
                f"record {row.seq}: chained to another record than {row.seq - 1} "
                "(spliced in from another copy of the log)"
            )
        if ok:
            flush_faults()
        previous_mac, previous_ok = row.mac, ok
        expected_seq = row.seq + 1
    flush_faults()
    last_mac = previous_mac if previous_ok else None  # a bad last row is named already
    problems += _check_head(chain, conn, expected_seq - 1, last_mac)
    end = ChainPoint(expected_seq - 1, last_mac) if not problems and last_mac else None
    return ChainCheck(problems, end)


class _MoveSearch:
    """Finds the position a record's MAC verifies at, nearest first."""

    def __init__(self, chain: MacSource) -> None:
        self._chain = chain
        self._searches = 0
        self._last_offset: int | None = None

    def origin(
        self, record: AuditRecord, seq: int, prev_mac: bytes | None, mac: bytes
    ) -> int | None:
        if prev_mac is None:
            return None  # written before links were stored: the original position is unknown
        for candidate in self._candidates(seq):
            if hmac.compare_digest(self._chain.record_mac(record, prev_mac, seq=candidate), mac):
                self._last_offset = candidate - seq
                return candidate
        return None

    def _candidates(self, seq: int) -> Iterator[int]:
        if self._last_offset is not None and seq + self._last_offset >= 1:
            yield seq + self._last_offset  # a renumbered run shares one offset
        self._searches += 1
        if self._searches > FULL_SEARCHES:
            return
        for distance in range(1, SEARCH_WINDOW + 1):
            yield seq + distance
            if seq - distance >= 1:
                yield seq - distance


def _describe_faults(faults: list[_Fault]) -> Iterator[str]:
    """Consecutive faults of one kind (edited, or moved by the same offset) as one line each."""
    start = 0
    for index in range(1, len(faults) + 1):
        if index < len(faults) and _same_kind(faults[start], faults[index]):
            continue
        first, last = faults[start], faults[index - 1]
        if first.moved_from is None:
            yield f"{_span('record', first.seq, last.seq)}: MAC mismatch (edited or forged)"
        elif first is last:
            yield f"record {first.seq}: holds record {first.moved_from} (reordered)"
        else:
            assert last.moved_from is not None
            yield (
                f"records {first.seq}-{last.seq}: hold records {first.moved_from}-"
                f"{last.moved_from} (moved: records were inserted, deleted or renumbered)"
            )
        start = index


def _same_kind(a: _Fault, b: _Fault) -> bool:
    if a.moved_from is None or b.moved_from is None:
        return a.moved_from is None and b.moved_from is None
    return a.moved_from - a.seq == b.moved_from - b.seq


def _span(noun: str, first: int, last: int) -> str:
    return f"{noun} {first}" if first == last else f"{noun}s {first}-{last}"


def _check_head(
    chain: MacSource, conn: sa.Connection, last_seq: int, last_mac: bytes | None
) -> list[str]:
    head: Any = conn.execute(sa.select(audit_head).where(audit_head.c.id == HEAD_ID)).one_or_none()
    if head is None:
        return ["the audit head is missing (deleted); the end of the log cannot be checked"]
    if not hmac.compare_digest(chain.head_mac(head.seq, head.last_mac), head.head_mac):
        return ["the audit head is forged or edited"]
    if head.seq > last_seq:
        return [
            f"{_span('record', last_seq + 1, head.seq)} missing at the end (deleted): "
            f"the head says {head.seq} records, the log ends at {last_seq}"
        ]
    if head.seq < last_seq:
        return [
            f"{_span('record', head.seq + 1, last_seq)} after the head's last record "
            f"{head.seq} (inserted)"
        ]
    if last_mac is not None and not hmac.compare_digest(head.last_mac, last_mac):
        return [f"record {last_seq}: does not match the head (edited or replaced)"]
    return []
