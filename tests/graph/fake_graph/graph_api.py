"""The Graph (beta) resources oathdesk uses, answering as the Graph reference documents.

Where the reference is silent the fake picks one behaviour and says so (see the package
docstring's table); clients should not depend on those choices beyond the status class.
"""

from __future__ import annotations

import collections
import math
import time
from dataclasses import dataclass, field
from typing import Any

from tests.graph.fake_graph.errors import GraphError, bad_request, not_found, retry_after
from tests.graph.fake_graph.identity import MY_SIGN_INS_APP_ID, Identity
from tests.graph.fake_graph.queries import check_options, filtered, page
from tests.graph.fake_graph.state import Device, Tenant, User

Answer = tuple[int, Any, dict[str, str]]

POLICY_RW = "Policy.ReadWrite.AuthenticationMethod"
METHODS_RW = "UserAuthenticationMethod.ReadWrite.All"
READ_DEVICES = {"Policy.Read.All", POLICY_RW}
WRITE_DEVICES = {POLICY_RW}
READ_METHODS = {"UserAuthenticationMethod.Read.All", METHODS_RW}
WRITE_METHODS = {METHODS_RW}
READ_USERS = {
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
}
READ_POLICY = {"Policy.Read.All", POLICY_RW}
WRITE_POLICY = {POLICY_RW}
READ_MFA_STATE = READ_METHODS | READ_POLICY
WRITE_MFA_STATE = {POLICY_RW}
SELF_READ = {"UserAuthenticationMethod.Read", "UserAuthenticationMethod.ReadWrite"}
SELF_WRITE = {"UserAuthenticationMethod.ReadWrite"}
MFA_STATES = ("disabled", "enabled", "enforced")
SECONDARY_METHODS = ("push", "oath", "voiceMobile", "voiceAlternateMobile", "voiceOffice", "sms")


@dataclass
class Call:
    method: str
    version: str  # "beta" or "v1.0"
    segments: list[str]  # path after the version, percent-decoded
    query: dict[str, str]
    body: Any
    claims: dict[str, Any]
    url: str  # absolute URL of the resource, without the query (for nextLink)


@dataclass
class ActivationLimit:
    """The documented "200 activations per 5 minutes" when switched on by the test."""

    count: int
    per_seconds: float
    recent: collections.deque[float] = field(default_factory=collections.deque)

    def take(self) -> None:
        now = time.monotonic()
        while self.recent and now - self.recent[0] >= self.per_seconds:
            self.recent.popleft()
        if len(self.recent) >= self.count:
            wait = math.ceil(self.per_seconds - (now - self.recent[0]))
            raise GraphError(
                429,
                "TooManyRequests",
                f"More than {self.count} activations in {self.per_seconds:g} seconds.",
                {"Retry-After": retry_after(max(wait, 1))},
            )
        self.recent.append(now)


@dataclass
class GraphApi:
    tenant: Tenant
    identity: Identity
    page_size: int = 100
    delta_batch_limit: int = 100
    activation_limit: ActivationLimit | None = None
    # The reference's list example wraps each device as a hardwareOathAuthenticationMethod
    # ({"id", "device": {...}}); plain devices are served unless a test asks for that shape.
    wrap_device_list: bool = False

    # -- authorization ----------------------------------------------------------------------
    def _permissions(self, call: Call) -> set[str]:
        in_token = set(call.claims.get("roles") or call.claims.get("scp", "").split())
        if call.claims.get("appid") == MY_SIGN_INS_APP_ID:
            return in_token  # Microsoft's own app: its scopes need no consent of the tenant's
        # A revoke takes effect at once (the fake checks today's grants); a grant needs a new
        # token, as admin consent does.
        return in_token & self.identity.granted

    def _require(self, call: Call, any_of: set[str], *, directory: bool = False) -> None:
        if self._permissions(call) & any_of:
            return
        if directory:
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        raise GraphError(403, "accessDenied", "Request Authorization failed")

    def _delegated_user(self, call: Call) -> User | None:
        if call.claims.get("idtyp") != "user":
            return None
        return self.tenant.users.get(call.claims.get("oid", ""))

    # -- dispatch ---------------------------------------------------------------------------
    def handle(self, call: Call) -> Answer:
        segs = call.segments
        if segs[:1] == ["me"]:
            me = self._delegated_user(call)
            if me is None:
                raise bad_request(
                    "/me request is only valid with delegated authentication flow.",
                    code="BadRequest",
                )
            segs = ["users", me.id, *segs[1:]]
        if call.version == "v1.0" and not _in_v1(segs):
            raise _no_segment(segs)
        match segs:
            case ["users"]:
                return self._list_users(call)
            case ["users", user_ref]:
                self._only(call, "GET")
                self._require(call, READ_USERS, directory=True)
                return 200, self.tenant.user(user_ref).as_graph(), {}
            case ["users", user_ref, "authentication", *rest]:
                return self._authentication(call, user_ref, rest)
            case ["directory", "authenticationMethodDevices", "hardwareOathDevices", *rest]:
                return self._inventory(call, rest)
            case ["policies", "authenticationMethodsPolicy"]:
                return self._policy_root(call)
            case [
                "policies",
                "authenticationMethodsPolicy",
                "authenticationMethodConfigurations",
                name,
            ] if name.casefold() == "hardwareoath":
                return self._hardware_oath_policy(call)
        raise _no_segment(segs)

    def _only(self, call: Call, *methods: str) -> None:
        if call.method not in methods:
            raise GraphError(
                405, "Request_BadRequest", f"The HTTP method '{call.method}' is not allowed."
            )

    # -- users ------------------------------------------------------------------------------
    def _list_users(self, call: Call) -> Answer:
        self._only(call, "GET")
        self._require(call, READ_USERS, directory=True)
        check_options(call.query, {"$filter", "$top", "$skiptoken"})
        users = filtered(
            list(self.tenant.users.values()),
            call.query,
            {
                "userPrincipalName": lambda u: u.upn,
                "id": lambda u: u.id,
                "displayName": lambda u: u.display_name,
                "mail": lambda u: u.upn,
                "userType": lambda u: "Guest" if u.guest else "Member",
            },
        )
        return 200, page([u.as_graph() for u in users], call.query, call.url, self.page_size), {}

    def _authentication(self, call: Call, user_ref: str, rest: list[str]) -> Answer:
        me = self._delegated_user(call)
        is_self = me is not None and self.tenant.find_user(user_ref) is me
        reads = READ_METHODS | (SELF_READ if is_self else set())
        writes = WRITE_METHODS | (SELF_WRITE if is_self else set())
        if rest == ["requirements"]:
            self._require(call, READ_MFA_STATE if call.method == "GET" else WRITE_MFA_STATE)
        else:
            self._require(call, reads if call.method == "GET" else writes)
        user = self.tenant.user(user_ref)  # after the permission check: 403 before 404
        match rest:
            case ["methods"]:
                self._only(call, "GET")
                return 200, {"value": self._all_methods(user)}, {}
            case ["hardwareOathMethods"]:
                return self._hardware_methods(call, user)
            case ["hardwareOathMethods", "assignAndActivate"]:
                self._only(call, "POST")
                self._take_activation()
                device_ref = call.body.get("device") if isinstance(call.body, dict) else None
                device_id = device_ref.get("id") if isinstance(device_ref, dict) else None
                if not isinstance(device_id, str):
                    raise bad_request('The request body must contain "device": {"id": "..."}.')
                self.tenant.assign_and_activate(user, self.tenant.device(device_id), call.body)
                return 204, None, {}
            case ["hardwareOathMethods", "assignAndActivateBySerialNumber"]:
                self._only(call, "POST")
                self._take_activation()
                serial = call.body.get("serialNumber") if isinstance(call.body, dict) else None
                device = self.tenant.device_by_serial(serial)
                self.tenant.assign_and_activate(user, device, call.body)
                return 204, None, {}
            case ["hardwareOathMethods", method_id]:
                self._only(call, "GET", "DELETE")
                device = self.tenant.method(user, method_id)
                if call.method == "GET":
                    return 200, self.tenant.method_json(device), {}
                self.tenant.unassign(device)
                return 204, None, {}
            case ["hardwareOathMethods", method_id, "activate"]:
                self._only(call, "POST")
                device = self.tenant.method(user, method_id)
                self._take_activation()
                self.tenant.activate(user, device, call.body)
                return 204, None, {}
            case ["hardwareOathMethods", method_id, "deactivate"]:
                self._only(call, "POST")
                self.tenant.deactivate(self.tenant.method(user, method_id))
                return 204, None, {}
            case ["softwareOathMethods"]:
                self._only(call, "GET")
                methods = [self.tenant.software_json(m) for m in self.tenant.software_of(user)]
                return 200, {"value": methods}, {}
            case ["softwareOathMethods", method_id]:
                self._only(call, "GET", "DELETE")
                method = self.tenant.software_methods.get(method_id)
                if method is None or method.user_id != user.id:
                    raise not_found(method_id)
                if call.method == "GET":
                    return 200, self.tenant.software_json(method), {}
                del self.tenant.software_methods[method_id]
                return 204, None, {}
            case ["requirements"]:
                return self._requirements(call, user)
            case ["signInPreferences"]:
                return self._sign_in_preferences(call, user)
        raise _no_segment(rest)

    def _all_methods(self, user: User) -> list[dict[str, Any]]:
        password = {
            "@odata.type": "#microsoft.graph.passwordAuthenticationMethod",
            "id": "28c10230-6103-485e-b985-444c60001490",
            "password": None,
        }
        hardware = [self.tenant.method_json(d) for d in self.tenant.hardware_of(user)]
        software = [self.tenant.software_json(m) for m in self.tenant.software_of(user)]
        return [password, *hardware, *software]

    def _hardware_methods(self, call: Call, user: User) -> Answer:
        self._only(call, "GET", "POST")
        if call.method == "GET":
            check_options(call.query, set())
            methods = [self.tenant.method_json(d) for d in self.tenant.hardware_of(user)]
            return 200, {"value": methods}, {}
        device = self.tenant.assign(user, call.body)
        return 201, self.tenant.method_json(device), {}

    def _requirements(self, call: Call, user: User) -> Answer:
        self._only(call, "GET", "PATCH")
        if call.method == "GET":
            return 200, _requirements_json(user), {}
        body = call.body if isinstance(call.body, dict) else {}
        state = body.get("perUserMfaState")
        if set(body) != {"perUserMfaState"} or state not in MFA_STATES:
            raise bad_request("perUserMfaState must be one of: disabled, enabled, enforced.")
        has_mfa_method = self.tenant.oath_method_count(user) > 0
        # Reference: setting "enabled" on a user who already registered MFA gives "enforced".
        user.per_user_mfa_state = "enforced" if state == "enabled" and has_mfa_method else state
        return 204, None, {}

    def _sign_in_preferences(self, call: Call, user: User) -> Answer:
        self._only(call, "GET", "PATCH")
        if call.method == "GET":
            return 200, _preferences_json(user), {}
        body = call.body if isinstance(call.body, dict) else None
        allowed = {
            "userPreferredMethodForSecondaryAuthentication",
            "isSystemPreferredAuthenticationMethodEnabled",
        }
        if not body or set(body) - allowed:
            raise bad_request(f"Only {sorted(allowed)} can be updated.")
        if "userPreferredMethodForSecondaryAuthentication" in body:
            method = body["userPreferredMethodForSecondaryAuthentication"]
            if method not in SECONDARY_METHODS:
                raise bad_request(f"userPreferredMethodForSecondaryAuthentication: {method!r}?")
            user.preferred_secondary_method = method
        if "isSystemPreferredAuthenticationMethodEnabled" in body:
            flag = body["isSystemPreferredAuthenticationMethodEnabled"]
            if not isinstance(flag, bool):
                raise bad_request("isSystemPreferredAuthenticationMethodEnabled must be boolean.")
            user.system_preferred_enabled = flag
        return 204, None, {}

    def _take_activation(self) -> None:
        if self.activation_limit is not None:
            self.activation_limit.take()

    # -- inventory --------------------------------------------------------------------------
    def _inventory(self, call: Call, rest: list[str]) -> Answer:
        if not rest:
            if call.method == "GET":
                self._require(call, READ_DEVICES)
                return self._list_devices(call)
            self._only(call, "POST", "PATCH")
            if isinstance(call.body, dict) and call.body.get("@context") == "#$delta":
                return self._bulk_create(call)
            self._only(call, "POST")
            return self._create_device(call)
        if len(rest) != 1:
            raise _no_segment(rest)
        self._only(call, "GET", "PATCH", "DELETE")
        self._require(call, READ_DEVICES if call.method == "GET" else WRITE_DEVICES)
        device = self.tenant.device(rest[0])
        if call.method == "GET":
            return 200, self.tenant.device_json(device), {}
        if call.method == "PATCH":
            self.tenant.update_device(device, call.body)
            return 200, self.tenant.device_json(device), {}
        self.tenant.delete_device(device)
        return 204, None, {}

    def _list_devices(self, call: Call) -> Answer:
        check_options(call.query, {"$filter", "$top", "$skiptoken"})
        devices = filtered(
            list(self.tenant.devices.values()),
            call.query,
            {
                "serialNumber": lambda d: d.serial_number,
                "status": lambda d: d.status,
                "id": lambda d: d.id,
                "manufacturer": lambda d: d.manufacturer,
                "model": lambda d: d.model,
                "assignedTo/id": lambda d: d.assigned_to or "",
            },
        )
        view = self.tenant.method_json if self.wrap_device_list else self.tenant.device_json
        # Only the page's devices are rendered: rendering the whole inventory for each page
        # made listing 10,000 devices quadratic (benchmarks/sync_bench.py measures the client).
        body = page(devices, call.query, call.url, self.page_size)
        body["value"] = [view(d) for d in body["value"]]
        return 200, body, {}

    def _require_assign_permission(self, call: Call, body: Any) -> None:
        # Creating and assigning in one request also needs the user-methods permission.
        if isinstance(body, dict) and "assignTo" in body:
            self._require(call, WRITE_METHODS)

    def _create_device(self, call: Call) -> Answer:
        self._require(call, WRITE_DEVICES)
        self._require_assign_permission(call, call.body)
        device = self.tenant.create_device(call.body)
        return 201, self.tenant.device_json(device), {}

    def _bulk_create(self, call: Call) -> Answer:
        self._require(call, WRITE_DEVICES)
        items = call.body.get("value")
        if not isinstance(items, list) or not items:
            raise bad_request('A $delta body needs a non-empty "value" array.')
        if len(items) > self.delta_batch_limit:
            raise bad_request(
                f"A $delta body can hold at most {self.delta_batch_limit} tokens (the fake's "
                "limit; the service's is not documented)."
            )
        content_ids = [item.get("@contentId") if isinstance(item, dict) else None for item in items]
        if any(not isinstance(c, str) or not c for c in content_ids):
            raise bad_request('Every item of a $delta body needs a string "@contentId".')
        if len(set(content_ids)) != len(content_ids):
            raise bad_request("The @contentId values of a $delta body must be unique.")
        for item in items:
            self._require_assign_permission(call, item)
        results: list[dict[str, Any]] = []
        for content_id, item in zip(content_ids, items, strict=True):
            try:
                device = self.tenant.create_device(item)
            except GraphError as exc:
                results.append(
                    {
                        "@contentId": content_id,
                        "error": {"code": exc.code, "message": exc.message, "status": exc.status},
                    }
                )
                continue
            results.append({"@contentId": content_id, **self.tenant.method_json(device)})
        return 201, {"value": results}, {}

    # -- policy -----------------------------------------------------------------------------
    def _hardware_oath_config(self) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.hardwareOathAuthenticationMethodConfiguration",
            "id": "HardwareOath",
            "state": "enabled" if self.tenant.hardware_oath_enabled else "disabled",
            "excludeTargets": [],
            "includeTargets": [
                {"targetType": "group", "id": "all_users", "isRegistrationRequired": False}
            ],
        }

    def _policy_root(self, call: Call) -> Answer:
        self._only(call, "GET")
        self._require(call, READ_POLICY)
        return (
            200,
            {
                "@odata.type": "#microsoft.graph.authenticationMethodsPolicy",
                "id": "authenticationMethodsPolicy",
                "displayName": "Authentication Methods Policy",
                "policyVersion": "1.5",
                "authenticationMethodConfigurations": [self._hardware_oath_config()],
            },
            {},
        )

    def _hardware_oath_policy(self, call: Call) -> Answer:
        self._only(call, "GET", "PATCH")
        if call.method == "GET":
            self._require(call, READ_POLICY)
            return 200, self._hardware_oath_config(), {}
        self._require(call, WRITE_POLICY)
        body = call.body if isinstance(call.body, dict) else {}
        state = body.get("state")
        if state not in ("enabled", "disabled"):
            raise bad_request("state must be 'enabled' or 'disabled'.")
        self.tenant.hardware_oath_enabled = state == "enabled"
        return 204, None, {}


def _requirements_json(user: User) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.strongAuthenticationRequirements",
        "perUserMfaState": user.per_user_mfa_state,
    }


def _preferences_json(user: User) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.signInPreferences",
        "userPreferredMethodForSecondaryAuthentication": user.preferred_secondary_method,
        "isSystemPreferredAuthenticationMethodEnabled": user.system_preferred_enabled,
        "systemPreferredAuthenticationMethod": None,
    }


def _in_v1(segments: list[str]) -> bool:
    if segments[:1] != ["users"] or len(segments) <= 2:
        return segments[:1] == ["users"]
    return segments[2:4] in (
        ["authentication", "softwareOathMethods"],
        ["authentication", "methods"],
    )


def _no_segment(segments: list[str]) -> GraphError:
    last = segments[-1] if segments else ""
    return GraphError(400, "BadRequest", f"Resource not found for the segment '{last}'.")


__all__ = ["ActivationLimit", "Answer", "Call", "Device", "GraphApi"]
