"""Import seeds into the vault from what admins and helpdesks really have: the Entra CSV, vendor
PSKC files and stock lists (Graph-style CSV, serial,secret), the helpdesk's spreadsheet
(CSV/XLSX) and lists of otpauth URIs. All or nothing, in one transaction; every problem in the
file is reported at once, with its line. Rows without a user are tokens in stock."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from oathdesk.errors import InvalidInput
from oathdesk.formats.detect import FORMATS
from oathdesk.formats.detect import detect_format as detect_file_format
from oathdesk.formats.problems import Code, Problem, one_line, sort_problems
from oathdesk.formats.reader import read_seed_file
from oathdesk.formats.records import ParsedFile, SkippedKey
from oathdesk.otp import Algorithm
from oathdesk.vault.bulk import analyze_after_import
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Actor, TokenColumns, Vault

__all__ = [
    "DEFAULT_KINDS",
    "FORMATS",
    "HotpKeysRefused",
    "ImportResult",
    "SkippedKey",
    "detect_format",
    "import_seeds",
    "parse_file",
]

# The kind a file's tokens are added as when the operator does not say (`--kind`). An Entra CSV
# or a PSKC file comes from the vendor with its order: factory-seeded (classic) tokens. A
# helpdesk's spreadsheet or otpauth list holds seeds the helpdesk chose: programmable tokens.
DEFAULT_KINDS: dict[str, TokenKind] = {
    "entra-csv": TokenKind.CLASSIC,
    "pskc": TokenKind.CLASSIC,
    "graph-csv": TokenKind.CLASSIC,  # vendor stock (Token2's inventory, community scripts)
    "serial-list": TokenKind.CLASSIC,  # a vendor's serial,secret list
    "spreadsheet": TokenKind.PROGRAMMABLE,
    "otpauth": TokenKind.PROGRAMMABLE,
}


@dataclass(frozen=True)
class ImportResult:
    """What an import did. ``problems`` (every one, sorted by line) mean nothing was imported;
    ``warnings`` never stop an import but should be shown."""

    format: str
    problems: list[Problem]
    imported: int
    placeholder_serials: int
    dry_run: bool
    warnings: list[Problem] = field(default_factory=list)
    kind: str = ""  # classic or programmable: the kind the tokens were added as
    assigned: int = 0  # tokens given to a user (the others are in stock)
    users: int = 0  # how many users those are
    skipped: list[SkippedKey] = field(default_factory=list)  # HOTP keys left out (skip_hotp)


def _people(vault: Vault, parsed: ParsedFile) -> tuple[dict[str, tuple[str, str]], list[Problem]]:
    """The display name and phone a file gives its users (a spreadsheet's columns), for the
    users the import creates; a user already in the vault keeps what is on file (an import
    must not change the number a callback dials unseen), and a difference is a warning."""
    given = {
        r.upn: (r.display_name, r.phone)
        for r in parsed.records
        if r.upn and (r.display_name or r.phone)
    }
    if not given:
        return {}, []
    lines = {r.upn: r.line for r in parsed.records if r.upn in given}
    differences = []
    for upn, (name, phone) in sorted(vault.users_on_file(sorted(given)).items()):
        wanted = given.pop(upn)
        changed = [
            what
            for what, new, old in (("display name", wanted[0], name), ("phone", wanted[1], phone))
            if new and new != old
        ]
        if changed:
            differences.append(
                Problem(
                    lines[upn],
                    "",
                    f"{upn} is already a user; their {' and '.join(changed)} on file "
                    "were kept, not the file's",
                    fix=f"change them with `oathdesk user edit {upn}` if the file is right",
                    code=Code.USER_ON_FILE_DIFFERS,
                )
            )
    return given, differences


class HotpKeysRefused(InvalidInput):
    """A PSKC file holds HOTP keys and the caller did not ask to skip them."""

    code = "hotp_keys"


# How many serials a refusal names: enough to find the keys, short enough for one line.
_SHOWN_SERIALS = 5


def _refuse_hotp(parsed: ParsedFile) -> None:
    skipped = parsed.skipped
    shown = ", ".join(one_line(key.serial, limit=40) for key in skipped[:_SHOWN_SERIALS])
    more = f" and {len(skipped) - _SHOWN_SERIALS} more" if len(skipped) > _SHOWN_SERIALS else ""
    what = f"{len(skipped)} HOTP (counter-based) key(s) ({shown}{more})"
    if not parsed.records and not parsed.problems:
        raise HotpKeysRefused(
            f"the file holds only {what}; Entra and oathdesk take TOTP tokens only: ask the "
            "vendor for TOTP seeds"
        )
    raise HotpKeysRefused(
        f"the file holds {what} beside its TOTP keys; Entra and oathdesk take TOTP only: "
        "import again with --skip-hotp (API and console: skip_hotp) to import the TOTP keys "
        "and list the HOTP ones as skipped"
    )


def detect_format(data: bytes) -> str:
    """The format told from the content; UnknownFormat (one line, what to do) otherwise."""
    return detect_file_format(data).value


def parse_file(
    data: bytes,
    file_format: str | None,
    *,
    max_per_user: int,
    password: str | None = None,
    psk: bytes | None = None,
    skip_hotp: bool = False,
) -> ParsedFile:
    return read_seed_file(
        data,
        file_format,
        max_per_user=max_per_user,
        password=password,
        psk=psk,
        skip_hotp=skip_hotp,
    )


def _vault_conflicts(vault: Vault, parsed: ParsedFile, fingerprints: list[bytes]) -> list[Problem]:
    """Clashes with what the vault already holds, all of them, each with its line: a serial or
    a seed already on a token (naming that token, never the seed), a user over the limit.
    ``fingerprints``: of the records' secrets, row for row (``Vault.secret_fingerprints``)."""
    records, columns = parsed.records, parsed.columns
    problems = []
    present = vault.existing_serials(r.serial for r in records if r.serial)
    holders = vault.secret_holders([r.secret for r in records], secret_fingerprints=fingerprints)
    # The rows are walked only when something clashes (a new vendor order: nothing does).
    clashing = bool(present) or holders.count(None) != len(holders)
    for record, holder in zip(records, holders, strict=True) if clashing else ():
        if record.serial in present:
            problems.append(
                Problem(
                    record.line,
                    columns.serial,
                    f"a token with serial {record.serial} is already in the vault",
                    fix="remove the row (`oathdesk token show SERIAL` shows the token)",
                    code=Code.SERIAL_IN_VAULT,
                )
            )
        if holder is not None and holder != record.serial:
            problems.append(
                Problem(
                    record.line,
                    columns.seed,
                    f"this secret is already on token {holder} in the vault; every token has "
                    "its own seed",
                    fix="check the row against the vendor's file; if the token was re-issued, "
                    f"retire token {holder} first",
                    code=Code.SECRET_IN_VAULT,
                )
            )
    limit = vault.settings().max_tokens_per_user
    upns = [r.upn for r in records if r.upn]
    counts = vault.token_counts(upns)
    # Counted in C first; the rows are walked to name the line that goes over only if one does.
    adding = Counter(upns)
    over = any(counts[upn] + added > limit for upn, added in adding.items())
    for record in records if over else ():
        if record.upn:
            counts[record.upn] += 1
            if counts[record.upn] == limit + 1:
                problems.append(
                    Problem(
                        record.line,
                        columns.user,
                        f"{record.upn} would have more than {limit} tokens (Entra's limit)",
                        fix="give this token to someone else, or retire one of the user's "
                        "tokens first",
                        code=Code.USER_OVER_LIMIT,
                    )
                )
    return problems


def import_seeds(
    vault: Vault,
    actor: Actor,
    data: bytes,
    *,
    file_format: str | None = None,
    kind: TokenKind | None = None,
    dry_run: bool = False,
    source: str = "",
    password: str | None = None,
    psk: bytes | None = None,
    progress: Callable[[int, int], None] | None = None,
    skip_hotp: bool = False,
) -> ImportResult:
    """Import ``data`` (see the module). A PSKC file's HOTP keys are refused (HotpKeysRefused,
    naming the option) unless ``skip_hotp``: then they are left out and listed in ``skipped``."""
    require(actor.name, actor.role, Permission.MANAGE_TOKENS)
    # HOTP keys are always read apart from the others, so that a refusal can name them all in
    # one line instead of one problem per key.
    parsed = parse_file(
        data,
        file_format,
        max_per_user=vault.settings().max_tokens_per_user,
        password=password,
        psk=psk,
        skip_hotp=True,
    )
    only_hotp = not parsed.records and not parsed.problems
    if parsed.skipped and (not skip_hotp or only_hotp):
        _refuse_hotp(parsed)
    # Computed once: for the conflict check here and for the vault's own, in its transaction.
    fingerprints = vault.secret_fingerprints([r.secret for r in parsed.records])
    seen = {(p.line, p.column) for p in parsed.problems}
    problems = sort_problems(
        parsed.problems
        + [
            p
            for p in _vault_conflicts(vault, parsed, fingerprints)
            if (p.line, p.column) not in seen
        ]
    )
    if problems or dry_run:
        return ImportResult(
            parsed.format, problems, 0, 0, dry_run, parsed.warnings, skipped=parsed.skipped
        )
    default_kind = kind or DEFAULT_KINDS[parsed.format]
    records = parsed.records
    # Parsed once per name, not once per token (a tenth of a second for 100,000).
    algorithms = {name: Algorithm.parse(name) for name in {r.algorithm for r in records}}
    # The spreadsheet may not have recorded a serial: such a token keeps a placeholder until it
    # is re-enrolled, and the summary says how many.
    placeholders = sum(1 for record in records if not record.serial)
    # Columns, not a NewToken per record: a list per field costs a tenth as much to build.
    tokens = TokenColumns(
        [r.serial or f"unknown-{uuid.uuid4().hex[:10]}" for r in records],
        [r.manufacturer or "Token2" for r in records],
        [r.model or default_kind.value for r in records],
        [default_kind] * len(records),
        [r.secret for r in records],
        [algorithms[r.algorithm] for r in records],
        [r.digits for r in records],
        [r.period for r in records],
        [r.upn for r in records],
    )
    people, differences = _people(vault, parsed)
    count = vault.add_tokens(
        actor,
        tokens,
        source=source or f"import:{parsed.format}",
        create_missing_users=True,
        progress=progress,
        people=people,
        secret_fingerprints=fingerprints,
    )
    analyze_after_import(vault.engine, count)
    parsed.warnings.extend(differences)
    owners = [upn for upn in tokens.upns if upn]
    return ImportResult(
        parsed.format,
        [],
        count,
        placeholders,
        False,
        parsed.warnings,
        default_kind.value,
        len(owners),
        len(set(owners)),
        parsed.skipped,
    )
