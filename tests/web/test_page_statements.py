"""Statements a console page need not run (issue 15): the session's messages for the next page
are read only when some wait, and still shown once; the start page reads the settings once."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from oathdesk.web.app import create_app
from oathdesk.web.config import WebConfig
from tests.web.conftest import WebVault, serve_app, signed_in


class Reads:
    """How many statements starting with ``start`` the server ran while the block ran."""

    def __init__(self, engine: sa.Engine, start: str) -> None:
        self.engine = engine
        self.start = start
        self.count = 0

    def __enter__(self) -> Reads:
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.count += " ".join(statement.split()).startswith(self.start)


FLASH = "SELECT web_sessions.flash FROM"


def test_messages_are_read_only_when_some_wait(web_config: WebConfig, web_vault: WebVault) -> None:
    app = create_app(web_config)
    with serve_app(app) as base, signed_in(base, web_vault.admin) as client:
        engine = app.state.vault.engine
        with Reads(engine, FLASH) as reads:
            first = client.get("/")  # the sign-in left "Signed in as ..." for this page
        assert first.status_code == 200
        assert "Signed in as ada (admin)" in first.text
        assert reads.count == 1
        with Reads(engine, FLASH) as reads:
            again = client.get("/")
        assert again.status_code == 200
        assert "Signed in as" not in again.text
        assert reads.count == 0


def test_the_start_page_reads_the_settings_once(web_config: WebConfig, web_vault: WebVault) -> None:
    app = create_app(web_config)
    with serve_app(app) as base, signed_in(base, web_vault.admin) as client:
        with Reads(app.state.vault.engine, "SELECT settings.id") as reads:
            assert client.get("/").status_code == 200
        assert reads.count == 1
