"""Big imports through the bulk paths (vault/bulk.py lookups, one users.added record), on SQLite
and PostgreSQL: users created in bulk beside ones the vault has, clashes found with their lines,
and all or nothing when the vault refuses the batch late."""

from __future__ import annotations

import base64
import random

import pytest
import sqlalchemy as sa

from oathdesk.errors import Conflict
from oathdesk.services.importer import import_seeds
from oathdesk.vault.bulk import ANALYZE_AFTER
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.schema import tokens, users
from oathdesk.vault.vault import NewToken, Vault
from oathdesk.vault.work import serials_digest
from tests.vault_fixtures import ADMIN

# Over the size from which vault/bulk.py matches against one read of the column.
ROWS = 2500
HEADER = "upn,serial number,secret key,time interval,manufacturer,model\n"


def _secret(number: int) -> bytes:
    return random.Random(number).randbytes(20)


def _csv(rows: list[tuple[str, str, bytes]]) -> bytes:
    lines = [
        f"{upn},{serial},{base64.b32encode(secret).decode()},30,Token2,C202\n"
        for upn, serial, secret in rows
    ]
    return (HEADER + "".join(lines)).encode()


def _big(offset: int = 0) -> list[tuple[str, str, bytes]]:
    return [
        (f"p{i:05d}@contoso.com", f"{70000000 + i}", _secret(i))
        for i in range(offset, offset + ROWS)
    ]


def _contents(vault: Vault) -> tuple[int, int, int]:
    with vault.transaction() as conn:
        counted = [
            int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
            for table in (tokens, users)
        ]
    return counted[0], counted[1], vault.audit_count()


def test_users_are_created_in_bulk_beside_the_ones_the_vault_has(vault: Vault) -> None:
    vault.add_user(ADMIN, "p00007@contoso.com", display_name="Helga", phone="", notes="")
    rows = _big()
    rows[7] = ("P00007@Contoso.com", rows[7][1], rows[7][2])  # the same user, another case
    before = vault.audit_count()
    result = import_seeds(vault, ADMIN, _csv(rows), source="import:big.csv")
    assert (result.imported, result.assigned, result.users) == (ROWS, ROWS, ROWS)
    records = vault.export_audit()[before:]
    assert [r["action"] for r in records] == ["users.added", "tokens.added"]
    created = sorted(upn.lower() for upn, _, _ in rows if upn.lower() != "p00007@contoso.com")
    assert records[0]["details"]["count"] == ROWS - 1
    assert records[0]["details"]["upns_sha256"] == serials_digest(created)
    assert _contents(vault)[:2] == (ROWS, ROWS)  # one user p00007, not two
    helga = vault.get_token(rows[7][1])
    assert helga.upn == "p00007@contoso.com"
    assert vault.get_user("p00007@contoso.com").display_name == "Helga"
    assert vault.verify_audit() == []


def test_clashes_with_the_vault_are_found_with_their_lines(vault: Vault) -> None:
    assert import_seeds(vault, ADMIN, _csv(_big())).imported == ROWS
    before = _contents(vault)
    again = _big(ROWS)  # new serials, users and secrets ...
    again[10] = (again[10][0], "70000003", again[10][2])  # ... but a serial in the vault
    again[20] = (again[20][0], again[20][1], _secret(5))  # and a seed in the vault
    again[30] = ("p00001@contoso.com", again[30][1], again[30][2])  # a user at the limit?
    refused = import_seeds(vault, ADMIN, _csv(again))
    assert [(p.line, p.column, p.code) for p in refused.problems] == [
        (12, "serial number", "serial-in-vault"),
        (22, "secret key", "secret-in-vault"),
    ]
    assert "70000003" in refused.problems[0].message
    assert "70000005" in refused.problems[1].message
    assert _contents(vault) == before
    # The user p00001 has one token, well within the limit: with the clashes gone it lands.
    again[10] = (again[10][0], "79999999", again[10][2])
    again[20] = (again[20][0], again[20][1], _secret(99_999))
    assert import_seeds(vault, ADMIN, _csv(again)).imported == ROWS
    assert len(vault.list_tokens(upn="p00001@contoso.com")) == 2


def test_a_batch_the_vault_refuses_late_leaves_nothing(vault: Vault) -> None:
    vault.add_tokens(ADMIN, [NewToken("K1", "Token2", "C202", TokenKind.CLASSIC, b"\x01" * 20)])
    before = _contents(vault)
    batch = [
        NewToken(serial, "Token2", "C202", TokenKind.CLASSIC, secret, upn=upn)
        for upn, serial, secret in _big()
    ]
    # The last token's seed is K1's: found after the users were created and the tokens
    # inserted (the vault's own check, whatever an importer saw before).
    batch[-1] = NewToken(batch[-1].serial, "Token2", "C202", TokenKind.CLASSIC, b"\x01" * 20)
    with pytest.raises(Conflict, match="has the same secret as token K1"):
        vault.add_tokens(ADMIN, batch, create_missing_users=True)
    assert _contents(vault) == before
    # A serial twice in the batch is refused before anything is written.
    twice = [*batch[:-1], NewToken(batch[0].serial, "Token2", "C202", TokenKind.CLASSIC)]
    with pytest.raises(Conflict, match=f"serial {batch[0].serial} appears twice"):
        vault.add_tokens(ADMIN, twice, create_missing_users=True)
    assert _contents(vault) == before
    assert vault.verify_audit() == []


def _last_analyzed(vault: Vault) -> dict[str, object]:
    """When each table the import fills was last analyzed by hand (autovacuum's own runs are
    in another column, so they cannot make this test pass by chance)."""
    with vault.engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT relname, last_analyze FROM pg_stat_user_tables "
            "WHERE relname IN ('users', 'tokens', 'token_secrets')"
        )
        return {str(name): moment for name, moment in found}


@pytest.mark.parametrize("location", ["postgresql"], indirect=True)
def test_a_big_import_on_postgresql_is_analyzed_after_its_commit(vault: Vault) -> None:
    small = import_seeds(vault, ADMIN, _csv(_big()[:3]), source="import:small.csv")
    assert small.imported == 3
    assert _last_analyzed(vault) == dict.fromkeys(("users", "tokens", "token_secrets"))
    rows = [
        (f"q{i:05d}@contoso.com", f"{80000000 + i}", _secret(100_000 + i))
        for i in range(ANALYZE_AFTER)
    ]
    big = import_seeds(vault, ADMIN, _csv(rows), source="import:big.csv")
    assert big.imported == ANALYZE_AFTER
    analyzed = _last_analyzed(vault)
    assert sorted(analyzed) == ["token_secrets", "tokens", "users"]
    assert None not in analyzed.values(), analyzed
