"""The audit viewer (filters, paging, the chain's status) and the drift report with its SVG."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from tests.web.conftest import LOCAL_ADMIN, WebVault
from tests.web.helpdesk_support import (
    HELGA,
    HELGA_SERIAL,
    OLAF_SERIAL,
    element,
    populate,
    table_rows,
    text_of,
)


@pytest.fixture(autouse=True)
def _tokens(web_vault: WebVault) -> None:
    populate(web_vault)


def audit_rows(client: httpx.Client, **filters: str) -> list[list[str]]:
    page = client.get("/audit", params=filters)
    assert page.status_code == 200, page.text
    return [row for row in table_rows(page.text, "audit-log") if len(row) == 7]


def test_audit_filters(auditor_client: httpx.Client) -> None:
    page = auditor_client.get("/audit")
    assert page.status_code == 200
    status = element(page.text, "chain-status")
    assert status is not None
    assert status[1]["data-intact"] == "yes"

    shipped = audit_rows(auditor_client, action="token.shipped")
    assert [(row[3], row[5]) for row in shipped] == [("token.shipped", HELGA_SERIAL)]
    about_helga = audit_rows(auditor_client, upn=HELGA)
    assert about_helga
    assert all(row[4] == HELGA for row in about_helga)
    by_serial = audit_rows(auditor_client, serial=OLAF_SERIAL)
    assert {row[3] for row in by_serial} == {"token.added", "token.registered"}
    by_operator = audit_rows(auditor_client, operator="audrey")
    assert {row[3] for row in by_operator} == {"operator.signed_in"}
    # The records were written in the last minutes: from the day an hour ago to today holds
    # them all, also when the test runs across midnight (UTC), which "today" alone did not.
    now = datetime.now(UTC)
    since, until = (f"{moment:%Y-%m-%d}" for moment in (now - timedelta(hours=1), now))
    assert len(audit_rows(auditor_client, since=since, until=until)) == len(
        audit_rows(auditor_client)
    )
    assert audit_rows(auditor_client, since="2001-01-01", until="2001-12-31") == []
    bad = auditor_client.get("/audit", params={"since": "yesterday"})
    assert bad.status_code == 400
    assert "YYYY-MM-DD" in text_of(bad.text, "form-error")


def test_audit_paging_and_broken_chain(admin_client: httpx.Client, web_vault: WebVault) -> None:
    vault = web_vault.open()
    try:
        for days in range(1, 61):
            vault.update_settings(LOCAL_ADMIN, retention_days=days)
        total = vault.audit_count()
    finally:
        vault.close()
    first = admin_client.get("/audit")
    assert len(audit_rows(admin_client)) == 50
    assert "50 records on this page, newest first" in text_of(first.text, "audit-count")
    cursor = re.search(r'rel="next" href="/audit\?cursor=([A-Za-z0-9_-]+)"', first.text)
    assert cursor is not None
    assert 'rel="first"' not in first.text
    second_page = admin_client.get("/audit", params={"cursor": cursor[1]})
    assert 'rel="first" href="/audit"' in second_page.text
    second = audit_rows(admin_client, cursor=cursor[1])
    assert len(second) == total - 50
    assert second[-1][0] == "1"  # the oldest record last
    assert int(second[0][0]) == total - 50  # right after the first page's last, none twice
    # The cursor is bound to its filter: with another one it is refused, plainly.
    swapped = admin_client.get("/audit", params={"cursor": cursor[1], "action": "user.added"})
    assert swapped.status_code == 400
    assert text_of(swapped.text, "form-error") == (
        "this page link is not valid for this list; start again from the first page"
    )

    engine = sa.create_engine(web_vault.location.database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 5"))
    engine.dispose()
    # The whole chain was checked a moment ago, so a view checks what came since (see
    # services/audit_checks.py); the page's link checks the whole chain now.
    assert element(admin_client.get("/audit").text, "check-whole-chain") is not None
    page = admin_client.get("/audit", params={"whole": "1"})
    status = element(page.text, "chain-status")
    assert status is not None
    assert status[1]["data-intact"] == "no"
    assert "does NOT verify" in page.text
    assert "record 5: MAC mismatch (edited or forged)" in page.text
    again = element(admin_client.get("/audit").text, "chain-status")  # stays broken
    assert again is not None
    assert again[1]["data-intact"] == "no"


def test_helpdesk_may_not_read_the_audit_log(helpdesk_client: httpx.Client) -> None:
    assert helpdesk_client.get("/audit").status_code == 403


def test_drift_report_with_svg_charts(helpdesk_client: httpx.Client, web_vault: WebVault) -> None:
    empty = helpdesk_client.get("/drift")
    assert empty.status_code == 200
    assert 'id="drift-none"' in empty.text
    now = datetime.now(UTC)
    vault = web_vault.open()
    try:
        helga = vault.get_token(HELGA_SERIAL)
        olaf = vault.get_token(OLAF_SERIAL)
        with vault.transaction() as conn:
            vault.record_drift(conn, helga, 10, measured_at=now - timedelta(days=60))
            vault.record_drift(conn, helga, 40, measured_at=now - timedelta(days=1))
            vault.record_drift(conn, olaf, 5, measured_at=now - timedelta(days=2))
    finally:
        vault.close()
    page = helpdesk_client.get("/drift")
    rows = table_rows(page.text, "drift-report")
    assert len(rows) == 1  # only Helga's token is near the edge of the ±60 s window
    serial, upn, drift, window, status, rate, outside, _chart = rows[0]
    assert (serial, upn, drift, window, status) == (HELGA_SERIAL, HELGA, "+40 s", "±60 s", "near")
    assert rate == "+0.51 s/day"
    assert outside  # a predicted date out of the window
    assert page.text.count('<svg class="hd-spark"') == 1
    assert "<polyline points=" in page.text
    chart = element(page.text, "drift-chart")
    assert chart is not None
    assert f'<g class="hd-bar" data-serial="{HELGA_SERIAL}">' in page.text
    assert f'<g class="hd-bar" data-serial="{OLAF_SERIAL}">' in page.text
