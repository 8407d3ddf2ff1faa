"""Checking the audit chain and naming every break: edited, moved, inserted or deleted records.

Each row is checked on its own (its MAC over its content, its position and the MAC it was chained
to) and against its neighbours (sequence gaps, the link to the previous row, the head). A row
whose MAC fails at its position is tried at nearby positions: if it verifies there, it was moved
(reordered or renumbered), not edited. Runs of rows with the same fault are named once.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import pickle
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from oathdesk.vault.audit_records import HEAD_ID, AuditRecord, ChainMacs, parse_record

if TYPE_CHECKING:
    import sqlalchemy as sa

# How far from its place a moved record is looked for.
SEARCH_WINDOW = 256
# Rows searched in full; past this, only the offset of the previous moved row is tried.
FULL_SEARCHES = 200
# Rows fetched at a time: a million-record log is streamed, never held in memory whole.
FETCH_ROWS = 5_000
# A log with more records than this to check is checked in two halves at once, one in a
# process of its own: each record's MAC covers the previous record's stored MAC, so the halves
# join exactly at the boundary. Below it, starting the process costs more than it saves.
PARALLEL_ROWS = 200_000

# Plain SQL on the driver's own connection: a million SQLAlchemy Row objects cost more than the
# whole check (issue 15). Only this module reads the chain this way; it writes nothing.
_SCAN = "SELECT seq, at, actor, action, upn, serial, details, mac, prev_mac FROM audit_log"
_SCAN_ALL = _SCAN + " ORDER BY seq"
_SCAN_AFTER = _SCAN + " WHERE seq > {p} ORDER BY seq"
_SCAN_UPTO = _SCAN + " WHERE seq <= {p} ORDER BY seq"
_SCAN_RANGE = _SCAN + " WHERE seq > {p} AND seq <= {p} ORDER BY seq"
_SCAN_AFTER_SOME = _SCAN + " WHERE seq > %s ORDER BY seq LIMIT %s"  # PostgreSQL only
_LAST_SEQ = "SELECT max(seq) FROM audit_log"
_MAC_AT = "SELECT mac FROM audit_log WHERE seq = {p}"
_HEAD = "SELECT seq, last_mac, head_mac FROM audit_head WHERE id = {p}"
# The head, the log's last seq and the MAC of an earlier check's end in one statement: one
# snapshot without a transaction, so a view with nothing new costs one round trip, not six.
_UNMOVED = (
    "SELECT h.seq, h.last_mac, h.head_mac, (SELECT max(seq) FROM audit_log),"
    " (SELECT mac FROM audit_log WHERE seq = {p}) FROM audit_head h WHERE h.id = {p}"
)


class MacSource(Protocol):
    def record_mac(
        self, record: AuditRecord, previous: bytes, *, seq: int | None = None
    ) -> bytes: ...

    def keyed_hmac(self) -> hmac.HMAC: ...

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
    records: int | None = None  # the head's count of records, when the head verified


def check_chain(
    chain: MacSource, conn: sa.Connection, *, after: ChainPoint | None = None
) -> ChainCheck:
    """Every break in plain words, in log order (none: intact), and where an intact log ends.

    The whole log, or only the records after ``after`` (an end point of an earlier check:
    they must chain on to it) and the head. The second is what is new since the first; a
    record before ``after`` edited since is found by the next whole check only."""
    if after is not None:
        driver = conn.connection.driver_connection
        assert driver is not None
        unmoved = _unmoved(chain, driver, conn.dialect.name, after)
        if unmoved is not None:
            return unmoved
    if not conn.in_transaction():
        if conn.dialect.name != "sqlite":
            # One snapshot for every read of the check: under READ COMMITTED each statement
            # sees the commits made before it, so a record appended between the log's scan and
            # the head's read looked like records cut off the end. SQLite's deferred read
            # transaction in WAL mode is a snapshot already.
            conn.execution_options(isolation_level="REPEATABLE READ")
        conn.begin()  # the scan and the head read in one transaction (the caller ends it)
    driver = conn.connection.driver_connection
    assert driver is not None
    return check_driver_chain(chain, driver, conn.dialect.name, after=after)


def check_driver_chain(
    chain: MacSource, driver: Any, dialect: str, *, after: ChainPoint | None = None
) -> ChainCheck:
    """``check_chain`` on a DBAPI connection (sqlite3 or psycopg) inside a transaction that
    reads one snapshot (PostgreSQL: REPEATABLE READ or stricter; SQLite: any transaction)."""
    p = "?" if dialect == "sqlite" else "%s"  # the driver's parameter style
    if after is not None:
        # The record the last check ended at must still be there as it was: that catches the
        # end of the log cut off since (the head alone would still match).
        kept = _one(driver, _MAC_AT.format(p=p), (after.seq,))
        if kept is None or not hmac.compare_digest(bytes(kept[0]), after.mac):
            changed = f"record {after.seq}: changed or deleted since the last check"
            return ChainCheck([changed], None)
    halves = _check_in_halves(chain, driver, dialect, after)
    if halves is not None:
        return halves
    if after is not None and dialect != "sqlite":
        # What is new since the last check: most often a few records, which a named cursor
        # read in three round trips (DECLARE, FETCH, CLOSE) on every console audit view.
        problems, last_seq, last_mac = _check_rows(chain, _TailScan(driver, after.seq), after)
    else:
        cursor = _scan_cursor(driver, dialect)
        try:
            if after is None:
                cursor.execute(_SCAN_ALL)
            else:
                cursor.execute(_SCAN_AFTER.format(p=p), (after.seq,))
            problems, last_seq, last_mac = _check_rows(chain, cursor, after)
        finally:
            cursor.close()
    head = _one(driver, _HEAD.format(p=p), (HEAD_ID,))
    problems += _check_head(chain, head, last_seq, last_mac)
    end = ChainPoint(last_seq, last_mac) if not problems and last_mac else None
    return ChainCheck(problems, end, int(head[0]) if end is not None else None)


def _unmoved(chain: MacSource, driver: Any, dialect: str, after: ChainPoint) -> ChainCheck | None:
    """The check's answer when nothing was added since ``after`` (the common console view):
    the log still ends at ``after`` with its MAC, and the head verifies and points at it, which
    is all the incremental check would find with no new records to read. None: something
    moved (or broke), so the caller runs the check in its own snapshot and names it."""
    p = "?" if dialect == "sqlite" else "%s"
    found = _one(driver, _UNMOVED.format(p=p), (after.seq, HEAD_ID))
    if found is None or found[3] is None or found[4] is None:
        return None
    head_seq, head_last_mac, head_mac = int(found[0]), bytes(found[1]), bytes(found[2])
    if (
        head_seq != after.seq
        or int(found[3]) != after.seq
        or not hmac.compare_digest(bytes(found[4]), after.mac)
        or not hmac.compare_digest(head_last_mac, after.mac)
        or not hmac.compare_digest(chain.head_mac(head_seq, head_last_mac), head_mac)
    ):
        return None
    return ChainCheck([], after, head_seq)


def _check_rows(
    chain: MacSource, cursor: Any, after: ChainPoint | None
) -> tuple[list[str], int, bytes | None]:
    """The problems of the rows ``cursor`` yields in ``seq`` order, the last seq, and the last
    MAC when the last row is intact.

    One tight loop (a million records in about a second): an intact row costs one copy of the
    keyed HMAC over the row's columns as stored. Its stored details are the canonical JSON the
    MAC was made over, so when that MAC matches, the row is exactly what was written and the
    full check below could only agree. Any row that does not match (or a gap, a missing link,
    a row after a bad one) goes through the full check, which parses the details, searches
    where a moved record came from and names the break.
    """
    problems: list[str] = []
    faults: list[_Fault] = []
    searcher = _MoveSearch(chain)
    expected_seq = 1 if after is None else after.seq + 1
    previous_mac: bytes | None = chain.genesis() if after is None else after.mac
    previous_ok = True
    new_mac = chain.keyed_hmac().copy
    compare = hmac.compare_digest
    quote = encode_basestring_ascii

    def flush_faults() -> None:
        problems.extend(_describe_faults(faults))
        faults.clear()

    while chunk := cursor.fetchmany(FETCH_ROWS):
        for seq, at, actor, action, upn, serial, details, mac, prev_mac in chunk:
            # The common case, inline: in place, linked to the row before, MAC over the stored
            # columns (``audit.canonical_bytes``, written out here to save a call per row).
            if seq == expected_seq and previous_ok:
                link = previous_mac if prev_mac is None else prev_mac
                if link is not None and (
                    prev_mac is None or previous_mac is None or compare(prev_mac, previous_mac)
                ):
                    digest = new_mac()
                    digest.update(  # one call: a second ``update`` costs more than the concat
                        f"[{seq},{quote(at)},{quote(actor)},{quote(action)},{quote(upn)},"
                        f"{quote(serial)},{details}]".encode()
                        + link
                    )
                    if compare(digest.digest(), mac):
                        if faults:
                            flush_faults()
                        previous_mac = mac
                        expected_seq = seq + 1
                        continue
            mac, prev_mac = bytes(mac), None if prev_mac is None else bytes(prev_mac)
            if seq > expected_seq:
                flush_faults()
                problems.append(f"{_span('record', expected_seq, seq - 1)} missing (deleted)")
                previous_mac = None  # the deleted predecessor's MAC is gone with it
            record = parse_record(seq, at, actor, action, upn, serial, details)
            link = prev_mac if prev_mac is not None else previous_mac
            ok = True
            if record is None:
                flush_faults()
                problems.append(f"record {seq}: details are not a JSON object (edited)")
                ok = False
            elif link is not None and not compare(chain.record_mac(record, link), mac):
                if faults and faults[-1].seq != seq - 1:
                    flush_faults()
                faults.append(_Fault(seq, searcher.origin(record, seq, prev_mac, mac)))
                ok = False
            elif (
                prev_mac is not None
                and previous_ok
                and previous_mac is not None
                and not compare(prev_mac, previous_mac)
            ):
                flush_faults()
                problems.append(
                    f"record {seq}: chained to another record than {seq - 1} "
                    "(spliced in from another copy of the log)"
                )
            if ok:
                flush_faults()
            previous_mac, previous_ok = mac, ok
            expected_seq = seq + 1
    flush_faults()
    last_mac = previous_mac if previous_ok else None  # a bad last row is named already
    return problems, expected_seq - 1, last_mac


def _check_in_halves(
    chain: MacSource, driver: Any, dialect: str, after: ChainPoint | None
) -> ChainCheck | None:
    """An intact long log checked in two halves at once; None when the log is short, there is
    one core, the vault is no file, or anything is not intact: the caller then checks in one
    pass, in this snapshot, and names every break exactly as always.

    The first half is checked here, in the caller's snapshot; the second by a process that
    connects itself, reads the MAC of this half's last record and chains on to it. On
    PostgreSQL it imports our snapshot (``pg_export_snapshot``). SQLite cannot share one: its
    snapshot starts later than ours, so it is bounded to the last ``seq`` of ours (a record
    appended meanwhile is not counted) and the head, read here, is checked against that end.
    The halves join only when its view of the boundary record's MAC is the one this half ended
    at and it reached our last ``seq``."""
    if not isinstance(chain, ChainMacs) or _cores() < 2:
        return None
    where = _where(driver, dialect)
    p = "?" if dialect == "sqlite" else "%s"
    found = _one(driver, _LAST_SEQ, ())
    first = 0 if after is None else after.seq
    if where is None or found is None or found[0] is None or found[0] - first < PARALLEL_ROWS:
        return None
    last = int(found[0])
    middle = first + (last - first) // 2
    # A new interpreter running this module, not multiprocessing: a fork would inherit a
    # server's threads' locks, and spawn runs the caller's main script again. The key and the
    # range go through its stdin, never its arguments.
    if dialect != "sqlite":
        exported = _one(driver, "SELECT pg_export_snapshot()", ())
        where = (*where, exported[0])
    job = pickle.dumps((chain.macs_only(), where, middle, last))
    try:
        second = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return None  # no interpreter to start: one pass
    assert second.stdin is not None
    assert second.stdout is not None
    answer = b""
    try:
        try:
            second.stdin.write(job)
            second.stdin.close()
        except BrokenPipeError:
            return None  # it ended at once: one pass
        cursor = _scan_cursor(driver, dialect)
        try:
            if after is None:
                cursor.execute(_SCAN_UPTO.format(p=p), (middle,))
            else:
                cursor.execute(_SCAN_RANGE.format(p=p), (after.seq, middle))
            problems, middle_seq, middle_mac = _check_rows(chain, cursor, after)
        finally:
            cursor.close()
        if problems:
            return None  # one pass names them; the second process is ended below, unheard
        answer = second.stdout.read()  # the job is far below a pipe's buffer: no deadlock
    finally:
        _end(second, answered=bool(answer))
    if second.returncode != 0 or not answer:
        return None  # it could not start or read: one pass says why, or passes
    joined = pickle.loads(answer)  # noqa: S301 (our own child's answer, on a pipe only we hold)
    if joined is None or middle_seq != middle or middle_mac is None:
        return None
    second_problems, end_seq, end_mac, boundary_mac = joined
    if second_problems or end_seq != last or end_mac is None:
        return None
    if not hmac.compare_digest(boundary_mac, middle_mac):
        return None
    head = _one(driver, _HEAD.format(p=p), (HEAD_ID,))
    if _check_head(chain, head, end_seq, end_mac):
        return None
    return ChainCheck([], ChainPoint(end_seq, end_mac))


def _end(process: subprocess.Popen[bytes], *, answered: bool) -> None:
    """Wait for ``process``; end it first when the check here failed before its answer."""
    if not answered:
        process.kill()
    for pipe in (process.stdin, process.stdout):
        if pipe is not None and not pipe.closed:
            with contextlib.suppress(BrokenPipeError):  # it ended before reading its job
                pipe.close()
    process.wait()


def _check_half(
    macs: ChainMacs, where: tuple[Any, ...], after_seq: int, last_seq: int
) -> tuple[list[str], int, bytes | None, bytes] | None:
    """In a process of its own: the records after ``after_seq`` up to ``last_seq`` checked on
    to the stored MAC of ``after_seq``; the problems, the last seq and MAC, and that MAC."""
    driver, dialect = _connect(where)
    p = "?" if dialect == "sqlite" else "%s"
    try:
        kept = _one(driver, _MAC_AT.format(p=p), (after_seq,))
        if kept is None:
            return None
        start = ChainPoint(after_seq, bytes(kept[0]))
        cursor = _scan_cursor(driver, dialect)
        try:
            cursor.execute(_SCAN_RANGE.format(p=p), (after_seq, last_seq))
            problems, end_seq, end_mac = _check_rows(macs, cursor, start)
        finally:
            cursor.close()
        return problems, end_seq, end_mac, start.mac
    finally:
        driver.close()


def _where(driver: Any, dialect: str) -> tuple[Any, ...] | None:
    """How a second process reaches this database: ("sqlite", file) or ("postgresql", the
    connection's parameters, password included: they go through its stdin only); None when it
    cannot (an in-memory SQLite database, another driver)."""
    if dialect == "sqlite":
        for _, name, file in driver.execute("PRAGMA database_list"):
            if name == "main" and file:
                return ("sqlite", str(file))
        return None
    if dialect != "postgresql" or not hasattr(driver, "info"):
        return None
    parameters = dict(driver.info.get_parameters())
    if driver.info.password:
        parameters["password"] = driver.info.password
    return ("postgresql", parameters)


def _connect(where: tuple[Any, ...]) -> tuple[Any, str]:
    """The second process's connection, in a transaction that reads the snapshot to check."""
    if where[0] == "sqlite":
        db = sqlite3.connect(Path(where[1]).as_uri() + "?mode=ro", uri=True, isolation_level=None)
        db.execute("BEGIN")  # deferred: one snapshot for every read
        return db, "sqlite"
    import psycopg
    from psycopg import sql

    conn = psycopg.connect(**where[1])
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(where[2])))
    return conn, "postgresql"


class _TailScan:
    """The records after ``after_seq`` on PostgreSQL, ``fetchmany`` rows at a time, each batch
    a query by key on a plain cursor (in the caller's snapshot): a tail shorter than a batch
    is one round trip, and a long one is still never held in memory whole."""

    def __init__(self, driver: Any, after_seq: int) -> None:
        self._driver = driver
        self._after = after_seq
        self._done = False

    def fetchmany(self, size: int) -> list[Any]:
        if self._done:
            return []
        with self._driver.cursor() as cursor:
            rows: list[Any] = cursor.execute(_SCAN_AFTER_SOME, (self._after, size)).fetchall()
        self._done = len(rows) < size
        if rows:
            self._after = rows[-1][0]
        return rows


def _scan_cursor(driver: Any, dialect: str) -> Any:
    """PostgreSQL: a named (server-side) cursor streams the rows; sqlite3's cursor always does."""
    return driver.cursor(name="oathdesk_audit_check") if dialect != "sqlite" else driver.cursor()


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _one(driver: Any, sql: str, parameters: tuple[Any, ...]) -> Any:
    cursor = driver.cursor()
    try:
        cursor.execute(sql, parameters)
        return cursor.fetchone()
    finally:
        cursor.close()


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


def _check_head(chain: MacSource, head: Any, last_seq: int, last_mac: bytes | None) -> list[str]:
    """``head``: the head row (seq, last_mac, head_mac), None when it is missing."""
    if head is None:
        return ["the audit head is missing (deleted); the end of the log cannot be checked"]
    head_seq, head_last_mac, head_mac = int(head[0]), bytes(head[1]), bytes(head[2])
    if not hmac.compare_digest(chain.head_mac(head_seq, head_last_mac), head_mac):
        return ["the audit head is forged or edited"]
    if head_seq > last_seq:
        return [
            f"{_span('record', last_seq + 1, head_seq)} missing at the end (deleted): "
            f"the head says {head_seq} records, the log ends at {last_seq}"
        ]
    if head_seq < last_seq:
        return [
            f"{_span('record', head_seq + 1, last_seq)} after the head's last record "
            f"{head_seq} (inserted)"
        ]
    if last_mac is not None and not hmac.compare_digest(head_last_mac, last_mac):
        return [f"record {last_seq}: does not match the head (edited or replaced)"]
    return []


def _check_half_main() -> None:
    """The second half's process (``_check_in_halves``): its job on stdin, its answer on stdout."""
    job = sys.stdin.buffer.read()
    macs, where, after_seq, last_seq = pickle.loads(job)  # noqa: S301 (from our parent's pipe)
    sys.stdout.buffer.write(pickle.dumps(_check_half(macs, where, after_seq, last_seq)))


if __name__ == "__main__":
    _check_half_main()
