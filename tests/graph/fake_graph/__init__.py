"""A fake of Microsoft Graph (beta) and the Microsoft identity platform, as a real HTTPS server.

It implements the documented contract of the calls oathdesk makes (hardware OATH inventory,
per-user hardware/software OATH methods, authentication methods policy, per-user MFA state and
sign-in preferences, users) and the identity platform endpoints msal uses (OIDC discovery,
instance discovery, client credentials with a secret or a certificate assertion, device code).
It is tested against the reference (tests/graph/test_fake_graph.py, test_fake_identity.py),
not against a live tenant. Helpers for tests that call it directly (an msal http_client that
trusts the fake, app tokens, an httpx Graph client, pyotp codes at a time step) live in
``tests.graph.fake_graph.helpers``.

Fixture (tests/graph/conftest.py; elsewhere: ``from tests.graph.fake_graph.fixture import
fake_graph`` in your conftest.py)::

    @pytest.fixture
    def fake_graph(tmp_path) -> Iterator[FakeGraph]   # started, fresh state per test

    class FakeGraph:
        tenant_id: str; tenant_domain: str              # "contoso.onmicrosoft.com" also works
        client_id: str; client_secret: str              # a confidential app that exists
        client_certificate_path: str                    # its registered certificate (PEM) ...
        client_key_path: str                            # ... and private key (PEM, mode 0600)
        client_certificate_pem: str; client_key_pem: str
        client_certificate_thumbprint: str              # SHA-1 hex, as the portal shows it
        public_client_id: str                           # for device-code sign-in
        authority_url: str    # "https://127.0.0.1:PORT/<tenant_id>", as msal wants it
        authority_host: str   # "https://127.0.0.1:PORT"
        graph_url: str        # "https://127.0.0.1:PORT/beta"
        token_endpoint: str   # authority_url + "/oauth2/v2.0/token"
        instance_discovery_url: str  # for msal's instance_discovery= (or pass False)
        ca_bundle: str        # PEM of the CA that signed the server certificate
        def ssl_context(self) -> ssl.SSLContext   # trusts ca_bundle; for httpx verify=
        def add_user(self, upn, display_name="", *, guest=False) -> str   # returns the id
        def user_id(self, upn) -> str
        def delete_user(self, upn) -> None  # /users no longer finds them; devices keep the id
        def add_device(self, serial, secret, *, time_interval=30, hash_function="hmacsha1",
                       manufacturer="Token2", model="C202", assign_to=None (UPN),
                       activated=False, allow_duplicate_serial=False,
                       allow_over_limit=False) -> str  # device id; bypasses the API's rules
        def add_software_method(self, upn, *, allow_over_limit=False) -> str
        def grant(self, *permissions) -> None; def revoke(self, *permissions) -> None
        permissions: set[str]
        def set_policy(self, enabled: bool) -> None; policy_enabled: bool
        def throttle(self, count, *, status=429, retry_after=0.1 (None: no header),
                     path_contains="") -> None
        def fail_next(self, count=1, *, status=500, drop_connection=False, path_contains="",
                      after_processing=False) -> None
        def delay_next(self, count=1, *, seconds, path_contains="", method="") -> None  # late
        def limit_activations(self, count=200, per_seconds=300) -> None
        def approve_device_code(self, upn=None) -> None   # default admin@contoso.onmicrosoft.com
        def decline_device_code(self) -> None
        device_code_interval: int      # seconds msal sleeps between polls (default 1)
        def expire_tokens(self) -> None  # every token issued so far now gets 401
        page_size: int                 # default page size of collections (100)
        wrap_device_list: bool         # list devices as the reference example does (below)
        delta_batch_limit: int         # most items in one $delta body (100)
        devices: list[dict]            # Graph's view of the inventory plus the real "secretKey"
        def device(self, serial) -> dict
        def methods_of(self, upn) -> list[dict]   # hardware (with "device") + software methods
        def mfa_state_of(self, upn) -> str; def sign_in_preferences_of(self, upn) -> dict
        requests: list[tuple[str, str, int]]      # (method, path+query, status); 0 = dropped
        request_bodies: list[tuple[str, str, Any]]  # bodies, secrets "<redacted>"
        clock_offset: float            # seconds added to the fake's clock (code checks)
        def self_service_token(self, upn) -> str   # the user's token at My Security Info
        def self_assign(self, upn, serial, code, *, client=None) -> int  # HTTP status; a real
            # POST /me/.../assignAndActivateBySerialNumber with that token (what the page does)
        def set_last_used(self, serial, when: datetime) -> None  # lastUsedDateTime (a sign-in)
        internal_errors: list[str]     # the fixture fails the test if the fake itself crashed

    Seeded: one user, admin@contoso.onmicrosoft.com (who signs in by device code); granted:
    Policy.ReadWrite.AuthenticationMethod, UserAuthenticationMethod.ReadWrite.All,
    User.Read.All, Policy.Read.All; hardware OATH enabled in the policy.

msal against the fake::

    http = helpers.msal_http(fake)   # requests.Session, trust_env False, verify=fake.ca_bundle
    msal.ConfidentialClientApplication(fake.client_id, client_credential=fake.client_secret,
        authority=fake.authority_url, instance_discovery=False, http_client=http)
    .acquire_token_for_client(["https://graph.microsoft.com/.default"])
    # certificate: client_credential={"private_key": fake.client_key_pem,
    #                                 "public_certificate": fake.client_certificate_pem}
    #          or {"private_key": ..., "thumbprint": fake.client_certificate_thumbprint}
    msal.PublicClientApplication(fake.public_client_id, authority=fake.authority_url,
        instance_discovery=False, http_client=http)   # then initiate_device_flow(...)

Two msal pitfalls the fake exposed (they matter against the real service too):
- msal's ``verify=`` is ignored when REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE is set in the
  environment (requests lets the environment win over Session.verify), as it is on this
  machine. Pass ``http_client=`` a ``requests.Session()`` with ``trust_env = False`` and
  ``verify = fake.ca_bundle`` (what the tests here do), or clear those variables.
- Do not pass an ``httpx.Client`` as msal's http_client when using a certificate: msal posts
  the client assertion as bytes and httpx form-encodes bytes as "b'...'" (Entra and the fake then
  refuse it with invalid_client AADSTS700027). Secrets and device code work with httpx.

Tokens and permissions: access tokens are RS256 JWTs (aud https://graph.microsoft.com, or the
fake's origin if that was the scope's resource); app-only tokens carry ``roles``, delegated ones
``scp`` (both = the granted set when issued; delegated asking for named scopes gets the granted
subset). Graph checks token claims AND today's grants: ``revoke`` bites at once, a ``grant``
needs a new token (like admin consent). Missing/garbled/expired token -> 401
``InvalidAuthenticationToken``. Missing permission -> 403 ``Authorization_RequestDenied``
("Insufficient privileges to complete the operation.") on /users, else 403 ``accessDenied``.

Calls (paths under graph_url; "read"/"write" = the permissions that allow them):

- GET /users [?$filter=userPrincipalName eq 'x' & $top=n], GET /users/{id or UPN}:
  User.Read.All (or User.ReadWrite.All, Directory.Read.All) -> 200 / 404 Request_ResourceNotFound
- /directory/authenticationMethodDevices/hardwareOathDevices: read Policy.Read.All or
  Policy.ReadWrite.AuthenticationMethod; write Policy.ReadWrite.AuthenticationMethod (creating with
  assignTo also needs UserAuthenticationMethod.ReadWrite.All).
  GET -> 200 page of devices; POST {device} -> 201 device;
  PATCH or POST {"@context": "#$delta", "value": [...]} -> 201 {"value": one entry per item};
  GET .../{id} -> 200; PATCH .../{id} -> 200 device; DELETE .../{id} -> 204.
- /users/{id or UPN}/authentication/...: read UserAuthenticationMethod.Read.All or .ReadWrite.All,
  write UserAuthenticationMethod.ReadWrite.All.
  GET hardwareOathMethods -> 200 {"value": methods}; POST hardwareOathMethods {"device": {"id"}}
  -> 201 method; POST hardwareOathMethods/{id}/activate {"verificationCode", "displayName"} -> 204;
  POST hardwareOathMethods/assignAndActivate {"device": {"id"}, "verificationCode"} -> 204;
  POST hardwareOathMethods/assignAndActivateBySerialNumber {"serialNumber", "verificationCode"}
  -> 204; POST hardwareOathMethods/{id}/deactivate -> 204 (status back to assigned);
  GET/DELETE hardwareOathMethods/{id} -> 200 / 204 (the device is available again);
  GET softwareOathMethods, GET/DELETE softwareOathMethods/{id} -> 200 / 204;
  GET methods -> 200 (a password method + the OATH methods);
  GET/PATCH signInPreferences {"userPreferredMethodForSecondaryAuthentication": "oath"} -> 200/204;
  GET/PATCH requirements {"perUserMfaState": "disabled|enabled|enforced"} -> 200 / 204 (write:
  Policy.ReadWrite.AuthenticationMethod; read: either family).
- GET/PATCH /policies/authenticationMethodsPolicy/authenticationMethodConfigurations/hardwareOath
  {"state": "enabled|disabled"}: Policy.Read.All / Policy.ReadWrite.AuthenticationMethod -> 200/204;
  GET /policies/authenticationMethodsPolicy -> 200 with that configuration in it.
- /me/... works for delegated tokens (app-only -> 400), where UserAuthenticationMethod.Read and
  .ReadWrite (self) also count.
- /v1.0 serves /users and the software OATH / methods lists only; the rest is beta-only (400).

Shapes. A device: ``@odata.type, id, displayName, serialNumber, manufacturer, model,
secretKey (always null), timeIntervalInSeconds, status, lastUsedDateTime, hashFunction,
assignedTo ({id, displayName} or null)``. A hardware method: ``{"@odata.type":
"#microsoft.graph.hardwareOathAuthenticationMethod", "id": <device id, as in the reference's
examples>, "createdDateTime", "device": {device}}``. The device list items are plain devices;
the reference's list example shows them wrapped like a method, which may be a copy-paste slip or
the truth: ``wrap_device_list = True`` serves that shape, and a robust client unwraps
``item.get("device", item)``. Collections: ``{"value": [...],
"@odata.nextLink": url}``; ``$top`` 1..999 sets the page size; ``$filter`` supports only
``prop eq 'value'`` and ``prop in ('a', 'b', ...)`` (at most 15 values, as Graph documents for
``in``) (devices: serialNumber, status, id, manufacturer, model, assignedTo/id; users:
userPrincipalName, id, displayName, mail, userType); anything else -> 400
``Request_UnsupportedQuery``. Tokens of Microsoft's My Sign-ins app (``self_service_token``)
carry the "self" permission ``UserAuthenticationMethod.ReadWrite`` without the tenant's consent,
as a first-party app's do; ``/me/...`` then acts on that user.

Order of checks: faults, throttling, token (401), permission (403), then the resource (404),
then the body (400/409).

Rules, with the fake's choices where the reference is silent (marked *):
- create: serialNumber, manufacturer, model, secretKey (base32, <= 128 chars),
  timeIntervalInSeconds (30|60, int or digit string as the bulk example sends) required;
  hashFunction hmacsha1 (default) | hmacsha256; unknown property -> 400 ``invalidRequest``.
  *Duplicate serial -> 409 ``conflict``. Guest, >5 OATH methods, policy disabled -> 400.
- *$delta: always 201 for a well-formed body; ``value`` holds one entry per item in order:
  ``{"@contentId", ...method-wrapped device}`` or ``{"@contentId", "error": {"code",
  "message", "status"}}``. Malformed body (no value, missing/duplicate @contentId, more than
  ``delta_batch_limit`` items) -> 400 and nothing is created.
- JSON batching: POST /$batch {"requests": [{"id", "method", "url", "headers"?, "body"?}]}
  -> 200 {"responses": [{"id", "status", "headers", "body"}]}, each request (url relative to
  the version) answered, throttled and failed on its own (``throttle``/``fail_next`` match its
  own path); more than 20 requests, ids not unique strings, no requests -> 400 for the batch;
  the request log holds the batch as one request. *Run and answered in the order given;
  *``dependsOn`` -> 400 (not used by oathdesk).
- PATCH device: only manufacturer, model, timeIntervalInSeconds, hashFunction, displayName;
  secretKey -> 400; *assigned device -> 409. DELETE assigned device -> *409 ``conflict``.
- assign: device owned by another user or already this user's -> *409; guest -> 400; the user
  already has 5 OATH methods (hardware + software) -> 400; policy disabled -> *400.
- activate: verificationCode must be a 6-digit string (number, 5 digits -> 400); checked against
  the seed within +-1 day (30 s) / +-2 days (60 s) of the fake's clock (+ clock_offset); wrong
  code -> 400 *``invalidVerificationCode`` and the device becomes ``failedActivation`` (retry
  allowed); *already activated -> 400. Success: status ``activated``, lastUsedDateTime set.
  The window holds 5,761 codes, so a code from a *random* wrong seed is accepted about 0.6% of
  the time (as Entra would): tests of wrong seeds should use fixed seeds, not os.urandom.
- throttling: ``throttle(n)`` makes the next n Graph requests (or those whose path+query contains
  ``path_contains``, which may target the identity endpoints) answer 429 ``TooManyRequests`` (or
  ``status``) with ``Retry-After: <retry_after>`` (fractional values are sent as such; Graph
  sends whole seconds). ``limit_activations()`` -> the 201st activation within 5 minutes gets 429
  with the wait in Retry-After. ``fail_next`` -> 500 ``generalException`` (or ``status``), or a
  dropped connection; ``after_processing=True`` carries the request out first (the client never
  hears that it worked). Faults are checked before throttles, both before authentication.
  Injected failures on identity endpoints answer in OAuth's shape ({"error":
  "temporarily_unavailable" | "server_error", "error_description", "error_codes"}).
"""

from tests.graph.fake_graph.fake import ADMIN_UPN, DEFAULT_PERMISSIONS, FakeGraph

__all__ = ["ADMIN_UPN", "DEFAULT_PERMISSIONS", "FakeGraph"]
