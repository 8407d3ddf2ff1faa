"""The console's overview and housekeeping pages through a real server on 127.0.0.1, over a real
SQLite vault: the figures the database aggregates, the last cycles a page at a time, the next
cycle's time, and who may see which."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa

from oathdesk.services.alerts import AlertSettings, AlertSink
from oathdesk.services.housekeeping import run_cycle, slot_of, slot_start
from oathdesk.vault.lifecycle import TokenState
from oathdesk.vault.models import utc_now
from oathdesk.vault.schema import tokens
from tests.vault.conftest import UPN, classic, programmable
from tests.web.conftest import LOCAL_ADMIN, WebVault

HOUR = timedelta(hours=1)


def _fill(web_vault: WebVault) -> None:
    """Five tokens: two in stock, one assigned 40 days ago (late), one burned, one delivered
    20 days ago (due for purge)."""
    vault = web_vault.open()
    try:
        vault.add_user(LOCAL_ADMIN, UPN)
        vault.add_tokens(LOCAL_ADMIN, [programmable("p1"), programmable("p2"), programmable("p3")])
        vault.add_tokens(LOCAL_ADMIN, [classic("c1"), classic("c2")])
        vault.move(LOCAL_ADMIN, "p2", TokenState.BURNED)
        vault.move(LOCAL_ADMIN, "p3", TokenState.REGISTERED)
        vault.move(LOCAL_ADMIN, "p3", TokenState.DELIVERED)
        now = utc_now()
        with vault.transaction() as conn:
            for serial, column, days in (
                ("p1", "assigned_at", 40),
                ("p3", "delivered_at", 20),
                ("c2", "created_at", 3),
            ):
                conn.execute(
                    sa.update(tokens)
                    .where(tokens.c.serial == serial)
                    .values({column: now - timedelta(days=days)})
                )
    finally:
        vault.close()


def test_the_overview_shows_states_oldest_first_late_tokens_and_seeds_due(
    web_vault: WebVault, helpdesk_client: httpx.Client, auditor_client: httpx.Client
) -> None:
    _fill(web_vault)

    page = helpdesk_client.get("/overview").text

    states = re.findall(
        r'<tr data-state="(\w+)"><td>[^<]*</td>\s*<td class="number">(\d+)</td>', page
    )
    # Oldest first: p1 assigned 40 days ago, p3 delivered 20, c2 in stock for 3, p2 burned now.
    assert states == [("assigned", "1"), ("delivered", "1"), ("in_stock", "2"), ("burned", "1")]
    assert re.search(
        r'data-state="assigned">.*?<td>39 d|data-state="assigned">.*?<td>40 d', page, re.S
    )
    assert "(5 in all)" in page
    late = re.search(r'<table id="late">(.*?)</table>', page, re.S)
    assert late is not None
    assert re.findall(r'href="/tokens/([^"]+)"', late.group(1)) == ["p1"]
    assert '<span class="number" id="purge-due">1</span>' in page
    assert "No sync yet" in page
    assert 'href="/overview"' in page  # in the navigation
    assert auditor_client.get("/overview").status_code == 403


def test_the_overview_shows_entra_from_the_last_sync(
    web_vault: WebVault, helpdesk_client: httpx.Client
) -> None:
    """The last cycle whose sync ran (a recorded cycle as a server writes it)."""
    vault = web_vault.open()
    try:
        with vault.unit_of_work(LOCAL_ADMIN) as work:
            work.audit(
                "housekeeping.cycle",
                details={
                    "slot": 1,
                    "interval_seconds": 3600,
                    "steps": {
                        "entra_sync": {
                            "inventory": 12,
                            "differences": {"self_activated": 3, "deleted_in_entra": 1},
                        }
                    },
                },
            )
            # A newer cycle skipped the sync (no connection any more): not "the last sync".
            work.audit(
                "housekeeping.cycle",
                details={"slot": 2, "steps": {"entra_sync": {"skipped": "no Entra connection"}}},
            )
    finally:
        vault.close()

    page = helpdesk_client.get("/overview").text

    assert '<span class="number" id="entra-inventory">12</span>' in page
    assert '<span class="number" id="vault-in-entra">0</span>' in page
    kinds = re.findall(r'<tr data-kind="(\w+)"><td>[^<]*</td><td class="number">(\d+)</td>', page)
    assert sorted(kinds) == [("deleted_in_entra", "1"), ("self_activated", "3")]


def test_the_housekeeping_page_pages_cycles_and_says_when_the_next_is_due(
    web_vault: WebVault,
    admin_client: httpx.Client,
    auditor_client: httpx.Client,
    helpdesk_client: httpx.Client,
) -> None:
    _fill(web_vault)
    vault = web_vault.open()
    sink = AlertSink(AlertSettings(), vault)
    start = datetime.fromtimestamp(1_800_000_000, UTC)
    try:
        for moment in (start + n * HOUR for n in range(24)):
            run_cycle(vault, sink, interval=HOUR, now=functools.partial(lambda m: m, moment))
    finally:
        vault.close()

    page = auditor_client.get("/housekeeping").text

    rows = re.findall(r'<tr data-seq="(\d+)"', page)
    assert len(rows) == 20
    assert rows == sorted(rows, key=int, reverse=True)
    last_slot = slot_of(start + 23 * HOUR, HOUR)
    due = slot_start(last_slot + 1, HOUR).strftime("%Y-%m-%d %H:%M UTC")
    text = re.sub(r"<[^>]+>", "", page)  # times may be wrapped in <time> elements
    assert f"Next cycle due {due} (every 1h)" in text
    assert "purge: purged 0" in page  # the newest cycles: nothing left to purge
    older = re.search(r'<a id="older" href="(/housekeeping\?before=\d+)"', page)
    assert older is not None
    rest = auditor_client.get(older.group(1)).text
    older_rows = re.findall(r'<tr data-seq="(\d+)"', rest)
    assert len(older_rows) == 4
    assert max(map(int, older_rows)) < min(map(int, rows))
    assert 'id="older"' not in rest
    assert "purge: purged 1" in rest  # the first cycle purged p3's seed
    assert "undelivered_warning: late 2, warned 2" in rest  # p1, and p2 at the cycles' moment
    assert admin_client.get("/housekeeping").status_code == 200
    assert helpdesk_client.get("/housekeeping").status_code == 403


def test_a_failed_step_is_marked_on_the_housekeeping_page(
    web_vault: WebVault, admin_client: httpx.Client
) -> None:
    vault = web_vault.open()
    try:
        with vault.unit_of_work(LOCAL_ADMIN) as work:
            work.audit(
                "housekeeping.cycle",
                details={
                    "slot": None,
                    "server": "desk-7 process 4242",
                    "failed": ["entra_sync"],
                    "steps": {
                        "entra_sync": {"error": "could not list <b>tokens</b> (500)"},
                        "purge": {"purged": 0},
                    },
                },
            )
    finally:
        vault.close()

    page = admin_client.get("/housekeeping").text

    assert '<tr data-seq="' in page
    assert 'class="failed"' in page
    assert "entra_sync: failed: could not list &lt;b&gt;tokens&lt;/b&gt; (500)" in page
    assert "desk-7 process 4242" in page
    assert "No server runs housekeeping on a schedule yet" in page
