"""``FakeGraph``: the handle a test gets from the ``fake_graph`` fixture (see the package doc)."""

from __future__ import annotations

import datetime as dt
import ssl
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.graph.fake_graph.graph_api import ActivationLimit, GraphApi
from tests.graph.fake_graph.identity import Identity
from tests.graph.fake_graph.server import Fault, Router, RunningServer
from tests.graph.fake_graph.state import Tenant
from tests.graph.fake_graph.tls import certificate_thumbprints, key_material, write_tls_files

DEFAULT_PERMISSIONS = (
    "Policy.ReadWrite.AuthenticationMethod",
    "UserAuthenticationMethod.ReadWrite.All",
    "User.Read.All",
    "Policy.Read.All",
)
TENANT_DOMAIN = "contoso.onmicrosoft.com"
ADMIN_UPN = f"admin@{TENANT_DOMAIN}"


class FakeGraph:
    """A running fake of Microsoft Graph (beta) and the Microsoft identity platform."""

    def __init__(self, directory: Path) -> None:
        files = write_tls_files(directory)
        material = key_material()
        self.tenant_id = str(uuid.uuid4())
        self.tenant_domain = TENANT_DOMAIN
        self.client_id = str(uuid.uuid4())
        self.client_secret = "fake~" + uuid.uuid4().hex  # a value, not a secret worth hiding
        self.public_client_id = str(uuid.uuid4())
        self.ca_bundle = str(files.ca_bundle)
        self.client_certificate_path = str(files.client_cert)
        self.client_key_path = str(files.client_key)
        self.client_certificate_pem = material.client_cert_pem.decode()
        self.client_key_pem = material.client_key_pem.decode()
        self.client_certificate_thumbprint = certificate_thumbprints(material.client_cert_pem)[0]

        self._tenant = Tenant(self.tenant_id, TENANT_DOMAIN)
        self._identity = Identity(
            tenant=self._tenant,
            client_id=self.client_id,
            client_secret=self.client_secret,
            public_client_id=self.public_client_id,
            client_cert_pem=material.client_cert_pem,
            signing_key=material.token_signing_key,
            granted=set(DEFAULT_PERMISSIONS),
            device_code_user=ADMIN_UPN,
        )
        self._api = GraphApi(self._tenant, self._identity)
        self._router = Router(self._tenant, self._identity, self._api)
        self._tenant.add_user(ADMIN_UPN, "Helpdesk Admin")
        self._server = RunningServer(self._router, str(files.server_cert), str(files.server_key))
        self.authority_host = f"https://127.0.0.1:{self._server.port}"
        self.authority_url = f"{self.authority_host}/{self.tenant_id}"
        self.graph_url = f"{self.authority_host}/beta"
        self.token_endpoint = f"{self.authority_url}/oauth2/v2.0/token"
        self.instance_discovery_url = f"{self.authority_host}/common/discovery/instance"
        self._identity.origin = self.authority_host

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting only the fake's CA (for httpx's ``verify=``)."""
        return ssl.create_default_context(cafile=self.ca_bundle)

    def stop(self) -> None:
        self._server.stop()

    # -- tenant set-up ----------------------------------------------------------------------
    def add_user(self, upn: str, display_name: str = "", *, guest: bool = False) -> str:
        with self._tenant.lock:
            return self._tenant.add_user(upn, display_name, guest=guest).id

    def delete_user(self, upn: str) -> None:
        """Delete ``upn`` from the tenant: /users no longer finds them, while their devices
        still name them by id in the inventory (what oathdesk must not take for a user)."""
        with self._tenant.lock:
            self._tenant.delete_user(upn)

    def user_id(self, upn: str) -> str:
        with self._tenant.lock:
            return self._tenant.user(upn).id

    def add_device(
        self,
        serial: str,
        secret: str,
        *,
        time_interval: int = 30,
        hash_function: str = "hmacsha1",
        manufacturer: str = "Token2",
        model: str = "C202",
        assign_to: str | None = None,
        activated: bool = False,
        allow_duplicate_serial: bool = False,
        allow_over_limit: bool = False,
    ) -> str:
        """Seed the inventory as if uploaded earlier.

        ``allow_duplicate_serial`` mimics a token uploaded both by CSV and by Graph;
        ``allow_over_limit`` lets a user end up with more than 5 OATH methods (legacy states).
        """
        body: dict[str, Any] = {
            "serialNumber": serial,
            "secretKey": secret,
            "timeIntervalInSeconds": time_interval,
            "hashFunction": hash_function,
            "manufacturer": manufacturer,
            "model": model,
        }
        with self._tenant.lock:
            if assign_to is not None:
                body["assignTo"] = {"id": self._tenant.user(assign_to).id}
            device = self._tenant.create_device(
                body, check_duplicate=not allow_duplicate_serial, check_limit=not allow_over_limit
            )
            if activated:
                device.status = "activated"
            return device.id

    def add_software_method(self, upn: str, *, allow_over_limit: bool = False) -> str:
        with self._tenant.lock:
            user = self._tenant.user(upn)
            return self._tenant.add_software_method(user, check_limit=not allow_over_limit).id

    def set_policy(self, enabled: bool) -> None:
        with self._tenant.lock:
            self._tenant.hardware_oath_enabled = enabled

    @property
    def policy_enabled(self) -> bool:
        return self._tenant.hardware_oath_enabled

    # -- permissions and sign-in ------------------------------------------------------------
    def grant(self, *permissions: str) -> None:
        with self._tenant.lock:
            self._identity.granted.update(permissions)

    def revoke(self, *permissions: str) -> None:
        with self._tenant.lock:
            self._identity.granted.difference_update(permissions)

    @property
    def permissions(self) -> set[str]:
        return set(self._identity.granted)

    def approve_device_code(self, upn: str | None = None) -> None:
        """The user (default admin@contoso.onmicrosoft.com) completes the device-code sign-in.

        Approves every pending flow; with none pending, the next flow started is approved.
        """
        with self._tenant.lock:
            self._identity.approve(upn)

    def decline_device_code(self) -> None:
        with self._tenant.lock:
            self._identity.decline()

    @property
    def device_code_interval(self) -> int:
        return self._identity.device_code_interval

    @device_code_interval.setter
    def device_code_interval(self, seconds: int) -> None:
        self._identity.device_code_interval = seconds

    def expire_tokens(self) -> None:
        """Every access token issued so far is refused from now on (401, token expired).

        msal keeps app-only tokens in its cache until they near expiry, so a client that wants
        a fresh one after a 401 must bypass the cache (or build a new application object).
        """
        with self._tenant.lock:
            self._identity.expire_all()

    # -- throttling and faults --------------------------------------------------------------
    def throttle(
        self,
        count: int,
        *,
        status: int = 429,
        retry_after: float | None = 0.1,
        path_contains: str = "",
    ) -> None:
        """The next ``count`` matching requests answer ``status``; ``retry_after=None`` sends
        no Retry-After header (the client must back off on its own)."""
        with self._tenant.lock:
            self._router.faults.append(
                Fault(
                    count,
                    status,
                    retry_after=retry_after,
                    throttle=True,
                    path_contains=path_contains,
                )
            )

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 500,
        drop_connection: bool = False,
        path_contains: str = "",
        after_processing: bool = False,
    ) -> None:
        with self._tenant.lock:
            self._router.faults.append(
                Fault(
                    count,
                    status,
                    drop=drop_connection,
                    apply=after_processing,
                    path_contains=path_contains,
                )
            )

    def delay_next(
        self, count: int = 1, *, seconds: float, path_contains: str = "", method: str = ""
    ) -> None:
        """The next matching requests (of HTTP ``method`` if given) are carried out but answered
        ``seconds`` late (for the client's timeouts: a timed-out request may well have worked;
        and for killing a client at a chosen point, once the request is in ``requests``)."""
        with self._tenant.lock:
            self._router.faults.append(
                Fault(
                    count,
                    200,
                    apply=True,
                    delay=seconds,
                    path_contains=path_contains,
                    method=method,
                )
            )

    def limit_activations(self, count: int = 200, per_seconds: float = 300) -> None:
        """Switch on the documented limit: more than ``count`` activations in the window -> 429."""
        with self._tenant.lock:
            self._api.activation_limit = ActivationLimit(count, per_seconds)

    @property
    def page_size(self) -> int:
        return self._api.page_size

    @page_size.setter
    def page_size(self, size: int) -> None:
        self._api.page_size = size

    @property
    def delta_batch_limit(self) -> int:
        return self._api.delta_batch_limit

    @delta_batch_limit.setter
    def delta_batch_limit(self, size: int) -> None:
        self._api.delta_batch_limit = size

    @property
    def wrap_device_list(self) -> bool:
        """Serve the device list in the reference example's shape: {"id", "device": {...}}."""
        return self._api.wrap_device_list

    @wrap_device_list.setter
    def wrap_device_list(self, wrap: bool) -> None:
        self._api.wrap_device_list = wrap

    # -- what users do at My Security Info ------------------------------------------------------
    def self_service_token(self, upn: str) -> str:
        """The delegated token the security info page holds for ``upn`` (self permissions)."""
        with self._tenant.lock:
            return self._identity.self_service_token(self._tenant.user(upn))

    def self_assign(
        self, upn: str, serial: str, code: str, *, client: httpx.Client | None = None
    ) -> int:
        """``upn`` registers the hardware token ``serial`` with a code off it, as My Security
        Info does: a real ``POST /me/authentication/hardwareOathMethods/
        assignAndActivateBySerialNumber`` with the user's own token. Returns the HTTP status
        (204 done; 400 a wrong code, 404 no such serial, 409 someone else's token)."""
        body = {"serialNumber": serial, "verificationCode": code, "displayName": serial}
        path = "/me/authentication/hardwareOathMethods/assignAndActivateBySerialNumber"
        headers = {"Authorization": f"Bearer {self.self_service_token(upn)}"}
        if client is not None:
            return client.post(self.graph_url + path, json=body, headers=headers).status_code
        with httpx.Client(verify=self.ssl_context(), timeout=10) as own:
            return own.post(self.graph_url + path, json=body, headers=headers).status_code

    def set_last_used(self, serial: str, when: dt.datetime) -> None:
        """Test control: Entra saw the token ``serial`` used to sign in at ``when``
        (``lastUsedDateTime``; every device with that serial)."""
        with self._tenant.lock:
            matches = [d for d in self._tenant.devices.values() if d.serial_number == serial]
            if not matches:
                raise KeyError(f"no device with serial {serial} in the fake inventory")
            for device in matches:
                device.last_used = when

    # -- clock ------------------------------------------------------------------------------
    @property
    def clock_offset(self) -> float:
        return self._tenant.clock_offset

    @clock_offset.setter
    def clock_offset(self, seconds: float) -> None:
        self._tenant.clock_offset = seconds

    # -- inspection -------------------------------------------------------------------------
    @property
    def devices(self) -> list[dict[str, Any]]:
        """The inventory as Graph shows it, plus the server-side ``secretKey``."""
        with self._tenant.lock:
            return [
                {**self._tenant.device_json(d), "secretKey": d.secret_key}
                for d in self._tenant.devices.values()
            ]

    def device(self, serial: str) -> dict[str, Any]:
        matches = [d for d in self.devices if d["serialNumber"] == serial]
        if not matches:
            raise KeyError(f"no device with serial {serial} in the fake inventory")
        return matches[0]

    def methods_of(self, upn: str) -> list[dict[str, Any]]:
        """The user's hardware and software OATH methods, as Graph lists them."""
        with self._tenant.lock:
            user = self._tenant.user(upn)
            hardware = [self._tenant.method_json(d) for d in self._tenant.hardware_of(user)]
            software = [self._tenant.software_json(m) for m in self._tenant.software_of(user)]
            return hardware + software

    def mfa_state_of(self, upn: str) -> str:
        with self._tenant.lock:
            return self._tenant.user(upn).per_user_mfa_state

    def sign_in_preferences_of(self, upn: str) -> dict[str, Any]:
        with self._tenant.lock:
            user = self._tenant.user(upn)
            return {
                "userPreferredMethodForSecondaryAuthentication": user.preferred_secondary_method,
                "isSystemPreferredAuthenticationMethodEnabled": user.system_preferred_enabled,
            }

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path+query, status) of every request; status 0 = connection dropped."""
        with self._tenant.lock:
            return [(r.method, r.target, r.status) for r in self._router.log]

    @property
    def request_bodies(self) -> list[tuple[str, str, Any]]:
        """(method, path+query, body) with secretKey/verificationCode/client_secret redacted."""
        with self._tenant.lock:
            return [(r.method, r.target, r.body) for r in self._router.log]

    @property
    def internal_errors(self) -> list[str]:
        """Tracebacks of bugs in the fake itself (the fixture fails the test on any)."""
        return list(self._router.internal_errors)
