"""`entra pull`: compare what Entra holds with what the vault says, and name every difference.

Reads each vault user's hardware and software OATH methods and the whole inventory, then
reports: tokens in Entra unknown to the vault, vault tokens that should be in Entra but are not,
duplicates (one serial twice: uploaded by CSV and by Graph), users over Entra's five methods,
and what `entra sync` would apply (a stock token a user self-assigned or activated, a shipped
token used to sign in). Nothing is changed on either side.

``differences`` is the one function that compares the inventory with the vault; `entra pull`
shows its answer, `entra sync` (services/entra_sync.py) acts on the kinds in ``SYNC_APPLIES``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime

from oathdesk.graph.api import Device, OathMethod
from oathdesk.graph.errors import GraphError, GraphPermissionError
from oathdesk.services.entra_session import EntraSession
from oathdesk.services.entra_store import journal
from oathdesk.vault.entra_records import JournalEntry
from oathdesk.vault.lifecycle import TokenState
from oathdesk.vault.vault import Token

MAX_METHODS = 5
# Vault states in which a token is expected to be registered in Entra.
IN_ENTRA = frozenset(
    (TokenState.REGISTERED, TokenState.SHIPPED, TokenState.DELIVERED, TokenState.SECRET_PURGED)
)

# The push journal's step for a token uploaded unassigned (`entra push --stock`): whoever
# activates it in Entra typed a code off it, so its activation shows the user holds it.
STOCK_STEP = "stock"

KINDS = {
    "self_activated": "activated in Entra by its user (self-service)",
    "self_assigned": "assigned in Entra to a user (self-service), not yet activated",
    "used_after_shipping": "used to sign in after it was shipped",
    "unassigned_in_entra": "unassigned in Entra, the vault has a user",
    "unknown_to_vault": "in Entra, not in the vault",
    "not_in_entra": "registered in the vault, missing in Entra",
    "wrong_user": "in Entra on another user than in the vault",
    "not_activated": "in Entra but not activated",
    "duplicate": "the same serial twice in Entra",
    "over_limit": "user has more than 5 OATH methods",
    "over_token_limit": "would take the user over the vault's tokens per user",
    "user_not_found": "vault user not found in Entra",
    "changed_meanwhile": "changed in the vault during the sync; run it again",
}


# The differences `entra sync` applies to the vault; every other kind is reported only.
SYNC_APPLIES = frozenset(("self_activated", "self_assigned", "used_after_shipping"))


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
    # Only reads: the calls' records (two per vault user, the listing's pages) are appended
    # together at the end, not in a transaction each.
    with session.collecting_calls():
        report = _pull(session)
    session.write_call_records()
    return report


def _pull(session: EntraSession) -> PullReport:
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
    owners = _owners(inventory, methods_by_user)
    owners.update(_other_owners(session, inventory, tokens, owners))
    found += differences(inventory, tokens, journal(vault), owners)
    found += _method_differences(methods_by_user)
    return PullReport(
        len(methods_by_user),
        len(inventory),
        sum(len(m) for m in methods_by_user.values()),
        sorted_differences(found),
    )


def sorted_differences(found: list[Difference]) -> list[Difference]:
    order = list(KINDS)
    return sorted(found, key=lambda d: (order.index(d.kind), d.serial, d.upn))


def _owners(
    inventory: list[Device], methods_by_user: dict[str, list[OathMethod]]
) -> dict[str, str]:
    """Entra user id -> UPN, learnt from the vault users' methods (pull reads them anyway; a
    device names its user by id only)."""
    on_user = {m.device_id or m.id: upn for upn, ms in methods_by_user.items() for m in ms}
    return {d.assigned_to: on_user[d.id] for d in inventory if d.assigned_to and d.id in on_user}


def _other_owners(
    session: EntraSession,
    inventory: list[Device],
    tokens: Mapping[str, Token],
    known: Mapping[str, str],
) -> dict[str, str]:
    """The UPNs of the other users holding vault tokens in Entra (who self-assigned stock, say),
    15 per call. Without User.Read.All they stay unnamed: pull still reports, by id."""
    ids = {d.assigned_to for d in inventory if d.assigned_to and d.serial in tokens} - set(known)
    if not ids:
        return {}
    try:
        return session.api.user_names(sorted(ids))
    except GraphPermissionError:
        return {}


def differences(
    inventory: list[Device],
    tokens: Mapping[str, Token],
    journal: Mapping[str, JournalEntry],
    owners: Mapping[str, str],
) -> list[Difference]:
    """Every difference between Entra's inventory and the vault, unsorted.

    ``tokens``: the vault's tokens, by serial: at least those with a serial in the inventory
    and those the vault says are in Entra (registered and after). ``journal``: the push journal
    for those serials. ``owners``: Entra user id -> UPN for the devices' users (a user missing
    from it is someone the vault cannot name, so never the vault's user)."""
    by_serial = _by_serial(inventory)
    found = _inventory_differences(inventory, tokens)
    found += _missing(by_serial, tokens)
    for serial, devices in sorted(by_serial.items()):
        token = tokens.get(serial)
        if token is None or len(devices) > 1 or token.state not in IN_ENTRA:
            continue  # unknown, or a duplicate: reported above, left to a person
        found += _one_device(token, devices[0], journal.get(serial), owners)
    return found


def _one_device(
    token: Token, device: Device, entry: JournalEntry | None, owners: Mapping[str, str]
) -> list[Difference]:
    serial, vault_upn = token.serial, token.upn or ""
    if not device.assigned_to:
        if vault_upn:
            says = f"Entra has it {device.status} with no user; the vault has it on {vault_upn}"
            return [Difference("unassigned_in_entra", serial, vault_upn, says)]
        return []  # stock waiting in Entra for a user: as it should be
    owner = owners.get(device.assigned_to, "")
    if not owner or (vault_upn and owner != vault_upn):
        # A user the vault cannot name (deleted since, say) is never the vault's user.
        named = owner or f"{device.assigned_name or 'a user'} (id {device.assigned_to})"
        says = f"Entra has it on {named}, the vault has it on {vault_upn or 'nobody'}"
        return [Difference("wrong_user", serial, owner, says)]
    stock = token.state is TokenState.REGISTERED and (
        not vault_upn or (entry is not None and entry.step == STOCK_STEP)
    )
    if stock and device.status == "activated":
        return [Difference("self_activated", serial, owner, "activated by the user")]
    if stock and not vault_upn:
        says = f"{device.status} in Entra"
        return [Difference("self_assigned", serial, owner, says)]
    if device.status != "activated":
        return [Difference("not_activated", serial, vault_upn, f"Entra says {device.status}")]
    used = _moment(device.last_used)
    if token.state is TokenState.SHIPPED and token.shipped_at and used and used > token.shipped_at:
        says = f"last used {device.last_used}, shipped {token.shipped_at.isoformat()}"
        return [Difference("used_after_shipping", serial, vault_upn, says)]
    return []


def _moment(text: str) -> datetime | None:
    """Graph's ``lastUsedDateTime`` (ISO 8601, UTC 'Z'), or None when unset or unreadable."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None
    return moment if moment is None or moment.tzinfo is not None else None


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


def _inventory_differences(
    inventory: list[Device], tokens: Mapping[str, Token]
) -> list[Difference]:
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


def _method_differences(methods_by_user: dict[str, list[OathMethod]]) -> list[Difference]:
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
    return found


def _missing(in_entra: dict[str, list[Device]], tokens: Mapping[str, Token]) -> list[Difference]:
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
        elif len(devices) > 1 and token.upn and not any(d.status == "activated" for d in devices):
            # One activated device is the token at work; the others are reported as duplicates.
            # (One device alone is judged with its user: ``_one_device``; stock without a user
            # is not activated until a user takes it.)
            says = "Entra has " + "; ".join(_describe(d) for d in devices)
            found.append(Difference("not_activated", serial, token.upn or "", says))
    return found
