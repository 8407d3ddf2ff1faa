"""Shared helpers for the format tests: secrets in all their spellings, and the no-leak check."""

from __future__ import annotations

from collections.abc import Iterable

from oathdesk.formats.problems import Code, Problem
from oathdesk.seed import encode_base32

ENTRA_HEADER = "upn,serial number,secret key,time interval,manufacturer,model"


def spellings(secret: bytes) -> list[str]:
    """Every way a secret could leak into a message: base32 and hex, whole and in part."""
    whole = [encode_base32(secret), secret.hex(), secret.hex().upper()]
    return whole + [text[:12] for text in whole] + [text[-12:] for text in whole]


def assert_no_secret(texts: Iterable[str], secrets: Iterable[bytes]) -> None:
    joined = "\n".join(texts)
    for secret in secrets:
        for spelling in spellings(secret):
            assert spelling not in joined, f"a secret leaked: {spelling[:4]}..."


def assert_well_formed(problems: Iterable[Problem]) -> None:
    """What every problem of the formats layer promises: a code, a fix, one printable line."""
    for problem in problems:
        assert problem.code != Code.OTHER, problem
        assert problem.fix, problem
        assert problem.line >= 0
        rendered = problem.render("f.csv")
        assert "\n" not in rendered
        assert "\r" not in rendered
        assert rendered.isprintable(), rendered
