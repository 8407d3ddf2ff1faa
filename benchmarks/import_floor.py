"""The floor of an Entra CSV import: the least a program must do, as one process.

Not product code: a measurement floor for `oathdesk import` (issue 15). It reads the CSV with the
stdlib ``csv`` module, decodes each base32 secret, encrypts it with AES-256-GCM and fingerprints
it with HMAC-SHA256 (``cryptography`` and ``hmac``), then inserts a users and a tokens table with
``sqlite3`` ``executemany`` (WAL, synchronous=FULL) and commits once. No checks, no audit, no
indexes but the primary and unique keys.

    python -m benchmarks.import_floor FILE.csv NEW.sqlite3 [PAGE_SIZE]

PAGE_SIZE (default SQLite's, 4096) only for comparison: a new vault is written in 16 KiB pages.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import os
import sqlite3
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def main(source: str, database: str, page_size: int = 4096) -> int:
    with open(source, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(io.StringIO(handle.read())))[1:]
    cipher = AESGCM(os.urandom(32))
    mac_key = os.urandom(32)
    users, tokens = [], []
    for number, (upn, serial, secret_text, period, manufacturer, model) in enumerate(rows):
        secret = base64.b32decode(secret_text)
        nonce = os.urandom(12)
        sealed = cipher.encrypt(nonce, secret, serial.encode())
        fingerprint = hmac.digest(mac_key, secret, hashlib.sha256)
        users.append((number, upn.lower()))
        tokens.append(
            (number, serial, manufacturer, model, int(period), number, nonce, sealed, fingerprint)
        )
    db = sqlite3.connect(database, isolation_level=None)
    db.execute(f"PRAGMA page_size={page_size}")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, upn TEXT UNIQUE NOT NULL)")
    db.execute(
        "CREATE TABLE tokens (id INTEGER PRIMARY KEY, serial TEXT UNIQUE NOT NULL, "
        "manufacturer TEXT, model TEXT, period INTEGER, user_id INTEGER, nonce BLOB, "
        "ciphertext BLOB, fingerprint BLOB)"
    )
    db.execute("BEGIN")
    db.executemany("INSERT INTO users VALUES (?, ?)", users)
    db.executemany("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", tokens)
    db.execute("COMMIT")
    db.close()
    print(len(tokens))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:4])))
