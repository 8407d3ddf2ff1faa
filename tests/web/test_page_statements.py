"""A console page reads the session's messages for the next page only when some wait (issue 15:
one statement less on every page view), and still shows each message once."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from oathdesk.web.app import create_app
from oathdesk.web.config import WebConfig
from tests.web.conftest import WebVault, serve_app, signed_in


class FlashReads:
    """How many times the server read a session's stored messages while the block ran."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.count = 0

    def __enter__(self) -> FlashReads:
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.count += " ".join(statement.split()).startswith("SELECT web_sessions.flash FROM")


def test_messages_are_read_only_when_some_wait(web_config: WebConfig, web_vault: WebVault) -> None:
    app = create_app(web_config)
    with serve_app(app) as base, signed_in(base, web_vault.admin) as client:
        engine = app.state.vault.engine
        with FlashReads(engine) as reads:
            first = client.get("/")  # the sign-in left "Signed in as ..." for this page
        assert first.status_code == 200
        assert "Signed in as ada (admin)" in first.text
        assert reads.count == 1
        with FlashReads(engine) as reads:
            again = client.get("/")
        assert again.status_code == 200
        assert "Signed in as" not in again.text
        assert reads.count == 0
