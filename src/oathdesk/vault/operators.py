"""Operators: who may sign in to the console, with a password (argon2id) and their own TOTP.

Each operator's TOTP secret is encrypted like a token's seed, bound to the operator record. A
code can be used once (the last accepted step is kept), and repeated failures lock the account.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from oathdesk.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from oathdesk.otp import step_at, verify_totp
from oathdesk.seed import build_otpauth_uri, generate_secret
from oathdesk.timetext import moment_text
from oathdesk.vault import db
from oathdesk.vault.paging import DEFAULT_LIMIT, MAX_LIMIT, Order, Page, read_page, walk
from oathdesk.vault.roles import Permission, Role, require
from oathdesk.vault.schema import operators
from oathdesk.vault.vault import Actor, Vault

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
SSO_ONLY = "!entra"  # the password hash of an operator who signs in with Entra only
_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters


# Who a failed sign-in under a name no operator has is recorded as (the name is in the details).
ANONYMOUS = Actor("anonymous", "none")


class SignInRefused(PermissionDenied):
    code = "sign_in_refused"


class AccountLocked(SignInRefused):
    """The right password and code for an account locked after repeated failures: only then
    is the lock (and when it ends) said, so that a guesser learns nothing about the account."""

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message)
        self.until = until


@dataclass(frozen=True)
class Operator:
    name: str
    role: Role
    disabled: bool
    locked_until: datetime | None
    created_at: datetime
    sso: bool = False  # signs in with Microsoft Entra ID only: no local password or TOTP


def sso_only_refusal(name: str, what: str) -> InvalidInput:
    """Refusal of a local-account action (TOTP reset, four-eyes approval by password and code)
    for an operator who signs in with Microsoft only: they have no local password or TOTP."""
    return InvalidInput(
        f"{name} signs in with Microsoft (Entra ID) only and has no local password or TOTP, so "
        f"{what}; their MFA is managed in Entra"
    )


@dataclass(frozen=True)
class Enrolment:
    """What a new operator scans once; shown at creation or TOTP reset, never stored in clear."""

    operator: str
    otpauth_uri: str

    def __repr__(self) -> str:
        return f"Enrolment(operator={self.operator!r}, otpauth_uri=<hidden>)"


def _aad_parts(operator_id: str, name: str) -> tuple[str, str]:
    return f"operator:{operator_id}", name


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


MIN_DISTINCT = 5


@dataclass(frozen=True)
class PasswordRule:
    """One rule of the operator password policy: what forms show before a password is typed,
    and the check with its one-line refusal, in one place so that the two cannot drift."""

    shown: str
    refusal: str
    ok: Callable[[str, str], bool]  # (name, password) -> acceptable


PASSWORD_POLICY: tuple[PasswordRule, ...] = (
    PasswordRule(
        f"at least {MIN_PASSWORD} characters",
        f"the password must have at least {MIN_PASSWORD} characters",
        lambda name, password: len(password) >= MIN_PASSWORD,
    ),
    PasswordRule(
        f"at most {MAX_PASSWORD} characters",
        f"the password is too long (at most {MAX_PASSWORD} characters)",
        lambda name, password: len(password) <= MAX_PASSWORD,
    ),
    PasswordRule(
        "not containing the operator name",
        "the password must not contain the operator name",
        lambda name, password: not (name.strip() and name.strip().lower() in password.lower()),
    ),
    PasswordRule(
        f"at least {MIN_DISTINCT} different characters",
        "the password needs more different characters",
        lambda name, password: len(set(password)) >= MIN_DISTINCT,
    ),
)


def password_rules() -> list[str]:
    """The policy as forms show it before submitting."""
    return [rule.shown for rule in PASSWORD_POLICY]


def password_problem(name: str, password: str) -> str | None:
    """The minimum policy for operator passwords (the console, the API and the CLI alike), as
    one line saying what to fix, or None when the password is acceptable."""
    for rule in PASSWORD_POLICY:
        if not rule.ok(name, password):
            return rule.refusal
    return None


class OperatorDirectory:
    """Operator management and sign-in on top of an open vault."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    def add(self, actor: Actor, name: str, role: str, password: str) -> Enrolment:
        require(actor.name, actor.role, Permission.MANAGE_OPERATORS)
        parsed_role = Role.parse(role)
        name = name.strip()
        if not name or len(name) > 128 or any(c.isspace() for c in name):
            raise InvalidInput("an operator name is one word, e.g. alice or alice@contoso.com")
        problem = password_problem(name, password)
        if problem:
            raise InvalidInput(problem)
        operator_id = str(uuid.uuid4())
        secret = generate_secret("sha1")
        nonce, ciphertext = self.vault.encrypt_for(secret, *_aad_parts(operator_id, name))
        with self.vault.transaction() as conn:
            if conn.execute(sa.select(operators.c.id).where(operators.c.name == name)).first():
                raise Conflict(f"operator {name} already exists")
            conn.execute(
                operators.insert().values(
                    id=operator_id,
                    name=name,
                    role=parsed_role.value,
                    password_hash=_HASHER.hash(password),
                    totp_nonce=nonce,
                    totp_ciphertext=ciphertext,
                    created_at=_now(),
                )
            )
            self.vault.audit(
                conn, actor, "operator.added", details={"operator": name, "role": parsed_role.value}
            )
        return Enrolment(name, build_otpauth_uri(secret, account=name, issuer="oathdesk"))

    def list(self) -> list[Operator]:
        """Every operator by name (the CLI's report), read a page at a time."""
        return list(walk(lambda cursor: self.page(cursor=cursor, limit=MAX_LIMIT)))

    def page(self, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT) -> Page[Operator]:
        """Operators by name (unique), a page at a time (``paging``)."""
        with db.reading(self.vault.engine) as conn:
            return read_page(
                conn,
                sa.select(operators),
                order=_BY_NAME,
                cursors=self.vault.cursors,
                listing="operators",
                wanted={},
                cursor=cursor,
                limit=limit,
                key_of=lambda row: (row.name,),
                item_of=_operator_from_row,
            )

    def disable(self, actor: Actor, name: str) -> None:
        require(actor.name, actor.role, Permission.MANAGE_OPERATORS)
        with self.vault.transaction() as conn:
            self._row(conn, name)
            conn.execute(operators.update().where(operators.c.name == name).values(disabled=True))
            self.vault.audit(conn, actor, "operator.disabled", details={"operator": name})

    def enable(self, actor: Actor, name: str) -> None:
        """Let a disabled operator sign in again (with the same password and TOTP), unlocked."""
        require(actor.name, actor.role, Permission.MANAGE_OPERATORS)
        with self.vault.transaction() as conn:
            self._row(conn, name)
            conn.execute(
                operators.update()
                .where(operators.c.name == name)
                .values(disabled=False, failed_attempts=0, locked_until=None)
            )
            self.vault.audit(conn, actor, "operator.enabled", details={"operator": name})

    def reset_totp(self, actor: Actor, name: str) -> Enrolment:
        require(actor.name, actor.role, Permission.MANAGE_OPERATORS)
        secret = generate_secret("sha1")
        with self.vault.transaction() as conn:
            row = self._row(conn, name)
            if row.sso_oid is not None:
                raise sso_only_refusal(name, "there is no TOTP to reset")
            nonce, ciphertext = self.vault.encrypt_for(secret, *_aad_parts(row.id, name))
            conn.execute(
                operators.update()
                .where(operators.c.id == row.id)
                .values(
                    totp_nonce=nonce,
                    totp_ciphertext=ciphertext,
                    totp_last_step=0,
                    failed_attempts=0,
                    locked_until=None,
                )
            )
            self.vault.audit(conn, actor, "operator.totp_reset", details={"operator": name})
        return Enrolment(name, build_otpauth_uri(secret, account=name, issuer="oathdesk"))

    def authenticate(
        self,
        name: str,
        password: str,
        code: str,
        *,
        at: float | None = None,
        local_policy: str = "on",
        client: str | None = None,
    ) -> Actor:
        """Password and TOTP; both checked every time, one generic refusal for any failure.

        ``local_policy`` is the break-glass policy while sign-in with Entra ID is on
        (``vault.sso.local_sign_in_policy``): "admins-only" or "off" refuse, after a correct
        password and code, whoever it leaves out; every local sign-in under it is audited as
        break-glass with the client's address."""
        moment = _now() if at is None else datetime.fromtimestamp(at, UTC)
        refusal = SignInRefused("sign-in refused: wrong name, password or code, or account locked")
        break_glass = local_policy != "on"
        with self.vault.transaction() as conn:
            row = conn.execute(
                sa.select(operators).where(operators.c.name == name.strip()).with_for_update()
            ).first()
            if row is None:
                _HASHER.hash(password)  # spend the same time as a real check
                # A security event like any failure: the name tried (never the password or
                # code) and where from. Committed, then the same refusal as for a known name.
                self.vault.audit(
                    conn,
                    ANONYMOUS,
                    "operator.signin_failed",
                    details={"name": name.strip()[:128], "reason": "unknown name", "ip": client},
                )
            else:
                locked = _aware(row.locked_until)
                password_ok = _password_matches(row.password_hash, password)
                secret = self.vault.decrypt_for(
                    row.totp_nonce, row.totp_ciphertext, *_aad_parts(row.id, row.name)
                )
                offset = verify_totp(secret, code, moment.timestamp(), behind=1, ahead=1)
                step = step_at(moment.timestamp()) + (offset or 0)
                fresh_code = offset is not None and step > row.totp_last_step
                actor = Actor(row.name, row.role)
                if row.disabled or (locked is not None and locked > moment):
                    self.vault.audit(
                        conn,
                        actor,
                        "operator.signin_refused",
                        details={"reason": "disabled" if row.disabled else "locked", "ip": client},
                    )
                    if locked is not None and not row.disabled and password_ok and fresh_code:
                        # Only the account's owner (right password and code) hears of the lock.
                        refusal = AccountLocked(
                            f"this account is locked after {MAX_FAILURES} failed sign-ins; try "
                            f"again after {moment_text(locked, moment, UTC)}",
                            locked,
                        )
                elif password_ok and fresh_code and _left_out(local_policy, row.role):
                    self.vault.audit(
                        conn,
                        actor,
                        "operator.signin_refused",
                        details={"reason": f"local sign-in {local_policy}", "ip": client},
                    )
                    policy_refusal = (
                        "local sign-in is switched off on this console"
                        if local_policy == "off"
                        else "local sign-in is kept for admins on this console"
                    )
                    refusal = SignInRefused(f"{policy_refusal}; use Sign in with Microsoft")
                elif password_ok and fresh_code:
                    conn.execute(
                        operators.update()
                        .where(operators.c.id == row.id)
                        .values(failed_attempts=0, locked_until=None, totp_last_step=step)
                    )
                    details = {"break_glass": True, "ip": client} if break_glass else None
                    self.vault.audit(conn, actor, "operator.signed_in", details=details)
                    return actor
                else:
                    failures = row.failed_attempts + 1
                    lock = moment + LOCKOUT if failures >= MAX_FAILURES else None
                    conn.execute(
                        operators.update()
                        .where(operators.c.id == row.id)
                        .values(failed_attempts=0 if lock else failures, locked_until=lock)
                    )
                    self.vault.audit(
                        conn,
                        actor,
                        "operator.signin_failed",
                        details={
                            "locked": lock is not None,
                            "reused_code": offset is not None and not fresh_code,
                            "ip": client,
                        },
                    )
        # Reached only on refusal, after the failure (count, lock, audit record) has committed.
        raise refusal

    def approve(self, name: str, password: str, code: str) -> Actor:
        """A second operator's approval (the four-eyes rule) with their password and code,
        given in the session or with the key of an operator already signed in. An operator who
        signs in with Microsoft only has neither: told so in one line (the caller is trusted
        enough to learn it), without counting a failure against them; otherwise exactly
        ``authenticate`` (failures counted, lockout, the generic refusal)."""
        with db.reading(self.vault.engine) as conn:
            row = conn.execute(
                sa.select(operators.c.sso_oid).where(operators.c.name == name.strip())
            ).first()
        if row is not None and row.sso_oid is not None:
            raise sso_only_refusal(
                name.strip(),
                "they cannot approve with a password and code; choose an approver with a local "
                "account",
            )
        return self.authenticate(name, password, code)

    # -- sign-in with Entra ID ---------------------------------------------------------------

    def sign_in_sso(
        self,
        *,
        tid: str,
        oid: str,
        upn: str,
        display_name: str,
        role: str,
        app_roles: Iterable[str],
        client: str,
    ) -> Actor:
        """The operator an Entra sign-in names, by (tid, oid): created at the first sign-in,
        its name (the UPN), display name and role refreshed at every one. Audited with the oid,
        the roles and the client's address; never a token."""
        parsed = Role.parse(role)
        name = upn.strip()[:128] or oid
        details = {"oid": oid, "tid": tid, "roles": sorted(app_roles), "ip": client}
        with self.vault.transaction() as conn:
            row = conn.execute(
                sa.select(operators)
                .where(operators.c.sso_tid == tid, operators.c.sso_oid == oid)
                .with_for_update()
            ).first()
            holder = conn.execute(sa.select(operators.c.id).where(operators.c.name == name)).first()
            actor = Actor(name, parsed.value)
            if holder is not None and (row is None or holder.id != row.id):
                # Another account (a local one, or an earlier person with this UPN) has the
                # name: refuse rather than merge two identities.
                self.vault.audit(
                    conn, actor, "operator.sso_refused", details={**details, "reason": "name_taken"}
                )
                refused = SignInRefused(
                    f"Microsoft sign-in refused: the operator name {name} belongs to another "
                    "account here; ask an admin to rename or remove it"
                )
            elif row is not None and row.disabled:
                self.vault.audit(
                    conn, actor, "operator.sso_refused", details={**details, "reason": "disabled"}
                )
                refused = SignInRefused(
                    "Microsoft sign-in refused: your operator account here is disabled; "
                    "ask an admin"
                )
            else:
                values = {"name": name, "role": parsed.value, "display_name": display_name[:256]}
                if row is None:
                    conn.execute(
                        operators.insert().values(**self._sso_account(tid, oid, name), **values)
                    )
                    self.vault.audit(
                        conn,
                        actor,
                        "operator.added",
                        details={
                            "operator": name,
                            "role": parsed.value,
                            "source": "entra",
                            "oid": oid,
                        },
                    )
                else:
                    conn.execute(
                        operators.update().where(operators.c.id == row.id).values(**values)
                    )
                self.vault.audit(conn, actor, "operator.sso_signed_in", details=details)
                return actor
        raise refused

    def refuse_sso(self, *, reason: str, client: str, oid: str = "", tid: str = "") -> None:
        """Audit a refused Entra sign-in (a bad token, no role, a state mismatch...). Who it was
        is known only when the token was good enough to read: then their operator, if any, loses
        nothing here; the next good sign-in re-reads the role."""
        actor = Actor(f"entra:{oid}" if oid else "entra:unknown", "none")
        details = {"reason": reason, "ip": client, **({"oid": oid, "tid": tid} if oid else {})}
        with self.vault.transaction() as conn:
            if oid:
                row = conn.execute(
                    sa.select(operators.c.name, operators.c.role).where(
                        operators.c.sso_tid == tid, operators.c.sso_oid == oid
                    )
                ).first()
                if row is not None:
                    actor = Actor(row.name, row.role)
            self.vault.audit(conn, actor, "operator.sso_refused", details=details)

    def _sso_account(self, tid: str, oid: str, name: str) -> dict[str, object]:
        """The columns of a new operator who signs in with Entra only: no usable password (the
        stored value is not an argon2 hash, so no password matches) and a TOTP secret nobody
        ever sees (the columns are required; local sign-in cannot succeed)."""
        operator_id = str(uuid.uuid4())
        nonce, ciphertext = self.vault.encrypt_for(
            generate_secret("sha1"), *_aad_parts(operator_id, name)
        )
        return {
            "id": operator_id,
            "password_hash": SSO_ONLY,
            "totp_nonce": nonce,
            "totp_ciphertext": ciphertext,
            "created_at": _now(),
            "sso_tid": tid,
            "sso_oid": oid,
        }

    def _row(self, conn: sa.Connection, name: str) -> sa.Row[tuple[object, ...]]:
        row = conn.execute(sa.select(operators).where(operators.c.name == name)).first()
        if row is None:
            raise NotFound(f"no operator {name}; list them with `oathdesk operator list`")
        return row


def _left_out(local_policy: str, role: str) -> bool:
    return local_policy == "off" or (local_policy == "admins-only" and role != Role.ADMIN.value)


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return bool(_HASHER.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


_BY_NAME = Order((operators.c.name,))


def _operator_from_row(row: sa.Row[Any]) -> Operator:
    return Operator(
        row.name,
        Role(row.role),
        bool(row.disabled),
        _aware(row.locked_until),
        _aware(row.created_at) or _now(),
        row.sso_oid is not None,
    )
