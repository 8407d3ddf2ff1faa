"""Users, tokens along their lifecycle, settings, audit, imports and exports through the API:
the same vault operations (and audit records) as the CLI."""

from __future__ import annotations

import csv
import io

import pytest

from oathdesk.seed import encode_base32
from tests.web.api_support import (
    SECRET_B32,
    UPN,
    Api,
    add_user_and_token,
    api,
    api_keys,
    assert_error,
)

__all__ = ["api", "api_keys"]  # fixtures

ENTRA_HEADER = "upn,serial number,secret key,time interval,manufacturer,model"


def entra_csv(rows: int, *, start: int = 1) -> bytes:
    lines = [ENTRA_HEADER]
    for i in range(start, start + rows):
        secret = encode_base32(i.to_bytes(4, "big") * 5)
        lines.append(f"user{i}@contoso.com,2100{i:07d},{secret},30,Token2,C202")
    return ("\n".join(lines) + "\n").encode()


def test_users_and_a_token_along_its_lifecycle(api: Api) -> None:
    token = add_user_and_token(api)
    assert token["state"] == "assigned"
    assert token["has_secret"] is True
    assert "secret" not in {k for k in token if k != "has_secret"}
    assert_error(api.admin.post("/users", json={"upn": UPN}), 409, "conflict")
    assert [u["upn"] for u in api.helpdesk.get("/users").json()["items"]] == [UPN]
    shown = api.helpdesk.get(f"/users/{UPN}").json()
    assert [t["serial"] for t in shown["tokens"]] == ["86596120001"]

    serial = "86596120001"
    assert api.helpdesk.post(f"/tokens/{serial}/burned").json()["state"] == "burned"
    # A version the operator did not see is refused instead of overwriting a change.
    stale = {"expected_version": 1}
    assert_error(api.helpdesk.post(f"/tokens/{serial}/registered", json=stale), 409, "conflict")
    assert api.helpdesk.post(f"/tokens/{serial}/registered").json()["state"] == "registered"
    shipped = api.helpdesk.post(
        f"/tokens/{serial}/ship", json={"carrier": "DHL", "tracking": "JD014600003"}
    ).json()
    assert (shipped["state"], shipped["carrier"], shipped["tracking"]) == (
        "shipped",
        "DHL",
        "JD014600003",
    )
    assert_error(api.helpdesk.post(f"/tokens/{serial}/burned"), 409, "conflict")
    reason = {"override_reason": "user read a working code"}
    assert api.helpdesk.post(f"/tokens/{serial}/deliver", json=reason).status_code == 200
    assert [
        t["serial"]
        for t in api.helpdesk.get("/tokens", params={"state": "delivered"}).json()["items"]
    ]
    assert api.helpdesk.get("/tokens", params={"state": "shipped"}).json()["items"] == []
    assert api.helpdesk.get("/tokens", params={"upn": "nobody@contoso.com"}).json()["items"] == []
    assert_error(api.helpdesk.post(f"/tokens/{serial}/purge"), 403, "forbidden")
    purged = api.admin.post(f"/tokens/{serial}/purge", json={"reason": "delivered"}).json()
    assert purged["state"] == "secret_purged"
    assert purged["has_secret"] is False
    lost = api.admin.post(f"/tokens/{serial}/lost", json={"reason": "left on a train"}).json()
    assert lost["state"] == "lost"
    assert api.admin.post(f"/tokens/{serial}/retire", json={"reason": "gone"}).status_code == 200
    actions = [
        r["action"] for r in api.admin.get("/audit", params={"serial": serial}).json()["items"]
    ]
    assert actions[::-1] == [  # newest first
        "token.added",
        "token.burned",
        "token.registered",
        "token.shipped",
        "token.delivered",
        "token.secret_purged",
        "token.lost",
        "token.retired",
    ]


def test_token_add_checks_the_secret_and_never_returns_it(api: Api) -> None:
    uri = f"otpauth://totp/Contoso:helga?secret={SECRET_B32}&digits=8&period=60"
    token = api.admin.post("/tokens", json={"serial": "U1", "secret": uri}).json()
    assert (token["digits"], token["period"], token["state"]) == (8, 60, "in_stock")
    generated = api.admin.post("/tokens", json={"serial": "G1", "generate": True})
    assert generated.status_code == 201
    assert_error(api.admin.post("/tokens", json={"serial": "G2"}), 400, "invalid_input")
    both = {"serial": "G3", "generate": True, "secret": SECRET_B32}
    assert_error(api.admin.post("/tokens", json=both), 400, "invalid_input")
    message = assert_error(
        api.admin.post("/tokens", json={"serial": "U2", "secret": SECRET_B32}), 409, "conflict"
    )
    assert "same secret" in message or "already" in message
    assert_error(
        api.admin.post("/tokens", json={"serial": "U1", "generate": True}), 409, "conflict"
    )
    serials = api.admin.post("/seeds/generate", json={"count": 3}).json()
    assert serials["created"] == 3
    assert len(api.admin.get("/tokens", params={"state": "in_stock"}).json()["items"]) == 5


def test_settings_read_and_change_with_the_clis_ranges(api: Api) -> None:
    assert api.helpdesk.get("/settings").json()["reveal_limit_per_user"] == 3
    changed = api.admin.patch("/settings", json={"reveal_limit_per_user": 5, "four_eyes": True})
    assert changed.status_code == 200
    assert (changed.json()["reveal_limit_per_user"], changed.json()["four_eyes"]) == (5, True)
    assert_error(api.admin.patch("/settings", json={}), 400, "invalid_input")
    too_many = {"reveal_limit_per_user": 10_000}
    assert_error(api.admin.patch("/settings", json=too_many), 422, "invalid_input")
    profile = {"acceptance_profile": "sideways"}
    assert_error(api.admin.patch("/settings", json=profile), 422, "invalid_input")
    record = api.admin.get("/audit", params={"action": "settings.updated"}).json()["items"]
    assert record[0]["details"] == {"reveal_limit_per_user": 5, "four_eyes": True}


def test_audit_is_filtered_and_paged(api: Api) -> None:
    for i in range(5):
        assert api.admin.post("/users", json={"upn": f"u{i}@contoso.com"}).status_code == 201
    first = api.auditor.get("/audit", params={"action": "user.added", "limit": 2}).json()
    assert [r["upn"] for r in first["items"]] == ["u4@contoso.com", "u3@contoso.com"]  # newest
    rest = api.auditor.get(
        "/audit", params={"action": "user.added", "limit": 10, "cursor": first["next_cursor"]}
    ).json()
    assert [r["upn"] for r in rest["items"]] == [f"u{i}@contoso.com" for i in (2, 1, 0)]
    assert rest["next_cursor"] is None
    by_upn = api.auditor.get("/audit", params={"upn": "U3@contoso.com"}).json()["items"]
    assert [r["upn"] for r in by_upn] == ["u3@contoso.com"]
    later = api.auditor.get("/audit", params={"since": "2999-01-01T00:00:00Z"}).json()
    assert later["items"] == []
    verified = api.auditor.get("/audit/verify").json()
    assert verified["intact"] is True
    assert verified["records"] >= 8


def test_import_dry_run_then_real_then_problems_as_json(api: Api) -> None:
    data = entra_csv(3)
    files = {"file": ("order.csv", data, "text/csv")}
    dry = api.admin.post("/import", params={"dry_run": "true"}, files=files)
    assert dry.status_code == 200, dry.text
    assert dry.json() == {
        "format": "entra-csv",
        "dry_run": True,
        "imported": 0,
        "placeholder_serials": 0,
        "problems": [],
        "in_stock": 0,
        "skipped": [],
    }
    assert api.admin.get("/tokens").json()["items"] == []
    done = api.admin.post("/import", files=files).json()
    assert done["imported"] == 3
    assert len(api.admin.get("/tokens").json()["items"]) == 3
    # the raw body works too; the serials are in the vault now: every row is a problem
    refused = api.admin.post("/import", content=data, headers={"content-type": "text/csv"})
    assert_error(refused, 422, "import_refused")
    problems = refused.json()["error"]["problems"]
    assert [(p["line"], p["column"]) for p in problems] == [
        (2, "serial number"),
        (3, "serial number"),
        (4, "serial number"),
    ]
    fresh = entra_csv(3, start=10)
    bad = fresh.replace(encode_base32((11).to_bytes(4, "big") * 5).encode(), b"NOT-BASE32-0189")
    refused = api.admin.post("/import", files={"file": ("bad.csv", bad)})
    problem = refused.json()["error"]["problems"][0]
    assert (problem["line"], problem["column"]) == (3, "secret key")
    assert problem["code"].startswith("secret")
    assert problem["message"]
    assert problem["hint"]
    assert "NOT-BASE32" not in refused.text
    assert_error(api.helpdesk.post("/import", files=files), 403, "forbidden")
    assert_error(api.admin.post("/import", content=b""), 400, "invalid_input")
    assert_error(
        api.admin.post("/import", params={"format": "x"}, content=data), 400, "invalid_input"
    )


def test_export_entra_csv_is_admin_only_audited_and_holds_the_secrets(api: Api) -> None:
    assert_error(api.admin.post("/export/entra-csv"), 404, "not_found")
    api.admin.post("/import", files={"file": ("order.csv", entra_csv(2), "text/csv")})
    assert_error(api.helpdesk.post("/export/entra-csv"), 403, "forbidden")
    response = api.admin.post("/export/entra-csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["cache-control"] == "no-store"
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["x-oathdesk-count"] == "2"
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:3] == ["upn", "serial number", "secret key"]
    assert {row[2] for row in rows[1:]} == {encode_base32(i.to_bytes(4, "big") * 5) for i in (1, 2)}
    record = api.admin.get("/audit", params={"action": "tokens.exported"}).json()["items"]
    assert record[0]["details"]["format"] == "entra-csv"
    assert sorted(record[0]["details"]["serials"]) == ["21000000001", "21000000002"]
    assert_error(api.admin.post("/export/zip"), 422, "invalid_input")


def test_purge_due_dry_run(api: Api) -> None:
    add_user_and_token(api)
    assert_error(api.helpdesk.post("/purge-due"), 403, "forbidden")
    body = api.admin.post("/purge-due", json={"dry_run": True}).json()
    assert body == {"dry_run": True, "purged": [], "undelivered_warning": []}


def test_a_big_upload_stays_in_memory(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import starlette.formparsers

    def no_spooling(*_args: object, **_kwargs: object) -> object:
        raise AssertionError("a seed file was about to be spooled to disk")

    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", no_spooling)
    data = entra_csv(20_000, start=256)
    assert len(data) > 1024 * 1024
    files = {"file": ("big.csv", data, "text/csv")}
    response = api.admin.post("/import", params={"dry_run": "true"}, files=files)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["problems"] == []
