"""check_id_token refuses every token that is wrong in one way, with a reason and one line.

Tokens come from the stand-in identity provider's signer; keys come from its JWKS over HTTPS.
"""

from __future__ import annotations

import time

import pytest

from oathdesk.identity.discovery import fetch_discovery
from oathdesk.identity.errors import SsoRefused
from oathdesk.identity.keys import JwksKeys
from oathdesk.identity.settings import SsoSettings
from oathdesk.identity.tokens import IdentityClaims, check_id_token
from tests.identity.conftest import settings_for
from tests.identity.standin import OTHER_TENANT_ID, TENANT_ID, StandInIdP

NONCE = "c0ffee" * 10


def check(
    idp: StandInIdP,
    settings: SsoSettings,
    raw: str,
    *,
    keys: JwksKeys | None = None,
    now: float | None = None,
    nonce: str = NONCE,
) -> IdentityClaims:
    discovery = fetch_discovery(settings)
    return check_id_token(
        raw,
        settings=settings,
        keys=keys or JwksKeys(discovery.jwks_uri, ca_bundle=idp.ca_bundle, cooldown=0),
        issuer_template=discovery.issuer,
        expected_nonce=nonce,
        now=time.time() if now is None else now,
    )


def refusal(idp: StandInIdP, settings: SsoSettings, raw: str, **kwargs: object) -> SsoRefused:
    with pytest.raises(SsoRefused) as caught:
        check(idp, settings, raw, **kwargs)  # type: ignore[arg-type]
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith("Microsoft sign-in refused: ")
    assert raw not in message
    assert raw[:40] not in message
    return caught.value


def test_a_good_token_names_the_operator_by_tid_and_oid(
    idp: StandInIdP, sso_settings: SsoSettings
) -> None:
    claims = check(idp, sso_settings, idp.id_token(nonce=NONCE))
    assert (claims.tid, claims.oid) == (TENANT_ID, idp.user.oid)
    assert claims.upn == idp.user.upn
    assert claims.name == idp.user.name
    assert claims.role == "helpdesk"
    assert claims.app_roles == {"oathdesk.helpdesk"}


@pytest.mark.parametrize(
    ("misbehave", "reason"),
    [
        ("aud", "audience"),
        ("iss", "issuer"),
        ("tid", "tenant"),
        ("expired", "expired"),
        ("not_yet", "not_yet_valid"),
        ("signature", "signature"),
        ("alg_none", "algorithm"),
    ],
)
def test_a_token_wrong_in_one_way_is_refused(
    idp: StandInIdP, sso_settings: SsoSettings, misbehave: str, reason: str
) -> None:
    idp.misbehave = misbehave
    assert refusal(idp, sso_settings, idp.id_token(nonce=NONCE)).reason == reason


def test_an_hmac_token_signed_with_the_public_key_is_refused(
    idp: StandInIdP, sso_settings: SsoSettings
) -> None:
    """The classic confusion: HS256 keyed with the RSA public key a verifier holds (made by
    hand: PyJWT itself refuses to sign that way)."""
    import hashlib
    import hmac
    import json

    import jwt
    from cryptography.hazmat.primitives import serialization

    from tests.identity.standin import b64url

    kid, key = idp.keys.current
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    good = jwt.decode(idp.id_token(nonce=NONCE), options={"verify_signature": False})
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    signing_input = f"{header}.{b64url(json.dumps(good).encode())}"
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64url(mac)}"
    assert refusal(idp, sso_settings, forged).reason == "algorithm"


def test_a_nonce_of_another_sign_in_is_refused(idp: StandInIdP, sso_settings: SsoSettings) -> None:
    raw = idp.id_token(nonce="an-earlier-sign-in-nonce")
    assert refusal(idp, sso_settings, raw).reason == "nonce"


def test_a_missing_nonce_is_refused(idp: StandInIdP, sso_settings: SsoSettings) -> None:
    raw = idp.id_token(nonce=NONCE, without=("nonce",))
    assert refusal(idp, sso_settings, raw).reason == "claims"


def test_a_tenant_pinned_elsewhere_refuses_this_tenants_tokens(idp: StandInIdP) -> None:
    """Configured for another tenant: a token of this one (issuer matching its own tid) is out."""
    settings = settings_for(idp, tenant_id=OTHER_TENANT_ID)
    raw = idp.id_token(nonce=NONCE)
    with pytest.raises(SsoRefused) as caught:
        check_id_token(
            raw,
            settings=settings,
            keys=JwksKeys(fetch_discovery(settings_for(idp)).jwks_uri, ca_bundle=idp.ca_bundle),
            issuer_template=f"{idp.origin}/{{tenantid}}/v2.0",
            expected_nonce=NONCE,
            now=time.time(),
        )
    assert caught.value.reason == "tenant"


def test_the_issuer_template_is_filled_from_tid(idp: StandInIdP, sso_settings: SsoSettings) -> None:
    discovery = fetch_discovery(sso_settings)
    claims = check_id_token(
        idp.id_token(nonce=NONCE),
        settings=sso_settings,
        keys=JwksKeys(discovery.jwks_uri, ca_bundle=idp.ca_bundle),
        issuer_template=f"{idp.origin}/{{tenantid}}/v2.0",
        expected_nonce=NONCE,
        now=time.time(),
    )
    assert claims.tid == TENANT_ID


def test_no_role_is_refused_with_what_to_ask_for(
    idp: StandInIdP, sso_settings: SsoSettings
) -> None:
    idp.user.roles = ["some.other.app.role"]
    refused = refusal(idp, sso_settings, idp.id_token(nonce=NONCE))
    assert refused.reason == "no_role"
    assert "oathdesk.helpdesk" in refused.message


def test_the_strongest_app_role_wins(idp: StandInIdP, sso_settings: SsoSettings) -> None:
    idp.user.roles = ["oathdesk.auditor", "oathdesk.admin", "oathdesk.helpdesk"]
    assert check(idp, sso_settings, idp.id_token(nonce=NONCE)).role == "admin"


def test_groups_map_to_roles_and_overage_is_refused(idp: StandInIdP) -> None:
    group = "7d9e1f20-3a4b-4c5d-8e6f-708192a3b4c5"
    settings = settings_for(idp, group_roles={group: "auditor"})
    idp.user.roles = []
    idp.user.groups = [group.upper()]
    assert check(idp, settings, idp.id_token(nonce=NONCE)).role == "auditor"
    idp.user.groups = None
    idp.user.groups_overage = True
    assert refusal(idp, settings, idp.id_token(nonce=NONCE)).reason == "groups_overage"
    # Overage is not "no groups" read silently: an app role still works beside it.
    idp.user.roles = ["oathdesk.helpdesk"]
    assert check(idp, settings, idp.id_token(nonce=NONCE)).role == "helpdesk"


def test_times_are_checked_with_a_small_leeway_over_many_moments(
    idp: StandInIdP, sso_settings: SsoSettings
) -> None:
    raw = idp.id_token(nonce=NONCE)
    import jwt

    exp = jwt.decode(raw, options={"verify_signature": False})["exp"]
    discovery = fetch_discovery(sso_settings)
    keys = JwksKeys(discovery.jwks_uri, ca_bundle=idp.ca_bundle)
    for late in range(0, 240, 7):
        moment = exp + late
        if late < 120:
            check(idp, sso_settings, raw, keys=keys, now=moment)
        else:
            assert refusal(idp, sso_settings, raw, keys=keys, now=moment).reason == "expired"


def test_an_unknown_kid_is_refused_and_a_rotation_is_picked_up(
    idp: StandInIdP, sso_settings: SsoSettings
) -> None:
    discovery = fetch_discovery(sso_settings)
    keys = JwksKeys(discovery.jwks_uri, ca_bundle=idp.ca_bundle, cooldown=0)
    check(idp, sso_settings, idp.id_token(nonce=NONCE), keys=keys)
    fetches = idp.jwks_fetches
    # A kid the tenant never published: refused after one fresh look at the key set.
    stray = idp.sign({"nonce": NONCE}, kid="never-published")
    assert refusal(idp, sso_settings, stray, keys=keys).reason == "unknown_key"
    assert idp.jwks_fetches == fetches + 1
    # Microsoft rotates: the cached set lacks the new kid; the client fetches again and accepts.
    idp.keys.rotate(keep_old=False)
    claims = check(idp, sso_settings, idp.id_token(nonce=NONCE), keys=keys)
    assert claims.oid == idp.user.oid
    assert idp.jwks_fetches == fetches + 2
