"""Microsoft Graph's bulk body for hardware OATH devices (``@context: #$delta``). Pure."""

from __future__ import annotations

import json
from collections.abc import Iterable

from oathdesk.formats.records import SeedRecord
from oathdesk.seed import encode_base32

HASH_FUNCTIONS = {"sha1": "hmacsha1", "sha256": "hmacsha256"}


def graph_delta_body(records: Iterable[SeedRecord]) -> str:
    """PATCH .../hardwareOathDevices with this body creates every device in one call."""
    value = []
    for index, record in enumerate(records, start=1):
        if record.algorithm not in HASH_FUNCTIONS:
            raise ValueError(f"Graph has no hash function for {record.algorithm}")
        value.append(
            {
                "@contentId": str(index),
                "serialNumber": record.serial,
                "manufacturer": record.manufacturer or "Token2",
                "model": record.model or "",
                "secretKey": encode_base32(record.secret),
                "timeIntervalInSeconds": record.period,
                "hashFunction": HASH_FUNCTIONS[record.algorithm],
                "displayName": f"{record.manufacturer or 'Token2'} {record.serial}",
            }
        )
    return json.dumps({"@context": "#$delta", "value": value}, indent=2)
