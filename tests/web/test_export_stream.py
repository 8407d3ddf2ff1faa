"""An Entra CSV export streams through the real API (uvicorn on 127.0.0.1): audited before the
first byte, its first bytes on the wire before the rest is produced, the same bytes as the
export made whole, and a receiver that goes away leaves the record of what was requested."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from oathdesk.services import exporter
from oathdesk.services.exporter import export
from oathdesk.vault.export_rows import ExportColumns
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.vault import NewToken, Vault
from tests.web.api_support import Api, api, api_keys
from tests.web.conftest import LOCAL_ADMIN, WebVault

__all__ = ["api", "api_keys"]  # fixtures

# More than two chunks of the stream.
TOKENS = exporter.STREAM_CHUNK * 2 + 345


def _fill(vault: Vault) -> list[str]:
    serials = [f"{50000000 + i}" for i in range(TOKENS)]
    vault.add_tokens(
        LOCAL_ADMIN,
        [
            NewToken(
                s,
                "Token2",
                "C202",
                TokenKind.CLASSIC,
                i.to_bytes(20, "big"),
                upn=f"p{i}@contoso.com",
            )
            for i, s in enumerate(serials)
        ],
        create_missing_users=True,
    )
    return serials


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Holds the server's stream after its first chunk of rows until the test opens it: what
    reaches the client before that was sent before the rest was produced."""
    opened = threading.Event()
    original = exporter._entra_chunks

    def held(
        header_spelling: str, parts: Iterator[tuple[ExportColumns, list[bytes]]]
    ) -> Iterator[str]:
        for number, chunk in enumerate(original(header_spelling, parts)):
            if number == 2:  # the header, then the first rows, are out
                assert opened.wait(timeout=60), "the test never opened the gate"
            yield chunk

    monkeypatch.setattr(exporter, "_entra_chunks", held)
    return opened


def _audited(vault: Vault) -> list[dict[str, object]]:
    return [r["details"] for r in vault.export_audit(action="tokens.exported")]


def test_the_entra_csv_streams_audited_before_the_first_byte(
    api: Api, web_vault: WebVault, gate: threading.Event
) -> None:
    vault = web_vault.open()
    try:
        serials = _fill(vault)
        received = b""
        with api.admin.stream("POST", "/export/entra-csv") as response:
            assert response.status_code == 200
            assert response.headers["x-oathdesk-count"] == str(TOKENS)
            assert "content-length" not in response.headers  # chunked: it is being made
            pieces = response.iter_bytes()
            while received.count(b"\r\n") < 1 + exporter.STREAM_CHUNK:
                received += next(pieces)
            # The rows after the first chunk are not made yet, and the record is there.
            assert _audited(vault) == [{"format": "entra-csv", "serials": serials}]
            gate.set()
            received += b"".join(pieces)
        assert received.count(b"\r\n") == 1 + TOKENS
        whole = export(vault, LOCAL_ADMIN, "entra-csv")  # the export made whole, audited too
        assert received == whole.text.encode("utf-8")
        assert len(_audited(vault)) == 2
    finally:
        vault.close()


def test_a_receiver_that_goes_away_leaves_the_record_of_what_was_requested(
    api: Api, web_vault: WebVault, gate: threading.Event
) -> None:
    vault = web_vault.open()
    try:
        serials = _fill(vault)
        with api.admin.stream("POST", "/export/entra-csv") as response:
            first = next(response.iter_bytes())
            assert first.startswith(b"upn,serial number,secret key,time interval,")
        # Gone after the first bytes: the record says every token that was requested.
        gate.set()
        assert _audited(vault) == [{"format": "entra-csv", "serials": serials}]
        # The server goes on serving; another export is whole and audited again.
        again = api.admin.post("/export/entra-csv")
        assert again.status_code == 200
        assert again.text.count("\r\n") == 1 + TOKENS
        assert len(_audited(vault)) == 2
    finally:
        vault.close()
