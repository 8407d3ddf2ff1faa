"""`oathdesk init`, `audit verify|export` and `purge --due`."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click

from oathdesk.cli.vault_context import (
    json_option,
    local_actor,
    location,
    open_reader,
    open_vault,
    print_json,
    print_table,
    vault_option,
)
from oathdesk.errors import Conflict, OathdeskError
from oathdesk.platform_io import PRIVATE_FILES
from oathdesk.timeparse import parse_instant
from oathdesk.vault.keys import MASTER_KEY_ENV, MasterKey, write_key_file


@click.command("init")
@vault_option
@click.option(
    "--passphrase",
    is_flag=True,
    help="Seal with a passphrase (argon2id) instead of a key file; "
    "read from $OATHDESK_PASSPHRASE or a prompt.",
)
def init_command(vault_path: str | None, passphrase: bool) -> None:
    """Create a new vault and its master key file (mode 0600), or upgrade an older vault."""
    import os

    # Here, not at the top: `audit verify` in this module must not load SQLAlchemy (issue 15).
    from oathdesk.vault import db
    from oathdesk.vault.vault import Vault

    where = location(vault_path)
    revision, created = Vault.inspect(where)
    if created and revision == db.SCHEMA_HEAD:
        raise Conflict(f"{where.display} is already an oathdesk vault; nothing to do")
    if created:
        Vault.upgrade_schema(where)
        click.echo(
            f"upgraded the vault at {where.display} from schema {revision} to {db.SCHEMA_HEAD}"
        )
        return
    kdf = None
    written: Path | None = None
    if passphrase:
        from oathdesk.vault.passphrase import PASSPHRASE_ENV, KdfParams, derive_master_key

        text = os.environ.get(PASSPHRASE_ENV) or _prompt_passphrase()
        kdf = KdfParams.new()
        key = derive_master_key(text, kdf)
        key_note = "sealed with a passphrase: it is needed to open the vault; keep it safe"
    elif os.environ.get(MASTER_KEY_ENV):
        key = MasterKey.from_text(os.environ[MASTER_KEY_ENV], source=MASTER_KEY_ENV)
        key_note = f"master key from ${MASTER_KEY_ENV}"
    else:
        key = MasterKey.generate()
        write_key_file(where.key_file, key)
        written = where.key_file
        key_note = f"master key written to {where.key_file} ({PRIVATE_FILES}): back it up offline"
    try:
        Vault.create(where, key, local_actor(), kdf=kdf).close()
    except BaseException:
        if written is not None:
            written.unlink(missing_ok=True)  # a key for a vault that was not made is no use
        raise
    click.echo(f"created the vault at {where.display}")
    click.echo(key_note)


def _prompt_passphrase() -> str:
    import getpass

    from oathdesk.errors import InvalidInput

    first = getpass.getpass("New vault passphrase (input hidden): ")
    if first != getpass.getpass("Repeat it: "):
        raise InvalidInput("the passphrases differ; try again")
    return first


class AuditBroken(OathdeskError):
    code = "audit_broken"
    exit_code = 1


@click.group("audit")
def audit_group() -> None:
    """Verify and export the tamper-evident audit log."""


@audit_group.command("verify")
@vault_option
def audit_verify_command(vault_path: str | None) -> None:
    """Check every record of the audit chain; name each break. Exit 1 if any."""
    from contextlib import closing

    with closing(open_reader(vault_path)) as reader:
        check = reader.check_audit()
    problems = check.problems
    # Intact, the records are 1..N: the count is the one the check saw (a count read after it
    # could include records appended meanwhile, and say more than was checked).
    count = 0 if check.end is None else check.end.seq
    if problems:
        for problem in problems:
            click.echo(f"BROKEN: {problem}")
        raise AuditBroken(
            f"the audit log has {len(problems)} break(s); treat the vault as tampered"
        )
    click.echo(f"audit log intact: {count} records, chain and head verified")


@audit_group.command("export")
@vault_option
@click.option("--jsonl", is_flag=True, default=True, help="One JSON object per line (default).")
@click.option("--operator", help="Only records by this operator (e.g. local:root).")
@click.option("--user", "upn", help="Only records about this UPN.")
@click.option("--token", "serial", help="Only records about this serial.")
@click.option("--action", help="Only this action (e.g. token.secret_purged).")
@click.option("--since", metavar="TIME", help="ISO 8601 or Unix seconds.")
@click.option("--until", metavar="TIME", help="ISO 8601 or Unix seconds.")
def audit_export_command(
    vault_path: str | None,
    jsonl: bool,
    operator: str | None,
    upn: str | None,
    serial: str | None,
    action: str | None,
    since: str | None,
    until: str | None,
) -> None:
    """Export audit records as JSON lines, for a SIEM."""
    from datetime import UTC

    def moment(text: str | None) -> datetime | None:
        return None if text is None else datetime.fromtimestamp(parse_instant(text), UTC)

    from oathdesk.vault.audit_filter import AuditFilter

    wanted = AuditFilter(
        action=action or "",
        upn=upn or "",
        serial=serial or "",
        actor=operator or "",
        since=moment(since),
        until=moment(until),
    )
    records = open_vault(vault_path).audit_records(wanted)
    del jsonl
    # Through the stream's buffer: click.echo flushes every line, a system call per record
    # (cli/main.py's run() flushes what is left, and reports a failure to).
    write = sys.stdout.write
    for record in records:
        write(json.dumps(record, sort_keys=True) + "\n")


@click.command("purge")
@vault_option
@click.option("--due", is_flag=True, required=True, help="Purge secrets whose retention is over.")
@click.option("--dry-run", is_flag=True, help="List what would be purged; change nothing.")
@json_option
def purge_command(vault_path: str | None, due: bool, dry_run: bool, as_json: bool) -> None:
    """Erase the secrets of tokens delivered more than the retention period ago."""
    del due
    vault = open_vault(vault_path)
    purged = vault.purge_due(local_actor(), dry_run=dry_run)
    late = vault.undelivered()
    if as_json:
        print_json(
            {
                "dry_run": dry_run,
                "purged": [t.serial for t in purged],
                "undelivered_warning": [t.serial for t in late],
            }
        )
        return
    verb = "would purge" if dry_run else "purged"
    click.echo(
        f"{verb} {len(purged)} secret(s)"
        + (": " + ", ".join(t.serial for t in purged) if purged else "")
    )
    if late:
        print_table(
            f"not delivered after {vault.settings().undelivered_warning_days} days",
            ["serial", "user", "state", "since"],
            [[t.serial, t.upn, t.state.value, f"{t.created_at:%Y-%m-%d}"] for t in late],
        )
