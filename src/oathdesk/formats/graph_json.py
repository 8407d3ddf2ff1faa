"""Microsoft Graph's bulk body for hardware OATH devices. Pure.

``PATCH https://graph.microsoft.com/beta/directory/authenticationMethodDevices/hardwareOathDevices``
with ``{"@context": "#$delta", "value": [{"@contentId": "1", ...}, ...]}`` creates every device in
one call (Graph beta, "Create one or multiple hardwareOathTokenAuthenticationMethodDevice").
Required per device: ``serialNumber``, ``manufacturer``, ``model``, ``secretKey`` (base32),
``timeIntervalInSeconds`` (30 or 60); optional: ``hashFunction`` (``hmacsha1``, the default, or
``hmacsha256``), ``displayName`` and ``assignTo: {"id": <user object id>}``. Codes are 6 digits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from oathdesk.errors import InvalidInput
from oathdesk.formats.problems import Code, Problem
from oathdesk.formats.records import SeedRecord
from oathdesk.seed import encode_base32

HASH_FUNCTIONS = {"sha1": "hmacsha1", "sha256": "hmacsha256"}
INTERVALS = (30, 60)
DEFAULT_MANUFACTURER = "Token2"


def graph_problems(records: Iterable[SeedRecord]) -> list[Problem]:
    """Why some records cannot be Graph hardware OATH devices (one problem per reason)."""
    found = []
    for index, record in enumerate(records, start=1):
        where = f"token {record.serial or index}"
        if not record.serial:
            found.append(_problem(record, f"{where} has no serial number", "serialNumber"))
        if record.algorithm not in HASH_FUNCTIONS:
            found.append(
                _problem(
                    record,
                    f"{where} uses {record.algorithm.upper()}; Graph takes SHA-1 or SHA-256",
                    "hashFunction",
                )
            )
        if record.period not in INTERVALS:
            found.append(
                _problem(
                    record,
                    f"{where} has a {record.period}-second interval; Graph takes 30 or 60",
                    "timeIntervalInSeconds",
                )
            )
        if not record.model:
            found.append(_problem(record, f"{where} has no model", "model"))
        if record.digits != 6:
            found.append(
                _problem(record, f"{where} shows {record.digits} digits; Entra needs 6", "")
            )
    return found


def _problem(record: SeedRecord, message: str, column: str) -> Problem:
    return Problem(
        record.line,
        column,
        message,
        fix="leave this token out of the Graph export",
        code=Code.NOT_FOR_GRAPH,
    )


def graph_delta_body(
    records: Iterable[SeedRecord], *, user_ids: Mapping[str, str] | None = None
) -> str:
    """The JSON body; InvalidInput if any record cannot be a Graph device (see graph_problems).

    ``user_ids`` maps UPNs (lower case) to Entra user object ids; a record whose UPN is in it is
    assigned to that user in the same request.
    """
    chosen = list(records)
    problems = graph_problems(chosen)
    if problems:
        first = problems[0]
        raise InvalidInput(
            f"{len(problems)} problem(s) for a Graph export, the first: {first.message}; "
            f"{first.fix}"
        )
    assignments = user_ids or {}
    value = []
    for index, record in enumerate(chosen, start=1):
        manufacturer = record.manufacturer or DEFAULT_MANUFACTURER
        device: dict[str, object] = {
            "@contentId": str(index),
            "serialNumber": record.serial,
            "manufacturer": manufacturer,
            "model": record.model,
            "secretKey": encode_base32(record.secret),
            "timeIntervalInSeconds": record.period,
            "hashFunction": HASH_FUNCTIONS[record.algorithm],
            "displayName": f"{manufacturer} {record.serial}",
        }
        user_id = assignments.get(record.upn or "")
        if user_id:
            device["assignTo"] = {"id": user_id}
        value.append(device)
    # A device per line: readable, and json's C encoder writes each (an indented dump of the
    # whole body runs in Python, five seconds for 100,000 tokens).
    devices = ",\n".join(f"    {json.dumps(device)}" for device in value)
    return (
        '{\n  "@context": "#$delta",\n  "value": [' + (f"\n{devices}\n  " if value else "") + "]\n}"
    )
