"""Base32 columns decoded in one call (entra_rules.decode_base32_groups), which the bulk Entra
reader and the bulk secret check share: every text decodes to what base64.b32decode gives it,
in order, whatever the mix of lengths (including leading zero bytes, which int() would drop)."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from oathdesk.formats.entra_rules import decode_base32_groups

# Whole 5-byte groups encode to whole 8-character groups without padding.
secrets = st.integers(min_value=0, max_value=16).flatmap(
    lambda groups: st.binary(min_size=5 * groups, max_size=5 * groups)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(secrets, max_size=20))
def test_a_column_decodes_to_each_text_decoded_alone(column: list[bytes]) -> None:
    texts = [base64.b32encode(secret).decode() for secret in column]
    assert decode_base32_groups(texts) == [base64.b32decode(text) for text in texts]


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=40), st.integers(min_value=1, max_value=6))
def test_equal_lengths_and_leading_zeros_keep_every_byte(count: int, groups: int) -> None:
    column = [bytes(5 * groups - 1) + bytes([i % 256]) for i in range(count)]
    texts = [base64.b32encode(secret).decode() for secret in column]
    assert decode_base32_groups(texts) == column


def test_no_text_and_empty_texts() -> None:
    assert decode_base32_groups([]) == []
    assert decode_base32_groups(["", ""]) == [b"", b""]
    assert decode_base32_groups(["", "MFRGGZDF", ""]) == [b"", b"abcde", b""]
