"""An identity platform that cannot be reached, or whose certificate is not trusted, is one line
naming the host, with the advice of whoever asked: Graph's app sign-in (graph/auth.py) and the
operators' sign-in (identity/flow.py) share msal_failures.reaching. Against the stand-in
identity provider (real HTTPS) and a closed port."""

from __future__ import annotations

import pytest

from oathdesk.graph.auth import TokenSource
from oathdesk.graph.errors import GraphError
from oathdesk.graph.settings import AuthKind, GraphSettings
from oathdesk.identity.errors import IdentityUnreachable
from oathdesk.identity.flow import Provider
from tests.identity.conftest import settings_for
from tests.identity.standin import CLIENT_ID, TENANT_ID, StandInIdP

CLOSED = "https://127.0.0.1:1"  # nothing listens on port 1


def graph_token(authority_host: str) -> str:
    settings = GraphSettings(
        TENANT_ID, CLIENT_ID, AuthKind.CLIENT_SECRET, authority_host=authority_host
    )
    return TokenSource(settings, secret="a client secret").token()


def test_sign_in_names_an_untrusted_certificate_and_a_closed_port(idp: StandInIdP) -> None:
    with pytest.raises(IdentityUnreachable) as untrusted:
        Provider(settings_for(idp, ca_bundle=None), "a client secret").start()
    assert untrusted.value.message == (
        f"TLS verification failed for {idp.origin}; check the CA bundle"
    )
    with pytest.raises(IdentityUnreachable) as closed:
        Provider(settings_for(idp, authority_host=CLOSED), "a client secret").start()
    assert closed.value.message == (
        f"cannot reach the identity platform at {CLOSED} (ConnectionError); check the network "
        "and try again"
    )


def test_graph_names_an_untrusted_certificate_and_a_closed_port(idp: StandInIdP) -> None:
    with pytest.raises(GraphError) as untrusted:
        graph_token(idp.origin)
    assert untrusted.value.message == (
        f"TLS verification failed for {idp.origin}; check --ca-bundle"
    )
    with pytest.raises(GraphError) as closed:
        graph_token(CLOSED)
    assert closed.value.message == (
        f"cannot reach the identity platform at {CLOSED} (ConnectionError); check "
        "--authority-host and the network"
    )
