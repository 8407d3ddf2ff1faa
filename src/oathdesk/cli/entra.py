"""`oathdesk entra ...`: Microsoft Graph: sign in, check, push tokens, compare, per-user MFA.

Secrets (the client secret, a certificate's key) are read from standard input, a hidden prompt
or a file, never from the command line, and are kept encrypted in the vault.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from oathdesk.cli.lease_prompt import confirm_take_over
from oathdesk.cli.secret_input import read_private_file, read_secret_source
from oathdesk.cli.vault_context import (
    json_option,
    local_actor,
    open_vault,
    print_json,
    print_table,
    vault_option,
)
from oathdesk.errors import InvalidInput

FIELDS = ("serial", "upn", "result", "detail")
PERMISSION_HELP = (
    "in the Entra admin center: App registrations > your app > API permissions > Add > "
    "Microsoft Graph > {kind} permissions > {name}, then 'Grant admin consent'"
)


@click.group("entra")
def entra_group() -> None:
    """Microsoft Entra ID through Microsoft Graph: upload, assign and activate tokens."""


@contextmanager
def _session(vault_path: str | None) -> Iterator[Any]:
    from oathdesk.services.entra_session import open_session

    vault = open_vault(vault_path)
    try:
        with open_session(vault, local_actor()) as session:
            yield session
    finally:
        vault.close()


# -- login / logout ----------------------------------------------------------------------------


@entra_group.command("login")
@click.option("--tenant", required=True, help="Directory (tenant) ID or primary domain.")
@click.option("--client-id", required=True, help="The app registration's Application ID.")
@click.option(
    "--client-secret",
    "secret_source",
    metavar="-|prompt|FILE",
    help="App-only sign-in with a client secret: '-' reads it from standard input.",
)
@click.option(
    "--certificate",
    "certificate",
    metavar="PEM",
    type=click.Path(dir_okay=False),
    help="App-only sign-in with a certificate: a PEM with the private key and the certificate.",
)
@click.option("--device-code", is_flag=True, help="Delegated sign-in by an admin in a browser.")
@click.option("--authority-host", default=None, help="Sign-in host (national clouds, tests).")
@click.option("--graph-url", default=None, help="Graph base URL, default the global beta.")
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM of CAs to trust (a TLS-inspecting proxy, tests).",
)
@vault_option
def login_command(
    tenant: str,
    client_id: str,
    secret_source: str | None,
    certificate: str | None,
    device_code: bool,
    authority_host: str | None,
    graph_url: str | None,
    ca_bundle: str | None,
    vault_path: str | None,
) -> None:
    """Connect to a tenant, sign in once to check it works, keep the credentials encrypted."""
    from oathdesk.graph import settings as graph_settings
    from oathdesk.services import entra

    chosen = [bool(secret_source), bool(certificate), device_code]
    if sum(chosen) != 1:
        raise InvalidInput(
            "choose one way to sign in: --client-secret -, --certificate PEM or --device-code"
        )
    if secret_source:
        auth, secret = (
            graph_settings.AuthKind.CLIENT_SECRET,
            read_secret_source(secret_source, "client secret"),
        )
    elif certificate:
        auth, secret = (
            graph_settings.AuthKind.CERTIFICATE,
            read_private_file(Path(certificate), "certificate"),
        )
    else:
        auth, secret = graph_settings.AuthKind.DEVICE_CODE, None
    settings = graph_settings.GraphSettings(
        tenant_id=tenant.strip(),
        client_id=client_id.strip(),
        auth=auth,
        authority_host=authority_host or graph_settings.GLOBAL_AUTHORITY_HOST,
        graph_url=graph_url or graph_settings.GLOBAL_GRAPH_URL,
        ca_bundle=str(Path(ca_bundle).resolve()) if ca_bundle else None,
    )
    vault = open_vault(vault_path)
    try:
        result = entra.login(
            vault, local_actor(), settings, secret=secret, show=lambda m: click.echo(m, err=True)
        )
    finally:
        vault.close()
    how = auth.value.replace("_", " ")
    click.echo(f"signed in to tenant {settings.tenant_id} as {result.signed_in_as} ({how})")
    if result.thumbprint:
        click.echo(f"certificate thumbprint (SHA-256): {result.thumbprint}")
    _echo_permissions(result.permissions, result.missing, app_only=auth.app_only)
    click.echo("credentials stored encrypted in the vault; next: `oathdesk entra status`")


def _echo_permissions(granted: frozenset[str], missing: tuple[str, ...], *, app_only: bool) -> None:
    from oathdesk.graph.operations import PURPOSE

    click.echo(f"permissions granted: {', '.join(sorted(granted)) or 'none'}")
    kind = "Application" if app_only else "Delegated"
    for name in missing:
        click.echo(
            f"missing: {name}, needed to {PURPOSE[name]}; add it "
            + PERMISSION_HELP.format(kind=kind, name=name)
        )


@entra_group.command("logout")
@vault_option
def logout_command(vault_path: str | None) -> None:
    """Forget the tenant connection and its stored credentials."""
    from oathdesk.services.entra_store import delete_connection

    vault = open_vault(vault_path)
    try:
        gone = delete_connection(vault, local_actor())
    finally:
        vault.close()
    click.echo("signed out; the stored credentials are erased" if gone else "was not signed in")


# -- status / enable -----------------------------------------------------------------------------


@entra_group.command("status")
@vault_option
@json_option
def status_command(vault_path: str | None, as_json: bool) -> None:
    """Is the hardware OATH method on, which permissions the credentials have, what is missing."""
    from oathdesk.services import entra

    with _session(vault_path) as session:
        report = entra.status(session)
    if as_json:
        print_json(
            {
                "tenant": report.tenant,
                "signed_in_as": report.signed_in_as,
                "auth": report.auth,
                "graph_url": report.graph_url,
                "hardware_oath": report.policy_state,
                "hardware_oath_problem": report.policy_problem,
                "permissions": sorted(report.permissions),
                "missing": list(report.missing),
            }
        )
        return
    how = report.auth.replace("_", " ")
    click.echo(f"tenant {report.tenant}, signed in as {report.signed_in_as} ({how})")
    if report.policy_state == "enabled":
        click.echo("hardware OATH method: enabled in the authentication methods policy")
    elif report.policy_state == "unknown":
        click.echo(f"hardware OATH method: unknown ({report.policy_problem})")
    else:
        click.echo(
            f"hardware OATH method: {report.policy_state}; turn it on with "
            "`oathdesk entra enable` (Entra may take up to an hour to apply it)"
        )
    if report.permissions_known:
        _echo_permissions(report.permissions, report.missing, app_only=report.auth != "device_code")
        if not report.missing:
            click.echo("nothing missing: push, pull, unassign and delete can run")
    else:
        click.echo("permissions: the access token does not list them; see the checks above")


@entra_group.command("enable")
@vault_option
def enable_command(vault_path: str | None) -> None:
    """Turn the hardware OATH method on in the authentication methods policy."""
    from oathdesk.services import entra

    with _session(vault_path) as session:
        state = entra.enable_hardware_oath(session)
    click.echo(f"hardware OATH method: {state} (Entra may take up to an hour to apply it)")


# -- push / pull ---------------------------------------------------------------------------------


@entra_group.command("push")
@click.option("--dry-run", is_flag=True, help="Say what would happen; change nothing.")
@click.option("--serial", "serials", multiple=True, help="Only this token (repeatable).")
@click.option("--batch-size", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option(
    "--activations",
    default=200,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="At most this many activations ...",
)
@click.option(
    "--per",
    "per_seconds",
    default=300.0,
    show_default=True,
    type=click.FloatRange(0.001, 86_400),
    help="... per this many seconds (Entra documents 200 per 5 minutes).",
)
@click.option("--by-serial", is_flag=True, help="Activate with assignAndActivateBySerialNumber.")
@click.option(
    "--stock",
    is_flag=True,
    help="Upload the tokens in stock (no user) unassigned, for users to self-assign at My "
    "Security Info; they become registered without a user (`entra sync` learns who took them).",
)
@click.option(
    "--take-over-lease",
    is_flag=True,
    help="If a push from another machine holds the vault's lease but is gone (machine off, "
    "process killed), take the lease over after confirming (audited). One killed on this "
    "machine is taken over without asking.",
)
@click.option("--yes", is_flag=True, help="Confirm --take-over-lease without a prompt.")
@vault_option
@json_option
def push_command(
    dry_run: bool,
    serials: tuple[str, ...],
    batch_size: int,
    activations: int,
    per_seconds: float,
    by_serial: bool,
    stock: bool,
    take_over_lease: bool,
    yes: bool,
    vault_path: str | None,
    as_json: bool,
) -> None:
    """Create the vault's waiting tokens in Entra, assign and activate them, mark them registered
    (--stock: upload stock tokens unassigned, for self-service).

    Safe to interrupt and run again: a journal in the vault and a look at Entra make sure
    nothing is created or activated twice.
    """
    from oathdesk.graph.errors import GraphError
    from oathdesk.services.entra_push import PushOptions, push

    options = PushOptions(
        dry_run=dry_run,
        serials=serials,
        batch_size=batch_size,
        activations=activations,
        window_seconds=per_seconds,
        by_serial=by_serial,
        stock=stock,
    )
    show: Callable[[Any], None] | None = None
    if not as_json and sys.stderr.isatty():

        def show(outcome: Any) -> None:
            click.echo(f"{outcome.serial}: {outcome.result}", err=True)

    if yes and not take_over_lease:
        raise InvalidInput("--yes confirms --take-over-lease; give both, or neither")
    if stock and by_serial:
        raise InvalidInput("--by-serial chooses how tokens are activated; --stock activates none")
    with _session(vault_path) as session:
        report = push(session, options, show, confirm_take_over(yes) if take_over_lease else None)
    if report.took_over:
        click.echo(report.took_over, err=True)
    rows = [[o.serial, o.upn, o.result, o.detail] for o in report.outcomes]
    if as_json:
        print_json(
            {
                "outcomes": [
                    dict(zip(("serial", "upn", "result", "detail"), r, strict=True)) for r in rows
                ],
                "stopped": report.stopped,
                "took_over_lease": report.took_over,
                "limiter_waited_seconds": round(report.limiter_waited, 3),
                "throttled_waited_seconds": round(report.throttled_waited, 3),
            }
        )
    elif rows:
        print_table(
            "entra push" + (" (dry run)" if dry_run else ""),
            ["serial", "user", "result", "detail"],
            rows,
        )
    if not as_json:
        # The table cuts long cells; each failure's reason in full, one line each.
        for outcome in report.failed:
            click.echo(f"failed {outcome.serial}: {outcome.detail}")
    if not as_json and (rows or not report.stopped):
        done = sum(
            o.result in ("activated", "already activated", "uploaded as stock")
            for o in report.outcomes
        )
        finished = len(report.already_done)
        click.echo(
            f"{done} registered"
            + (f", {finished} already done" if finished else "")
            + f", {len(report.failed)} failed"
            + (f", {len(rows) - done - finished - len(report.failed)} planned" if dry_run else "")
            + f"; waited {report.limiter_waited:.1f} s for the activation limit and "
            f"{report.throttled_waited:.1f} s for Graph throttling"
            if rows
            else "nothing to push: no token in stock without a user waits"
            if stock
            else "nothing to push: no assigned classic or burned programmable token waits"
        )
    if not as_json and dry_run and stock and rows:
        click.echo(
            "each seed uploaded leaves the vault for Microsoft's inventory, where any user who "
            "holds the token can self-assign it with a code off it"
        )
    if report.stopped:
        raise GraphError(f"push stopped: {report.stopped}")
    if report.failed:
        raise click.exceptions.Exit(1)


@entra_group.command("pull")
@vault_option
@json_option
def pull_command(vault_path: str | None, as_json: bool) -> None:
    """Compare Entra with the vault: unknown, missing, duplicate tokens, users over 5 methods."""
    from oathdesk.services.entra_reconcile import KINDS, pull

    with _session(vault_path) as session:
        report = pull(session)
    if as_json:
        print_json(report.as_dict())
        return
    if report.differences:
        print_table(
            "Entra vs the vault",
            ["difference", "serial", "user", "detail"],
            [[KINDS[d.kind], d.serial, d.upn, _cell(d.detail)] for d in report.differences],
        )
        # Details the table would cut (a duplicate names each device), in full, one line each.
        for d in report.differences:
            if d.detail != _cell(d.detail):
                click.echo(f"{KINDS[d.kind]}: {d.serial or d.upn}: {d.detail}")
    click.echo(
        f"{len(report.differences)} difference(s); {report.users_checked} users, "
        f"{report.methods_seen} OATH methods, {report.inventory_size} inventory tokens checked"
    )


@entra_group.command("sync")
@click.option(
    "--take-over-lease",
    is_flag=True,
    help="If a sync from another machine holds the vault's lease but is gone, take the lease "
    "over after confirming (audited). One killed on this machine is taken over without asking.",
)
@click.option("--yes", is_flag=True, help="Confirm --take-over-lease without a prompt.")
@vault_option
@json_option
def sync_command(take_over_lease: bool, yes: bool, vault_path: str | None, as_json: bool) -> None:
    """Learn what users and admins did in Entra and apply it: self-assigned stock tokens get
    their user, self-activated ones and shipped ones used to sign in become delivered.

    Conflicts (another user, a serial twice, a token unassigned or deleted in Entra) are
    reported, not changed. Safe to interrupt and to run again.
    """
    from oathdesk.services.entra_reconcile import KINDS
    from oathdesk.services.entra_sync import sync_entra

    if yes and not take_over_lease:
        raise InvalidInput("--yes confirms --take-over-lease; give both, or neither")
    take_over = confirm_take_over(yes, "sync") if take_over_lease else None
    with _session(vault_path) as session:
        result = sync_entra(session, take_over=take_over)
    if result.took_over:
        click.echo(result.took_over, err=True)
    if as_json:
        print_json(result.as_dict())
        return
    shown = [("applied", d) for d in result.applied] + [("reported", d) for d in result.reported]
    if shown:
        print_table(
            "entra sync",
            ["done", "what", "serial", "user", "detail"],
            [[done, KINDS[d.kind], d.serial, d.upn, _cell(d.detail)] for done, d in shown],
        )
        for _, d in shown:
            if d.detail != _cell(d.detail):
                click.echo(f"{KINDS[d.kind]}: {d.serial or d.upn}: {d.detail}")
    added = f", {len(result.users_added)} user(s) added" if result.users_added else ""
    click.echo(
        f"{result.assigned} assigned, {result.delivered} delivered{added}; "
        f"{len(result.reported)} reported for a person; "
        f"{result.inventory_size} inventory tokens checked"
    )


_CELL = 48


def _cell(detail: str) -> str:
    return detail if len(detail) <= _CELL else detail[: _CELL - 10].rstrip() + " (below)"


# -- per user and per token ----------------------------------------------------------------------


@entra_group.command("mfa-state")
@click.argument("upn")
@click.argument("state", required=False, type=click.Choice(["enabled", "enforced", "disabled"]))
@vault_option
def mfa_state_command(upn: str, state: str | None, vault_path: str | None) -> None:
    """Show or set a user's per-user MFA state."""
    from oathdesk.services import entra

    with _session(vault_path) as session:
        now = entra.mfa_state(session, upn, state)
    click.echo(f"per-user MFA of {upn.strip().lower()}: {now}")


@entra_group.command("default-method")
@click.argument("upn")
@click.argument("method", type=click.Choice(["oath"]))
@vault_option
def default_method_command(upn: str, method: str, vault_path: str | None) -> None:
    """Make the hardware token the user's default second factor."""
    from oathdesk.services import entra

    with _session(vault_path) as session:
        entra.default_method(session, upn, method)
    click.echo(f"default sign-in method of {upn.strip().lower()}: {method}")


@entra_group.command("unassign")
@click.argument("serial")
@vault_option
def unassign_command(serial: str, vault_path: str | None) -> None:
    """Take a token away from its user in Entra (it goes back to the inventory)."""
    from oathdesk.services import entra

    with _session(vault_path) as session:
        device = entra.unassign(session, serial)
    owner = device.assigned_name or device.assigned_to
    click.echo(
        f"token {serial} unassigned from {owner} in Entra; in the vault, close it with "
        f"`oathdesk token retire {serial}` (or lost/revoke)"
    )


@entra_group.command("delete")
@click.argument("serial")
@vault_option
def delete_command(serial: str, vault_path: str | None) -> None:
    """Delete an unassigned token from Entra's inventory."""
    from oathdesk.services import entra

    with _session(vault_path) as session:
        entra.delete(session, serial)
    click.echo(f"token {serial} deleted from Entra's inventory")
