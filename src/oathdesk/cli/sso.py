"""`oathdesk sso configure|show|disable|enable|local-sign-in|api-audience`: operators sign in to
the console with Microsoft Entra ID, automation apps call the REST API with Entra access tokens
(docs/sso.md)."""

from __future__ import annotations

from pathlib import Path

import click

from oathdesk.cli.secret_input import read_private_file, read_secret_source
from oathdesk.cli.vault_context import (
    json_option,
    local_actor,
    open_vault,
    print_json,
    vault_option,
)
from oathdesk.errors import InvalidInput


@click.group("sso")
def sso_group() -> None:
    """Sign-in to the console with Microsoft Entra ID (OpenID Connect)."""


@sso_group.command("configure")
@click.option("--tenant", required=True, help="Directory (tenant) ID, a GUID.")
@click.option("--client-id", required=True, help="The app registration's Application ID.")
@click.option(
    "--client-secret-file",
    "secret_source",
    metavar="FILE|-|prompt",
    help="A file holding the client secret's value; '-' reads standard input.",
)
@click.option(
    "--certificate",
    type=click.Path(dir_okay=False),
    metavar="PEM",
    help="A PEM with the private key and the certificate uploaded to the app registration.",
)
@click.option(
    "--redirect-url",
    required=True,
    help="This console's callback, as registered: https://HOST/auth/callback.",
)
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="GROUP-ID=ROLE",
    help="Also grant ROLE (admin, helpdesk, auditor) to members of a group (repeatable).",
)
@click.option(
    "--api-audience",
    default=None,
    metavar="CLIENT-ID",
    help="Let the REST API accept Entra access tokens for this app (its client id).",
)
@click.option("--authority-host", default=None, help="Sign-in host (national clouds, tests).")
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM of CAs to trust (a TLS-inspecting proxy, tests).",
)
@vault_option
def configure_command(
    tenant: str,
    client_id: str,
    secret_source: str | None,
    certificate: str | None,
    redirect_url: str,
    groups: tuple[str, ...],
    api_audience: str | None,
    authority_host: str | None,
    ca_bundle: str | None,
    vault_path: str | None,
) -> None:
    """Store the app registration (the secret encrypted) and offer "Sign in with Microsoft"."""
    from oathdesk.identity import settings as sso_settings
    from oathdesk.services import sso

    if bool(secret_source) == bool(certificate):
        raise InvalidInput("choose one credential: --client-secret-file FILE or --certificate PEM")
    if secret_source:
        kind = sso_settings.CredentialKind.CLIENT_SECRET
        credential = read_secret_source(secret_source, "client secret")
    else:
        kind = sso_settings.CredentialKind.CERTIFICATE
        credential = read_private_file(Path(str(certificate)), "certificate")
    settings = sso_settings.SsoSettings(
        tenant_id=tenant.strip(),
        client_id=client_id.strip(),
        credential=kind,
        redirect_url=redirect_url.strip(),
        authority_host=authority_host or sso_settings.GLOBAL_AUTHORITY_HOST,
        ca_bundle=str(Path(ca_bundle).resolve()) if ca_bundle else None,
        group_roles=_group_roles(groups),
    )
    audience = sso_settings.parse_api_audience(api_audience) if api_audience else None
    vault = open_vault(vault_path)
    try:
        issuer = sso.configure(
            vault, local_actor(), settings, credential=credential, api_audience=audience
        )
    finally:
        vault.close()
    click.echo(f"sign-in with Microsoft configured for tenant {settings.tenant} ({issuer})")
    click.echo(f"redirect URL (register it as a Web platform URI): {settings.redirect_url}")
    click.echo("credential stored encrypted in the vault; `oathdesk serve` offers it at /signin")
    if audience:
        click.echo(f"the REST API accepts Entra v2.0 access tokens for {audience}")


def _group_roles(groups: tuple[str, ...]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in groups:
        group, _, role = item.partition("=")
        if not group.strip() or not role.strip():
            raise InvalidInput("--group is GROUP-OBJECT-ID=ROLE, e.g. --group 0f5c...=helpdesk")
        mapping[group.strip().lower()] = role.strip().lower()
    return mapping


@sso_group.command("show")
@json_option
@vault_option
def show_command(as_json: bool, vault_path: str | None) -> None:
    """The stored settings (never the secret) and the local sign-in policy."""
    from oathdesk.vault import sso as stored

    vault = open_vault(vault_path)
    try:
        row = stored.load_settings(vault)
    finally:
        vault.close()
    if row is None:
        raise InvalidInput(stored.NOT_CONFIGURED)
    shown = {
        "enabled": row.enabled,
        "tenant": row.tenant_id,
        "client_id": row.client_id,
        "credential": row.credential_kind,
        "redirect_url": row.redirect_url,
        "authority_host": row.authority_host,
        "ca_bundle": row.ca_bundle,
        "groups": row.group_roles,
        "local_sign_in": row.local_sign_in if row.enabled else "on",
        "api_audience": row.api_audience,
    }
    if as_json:
        print_json(shown)
        return
    for key, value in shown.items():
        click.echo(f"{key}: {value}")


@sso_group.command("disable")
@vault_option
def disable_command(vault_path: str | None) -> None:
    """Stop offering sign-in with Microsoft (local accounts work again for everyone)."""
    _set_enabled(vault_path, False)
    click.echo("sign-in with Microsoft disabled; local sign-in is on for every operator")


@sso_group.command("enable")
@vault_option
def enable_command(vault_path: str | None) -> None:
    """Offer sign-in with Microsoft again, with the stored settings."""
    _set_enabled(vault_path, True)
    click.echo("sign-in with Microsoft enabled")


def _set_enabled(vault_path: str | None, enabled: bool) -> None:
    from oathdesk.vault import sso as stored

    vault = open_vault(vault_path)
    try:
        stored.set_enabled(vault, local_actor(), enabled)
    finally:
        vault.close()


@sso_group.command("local-sign-in")
@click.argument("policy", metavar="on|admins-only|off")
@vault_option
def local_sign_in_command(policy: str, vault_path: str | None) -> None:
    """Break-glass: who may still sign in with a local account while Microsoft sign-in is on."""
    from oathdesk.identity.settings import LocalSignIn
    from oathdesk.vault import sso as stored

    parsed = LocalSignIn.parse(policy)
    vault = open_vault(vault_path)
    try:
        stored.set_local_sign_in(vault, local_actor(), parsed.value)
    finally:
        vault.close()
    click.echo(f"local sign-in: {parsed.value}")


@sso_group.command("api-audience")
@click.argument("audience", metavar="CLIENT-ID|off")
@vault_option
def api_audience_command(audience: str, vault_path: str | None) -> None:
    """Let the REST API accept Entra access tokens for oathdesk's API app (CLIENT-ID), or
    (off) API keys only."""
    from oathdesk.identity.settings import parse_api_audience
    from oathdesk.vault import sso as stored

    value = None if audience.strip().lower() == "off" else parse_api_audience(audience)
    vault = open_vault(vault_path)
    try:
        stored.set_api_audience(vault, local_actor(), value)
    finally:
        vault.close()
    if value is None:
        click.echo("the REST API accepts API keys only")
    else:
        click.echo(f"the REST API accepts Entra v2.0 access tokens for {value} beside API keys")
