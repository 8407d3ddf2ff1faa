"""The authorization code flow through msal against the stand-in over HTTPS: PKCE, state and
nonce travel for real, and oathdesk's own ID token checks run on what the token endpoint gave."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from oathdesk.identity.errors import SsoRefused
from oathdesk.identity.flow import Provider
from oathdesk.identity.settings import SsoSettings
from tests.identity.standin import CLIENT_SECRET, TENANT_ID, StandInIdP


def browse(idp: StandInIdP, flow: dict[str, Any]) -> dict[str, str]:
    """What a browser does: open the authorization URL, come back with the redirect's query."""
    verify = ssl.create_default_context(cafile=idp.ca_bundle)
    response = httpx.get(flow["auth_uri"], verify=verify, follow_redirects=False)
    assert response.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def test_a_sign_in_runs_with_pkce_and_names_the_user(
    idp: StandInIdP, sso_settings: SsoSettings
) -> None:
    provider = Provider(sso_settings, CLIENT_SECRET)
    flow = provider.start()
    query = parse_qs(urlsplit(flow["auth_uri"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["nonce"]
    assert query["state"]
    assert set(query["scope"][0].split()) == {"openid", "profile"}
    claims = provider.finish(flow, browse(idp, flow))
    assert (claims.tid, claims.oid, claims.role) == (TENANT_ID, idp.user.oid, "helpdesk")
    assert CLIENT_SECRET not in repr(provider)


def test_state_mismatch_is_refused_before_the_code_is_redeemed(
    idp: StandInIdP, sso_settings: SsoSettings
) -> None:
    provider = Provider(sso_settings, CLIENT_SECRET)
    flow, other = provider.start(), provider.start()
    answer = browse(idp, other)  # an answer to another sign-in, brought to this one
    with pytest.raises(SsoRefused) as caught:
        provider.finish(flow, answer)
    assert caught.value.reason == "state"


def test_the_identity_providers_error_is_refused_in_words(
    idp: StandInIdP, sso_settings: SsoSettings
) -> None:
    provider = Provider(sso_settings, CLIENT_SECRET)
    idp.deny_next = True
    flow = provider.start()
    with pytest.raises(SsoRefused) as caught:
        provider.finish(flow, browse(idp, flow))
    assert caught.value.reason == "idp_error"
    assert "declined" in caught.value.message


def test_a_replayed_nonce_is_refused(idp: StandInIdP, sso_settings: SsoSettings) -> None:
    provider = Provider(sso_settings, CLIENT_SECRET)
    first = provider.start()
    provider.finish(first, browse(idp, first))
    idp.misbehave = "replayed_nonce"  # the next ID token carries the first sign-in's nonce
    second = provider.start()
    with pytest.raises(SsoRefused) as caught:
        provider.finish(second, browse(idp, second))
    assert caught.value.reason == "nonce"


@pytest.mark.parametrize(("misbehave", "reason"), [("aud", "audience"), ("tid", "tenant")])
def test_a_bad_id_token_from_the_token_endpoint_is_refused(
    idp: StandInIdP, sso_settings: SsoSettings, misbehave: str, reason: str
) -> None:
    provider = Provider(sso_settings, CLIENT_SECRET)
    idp.misbehave = misbehave
    flow = provider.start()
    with pytest.raises(SsoRefused) as caught:
        provider.finish(flow, browse(idp, flow))
    assert caught.value.reason == reason


def test_a_wrong_client_secret_says_to_check_it(idp: StandInIdP, sso_settings: SsoSettings) -> None:
    provider = Provider(sso_settings, "not-the-secret")
    flow = provider.start()
    with pytest.raises(SsoRefused) as caught:
        provider.finish(flow, browse(idp, flow))
    assert caught.value.reason == "token_endpoint"
    assert "oathdesk sso configure" in caught.value.message
    assert "not-the-secret" not in caught.value.message


def test_a_code_is_redeemed_once(idp: StandInIdP, sso_settings: SsoSettings) -> None:
    provider = Provider(sso_settings, CLIENT_SECRET)
    flow = provider.start()
    answer = browse(idp, flow)
    provider.finish(flow, answer)
    with pytest.raises(SsoRefused) as caught:
        provider.finish(flow, answer)
    assert caught.value.reason == "token_endpoint"
