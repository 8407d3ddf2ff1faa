"""A running stand-in identity provider per test, and the oathdesk settings that trust it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from oathdesk.identity.settings import CredentialKind, SsoSettings
from tests.identity.standin import CLIENT_ID, TENANT_ID, StandInIdP, running

REDIRECT = "http://127.0.0.1:8765/auth/callback"


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[StandInIdP]:
    with running(tmp_path / "idp-tls") as standin:
        yield standin


def settings_for(idp: StandInIdP, redirect: str = REDIRECT, **changes: object) -> SsoSettings:
    values: dict[str, object] = {
        "tenant_id": TENANT_ID,
        "client_id": CLIENT_ID,
        "credential": CredentialKind.CLIENT_SECRET,
        "redirect_url": redirect,
        "authority_host": idp.origin,
        "ca_bundle": idp.ca_bundle,
    }
    values.update(changes)
    return SsoSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def sso_settings(idp: StandInIdP) -> SsoSettings:
    return settings_for(idp)
