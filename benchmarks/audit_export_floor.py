"""The floor of `oathdesk audit export`: the least a program must do, as one process.

Not product code: a measurement floor for benchmarks/audit_export_bench.py. It reads every
record of a vault's audit log in sequence order with stdlib ``sqlite3`` and writes each as one
JSON object a line (the details parsed, the MAC as hex), streamed to standard output.

    python -m benchmarks.audit_export_floor VAULT.sqlite3
"""

from __future__ import annotations

import json
import sqlite3
import sys


def main(database: str) -> int:
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    write = sys.stdout.write
    rows = db.execute(
        "SELECT seq, at, actor, action, upn, serial, details, mac FROM audit_log ORDER BY seq"
    )
    for seq, at, actor, action, upn, serial, details, mac in rows:
        record = {
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "upn": upn,
            "serial": serial,
            "details": json.loads(details),
            "mac": mac.hex(),
        }
        write(json.dumps(record, sort_keys=True) + "\n")
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
