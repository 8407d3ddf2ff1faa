"""The admin pages: imports (problem report, all or nothing, background progress), exports,
settings; and that a helpdesk operator gets 403 on each of them."""

from __future__ import annotations

import re
import stat
import time
from pathlib import Path

import httpx
import pytest

from oathdesk.seed import encode_base32
from oathdesk.web.app import create_app
from tests.formats.test_pskc import PASSWORD, make_pskc
from tests.web.conftest import LOCAL_ADMIN, WebVault, new_client, serve_app, signed_in
from tests.web.helpdesk_support import (
    OLAF,
    OLAF_SERIAL,
    STOCK_SERIAL,
    element,
    populate,
    submit,
    table_rows,
)

HEADER = "upn,serial number,secret key,timeinterval,manufacturer,model\r\n"


@pytest.fixture(autouse=True)
def _tokens(web_vault: WebVault) -> None:
    populate(web_vault)


def serials_in(web_vault: WebVault) -> list[str]:
    vault = web_vault.open()
    try:
        return [t.serial for t in vault.list_tokens()]
    finally:
        vault.close()


def upload(client: httpx.Client, name: str, content: bytes, **fields: str) -> httpx.Response:
    return submit(
        client, "/import", fields, from_page="/import", files={"file": (name, content, "text/csv")}
    )


def test_import_with_problems_lists_each_with_its_line_and_changes_nothing(
    admin_client: httpx.Client, web_vault: WebVault
) -> None:
    before = serials_in(web_vault)
    content = (
        HEADER
        + f"anna@contoso.com,70000001,{encode_base32(bytes([1]) * 20)},30,Token2,C202\r\n"
        + "bert@contoso.com,70000002,not base32 at all!,30,Token2,C202\r\n"
        + f"carl@contoso.com,{OLAF_SERIAL},{encode_base32(bytes([2]) * 20)},30,Token2,C202\r\n"
    ).encode()
    page = upload(admin_client, "order.csv", content)
    assert page.status_code == 422
    assert "nothing was imported" in page.text
    rows = table_rows(page.text, "problems")
    lines = [row[0] for row in rows]
    assert "3" in lines  # the bad secret
    assert "4" in lines  # the serial already in the vault
    by_line = {row[0]: row for row in rows}
    assert "secret" in by_line["3"][1].lower()
    assert "already in the vault" in by_line["4"][2]
    assert all(row[3] or row[2] for row in rows)  # each says what is wrong / how to fix
    assert serials_in(web_vault) == before


def test_a_file_with_thousands_of_problems_lists_the_first_and_counts_the_rest(
    admin_client: httpx.Client, web_vault: WebVault
) -> None:
    """A big file uploaded twice has a problem on every row: the page lists SHOWN_PROBLEMS of
    them and counts the rest by kind (all of them made a 20 MB page of 100,000 rows)."""
    from oathdesk.web.pages.imports import SHOWN_PROBLEMS

    count = SHOWN_PROBLEMS + 40
    rows = [f"user{n}@contoso.com,9{n:07d},not base32 {n}!,30,Token2,C202" for n in range(count)]
    rows.append(f"carl@contoso.com,{OLAF_SERIAL},{encode_base32(bytes([2]) * 20)},30,Token2,C202")
    page = upload(admin_client, "order.csv", (HEADER + "\r\n".join(rows) + "\r\n").encode())
    assert page.status_code == 422
    assert f"{count + 1} problems in order.csv" in page.text
    listed = table_rows(page.text, "problems")
    assert len(listed) == SHOWN_PROBLEMS
    assert [row[0] for row in listed[:2]] == ["2", "3"]  # in line order, from the first
    found = element(page.text, "problems-hidden")
    assert found is not None
    hidden = found[0]
    assert "41 more" in hidden
    assert "40 secret-not-base32" in hidden
    assert "1 serial-in-vault" in hidden
    assert "oathdesk import --dry-run order.csv" in hidden


def test_good_import_adds_tokens_and_dry_run_does_not(
    admin_client: httpx.Client, web_vault: WebVault
) -> None:
    content = (
        HEADER
        + f"anna@contoso.com,70000001,{encode_base32(bytes([1]) * 20)},30,Token2,C202\r\n"
        + f"bert@contoso.com,70000002,{encode_base32(bytes([2]) * 20)},60,Token2,C203\r\n"
    ).encode()
    dry = upload(admin_client, "order.csv", content, dry_run="on")
    assert dry.status_code == 200
    assert "no problems" in dry.text
    assert "70000001" not in serials_in(web_vault)
    done = upload(admin_client, "order.csv", content)
    assert done.status_code == 200
    assert "Imported 2 tokens from order.csv (entra-csv)" in done.text
    assert "shred -u order.csv" in done.text
    assert done.headers["cache-control"] == "no-store"
    assert {"70000001", "70000002"} <= set(serials_in(web_vault))


def test_pskc_import_with_its_password(admin_client: httpx.Client, web_vault: WebVault) -> None:
    seeds = {"71000001": bytes(range(20)), "71000002": bytes(range(20, 40))}
    content = make_pskc("pbkdf2", seeds=seeds)
    wrong = upload(admin_client, "vendor.pskc", content, password="not the password")
    assert wrong.status_code == 422
    assert "not the password" not in wrong.text  # never sent back
    assert [row.get("data-code") for row in problem_attrs(wrong.text)] == ["wrong-password"]
    done = upload(admin_client, "vendor.pskc", content, password=PASSWORD)
    assert done.status_code == 200
    assert "Imported 2 tokens from vendor.pskc (pskc)" in done.text
    assert set(seeds) <= set(serials_in(web_vault))


def problem_attrs(html: str) -> list[dict[str, str]]:
    return [
        dict(re.findall(r'(data-[a-z]+)="([^"]*)"', row))
        for row in re.findall(r'<tr class="hd-problem"[^>]*>', html)
    ]


@pytest.mark.slow
def test_big_import_runs_in_the_background_with_progress(
    admin_client: httpx.Client, web_vault: WebVault
) -> None:
    rows = [
        f"user{i:05d}@contoso.com,8{i:07d},{encode_base32(i.to_bytes(20, 'big'))},30,Token2,C202"
        for i in range(1, 3601)
    ]
    content = (HEADER + "\r\n".join(rows) + "\r\n").encode()
    assert len(content) > 256 * 1024
    started = upload(admin_client, "big.csv", content)
    assert started.status_code == 303
    job_page = started.headers["location"]
    assert re.fullmatch(r"/import/jobs/[A-Za-z0-9_-]+", job_page)
    deadline = time.monotonic() + 120
    while True:
        progress = admin_client.get(job_page + "/progress").json()
        assert set(progress) == {"phase", "done", "total", "finished"}
        if progress["finished"]:
            break
        assert time.monotonic() < deadline, progress
        time.sleep(0.2)
    result = admin_client.get(job_page)
    assert "Imported 3600 tokens from big.csv" in result.text
    assert len(serials_in(web_vault)) == 3 + 3600
    # An unknown job is a plain 404.
    assert admin_client.get("/import/jobs/not-a-job").status_code == 404


@pytest.mark.slow
def test_a_background_import_is_seen_by_every_worker_of_the_server(
    web_vault: WebVault, tmp_path: Path
) -> None:
    """`serve --workers N`: the kernel hands each poll to any worker, so the job started on
    one must be followed on another (two apps here, sharing the server's jobs directory)."""
    jobs_dir = tmp_path / "jobs"
    config = web_vault.config(import_jobs_dir=jobs_dir)
    with (
        serve_app(create_app(config)) as first,
        serve_app(create_app(config)) as second,
        signed_in(first, web_vault.admin) as on_first,
        new_client(second) as on_second,
    ):
        on_second.cookies = on_first.cookies  # the session lives in the vault: either serves it
        rows = [
            f"u{i:05d}@contoso.com,9{i:07d},{encode_base32(i.to_bytes(20, 'big'))},30,Token2,C202"
            for i in range(1, 3601)
        ]
        broken = [*rows[:1200], "x@contoso.com,91234567,not base32!,30,Token2,C202", *rows[1200:]]
        refused = upload(on_first, "big.csv", (HEADER + "\r\n".join(broken)).encode())
        assert refused.status_code == 303
        report = _finished(on_second, refused.headers["location"])
        assert report.status_code == 422
        assert [row.get("data-line") for row in problem_attrs(report.text)] == ["1202"]
        assert "nothing was imported" in report.text

        started = upload(on_first, "big.csv", (HEADER + "\r\n".join(rows)).encode())
        done = _finished(on_second, started.headers["location"])
        assert "Imported 3600 tokens from big.csv" in done.text
        assert len(serials_in(web_vault)) == 3 + 3600
        # Nobody else opens the job; the directory is this user's only and holds no seed (the
        # report is all it keeps).
        with signed_in(second, web_vault.helpdesk) as helpdesk:
            assert helpdesk.get(started.headers["location"]).status_code in (403, 404)
    assert stat.S_IMODE(jobs_dir.stat().st_mode) == 0o700
    kept = b"".join(path.read_bytes() for path in jobs_dir.iterdir())
    assert encode_base32((3600).to_bytes(20, "big")).encode() not in kept


def _finished(client: httpx.Client, job_page: str) -> httpx.Response:
    deadline = time.monotonic() + 120
    while not client.get(job_page + "/progress").json()["finished"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    return client.get(job_page)


def test_import_form_has_its_fields(admin_client: httpx.Client, web_vault: WebVault) -> None:
    page = admin_client.get("/import")
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in page.text
    assert 'name="dry_run"' in page.text
    assert 'name="password"' in page.text
    content = (HEADER + f"anna@contoso.com,70000001,{encode_base32(bytes(20))},30,,\r\n").encode()
    forged = admin_client.post("/import", files={"file": ("order.csv", content, "text/csv")})
    assert forged.status_code in (400, 403)  # no CSRF token: refused, nothing imported
    assert "70000001" not in serials_in(web_vault)


def test_export_downloads_with_no_store_and_is_audited(
    admin_client: httpx.Client, web_vault: WebVault
) -> None:
    # Olaf's classic token is registered already; assign the stock one so the export has one.
    vault = web_vault.open()
    try:
        vault.assign(LOCAL_ADMIN, STOCK_SERIAL, OLAF)
    finally:
        vault.close()
    download = submit(admin_client, "/export", {"kind": "entra-csv"}, from_page="/export")
    assert download.status_code == 200
    assert download.headers["cache-control"] == "no-store"
    assert download.headers["content-disposition"].startswith('attachment; filename="oathdesk-')
    assert download.text.splitlines()[0].lower().startswith("upn,serial number,secret key")
    assert encode_base32(bytes([9]) * 20) in download.text
    nothing = submit(admin_client, "/export", {"kind": "qr-sheet"}, from_page="/export")
    assert nothing.status_code == 404
    assert "no token is ready for a qr-sheet export" in nothing.text
    vault = web_vault.open()
    try:
        records = vault.export_audit(action="tokens.exported")
    finally:
        vault.close()
    assert len(records) == 1
    assert records[0]["details"]["serials"] == [STOCK_SERIAL]


def test_settings_change_persists_and_bad_values_are_refused(
    admin_client: httpx.Client, web_vault: WebVault
) -> None:
    page = admin_client.get("/settings")
    assert page.status_code == 200
    good = {
        "acceptance_profile": "legacy",
        "retention_days": "7",
        "undelivered_warning_days": "30",
        "max_tokens_per_user": "5",
        "reveal_limit_per_user": "2",
        "reveal_limit_per_operator": "30",
        "four_eyes": "on",
    }
    saved = submit(admin_client, "/settings", good, from_page="/settings")
    assert saved.status_code == 303
    vault = web_vault.open()
    try:
        current = vault.settings()
    finally:
        vault.close()
    assert current.acceptance_profile == "legacy"
    assert current.retention_days == 7
    assert current.reveal_limit_per_user == 2
    assert current.four_eyes is True
    shown = admin_client.get("/settings")
    assert "settings saved" in shown.text
    found = element(shown.text, "s-retention_days")
    assert found is not None
    assert found[1]["value"] == "7"

    bad = {**good, "retention_days": "-1", "reveal_limit_per_user": "lots", "four_eyes": ""}
    refused = submit(admin_client, "/settings", bad, from_page="/settings")
    assert refused.status_code == 400
    assert "nothing was changed" in refused.text
    assert 'data-field="retention_days"' in refused.text
    assert 'data-field="reveal_limit_per_user"' in refused.text
    assert 'value="lots"' in refused.text  # what was typed stays for correcting
    vault = web_vault.open()
    try:
        assert vault.settings() == current  # four_eyes stayed on: nothing was saved
    finally:
        vault.close()
    bogus = submit(
        admin_client, "/settings", {**good, "acceptance_profile": "bogus"}, from_page="/settings"
    )
    assert bogus.status_code == 400


@pytest.mark.parametrize("page", ["/import", "/export", "/settings"])
def test_helpdesk_gets_403_on_admin_pages(helpdesk_client: httpx.Client, page: str) -> None:
    response = helpdesk_client.get(page)
    assert response.status_code == 403
    posted = submit(helpdesk_client, page, {"kind": "entra-csv"}, from_page="/search")
    assert posted.status_code == 403


def test_uploads_stay_in_memory() -> None:
    """Starlette spools uploads over 1 MB to a temporary file; the import page's parser does not."""
    import asyncio
    from collections.abc import AsyncGenerator
    from concurrent.futures import ThreadPoolExecutor
    from tempfile import SpooledTemporaryFile

    from starlette.datastructures import Headers, UploadFile
    from starlette.formparsers import MultiPartParser

    from oathdesk.web.pages.imports import _InMemoryMultiPart

    boundary = "oathdeskboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        f"Content-Type: text/csv\r\n\r\n".encode()
        + b"x" * (3 * 1024 * 1024)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = Headers({"content-type": f"multipart/form-data; boundary={boundary}"})

    def rolled_to_disk(parser_class: type[MultiPartParser]) -> bool:
        async def chunks() -> AsyncGenerator[bytes, None]:
            for start in range(0, len(body), 65536):
                yield body[start : start + 65536]

        async def parse() -> bool:
            form = await parser_class(headers, chunks(), max_files=1).parse()
            upload = form["file"]
            assert isinstance(upload, UploadFile)
            assert isinstance(upload.file, SpooledTemporaryFile)
            rolled = bool(getattr(upload.file, "_rolled"))  # noqa: B009 (private, untyped)
            await form.close()
            return rolled

        # Its own thread: a browser test in this worker may hold a running event loop here.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, parse()).result()

    assert rolled_to_disk(MultiPartParser)  # the stock parser would write the file to disk
    assert not rolled_to_disk(_InMemoryMultiPart)
