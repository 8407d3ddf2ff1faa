"""Fast multi-row inserts for imports of many thousands of tokens.

On SQLite, SQLAlchemy's per-parameter type processing costs more than the insert itself, so rows
go straight to the driver's ``executemany`` with values converted the way SQLAlchemy would store
them. Other databases use SQLAlchemy's own ``insertmanyvalues`` batching.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

import sqlalchemy as sa


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # SQLAlchemy's SQLite DATETIME storage format (time zone dropped; we store UTC).
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


def insert_rows(conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys); on SQLite their values may be converted."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(table.insert(), list(rows))
        return
    columns = list(rows[0])
    # Table and column names come from our schema, never from input; values are bound.
    names = ", ".join('"' + column + '"' for column in columns)
    marks = ", ".join("?" for _ in columns)
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'  # noqa: S608
    converted = [c for c in columns if isinstance(rows[0][c], datetime | bool)]
    if converted:
        # Rows of one import share their timestamps: convert each distinct value once, in place
        # (callers hand over rows they no longer need as they were).
        memo: dict[Any, Any] = {}
        for row in rows:
            for column in converted:
                value = row[column]
                if value not in memo:
                    memo[value] = _sqlite_value(value)
                row[column] = memo[value]
    if len(columns) == 1:
        params = [(row[columns[0]],) for row in rows]
    else:
        params = list(map(itemgetter(*columns), rows))  # tuples built in C
    conn.exec_driver_sql(sql, params)
