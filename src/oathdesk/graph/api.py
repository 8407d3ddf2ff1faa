"""The Graph (beta) calls for hardware OATH tokens, typed. One function, one documented call.

Inventory: ``/directory/authenticationMethodDevices/hardwareOathDevices``; per user:
``/users/{id|upn}/authentication/hardwareOathMethods`` (assign, activate, ...),
``softwareOathMethods``, ``requirements`` (per-user MFA) and ``signInPreferences``; the method
policy: ``/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/hardwareOath``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

from oathdesk.graph import operations as ops
from oathdesk.graph.client import BATCH_LIMIT, GraphClient
from oathdesk.graph.errors import error_parts, redact

DEVICES = "/directory/authenticationMethodDevices/hardwareOathDevices"
POLICY = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/hardwareOath"
MFA_STATES = ("disabled", "enabled", "enforced")
USERS = "/users"
# Graph takes at most 15 values in one `in (...)` of a $filter.
IDS_PER_FILTER = 15


class Device(NamedTuple):
    """A token in Entra's inventory (Graph never returns its secret)."""

    id: str
    serial: str
    status: str  # available | assigned | activated | failedActivation
    assigned_to: str  # the user's object id, or ""
    assigned_name: str
    last_used: str = ""  # lastUsedDateTime as Graph sent it (ISO 8601), "" until first used


class OathMethod(NamedTuple):
    """A hardware or software OATH method registered on a user."""

    id: str
    kind: str  # hardware | software
    serial: str  # "" for software methods
    device_id: str


class CreateResult(NamedTuple):
    device_id: str  # "" when this item failed
    error: str  # Graph's message for this item, one line


def _delta_results(answer: Any, count: int, secrets: Sequence[str]) -> list[CreateResult | None]:
    results: list[CreateResult | None] = [None] * count
    items = answer.get("value") if isinstance(answer, dict) else None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        content_id = str(item.get("@contentId") or "")
        if not content_id.isdigit() or not 1 <= int(content_id) <= count:
            continue
        code, message = error_parts(item)
        if code or message:
            status = item["error"].get("status", "") if isinstance(item["error"], dict) else ""
            detail = redact(message, secrets) or code
            results[int(content_id) - 1] = CreateResult(
                "", f"Graph refused it ({status} {code}: {detail})"
            )
            continue
        device = item.get("device") if isinstance(item.get("device"), dict) else {}
        assert isinstance(device, dict)
        device_id = str(item.get("id") or device.get("id") or "")
        if device_id:
            results[int(content_id) - 1] = CreateResult(device_id, "")
    return results


def device_from(item: dict[str, Any]) -> Device:
    # The reference's list example wraps each device like a user's method ({"id", "device":
    # {...}}); plain devices are what the create answers show. Take either.
    inner = item.get("device")
    if isinstance(inner, dict) and "serialNumber" not in item:
        item = {"id": item.get("id"), **inner}
    assigned = item.get("assignedTo") or {}
    return Device(
        str(item.get("id") or ""),
        str(item.get("serialNumber") or ""),
        str(item.get("status") or ""),
        str(assigned.get("id") or "") if isinstance(assigned, dict) else "",
        str(assigned.get("displayName") or "") if isinstance(assigned, dict) else "",
        str(item.get("lastUsedDateTime") or ""),
    )


def _method_from(item: dict[str, Any], kind: str) -> OathMethod:
    device = item.get("device") if isinstance(item.get("device"), dict) else {}
    assert isinstance(device, dict)
    serial = str(device.get("serialNumber") or item.get("serialNumber") or "")
    method_id = str(item.get("id") or "")
    # A hardware method carries its device's id (the reference's examples); software: none.
    device_id = str(device.get("id") or (method_id if kind == "hardware" else ""))
    return OathMethod(method_id, kind, serial, device_id)


def _user(upn: str) -> str:
    return f"/users/{quote(upn, safe='@')}/authentication"


def _serial_filter(serial: str) -> dict[str, str]:
    return {"$filter": "serialNumber eq '{}'".format(serial.replace("'", "''"))}


def _ids_query(ids: Sequence[str]) -> dict[str, str]:
    quoted = ",".join("'{}'".format(i.replace("'", "''")) for i in ids)
    return {"$filter": f"id in ({quoted})", "$select": "id,userPrincipalName"}


class HardwareOath:
    """The hardware OATH calls over one ``GraphClient``."""

    def __init__(self, client: GraphClient) -> None:
        self.client = client

    # -- policy --------------------------------------------------------------------------------

    def policy_state(self) -> str:
        body = self.client.call(ops.READ_POLICY, "GET", POLICY, target="hardwareOath").body
        return str((body or {}).get("state") or "unknown")

    def enable_policy(self) -> None:
        self.client.call(
            ops.UPDATE_POLICY,
            "PATCH",
            POLICY,
            json={
                "@odata.type": "#microsoft.graph.hardwareOathAuthenticationMethodConfiguration",
                "state": "enabled",
            },
            target="hardwareOath",
        )

    # -- inventory -----------------------------------------------------------------------------

    def devices(self) -> list[Device]:
        return [device_from(item) for item in self.client.pages(ops.LIST_DEVICES, DEVICES)]

    def device_by_serial(self, serial: str) -> list[Device]:
        """Every inventory device with this serial (more than one is a duplicate)."""
        return [
            device_from(item)
            for item in self.client.pages(
                ops.LIST_DEVICES, DEVICES, params=_serial_filter(serial), target=serial
            )
        ]

    def create_devices(
        self, devices: Sequence[dict[str, Any]], *, secrets: Sequence[str]
    ) -> list[CreateResult | None]:
        """Create many devices in one ``$delta`` body. Per device, in order: the new id or
        Graph's error for that item, or None when the answer does not say (look it up)."""
        body = {
            "@context": "#$delta",
            "value": [
                {"@contentId": str(index), **device} for index, device in enumerate(devices, 1)
            ],
        }
        first, last = devices[0]["serialNumber"], devices[-1]["serialNumber"]
        target = first if first == last else f"{first}..{last} ({len(devices)})"
        answer = self.client.call(
            ops.CREATE_DEVICES, "PATCH", DEVICES, json=body, target=target, secrets=secrets
        ).body
        return _delta_results(answer, len(devices), secrets)

    def delete_device(self, device_id: str, *, serial: str) -> None:
        self.client.call(
            ops.DELETE_DEVICE, "DELETE", f"{DEVICES}/{quote(device_id)}", target=serial
        )

    # -- users ---------------------------------------------------------------------------------

    def user_names(self, user_ids: Sequence[str]) -> dict[str, str]:
        """The UPN of each of these user object ids that exists (the inventory names a
        device's user by id only): ``$filter=id in (...)`` of 15 ids, 20 such requests in one
        JSON batch: 300 ids a call, where a call per 15 tripled a sync's calls."""
        wanted = sorted(set(user_ids))
        chunks = [
            wanted[start : start + IDS_PER_FILTER]
            for start in range(0, len(wanted), IDS_PER_FILTER)
        ]
        found: dict[str, str] = {}
        for start in range(0, len(chunks), BATCH_LIMIT):
            part = chunks[start : start + BATCH_LIMIT]
            urls = [f"{USERS}?{urlencode(_ids_query(chunk), quote_via=quote)}" for chunk in part]
            target = f"{sum(len(chunk) for chunk in part)} user(s)"
            for items in self.client.batch_get(ops.LIST_USERS, urls, target=target):
                for item in items:
                    if item.get("id") and item.get("userPrincipalName"):
                        found[str(item["id"])] = str(item["userPrincipalName"]).lower()
        return found

    def hardware_methods(self, upn: str) -> list[OathMethod]:
        return [
            _method_from(item, "hardware")
            for item in self.client.pages(
                ops.LIST_METHODS,
                f"{_user(upn)}/hardwareOathMethods",
                target=upn,
            )
        ]

    def software_methods(self, upn: str) -> list[OathMethod]:
        return [
            _method_from(item, "software")
            for item in self.client.pages(
                ops.LIST_METHODS, f"{_user(upn)}/softwareOathMethods", target=upn
            )
        ]

    def assign_and_activate(
        self, upn: str, device_id: str, code: str, *, serial: str, display_name: str
    ) -> None:
        self.client.call(
            ops.ACTIVATE,
            "POST",
            f"{_user(upn)}/hardwareOathMethods/assignAndActivate",
            json={
                "device": {"id": device_id},
                "verificationCode": code,
                "displayName": display_name,
            },
            target=f"{serial} -> {upn}",
            secrets=[code],
        )

    def assign_and_activate_by_serial(
        self, upn: str, serial: str, code: str, *, display_name: str
    ) -> None:
        self.client.call(
            ops.ACTIVATE,
            "POST",
            f"{_user(upn)}/hardwareOathMethods/assignAndActivateBySerialNumber",
            json={"serialNumber": serial, "verificationCode": code, "displayName": display_name},
            target=f"{serial} -> {upn}",
            secrets=[code],
        )

    def activate(self, upn: str, method_id: str, code: str, *, serial: str) -> None:
        """Activate a token already assigned to ``upn`` (its method id is the device's)."""
        self.client.call(
            ops.ACTIVATE,
            "POST",
            f"{_user(upn)}/hardwareOathMethods/{quote(method_id)}/activate",
            json={"verificationCode": code},
            target=f"{serial} -> {upn}",
            secrets=[code],
        )

    def unassign(self, upn: str, method_id: str, *, serial: str) -> None:
        self.client.call(
            ops.UNASSIGN,
            "DELETE",
            f"{_user(upn)}/hardwareOathMethods/{quote(method_id)}",
            target=f"{serial} <- {upn}",
        )

    def mfa_state(self, upn: str) -> str:
        body = self.client.call(
            ops.READ_REQUIREMENTS, "GET", f"{_user(upn)}/requirements", target=upn
        ).body
        return str((body or {}).get("perUserMfaState") or "unknown")

    def set_mfa_state(self, upn: str, state: str) -> None:
        self.client.call(
            ops.UPDATE_REQUIREMENTS,
            "PATCH",
            f"{_user(upn)}/requirements",
            json={"perUserMfaState": state},
            target=f"{upn} -> {state}",
        )

    def set_preferred_method(self, upn: str, method: str) -> None:
        self.client.call(
            ops.UPDATE_PREFERENCES,
            "PATCH",
            f"{_user(upn)}/signInPreferences",
            json={"userPreferredMethodForSecondaryAuthentication": method},
            target=f"{upn} -> {method}",
        )
