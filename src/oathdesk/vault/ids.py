"""Record ids made by the client: time-ordered UUIDs (version 7, RFC 9562).

Ids are made before insert so a bulk import can encrypt each secret bound to its record id
first and then insert everything with two ``executemany`` calls. Time order matters for speed:
new ids sort after the existing ones, so primary-key indexes grow at their end instead of
splitting pages all over the B-tree.

A batch shares one millisecond timestamp and 26 random bits, and counts up from a random
47-bit starting point in the last group (the "monotonic random" method of RFC 9562, 6.2).
"""

from __future__ import annotations

import os
import time

_RANDOM_B_BITS = 62
# The last group holds 48 bits. A batch counts up in it from a random start below 2**47, so a
# batch of up to 2**47 ids never carries into the fourth group, which stays fixed per batch.
_COUNTER_BITS = 47


def new_ids(count: int, *, unix_ms: int | None = None) -> list[str]:
    """``count`` distinct UUIDv7 strings in ascending order."""
    if count <= 0:
        return []
    now_ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    random = int.from_bytes(os.urandom(8), "big")
    high = f"{now_ms & (2**48 - 1):012x}"
    # Group 3: version 7 and 12 random bits; group 4: the variant (0b10) and 14 random bits.
    group3 = 0x7000 | (random >> 52)
    group4 = 0x8000 | ((random >> 38) & 0x3FFF)
    head = f"{high[:8]}-{high[8:]}-{group3:04x}-{group4:04x}-"
    start = random & (2**_COUNTER_BITS - 1)
    return [f"{head}{low:012x}" for low in range(start, start + count)]


def new_id() -> str:
    return new_ids(1)[0]
