"""A batch given as columns (TokenColumns, what an import passes) is stored exactly as the same
batch given as NewToken objects, on SQLite and PostgreSQL; the bulk UPN check of a batch agrees
with validate_upn for any text."""

from __future__ import annotations

import random
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from oathdesk.errors import InvalidInput
from oathdesk.upn import is_valid_upn, validate_upn
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.models import TokenColumns
from oathdesk.vault.schema import token_secrets, tokens, users
from oathdesk.vault.vault import NewToken, Vault
from oathdesk.vault.work import _canonical_upns
from tests.vault_fixtures import ADMIN


def _batch(prefix: str) -> list[NewToken]:
    rng = random.Random(prefix)
    return [
        NewToken(
            f"{prefix}{i:04d}",
            "Token2",
            "C202",
            TokenKind.CLASSIC,
            rng.randbytes(20),
            period=30 + 30 * (i % 2),
            # Mixed case and a token in stock: the UPNs are made canonical, stock stays None.
            upn=None if i % 5 == 0 else f"{prefix}.User{i % 12}@Contoso.com",
        )
        for i in range(30)
    ]


def _stored(vault: Vault, prefix: str) -> list[tuple[Any, ...]]:
    with vault.engine.connect() as conn:
        query = (
            sa.select(
                tokens.c.serial,
                tokens.c.manufacturer,
                tokens.c.model,
                tokens.c.kind,
                tokens.c.algorithm,
                tokens.c.digits,
                tokens.c.period,
                tokens.c.state,
                users.c.upn,
                token_secrets.c.fingerprint,
            )
            .join(users, users.c.id == tokens.c.user_id, isouter=True)
            .join(token_secrets, token_secrets.c.token_id == tokens.c.id)
            .where(tokens.c.serial.like(f"{prefix}%"))
            .order_by(tokens.c.serial)
        )
        return [tuple(row) for row in conn.execute(query)]


def test_columns_are_stored_as_the_same_tokens(vault: Vault) -> None:
    as_objects, as_columns = _batch("OBJ"), _batch("COL")
    vault.add_tokens(ADMIN, as_objects, create_missing_users=True)
    columns = TokenColumns.of(as_columns)
    fingerprints = vault.secret_fingerprints([t.secret for t in as_columns if t.secret])
    vault.add_tokens(ADMIN, columns, create_missing_users=True, secret_fingerprints=fingerprints)
    objects, given = _stored(vault, "OBJ"), _stored(vault, "COL")
    assert [row[1:8] for row in objects] == [row[1:8] for row in given]
    assert [row[8] and row[8].replace("obj.", "col.") for row in objects] == [
        row[8] for row in given
    ]
    assert {row[8] for row in given} == {None} | {f"col.user{i}@contoso.com" for i in range(12)}
    # The fingerprints passed in are the ones stored, and the vault finds them again.
    assert [bytes(row[9]) for row in given] == fingerprints
    assert vault.secret_holders([t.secret for t in as_columns if t.secret]) == [
        t.serial for t in as_columns
    ]
    assert repr(columns) == "TokenColumns(30 tokens)"


def test_a_known_seed_in_columns_is_refused(vault: Vault) -> None:
    first = _batch("ONE")
    vault.add_tokens(ADMIN, first, create_missing_users=True)
    again = TokenColumns.of(
        [NewToken("TWO0001", "Token2", "C202", TokenKind.CLASSIC, first[3].secret)]
    )
    with pytest.raises(Exception, match="same secret as token ONE0003"):
        vault.add_tokens(ADMIN, again)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.from_regex(r"[A-Za-z0-9._-]{1,12}@[A-Za-z0-9-]{1,8}\.[A-Za-z]{2,4}", fullmatch=True),
            st.text(max_size=20),
        ),
        max_size=6,
    )
)
def test_the_bulk_upn_check_agrees_with_validate_upn(texts: list[str]) -> None:
    invalid = [text for text in texts if text and not is_valid_upn(text)]
    if invalid:
        with pytest.raises(InvalidInput, match="is not a valid UPN"):
            _canonical_upns(texts)
        return
    expected = {text: validate_upn(text) for text in texts if text}
    assert _canonical_upns(texts) == {raw: upn for raw, upn in expected.items() if raw != upn}
