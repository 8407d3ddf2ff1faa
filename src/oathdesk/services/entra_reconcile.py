"""`entra pull`: compare what Entra holds with what the vault says, and name every difference.

Reads each vault user's hardware and software OATH methods and the whole inventory, then
reports: tokens in Entra unknown to the vault, vault tokens that should be in Entra but are not,
duplicates (one serial twice: uploaded by CSV and by Graph), and users over Entra's five methods.
Nothing is changed on either side.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

from oathdesk.graph.api import Device, OathMethod
from oathdesk.graph.errors import GraphError
from oathdesk.services.entra_session import EntraSession
from oathdesk.vault.lifecycle import TokenState
from oathdesk.vault.vault import Token

MAX_METHODS = 5
# Vault states in which a token is expected to be registered in Entra.
IN_ENTRA = frozenset(
    (TokenState.REGISTERED, TokenState.SHIPPED, TokenState.DELIVERED, TokenState.SECRET_PURGED)
)

KINDS = {
    "unknown_to_vault": "in Entra, not in the vault",
    "not_in_entra": "registered in the vault, missing in Entra",
    "wrong_user": "in Entra on another user than in the vault",
    "not_activated": "in Entra but not activated",
    "duplicate": "the same serial twice in Entra",
    "over_limit": "user has more than 5 OATH methods",
    "user_not_found": "vault user not found in Entra",
}


@dataclass(frozen=True)
class Difference:
    kind: str
    serial: str
    upn: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class PullReport:
    users_checked: int
    inventory_size: int
    methods_seen: int
    differences: list[Difference]

    def as_dict(self) -> dict[str, object]:
        return {
            "users_checked": self.users_checked,
            "inventory_size": self.inventory_size,
            "methods_seen": self.methods_seen,
            "differences": [d.as_dict() for d in self.differences],
        }


def pull(session: EntraSession) -> PullReport:
    vault, api = session.vault, session.api
    tokens = {t.serial: t for t in vault.list_tokens()}
    inventory = api.devices()
    found: list[Difference] = []
    methods_by_user: dict[str, list[OathMethod]] = {}
    for user in vault.list_users():
        try:
            hardware = api.hardware_methods(user.upn)
            software = api.software_methods(user.upn)
        except GraphError as error:
            if error.status == 404:
                found.append(Difference("user_not_found", "", user.upn, "check the UPN in Entra"))
                continue
            raise
        methods_by_user[user.upn] = hardware + software
    found += _inventory_differences(inventory, tokens)
    found += _method_differences(methods_by_user, tokens)
    found += _missing(inventory, methods_by_user, tokens)
    order = list(KINDS)
    found.sort(key=lambda d: (order.index(d.kind), d.serial, d.upn))
    return PullReport(
        len(methods_by_user),
        len(inventory),
        sum(len(m) for m in methods_by_user.values()),
        found,
    )


def _by_serial(inventory: list[Device]) -> dict[str, list[Device]]:
    """The inventory per serial: Entra lets one serial be there more than once (a spare
    uploaded by CSV beside the one Graph created), so a serial names a list, never one device."""
    grouped: dict[str, list[Device]] = {}
    for device in inventory:
        grouped.setdefault(device.serial, []).append(device)
    return grouped


def _describe(device: Device) -> str:
    owner = device.assigned_name or device.assigned_to or "nobody"
    return f"{device.id} ({device.status}, assigned to {owner})"


def _inventory_differences(inventory: list[Device], tokens: dict[str, Token]) -> list[Difference]:
    found = []
    for serial, devices in sorted(_by_serial(inventory).items()):
        if len(devices) > 1:
            found.append(
                Difference(
                    "duplicate",
                    serial,
                    "",
                    f"{len(devices)} inventory devices with this serial: "
                    + "; ".join(_describe(d) for d in devices),
                )
            )
    for device in inventory:
        if device.serial not in tokens:
            owner = device.assigned_name or device.assigned_to or "nobody"
            found.append(
                Difference(
                    "unknown_to_vault", device.serial, "", f"{device.status}, assigned to {owner}"
                )
            )
    return found


def _method_differences(
    methods_by_user: dict[str, list[OathMethod]], tokens: dict[str, Token]
) -> list[Difference]:
    found = []
    for upn, methods in sorted(methods_by_user.items()):
        if len(methods) > MAX_METHODS:
            kinds = Counter(m.kind for m in methods)
            found.append(
                Difference(
                    "over_limit",
                    "",
                    upn,
                    f"{len(methods)} methods ({kinds['hardware']} hardware, "
                    f"{kinds['software']} software); Entra allows {MAX_METHODS}",
                )
            )
        serials = Counter(m.serial for m in methods if m.kind == "hardware" and m.serial)
        for serial, count in sorted(serials.items()):
            if count > 1:
                found.append(
                    Difference(
                        "duplicate",
                        serial,
                        upn,
                        f"{count} hardware methods for one serial (uploaded by CSV and by Graph?)",
                    )
                )
        for method in methods:
            token = tokens.get(method.serial)
            if method.kind != "hardware" or token is None:
                continue
            if token.upn != upn:
                found.append(
                    Difference(
                        "wrong_user",
                        method.serial,
                        upn,
                        f"the vault has it on {token.upn or 'nobody'}",
                    )
                )
    return found


def _missing(
    inventory: list[Device],
    methods_by_user: dict[str, list[OathMethod]],
    tokens: dict[str, Token],
) -> list[Difference]:
    in_entra = _by_serial(inventory)
    found = []
    for serial, token in sorted(tokens.items()):
        if token.state not in IN_ENTRA:
            continue
        devices = in_entra.get(serial, [])
        if not devices:
            found.append(
                Difference(
                    "not_in_entra",
                    serial,
                    token.upn or "",
                    f"the vault says {token.state.value}, Entra has no such token",
                )
            )
        elif not any(d.status == "activated" for d in devices):
            # One activated device is the token at work; the others are reported as duplicates.
            says = (
                f"Entra says {devices[0].status}"
                if len(devices) == 1
                else "Entra has " + "; ".join(_describe(d) for d in devices)
            )
            found.append(Difference("not_activated", serial, token.upn or "", says))
    return found
