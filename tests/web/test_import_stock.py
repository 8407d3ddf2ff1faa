"""Issue 14: the console and the API take vendor stock files (Graph-style CSV, serial,secret,
an Entra CSV without UPNs) as tokens in stock, and PSKC files with HOTP keys with skip_hotp."""

from __future__ import annotations

import httpx

from oathdesk.seed import encode_base32
from tests.formats.helpers import StockToken, graph_style_csv
from tests.formats.test_pskc_hotp_mix import mixed_pskc
from tests.web.api_support import Api, api, api_keys, assert_error
from tests.web.conftest import WebVault
from tests.web.helpdesk_support import submit

__all__ = ["api", "api_keys"]  # fixtures


def _stock(web_vault: WebVault) -> dict[str, tuple[str | None, str, int]]:
    vault = web_vault.open()
    try:
        return {
            t.serial: (t.upn, t.state.value, t.period)
            for t in vault.list_tokens()
            if t.serial.startswith("8")
        }
    finally:
        vault.close()


def test_the_console_imports_stock_files_and_skips_hotp_keys_on_request(
    admin_client: httpx.Client, web_vault: WebVault
) -> None:
    graph = graph_style_csv([StockToken("81000001", bytes([1]) * 20, 60, "sha256")]).encode()
    serials = f"82000001,{encode_base32(bytes([2]) * 20)}\r\n".encode()
    entra = (
        "upn,serial number,secret key,time interval,manufacturer,model\r\n"
        f",83000001,{encode_base32(bytes([3]) * 20)},30,Token2,C202\r\n"
    ).encode()
    for name, content, file_format in (
        ("inventory.csv", graph, "graph-csv"),
        ("serials.csv", serials, "serial-list"),
        ("order.csv", entra, "entra-csv"),
    ):
        page = _upload(admin_client, name, content)
        assert page.status_code == 200, page.text
        assert f"Imported 1 token from {name} ({file_format})" in page.text
    assert _stock(web_vault) == {
        "81000001": (None, "in_stock", 60),
        "82000001": (None, "in_stock", 30),
        "83000001": (None, "in_stock", 30),
    }
    form = admin_client.get("/import").text
    assert "graph-csv" in form
    assert "serial-list" in form
    assert 'name="skip_hotp"' in form
    assert "classic for entra-csv, pskc, graph-csv, serial-list" in form
    keys = {
        "84000001": ("urn:ietf:params:xml:ns:keyprov:pskc:totp", bytes([4]) * 20),
        "84000002": ("urn:ietf:params:xml:ns:keyprov:pskc:hotp", bytes([5]) * 20),
    }
    refused = _upload(admin_client, "vendor.pskc", mixed_pskc(keys))
    assert refused.status_code >= 400
    assert "skip_hotp" in refused.text
    assert "84000002" in refused.text
    done = _upload(admin_client, "vendor.pskc", mixed_pskc(keys), skip_hotp="on")
    assert done.status_code == 200, done.text
    assert "Skipped 1 HOTP (counter-based) key, which Entra cannot use: 84000002" in done.text
    assert "84000001" in _stock(web_vault)
    assert "84000002" not in _stock(web_vault)


def test_the_api_imports_stock_files_and_skips_hotp_keys_on_request(api: Api) -> None:
    tokens = [StockToken(f"8500000{n}", bytes([n]) * 20) for n in range(1, 4)]
    done = api.admin.post(
        "/import", files={"file": ("inventory.csv", graph_style_csv(tokens).encode())}
    )
    assert done.status_code == 200, done.text
    assert done.json() == {
        "format": "graph-csv",
        "dry_run": False,
        "imported": 3,
        "placeholder_serials": 0,
        "problems": [],
        "in_stock": 3,
        "skipped": [],
    }
    items = api.admin.get("/tokens").json()["items"]
    assert {(t["serial"], t["upn"]) for t in items} >= {(t.serial, None) for t in tokens}
    keys = {
        "86000001": ("urn:ietf:params:xml:ns:keyprov:pskc:hotp", bytes([7]) * 20),
        "86000002": ("urn:ietf:params:xml:ns:keyprov:pskc:totp", bytes([8]) * 20),
    }
    files = {"file": ("vendor.pskc", mixed_pskc(keys))}
    message = assert_error(api.admin.post("/import", files=files), 400, "hotp_keys")
    assert "skip_hotp" in message
    assert "86000001" in message
    skipped = api.admin.post("/import", params={"skip_hotp": "true"}, files=files)
    assert skipped.status_code == 200, skipped.text
    assert (skipped.json()["imported"], skipped.json()["skipped"]) == (1, ["86000001"])


def _upload(client: httpx.Client, name: str, content: bytes, **fields: str) -> httpx.Response:
    return submit(
        client, "/import", fields, from_page="/import", files={"file": (name, content, "text/csv")}
    )


def test_a_jobs_file_keeps_the_skipped_keys_and_the_option() -> None:
    """A console import's job is written to a file that the other workers read back."""
    import json

    from oathdesk.services.importer import ImportResult, SkippedKey
    from oathdesk.web.import_jobs import ImportJob, ImportOptions, _job_as_json, _job_from_json

    result = ImportResult("pskc", [], 1, 0, False, skipped=[SkippedKey(7, "84000002")])
    job = ImportJob("j" * 22, "admin", ImportOptions("v.pskc", None, None, False, True), 1.0)
    job.result = result
    back = _job_from_json(json.loads(json.dumps(_job_as_json(job))))
    assert back.result == result
    assert back.options.skip_hotp is True
