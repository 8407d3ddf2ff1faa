"""The fake Graph's contract, pinned with plain httpx (the client's tests rely on it)."""

from __future__ import annotations

import base64
import hashlib
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.graph.fake_graph import FakeGraph
from tests.graph.fake_graph.helpers import (
    DEVICES,
    GRAPH_SCOPE,
    app_token,
    code_at_step,
    current_code,
    graph_client,
    public_app,
    steady_step,
)
from tests.test_window_codes import OLD_CHOICE_INSIDE
from tests.window_codes import code_absent_from_window, code_outside_window

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
HELGA = "helga@contoso.onmicrosoft.com"
ENTRA_WINDOW = 2880  # steps each side: +-1 day at 30 s, +-2 days at 60 s


def set_fake_clock(fake_graph: FakeGraph, step: int, interval: int) -> None:
    """Move the fake's clock to the middle of ``step``: its code checks then see that step for
    the next interval/2 seconds, far more than one request takes."""
    fake_graph.clock_offset = step * interval + interval / 2 - time.time()


@pytest.fixture
def graph(fake_graph: FakeGraph) -> Iterator[httpx.Client]:
    """An httpx client for Graph holding an app-only token with the default grants."""
    with graph_client(fake_graph) as client:
        yield client


def device_body(serial: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "serialNumber": serial,
        "manufacturer": "Token2",
        "model": "C202",
        "secretKey": SECRET,
        "timeIntervalInSeconds": 30,
        "hashFunction": "hmacsha1",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def create(graph: httpx.Client, serial: str, **changes: Any) -> dict[str, Any]:
    response = graph.post(DEVICES, json=device_body(serial, **changes))
    assert response.status_code == 201, response.text
    return dict(response.json())


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "innerError"} <= set(body["error"]), body
    return str(body["error"]["code"])


# -- Graph: authentication and authorization ----------------------------------------------------


def test_graph_without_token_is_401(fake_graph: FakeGraph) -> None:
    response = httpx.get(fake_graph.graph_url + "/users", verify=fake_graph.ssl_context())
    assert response.status_code == 401
    assert error_code(response) == "InvalidAuthenticationToken"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_graph_with_garbled_or_expired_token_is_401(
    fake_graph: FakeGraph, graph: httpx.Client
) -> None:
    garbled = httpx.get(
        fake_graph.graph_url + "/users",
        verify=fake_graph.ssl_context(),
        headers={"Authorization": "Bearer eyJhbGciOi.garbage.x"},
    )
    assert garbled.status_code == 401
    assert graph.get("/users").status_code == 200
    fake_graph.expire_tokens()
    expired = graph.get("/users")
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]
    with graph_client(fake_graph, app_token(fake_graph)) as fresh:  # a new token, same second
        assert fresh.get("/users").status_code == 200


def test_revoked_permission_is_403_at_once(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    fake_graph.revoke("User.Read.All")
    response = graph.get("/users")
    assert response.status_code == 403
    assert error_code(response) == "Authorization_RequestDenied"
    fake_graph.revoke("Policy.ReadWrite.AuthenticationMethod")
    response = graph.post(DEVICES, json=device_body("1001"))
    assert response.status_code == 403
    assert error_code(response) == "accessDenied"
    assert fake_graph.devices == []
    # Reading the inventory needs only Policy.Read.All, still granted.
    assert graph.get(DEVICES).status_code == 200


def test_grant_needs_a_new_token(fake_graph: FakeGraph) -> None:
    fake_graph.revoke("User.Read.All")
    old = app_token(fake_graph)
    fake_graph.grant("User.Read.All")
    headers = {"Authorization": f"Bearer {old}"}
    url = fake_graph.graph_url + "/users"
    assert httpx.get(url, headers=headers, verify=fake_graph.ssl_context()).status_code == 403
    headers = {"Authorization": f"Bearer {app_token(fake_graph)}"}
    assert httpx.get(url, headers=headers, verify=fake_graph.ssl_context()).status_code == 200


# -- Graph: inventory --------------------------------------------------------------------------


def test_create_device_returns_201_and_never_the_secret(
    fake_graph: FakeGraph, graph: httpx.Client
) -> None:
    created = create(graph, "86596120001", displayName="Token 1")
    assert created["secretKey"] is None
    assert created["status"] == "available"
    assert created["assignedTo"] is None
    assert created["timeIntervalInSeconds"] == 30
    assert graph.get(f"{DEVICES}/{created['id']}").json() == created
    assert fake_graph.device("86596120001")["secretKey"] == SECRET
    assert SECRET not in str(fake_graph.request_bodies)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"secretKey": None}, "secretKey"),
        ({"serialNumber": None}, "serialNumber"),
        ({"manufacturer": None}, "manufacturer"),
        ({"model": None}, "model"),
        ({"timeIntervalInSeconds": None}, "timeIntervalInSeconds"),
        ({"timeIntervalInSeconds": 45}, "timeIntervalInSeconds"),
        ({"hashFunction": "hmacmd5"}, "hashFunction"),
        ({"secretKey": "00ff00ff00ff00ff18"}, "base32"),
        ({"secretKey": "A" * 129}, "128"),
        ({"color": "red"}, "color"),
    ],
)
def test_create_device_refuses_bad_fields(
    graph: httpx.Client, change: dict[str, Any], why: str
) -> None:
    response = graph.post(DEVICES, json=device_body("1", **change))
    assert response.status_code == 400
    assert why in response.json()["error"]["message"]


def test_create_device_duplicate_serial_is_409(graph: httpx.Client) -> None:
    create(graph, "2001")
    response = graph.post(DEVICES, json=device_body("2001"))
    assert response.status_code == 409
    assert error_code(response) == "conflict"


def test_create_device_assigned_to_a_user(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    user_id = fake_graph.add_user(HELGA, "Helga")
    created = create(graph, "3001", assignTo={"id": user_id})
    assert created["status"] == "assigned"
    assert created["assignedTo"] == {"id": user_id, "displayName": "Helga"}
    assert [m["id"] for m in fake_graph.methods_of(HELGA)] == [created["id"]]


def test_patch_device_updates_but_never_the_secret(
    fake_graph: FakeGraph, graph: httpx.Client
) -> None:
    device = create(graph, "4001")
    response = graph.patch(f"{DEVICES}/{device['id']}", json={"displayName": "spare", "model": "X"})
    assert response.status_code == 200
    assert response.json()["displayName"] == "spare"
    assert response.json()["model"] == "X"
    response = graph.patch(f"{DEVICES}/{device['id']}", json={"secretKey": "GEZDGNBVGY3TQOJQ"})
    assert response.status_code == 400
    assert fake_graph.device("4001")["secretKey"] == SECRET
    assert graph.patch(f"{DEVICES}/{device['id']}", json={"serialNumber": "9"}).status_code == 400


def test_assigned_device_can_be_neither_changed_nor_deleted(
    fake_graph: FakeGraph, graph: httpx.Client
) -> None:
    user_id = fake_graph.add_user(HELGA)
    device = create(graph, "4101", assignTo={"id": user_id})
    assert graph.patch(f"{DEVICES}/{device['id']}", json={"model": "X"}).status_code == 409
    assert graph.delete(f"{DEVICES}/{device['id']}").status_code == 409
    assert (
        graph.delete(
            f"/users/{HELGA}/authentication/hardwareOathMethods/{device['id']}"
        ).status_code
        == 204
    )
    assert graph.delete(f"{DEVICES}/{device['id']}").status_code == 204
    assert graph.get(f"{DEVICES}/{device['id']}").status_code == 404
    assert fake_graph.devices == []


# -- Graph: $delta bulk create ------------------------------------------------------------------


def delta(*items: dict[str, Any]) -> dict[str, Any]:
    return {"@context": "#$delta", "value": list(items)}


@pytest.mark.parametrize("method", ["PATCH", "POST"])
def test_delta_creates_many_and_reports_each_item(
    fake_graph: FakeGraph, graph: httpx.Client, method: str
) -> None:
    user_id = fake_graph.add_user(HELGA, "Helga")
    create(graph, "5003")  # already in the inventory
    body = delta(
        {"@contentId": "1", **device_body("5001", timeIntervalInSeconds="30")},
        {"@contentId": "2", **device_body("5002", assignTo={"id": user_id})},
        {"@contentId": "3", **device_body("5003")},
        {"@contentId": "4", **device_body("5004", timeIntervalInSeconds=45)},
    )
    response = graph.request(method, DEVICES, json=body)
    assert response.status_code == 201
    results = response.json()["value"]
    assert [r["@contentId"] for r in results] == ["1", "2", "3", "4"]
    first, second, duplicate, invalid = results
    assert first["@odata.type"] == "#microsoft.graph.hardwareOathAuthenticationMethod"
    assert first["device"]["serialNumber"] == "5001"
    assert first["device"]["secretKey"] is None
    assert first["device"]["status"] == "available"
    assert second["device"]["assignedTo"] == {"id": user_id, "displayName": "Helga"}
    assert duplicate["error"]["code"] == "conflict"
    assert duplicate["error"]["status"] == 409
    assert invalid["error"]["status"] == 400
    assert "timeIntervalInSeconds" in invalid["error"]["message"]
    assert sorted(d["serialNumber"] for d in fake_graph.devices) == ["5001", "5002", "5003"]


@pytest.mark.parametrize(
    "body",
    [
        {"@context": "#$delta", "value": []},
        {"@context": "#$delta"},
        delta(device_body("6001")),  # no @contentId
        delta(
            {"@contentId": "1", **device_body("6001")}, {"@contentId": "1", **device_body("6002")}
        ),
    ],
)
def test_malformed_delta_is_400_and_creates_nothing(
    fake_graph: FakeGraph, graph: httpx.Client, body: dict[str, Any]
) -> None:
    response = graph.patch(DEVICES, json=body)
    assert response.status_code == 400
    assert fake_graph.devices == []


def test_delta_batch_limit(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    fake_graph.delta_batch_limit = 2
    items = [{"@contentId": str(n), **device_body(f"70{n}")} for n in range(3)]
    assert graph.patch(DEVICES, json=delta(*items)).status_code == 400
    assert graph.patch(DEVICES, json=delta(*items[:2])).status_code == 201


def test_patch_without_delta_context_is_not_a_create(graph: httpx.Client) -> None:
    assert graph.patch(DEVICES, json={"value": [device_body("1")]}).status_code == 405


# -- Graph: listing, $filter, paging ------------------------------------------------------------


def test_list_pages_with_next_link_and_top(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    for n in range(5):
        fake_graph.add_device(f"80{n}", SECRET)
    fake_graph.page_size = 2
    serials: list[str] = []
    url: str | None = DEVICES
    pages = 0
    while url:
        body = graph.get(url).json()
        serials += [d["serialNumber"] for d in body["value"]]
        url = body.get("@odata.nextLink")
        pages += 1
    assert pages == 3
    assert sorted(serials) == [f"80{n}" for n in range(5)]
    body = graph.get(DEVICES, params={"$top": "4"}).json()
    assert len(body["value"]) == 4
    assert "$top=4" in body["@odata.nextLink"]
    assert graph.get(DEVICES, params={"$top": "0"}).status_code == 400


def test_device_list_in_the_reference_examples_shape(
    fake_graph: FakeGraph, graph: httpx.Client
) -> None:
    device_id = fake_graph.add_device("8100", SECRET)
    plain = graph.get(DEVICES).json()["value"]
    assert plain[0]["serialNumber"] == "8100"
    fake_graph.wrap_device_list = True
    wrapped = graph.get(DEVICES).json()["value"]
    assert wrapped[0]["@odata.type"] == "#microsoft.graph.hardwareOathAuthenticationMethod"
    assert wrapped[0]["id"] == device_id
    assert wrapped[0]["device"] == plain[0]


def test_filter_by_serial_and_status(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    fake_graph.add_user(HELGA)
    fake_graph.add_device("O'Brien-1", SECRET)
    fake_graph.add_device("9002", SECRET, assign_to=HELGA)
    found = graph.get(DEVICES, params={"$filter": "serialNumber eq 'O''Brien-1'"}).json()["value"]
    assert [d["serialNumber"] for d in found] == ["O'Brien-1"]
    found = graph.get(DEVICES, params={"$filter": "status eq 'assigned'"}).json()["value"]
    assert [d["serialNumber"] for d in found] == ["9002"]
    assert graph.get(DEVICES, params={"$filter": "serialNumber eq 'none'"}).json()["value"] == []


@pytest.mark.parametrize(
    "query",
    [
        {"$filter": "startswith(serialNumber,'9')"},
        {"$filter": "secretKey eq 'JBSWY3DP'"},
        {"$filter": "serialNumber ne '1'"},
        {"$orderby": "serialNumber"},
    ],
)
def test_unsupported_queries_are_400(graph: httpx.Client, query: dict[str, str]) -> None:
    response = graph.get(DEVICES, params=query)
    assert response.status_code == 400
    assert error_code(response) == "Request_UnsupportedQuery"


def test_users_list_filter_and_get_by_id_or_upn(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    user_id = fake_graph.add_user(HELGA, "Helga")
    fake_graph.add_user("guest_ext#EXT#@contoso.onmicrosoft.com", "Guest", guest=True)
    users = graph.get("/users", params={"$filter": f"userPrincipalName eq '{HELGA}'"}).json()
    assert [u["id"] for u in users["value"]] == [user_id]
    assert graph.get(f"/users/{user_id}").json()["userPrincipalName"] == HELGA
    assert graph.get(f"/users/{HELGA.upper()}").json()["id"] == user_id
    guest = graph.get("/users/guest_ext%23EXT%23@contoso.onmicrosoft.com").json()
    assert guest["userType"] == "Guest"
    missing = graph.get("/users/nobody@contoso.onmicrosoft.com")
    assert missing.status_code == 404
    assert error_code(missing) == "Request_ResourceNotFound"


# -- Graph: per user: assign, activate, deactivate, unassign -------------------------------------


def methods_url(upn: str = HELGA) -> str:
    return f"/users/{upn}/authentication/hardwareOathMethods"


def test_assign_then_activate_with_the_current_code(
    fake_graph: FakeGraph, graph: httpx.Client
) -> None:
    user_id = fake_graph.add_user(HELGA, "Helga")
    device = create(graph, "10001")
    response = graph.post(methods_url(user_id), json={"device": {"id": device["id"]}})
    assert response.status_code == 201
    method = response.json()
    assert method["@odata.type"] == "#microsoft.graph.hardwareOathAuthenticationMethod"
    assert fake_graph.device("10001")["status"] == "assigned"
    code = current_code(SECRET)
    activate = f"{methods_url()}/{method['id']}/activate"
    response = graph.post(activate, json={"verificationCode": code, "displayName": "Helga's"})
    assert response.status_code == 204
    seen = fake_graph.device("10001")
    assert seen["status"] == "activated"
    assert seen["displayName"] == "Helga's"
    assert seen["lastUsedDateTime"] is not None
    listed = graph.get(methods_url()).json()["value"]
    assert [m["device"]["status"] for m in listed] == ["activated"]
    assert graph.post(activate, json={"verificationCode": code}).status_code == 400  # already
    assert code not in str(fake_graph.request_bodies)


def test_wrong_code_fails_activation_and_a_retry_can_succeed(
    fake_graph: FakeGraph, graph: httpx.Client
) -> None:
    fake_graph.add_user(HELGA)
    device_id = fake_graph.add_device("10101", SECRET, assign_to=HELGA)
    step = steady_step(30)
    right = code_at_step(step, SECRET)
    # Not "right + 1": any code of the +-1 day window is accepted, and that one is 0.6% of the time.
    wrong = code_absent_from_window(SECRET, step, ENTRA_WINDOW, ENTRA_WINDOW)
    activate = f"{methods_url()}/{device_id}/activate"
    response = graph.post(activate, json={"verificationCode": wrong})
    assert response.status_code == 400
    assert error_code(response) == "invalidVerificationCode"
    assert fake_graph.device("10101")["status"] == "failedActivation"
    assert graph.post(activate, json={"verificationCode": right}).status_code == 204
    assert fake_graph.device("10101")["status"] == "activated"


@pytest.mark.parametrize("code", [123456, "12345", "1234567", "12a456", None])
def test_verification_code_must_be_a_six_digit_string(
    fake_graph: FakeGraph, graph: httpx.Client, code: Any
) -> None:
    fake_graph.add_user(HELGA)
    device_id = fake_graph.add_device("10201", SECRET, assign_to=HELGA)
    response = graph.post(f"{methods_url()}/{device_id}/activate", json={"verificationCode": code})
    assert response.status_code == 400
    assert fake_graph.device("10201")["status"] == "assigned"  # refused before checking


def test_codes_with_leading_zeros_are_sent_as_strings(
    fake_graph: FakeGraph, graph: httpx.Client
) -> None:
    # Find a seed whose current code starts with 0, so the padding matters.
    step = steady_step(30)
    candidates = (
        base64.b32encode(hashlib.sha256(str(n).encode()).digest()).decode() for n in range(1000)
    )
    secret = next(s for s in candidates if code_at_step(step, s).startswith("0"))
    fake_graph.add_user(HELGA)
    device_id = fake_graph.add_device("10301", secret, assign_to=HELGA)
    code = code_at_step(step, secret)
    response = graph.post(f"{methods_url()}/{device_id}/activate", json={"verificationCode": code})
    assert response.status_code == 204


@pytest.mark.parametrize(
    ("interval", "digest", "window_steps"),
    [(30, hashlib.sha1, 2880), (60, hashlib.sha1, 2880), (30, hashlib.sha256, 2880)],
)
@pytest.mark.parametrize("side", [-1, 1])
def test_activation_window_edges(
    fake_graph: FakeGraph,
    graph: httpx.Client,
    interval: int,
    digest: Any,
    window_steps: int,
    side: int,
) -> None:
    """+-1 day at 30 s, +-2 days at 60 s: the last step inside is accepted, the next is not.

    The refused code is the first one past the edge that occurs nowhere inside the window (the
    code right past the edge also occurs inside 0.6% of the time). The fake's clock is set to
    moments where it does (pinned in tests/test_window_codes.py) and to now; the choice itself
    is checked at 1,000 moments there.
    """
    fake_graph.add_user(HELGA)
    hash_function = "hmacsha256" if digest is hashlib.sha256 else "hmacsha1"
    name = "sha256" if digest is hashlib.sha256 else "sha1"
    pinned = [moment // interval for moment in OLD_CHOICE_INSIDE[(interval, name, side)][:2]]
    for n, step in enumerate([*pinned, int(time.time()) // interval]):
        device_id = fake_graph.add_device(
            f"1040{n}", SECRET, time_interval=interval, hash_function=hash_function, assign_to=HELGA
        )
        activate = f"{methods_url()}/{device_id}/activate"
        outside, offset = code_outside_window(
            SECRET, step, window_steps, window_steps, side=side, digest=name
        )
        assert offset * side > window_steps
        inside = code_at_step(step + side * window_steps, SECRET, interval, digest)
        set_fake_clock(fake_graph, step, interval)
        assert graph.post(activate, json={"verificationCode": outside}).status_code == 400
        set_fake_clock(fake_graph, step, interval)
        assert graph.post(activate, json={"verificationCode": inside}).status_code == 204


def test_clock_offset_moves_the_fake_clock(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    fake_graph.add_user(HELGA)
    device_id = fake_graph.add_device("10501", SECRET, assign_to=HELGA)
    activate = f"{methods_url()}/{device_id}/activate"
    fake_graph.clock_offset = 3 * 86_400  # the fake runs three days ahead
    step = steady_step(30)
    # The code of now, or (when that one recurs inside the fake's window) the nearest older one
    # that does not: the fake must refuse it.
    stale, offset = code_outside_window(
        SECRET, step + 3 * 2880, ENTRA_WINDOW, ENTRA_WINDOW, side=-1, start=-3 * 2880
    )
    assert offset <= -3 * 2880
    assert graph.post(activate, json={"verificationCode": stale}).status_code == 400
    ahead = code_at_step(step + 3 * 2880, SECRET)
    assert graph.post(activate, json={"verificationCode": ahead}).status_code == 204


def test_assign_and_activate_in_one_call(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    user_id = fake_graph.add_user(HELGA, "Helga")
    device = create(graph, "11001")
    body = {"device": {"id": device["id"]}, "verificationCode": current_code(SECRET)}
    response = graph.post(f"{methods_url()}/assignAndActivate", json=body)
    assert response.status_code == 204
    seen = fake_graph.device("11001")
    assert seen["status"] == "activated"
    assert seen["assignedTo"] == {"id": user_id, "displayName": "Helga"}


def test_assign_and_activate_by_serial_number(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    fake_graph.add_user(HELGA)
    create(graph, "11101")
    url = f"{methods_url()}/assignAndActivateBySerialNumber"
    body = {"serialNumber": "11101", "verificationCode": current_code(SECRET), "displayName": "T"}
    assert graph.post(url, json=body).status_code == 204
    assert fake_graph.device("11101")["status"] == "activated"
    missing = graph.post(url, json={**body, "serialNumber": "nope"})
    assert missing.status_code == 404


def test_assign_and_activate_with_a_wrong_code_leaves_it_assigned_failed(
    fake_graph: FakeGraph, graph: httpx.Client
) -> None:
    fake_graph.add_user(HELGA)
    create(graph, "11201")
    url = f"{methods_url()}/assignAndActivateBySerialNumber"
    step = steady_step(30)
    right = code_at_step(step, SECRET)
    wrong = code_absent_from_window(SECRET, step, ENTRA_WINDOW, ENTRA_WINDOW)
    assert (
        graph.post(url, json={"serialNumber": "11201", "verificationCode": wrong}).status_code
        == 400
    )
    assert fake_graph.device("11201")["status"] == "failedActivation"
    assert (
        graph.post(url, json={"serialNumber": "11201", "verificationCode": right}).status_code
        == 204
    )


def test_a_token_belongs_to_one_user(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    fake_graph.add_user(HELGA)
    fake_graph.add_user("olaf@contoso.onmicrosoft.com")
    device = create(graph, "12001")
    assert graph.post(methods_url(), json={"device": {"id": device["id"]}}).status_code == 201
    other = methods_url("olaf@contoso.onmicrosoft.com")
    response = graph.post(other, json={"device": {"id": device["id"]}})
    assert response.status_code == 409
    assert graph.get(other).json()["value"] == []
    assert graph.get(f"{other}/{device['id']}").status_code == 404


def test_no_hardware_tokens_for_guests(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    guest = fake_graph.add_user("g_ext#EXT#@contoso.onmicrosoft.com", guest=True)
    device = create(graph, "12101")
    response = graph.post(methods_url(guest), json={"device": {"id": device["id"]}})
    assert response.status_code == 400
    assert "guest" in response.json()["error"]["message"]
    assert graph.post(DEVICES, json=device_body("12102", assignTo={"id": guest})).status_code == 400
    assert [d["serialNumber"] for d in fake_graph.devices] == ["12101"]


def test_at_most_five_oath_methods_counting_software(
    fake_graph: FakeGraph, graph: httpx.Client
) -> None:
    fake_graph.add_user(HELGA)
    for _ in range(2):
        fake_graph.add_software_method(HELGA)
    for n in range(3):
        fake_graph.add_device(f"1300{n}", SECRET, assign_to=HELGA)
    device = create(graph, "13009")
    response = graph.post(methods_url(), json={"device": {"id": device["id"]}})
    assert response.status_code == 400
    assert "5" in response.json()["error"]["message"]
    assert len(fake_graph.methods_of(HELGA)) == 5


def test_seeding_can_build_states_the_api_refuses(
    fake_graph: FakeGraph, graph: httpx.Client
) -> None:
    """A token uploaded by CSV and by Graph shows twice; legacy users can hold over 5 methods."""
    fake_graph.add_user(HELGA)
    for _ in range(5):
        fake_graph.add_software_method(HELGA)
    with pytest.raises(ValueError, match="5 OATH methods"):
        fake_graph.add_software_method(HELGA)
    fake_graph.add_software_method(HELGA, allow_over_limit=True)
    fake_graph.add_device("13101", SECRET, assign_to=HELGA, allow_over_limit=True)
    fake_graph.add_device("13101", SECRET, allow_duplicate_serial=True)
    assert len(graph.get(f"/users/{HELGA}/authentication/methods").json()["value"]) == 1 + 7
    query = {"$filter": "serialNumber eq '13101'"}
    assert len(graph.get(DEVICES, params=query).json()["value"]) == 2


def test_deactivate_keeps_it_assigned_and_delete_unassigns(
    fake_graph: FakeGraph, graph: httpx.Client
) -> None:
    fake_graph.add_user(HELGA)
    device_id = fake_graph.add_device("14001", SECRET, assign_to=HELGA, activated=True)
    assert graph.post(f"{methods_url()}/{device_id}/deactivate").status_code == 204
    assert fake_graph.device("14001")["status"] == "assigned"
    assert graph.get(f"{methods_url()}/{device_id}").json()["device"]["serialNumber"] == "14001"
    assert graph.delete(f"{methods_url()}/{device_id}").status_code == 204
    seen = fake_graph.device("14001")
    assert seen["status"] == "available"
    assert seen["assignedTo"] is None
    assert fake_graph.methods_of(HELGA) == []


def test_software_methods_list_and_delete(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    fake_graph.add_user(HELGA)
    method_id = fake_graph.add_software_method(HELGA)
    url = f"/users/{HELGA}/authentication/softwareOathMethods"
    listed = graph.get(url).json()["value"]
    assert [(m["id"], m["secretKey"]) for m in listed] == [(method_id, None)]
    everything = graph.get(f"/users/{HELGA}/authentication/methods").json()["value"]
    assert "#microsoft.graph.softwareOathAuthenticationMethod" in {
        m["@odata.type"] for m in everything
    }
    assert graph.delete(f"{url}/{method_id}").status_code == 204
    assert graph.get(url).json()["value"] == []
    assert graph.post(url, json={}).status_code == 405  # software methods can't be created


# -- Graph: policy, MFA state, sign-in preferences ----------------------------------------------

POLICY = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/hardwareOath"


def test_policy_get_and_patch(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    assert graph.get(POLICY).json()["state"] == "enabled"
    assert graph.patch(POLICY, json={"state": "disabled"}).status_code == 204
    assert fake_graph.policy_enabled is False
    assert graph.get(POLICY).json()["state"] == "disabled"
    assert graph.patch(POLICY, json={"state": "on"}).status_code == 400
    fake_graph.revoke("Policy.ReadWrite.AuthenticationMethod")
    assert graph.patch(POLICY, json={"state": "enabled"}).status_code == 403
    assert graph.get(POLICY).status_code == 200  # Policy.Read.All reads it


def test_disabled_policy_blocks_assignment(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    fake_graph.add_user(HELGA)
    device = create(graph, "15001")
    fake_graph.set_policy(enabled=False)
    response = graph.post(methods_url(), json={"device": {"id": device["id"]}})
    assert response.status_code == 400
    assert "policy" in response.json()["error"]["message"]


def test_per_user_mfa_state(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    fake_graph.add_user(HELGA)
    url = f"/users/{HELGA}/authentication/requirements"
    assert graph.get(url).json()["perUserMfaState"] == "disabled"
    assert graph.patch(url, json={"perUserMfaState": "enforced"}).status_code == 204
    assert fake_graph.mfa_state_of(HELGA) == "enforced"
    assert graph.patch(url, json={"perUserMfaState": "on"}).status_code == 400
    # "enabled" on a user with an MFA method already registered becomes "enforced" (reference).
    fake_graph.add_software_method(HELGA)
    assert graph.patch(url, json={"perUserMfaState": "enabled"}).status_code == 204
    assert fake_graph.mfa_state_of(HELGA) == "enforced"


def test_sign_in_preferences(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    fake_graph.add_user(HELGA)
    url = f"/users/{HELGA}/authentication/signInPreferences"
    body = {"userPreferredMethodForSecondaryAuthentication": "oath"}
    assert graph.patch(url, json=body).status_code == 204
    assert graph.get(url).json()["userPreferredMethodForSecondaryAuthentication"] == "oath"
    assert (
        fake_graph.sign_in_preferences_of(HELGA)["userPreferredMethodForSecondaryAuthentication"]
        == "oath"
    )
    bad = {"userPreferredMethodForSecondaryAuthentication": "carrierPigeon"}
    assert graph.patch(url, json=bad).status_code == 400


# -- throttling and faults ----------------------------------------------------------------------


def test_throttle_answers_429_with_retry_after_then_recovers(
    fake_graph: FakeGraph, graph: httpx.Client
) -> None:
    fake_graph.throttle(2, retry_after=0.25)
    for _ in range(2):
        response = graph.get(DEVICES)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "0.25"
        assert error_code(response) == "TooManyRequests"
    assert graph.get(DEVICES).status_code == 200
    assert [s for _, _, s in fake_graph.requests[-3:]] == [429, 429, 200]


def test_throttle_503_on_a_path_only(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    fake_graph.add_user(HELGA)
    fake_graph.throttle(1, status=503, retry_after=2, path_contains="/authentication/")
    assert graph.get(DEVICES).status_code == 200
    response = graph.get(methods_url())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert graph.get(methods_url()).status_code == 200


def test_throttle_without_retry_after(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    fake_graph.throttle(1, retry_after=None)
    response = graph.get(DEVICES)
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert graph.get(DEVICES).status_code == 200


def test_throttle_the_token_endpoint_when_asked(fake_graph: FakeGraph) -> None:
    fake_graph.throttle(1, path_contains="/oauth2/v2.0/token")
    with httpx.Client(verify=fake_graph.ssl_context()) as client:
        data = {
            "grant_type": "client_credentials",
            "client_id": fake_graph.client_id,
            "client_secret": fake_graph.client_secret,
            "scope": "https://graph.microsoft.com/.default",
        }
        throttled = client.post(fake_graph.token_endpoint, data=data)
        assert throttled.status_code == 429
        assert throttled.json()["error"] == "temporarily_unavailable"  # OAuth's shape, not Graph's
        assert throttled.headers["Retry-After"] == "0.1"
        assert client.post(fake_graph.token_endpoint, data=data).status_code == 200
    assert fake_graph.client_secret not in str(fake_graph.request_bodies)


def test_activation_limit_answers_429_past_the_documented_rate(
    fake_graph: FakeGraph, graph: httpx.Client
) -> None:
    fake_graph.add_user(HELGA)
    fake_graph.limit_activations(count=2, per_seconds=300)
    ids = [fake_graph.add_device(f"1600{n}", SECRET, assign_to=HELGA) for n in range(3)]
    code = current_code(SECRET)
    for device_id in ids[:2]:
        url = f"{methods_url()}/{device_id}/activate"
        assert graph.post(url, json={"verificationCode": code}).status_code == 204
    response = graph.post(f"{methods_url()}/{ids[2]}/activate", json={"verificationCode": code})
    assert response.status_code == 429
    assert 290 < float(response.headers["Retry-After"]) <= 300
    assert fake_graph.device("16002")["status"] == "assigned"


def test_fail_next_500(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    fake_graph.fail_next()
    response = graph.post(DEVICES, json=device_body("17001"))
    assert response.status_code == 500
    assert error_code(response) == "generalException"
    assert fake_graph.devices == []
    assert graph.post(DEVICES, json=device_body("17001")).status_code == 201


def test_dropped_connection_before_processing(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    fake_graph.fail_next(drop_connection=True)
    with pytest.raises(httpx.RemoteProtocolError):
        graph.post(DEVICES, json=device_body("17101"))
    assert fake_graph.devices == []
    assert fake_graph.requests[-1] == ("POST", "/beta" + DEVICES, 0)
    assert graph.post(DEVICES, json=device_body("17101")).status_code == 201


def test_dropped_connection_after_processing(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    """The case a resume journal exists for: it worked, but the client never heard."""
    fake_graph.add_user(HELGA)
    device_id = fake_graph.add_device("17201", SECRET, assign_to=HELGA)
    fake_graph.fail_next(drop_connection=True, after_processing=True, path_contains="/activate")
    code = current_code(SECRET)
    with pytest.raises(httpx.RemoteProtocolError):
        graph.post(f"{methods_url()}/{device_id}/activate", json={"verificationCode": code})
    assert fake_graph.device("17201")["status"] == "activated"


def test_delay_next_answers_late_but_does_the_work(
    fake_graph: FakeGraph, graph: httpx.Client
) -> None:
    fake_graph.delay_next(seconds=1.0, path_contains="hardwareOathDevices")
    with pytest.raises(httpx.ReadTimeout):
        graph.post(DEVICES, json=device_body("17301"), timeout=0.3)
    assert [d["serialNumber"] for d in fake_graph.devices] == ["17301"]
    started = time.perf_counter()
    assert graph.get(DEVICES).status_code == 200  # only the next one was late
    assert time.perf_counter() - started < 1.0


# -- delegated calls and /me --------------------------------------------------------------------


def test_me_needs_a_delegated_token(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    response = graph.get("/me/authentication/hardwareOathMethods")
    assert response.status_code == 400
    assert "delegated" in response.json()["error"]["message"]


def test_me_with_a_device_code_token(fake_graph: FakeGraph) -> None:
    app = public_app(fake_graph)
    fake_graph.approve_device_code()
    token = app.acquire_token_by_device_flow(app.initiate_device_flow(GRAPH_SCOPE))["access_token"]
    fake_graph.add_user(HELGA)
    with graph_client(fake_graph, token) as client:
        assert client.get("/me/authentication/hardwareOathMethods").json() == {"value": []}
        assert client.get(methods_url()).json() == {"value": []}
        fake_graph.revoke("UserAuthenticationMethod.ReadWrite.All")
        assert client.get(methods_url()).status_code == 403  # acting on someone else
        assert client.get(methods_url("nobody@contoso.onmicrosoft.com")).status_code == 403
        fake_graph.grant("UserAuthenticationMethod.ReadWrite")  # self only, in a new token
        token = app.acquire_token_silent(GRAPH_SCOPE, app.get_accounts()[0], force_refresh=True)
    assert token is not None
    with graph_client(fake_graph, token["access_token"]) as client:
        assert client.get("/me/authentication/hardwareOathMethods").status_code == 200
        assert client.get(methods_url()).status_code == 403


def test_v1_has_no_hardware_oath(graph: httpx.Client, fake_graph: FakeGraph) -> None:
    url = fake_graph.authority_host + "/v1.0" + DEVICES
    response = graph.get(url)
    assert response.status_code == 400
    assert graph.get(fake_graph.authority_host + "/v1.0/users").status_code == 200


# -- the server itself --------------------------------------------------------------------------


def test_starts_fast_and_stops_cleanly(tmp_path: Path) -> None:
    started = time.perf_counter()
    fake = FakeGraph(tmp_path)
    try:
        assert time.perf_counter() - started < 2  # generous: the machine is shared
        with graph_client(fake) as client:
            assert client.get("/users").status_code == 200
    finally:
        fake.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(fake.graph_url + "/users", verify=fake.ssl_context(), timeout=2)


def test_plain_http_and_untrusted_clients_get_nothing(fake_graph: FakeGraph) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(fake_graph.graph_url.replace("https:", "http:") + "/users", timeout=2)
    untrusted = ssl.create_default_context()  # the system CAs, not the fake's
    with pytest.raises(httpx.ConnectError):
        httpx.get(fake_graph.graph_url + "/users", verify=untrusted, timeout=2)
    assert fake_graph.requests == []


def test_the_request_log_holds_no_secrets(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    fake_graph.add_user(HELGA)
    code = current_code(SECRET)
    create(graph, "18001")
    graph.post(
        f"{methods_url()}/assignAndActivateBySerialNumber",
        json={"serialNumber": "18001", "verificationCode": code},
    )
    logged = str(fake_graph.requests) + str(fake_graph.request_bodies)
    for secret in (SECRET, code, fake_graph.client_secret):
        assert secret not in logged
    assert "<redacted>" in logged
    assert fake_graph.device("18001")["status"] == "activated"
