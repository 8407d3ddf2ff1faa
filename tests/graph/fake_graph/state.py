"""The fake tenant's state and the rules Entra applies to hardware OATH tokens.

Everything here runs under ``Tenant.lock`` (the HTTP layer takes it for each request), so the
operations are plain Python. Rules and their sources:

- a device's ``secretKey`` is write-only: never in an answer (``null``), kept for code checks;
- ``timeIntervalInSeconds`` 30 or 60, ``hashFunction`` ``hmacsha1`` (default) or ``hmacsha256``,
  ``serialNumber``/``manufacturer``/``model``/``secretKey`` required (Graph reference, create);
- activation accepts a code within +-1 day at 30 s and +-2 days at 60 s (Entra docs, 2025);
- at most 5 OATH methods (hardware + software) per user; a token belongs to one user; no hardware
  tokens for guests (Entra OATH docs);
- a device can be changed or deleted only when unassigned (Graph reference, update/delete).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.graph.fake_graph.errors import GraphError, bad_request, conflict, not_found

MAX_OATH_METHODS_PER_USER = 5
# Activation window per time step (documented 2025): +-1 day at 30 s, +-2 days at 60 s.
ACTIVATION_WINDOW_SECONDS = {30: 86_400, 60: 172_800}
DEVICE_STATUSES = ("available", "assigned", "activated", "failedActivation")
HASH_FUNCTIONS = {"hmacsha1": hashlib.sha1, "hmacsha256": hashlib.sha256}
_BASE32 = re.compile(r"^[A-Za-z2-7]+=*$")
_CODE = re.compile(r"^[0-9]{6}$")


def iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class User:
    id: str
    upn: str
    display_name: str
    guest: bool = False
    per_user_mfa_state: str = "disabled"
    preferred_secondary_method: str | None = None
    system_preferred_enabled: bool = False

    def as_graph(self) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.user",
            "id": self.id,
            "userPrincipalName": self.upn,
            "displayName": self.display_name,
            "mail": None if self.guest else self.upn,
            "userType": "Guest" if self.guest else "Member",
            "accountEnabled": True,
        }


@dataclass
class Device:
    id: str
    serial_number: str
    manufacturer: str
    model: str
    secret_key: str  # base32, as uploaded; never leaves the fake through the API
    time_interval: int
    hash_function: str
    display_name: str | None
    created: dt.datetime
    status: str = "available"
    assigned_to: str | None = None  # user id
    assigned_at: dt.datetime | None = None
    last_used: dt.datetime | None = None


@dataclass
class SoftwareMethod:
    id: str
    user_id: str
    created: dt.datetime


@dataclass
class Tenant:
    tenant_id: str
    domain: str
    clock_offset: float = 0.0
    lock: threading.RLock = field(default_factory=threading.RLock)
    users: dict[str, User] = field(default_factory=dict)
    # Deleted users: /users no longer finds them, but a device keeps naming its user by id.
    deleted_users: dict[str, User] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    software_methods: dict[str, SoftwareMethod] = field(default_factory=dict)
    hardware_oath_enabled: bool = True

    # -- time -------------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.clock_offset)

    # -- users ------------------------------------------------------------------------------
    def add_user(self, upn: str, display_name: str = "", *, guest: bool = False) -> User:
        if self.find_user(upn) is not None:
            raise ValueError(f"user {upn} already exists in the fake tenant")
        user = User(str(uuid.uuid4()), upn, display_name or upn.split("@")[0], guest)
        self.users[user.id] = user
        return user

    def delete_user(self, upn: str) -> None:
        user = self.user(upn)
        self.deleted_users[user.id] = self.users.pop(user.id)

    def find_user(self, id_or_upn: str) -> User | None:
        if id_or_upn in self.users:
            return self.users[id_or_upn]
        wanted = id_or_upn.casefold()
        return next((u for u in self.users.values() if u.upn.casefold() == wanted), None)

    def user(self, id_or_upn: str) -> User:
        found = self.find_user(id_or_upn)
        if found is None:
            raise not_found(id_or_upn)
        return found

    # -- views ------------------------------------------------------------------------------
    def device_json(self, device: Device) -> dict[str, Any]:
        owner = (
            self.users.get(device.assigned_to) or self.deleted_users.get(device.assigned_to)
            if device.assigned_to
            else None
        )
        return {
            "@odata.type": "#microsoft.graph.hardwareOathTokenAuthenticationMethodDevice",
            "id": device.id,
            "displayName": device.display_name,
            "serialNumber": device.serial_number,
            "manufacturer": device.manufacturer,
            "model": device.model,
            "secretKey": None,
            "timeIntervalInSeconds": device.time_interval,
            "status": device.status,
            "lastUsedDateTime": iso(device.last_used),
            "hashFunction": device.hash_function,
            "assignedTo": None
            if owner is None
            else {"id": owner.id, "displayName": owner.display_name},
        }

    def method_json(self, device: Device) -> dict[str, Any]:
        # The reference's examples give the user's method the id of its device.
        return {
            "@odata.type": "#microsoft.graph.hardwareOathAuthenticationMethod",
            "id": device.id,
            "createdDateTime": iso(device.assigned_at),
            "device": self.device_json(device),
        }

    def software_json(self, method: SoftwareMethod) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.softwareOathAuthenticationMethod",
            "id": method.id,
            "secretKey": None,
            "createdDateTime": iso(method.created),
        }

    def hardware_of(self, user: User) -> list[Device]:
        return [d for d in self.devices.values() if d.assigned_to == user.id]

    def software_of(self, user: User) -> list[SoftwareMethod]:
        return [m for m in self.software_methods.values() if m.user_id == user.id]

    def oath_method_count(self, user: User) -> int:
        return len(self.hardware_of(user)) + len(self.software_of(user))

    # -- inventory --------------------------------------------------------------------------
    def create_device(
        self, body: Any, *, check_duplicate: bool = True, check_limit: bool = True
    ) -> Device:
        """Validate a create body (single POST or one $delta item) and add the device."""
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        allowed = {
            "@odata.type",
            "@contentId",
            "serialNumber",
            "manufacturer",
            "model",
            "secretKey",
            "timeIntervalInSeconds",
            "hashFunction",
            "displayName",
            "assignTo",
        }
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise bad_request(
                f"Property '{unknown[0]}' does not exist on type "
                "'microsoft.graph.hardwareOathTokenAuthenticationMethodDevice'."
            )
        for name in ("serialNumber", "manufacturer", "model", "secretKey"):
            value = body.get(name)
            if not isinstance(value, str) or not value.strip():
                raise bad_request(f"The property '{name}' is required and must be a string.")
        secret = body["secretKey"].replace(" ", "")
        if not _BASE32.match(secret) or len(secret.rstrip("=")) > 128:
            raise bad_request("secretKey must be base32 (A-Z, 2-7), at most 128 characters.")
        interval = _interval(body.get("timeIntervalInSeconds"))
        hash_function = body.get("hashFunction", "hmacsha1")
        if hash_function not in HASH_FUNCTIONS:
            raise bad_request("hashFunction must be 'hmacsha1' or 'hmacsha256'.")
        display_name = body.get("displayName")
        if display_name is not None and not isinstance(display_name, str):
            raise bad_request("displayName must be a string.")
        owner: User | None = None
        if "assignTo" in body:
            owner = self._assignee(body["assignTo"])
        serial = body["serialNumber"]
        if check_duplicate and any(d.serial_number == serial for d in self.devices.values()):
            raise conflict(f"A hardware OATH token with serial number '{serial}' already exists.")
        device = Device(
            id=str(uuid.uuid4()),
            serial_number=serial,
            manufacturer=body["manufacturer"],
            model=body["model"],
            secret_key=secret.upper(),
            time_interval=interval,
            hash_function=hash_function,
            display_name=display_name,
            created=self.now(),
        )
        if owner is not None:  # checks first: a refused assignment creates nothing
            self._assign(device, owner, check_limit=check_limit)
        self.devices[device.id] = device
        return device

    def _assignee(self, assign_to: Any) -> User:
        if not isinstance(assign_to, dict) or not isinstance(assign_to.get("id"), str):
            raise bad_request("assignTo must be an object with the user's 'id'.")
        return self.user(assign_to["id"])

    def device(self, device_id: str) -> Device:
        found = self.devices.get(device_id)
        if found is None:
            raise not_found(device_id)
        return found

    def device_by_serial(self, serial: Any) -> Device:
        if not isinstance(serial, str) or not serial:
            raise bad_request("serialNumber is required and must be a string.")
        matches = [d for d in self.devices.values() if d.serial_number == serial]
        if not matches:
            raise not_found(serial)
        return matches[0]

    def update_device(self, device: Device, body: Any) -> None:
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        if "secretKey" in body:
            raise bad_request("secretKey can't be changed; delete the token and create it again.")
        updatable = {"manufacturer", "model", "timeIntervalInSeconds", "hashFunction"}
        updatable |= {"displayName", "@odata.type"}
        unknown = sorted(set(body) - updatable)
        if unknown:
            raise bad_request(f"Property '{unknown[0]}' can't be updated.")
        if device.assigned_to is not None:
            raise conflict("The hardware OATH token must be unassigned before it can be updated.")
        for name in ("manufacturer", "model"):
            if name in body:
                if not isinstance(body[name], str) or not body[name].strip():
                    raise bad_request(f"{name} must be a non-empty string.")
                setattr(device, name, body[name])
        if "timeIntervalInSeconds" in body:
            device.time_interval = _interval(body["timeIntervalInSeconds"])
        if "hashFunction" in body:
            if body["hashFunction"] not in HASH_FUNCTIONS:
                raise bad_request("hashFunction must be 'hmacsha1' or 'hmacsha256'.")
            device.hash_function = body["hashFunction"]
        if "displayName" in body:
            if body["displayName"] is not None and not isinstance(body["displayName"], str):
                raise bad_request("displayName must be a string.")
            device.display_name = body["displayName"]

    def delete_device(self, device: Device) -> None:
        if device.assigned_to is not None:
            raise conflict("The hardware OATH token must be unassigned before it can be deleted.")
        del self.devices[device.id]

    # -- per user ---------------------------------------------------------------------------
    def _assign(self, device: Device, user: User, *, check_limit: bool = True) -> None:
        if device.assigned_to == user.id:
            raise conflict("The hardware OATH token is already assigned to this user.")
        if device.assigned_to is not None:
            raise conflict("The hardware OATH token is already assigned to another user.")
        if user.guest:
            raise bad_request("Hardware OATH tokens can't be assigned to guest users.")
        if not self.hardware_oath_enabled:
            raise bad_request(
                "The hardware OATH authentication method is disabled in the authentication "
                "methods policy."
            )
        if check_limit and self.oath_method_count(user) >= MAX_OATH_METHODS_PER_USER:
            raise bad_request(
                f"The user already has {MAX_OATH_METHODS_PER_USER} OATH methods, the maximum."
            )
        device.assigned_to = user.id
        device.assigned_at = self.now()
        device.status = "assigned"

    def assign(self, user: User, body: Any) -> Device:
        device = self.device(_device_id(body))
        self._assign(device, user)
        return device

    def method(self, user: User, method_id: str) -> Device:
        device = self.devices.get(method_id)
        if device is None or device.assigned_to != user.id:
            raise not_found(method_id)
        return device

    def activate(self, user: User, device: Device, body: Any) -> None:
        code, display_name = _activation_fields(body)
        if device.status == "activated":
            raise bad_request("The hardware OATH token is already activated.")
        if not self.hardware_oath_enabled:
            raise bad_request(
                "The hardware OATH authentication method is disabled in the authentication "
                "methods policy."
            )
        if not self.code_is_valid(device, code):
            device.status = "failedActivation"
            raise bad_request(
                "The verification code is not valid for this hardware OATH token.",
                code="invalidVerificationCode",
            )
        device.status = "activated"
        device.last_used = self.now()
        if display_name is not None:
            device.display_name = display_name

    def assign_and_activate(self, user: User, device: Device, body: Any) -> None:
        _activation_fields(body)  # a malformed code is refused before anything changes
        if device.assigned_to != user.id:
            self._assign(device, user)
        self.activate(user, device, body)

    def deactivate(self, device: Device) -> None:
        device.status = "assigned"

    def unassign(self, device: Device) -> None:
        device.assigned_to = None
        device.assigned_at = None
        device.status = "available"

    def add_software_method(self, user: User, *, check_limit: bool = True) -> SoftwareMethod:
        if check_limit and self.oath_method_count(user) >= MAX_OATH_METHODS_PER_USER:
            raise ValueError(f"{user.upn} already has {MAX_OATH_METHODS_PER_USER} OATH methods")
        method = SoftwareMethod(str(uuid.uuid4()), user.id, self.now())
        self.software_methods[method.id] = method
        return method

    # -- codes ------------------------------------------------------------------------------
    def code_is_valid(self, device: Device, code: str) -> bool:
        key = _base32_key(device.secret_key)
        digest = HASH_FUNCTIONS[device.hash_function]
        step_now = int(self.now().timestamp()) // device.time_interval
        window = ACTIVATION_WINDOW_SECONDS[device.time_interval] // device.time_interval
        # From the current step outwards, so the usual (current) code costs one HMAC; this is a
        # test double, whose timing protects nothing.
        for distance in range(window + 1):
            for step in {step_now - distance, step_now + distance}:
                if hmac.compare_digest(totp(key, step, digest), code):
                    return True
        return False


def totp(key: bytes, step: int, digest: Any) -> str:
    """RFC 6238 (dynamic truncation of RFC 4226), six digits."""
    mac = hmac.new(key, step.to_bytes(8, "big"), digest).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def _base32_key(secret: str) -> bytes:
    text = secret.rstrip("=").upper()
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except binascii.Error as exc:  # validated at upload, so this is the fake's own bug
        raise GraphError(500, "generalException", "stored secret is not base32") from exc


def _interval(value: Any) -> int:
    # The bulk example in the reference sends "30" as a string; the single create sends 30.
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or value not in (30, 60):
        raise bad_request("timeIntervalInSeconds is required and must be 30 or 60.")
    return int(value)


def _device_id(body: Any) -> str:
    device = body.get("device") if isinstance(body, dict) else None
    if not isinstance(device, dict) or not isinstance(device.get("id"), str):
        raise bad_request('The request body must contain "device": {"id": "..."}.')
    return str(device["id"])


def _activation_fields(body: Any) -> tuple[str, str | None]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    code = body.get("verificationCode")
    if not isinstance(code, str) or not _CODE.match(code):
        raise bad_request("verificationCode must be a string of exactly 6 digits.")
    display_name = body.get("displayName")
    if display_name is not None and not isinstance(display_name, str):
        raise bad_request("displayName must be a string.")
    return code, display_name
