"""REST API keys: several per operator, each acting with that operator's role.

A key is ``odk_<id>_<secret>``: the id (16 hex digits) finds the row, the secret (32 random bytes,
base64url) is checked against the stored HMAC-SHA256 in constant time. The key itself is shown
once, at creation, and stored nowhere. A key stops working when it is revoked, when it expires, or
when its operator is disabled; creating and revoking a key are audited, and so is every refused
use of an existing key. Successful uses are not audited here (the action they authorise is); the
key's ``last_used_at`` is refreshed at most once a minute so reads stay reads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from oathdesk.errors import InvalidInput, NotFound, PermissionDenied
from oathdesk.vault import db
from oathdesk.vault.models import Actor, aware, utc_now
from oathdesk.vault.paging import DEFAULT_LIMIT, MAX_LIMIT, Order, Page, read_page, walk
from oathdesk.vault.roles import Permission, allowed, require
from oathdesk.vault.schema import api_keys, operators
from oathdesk.vault.vault import Vault

PREFIX = "odk"
SECRET_BYTES = 32
ID_HEX = 16
LAST_USED_EVERY = timedelta(minutes=1)
REFUSED_ACTION = "api_key.refused"
MAX_DAYS = 3650
_SHAPE = re.compile(rf"{PREFIX}_([0-9a-f]{{{ID_HEX}}})_([A-Za-z0-9_-]{{43}})")


class ApiKeyRefused(PermissionDenied):
    """No key, a malformed, unknown, wrong, revoked or expired key, or a disabled operator.

    One message for all of them: a caller probing keys learns nothing from the difference.
    """

    code = "unauthorized"


REFUSAL = (
    "the API key is missing, wrong, revoked or expired, or its operator is disabled; "
    "send 'Authorization: Bearer odk_...' with a key from `oathdesk operator api-key create`"
)


@dataclass(frozen=True)
class ApiKey:
    """A key as stored (without its secret)."""

    id: str
    operator: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    def status(self, now: datetime | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utc_now()):
            return "expired"
        return "active"


@dataclass(frozen=True)
class CreatedKey:
    """A new key and the full key text, which is shown once and never stored."""

    key: ApiKey
    secret_text: str

    def __repr__(self) -> str:
        return f"CreatedKey(key={self.key!r}, secret_text=<hidden>)"


def _secret_hash(key_id: str, secret: str) -> bytes:
    return hmac.new(f"oathdesk api key {key_id}".encode(), secret.encode(), hashlib.sha256).digest()


def _key_from_row(row: sa.Row[tuple[object, ...]]) -> ApiKey:
    m = row._mapping
    created = aware(m["created_at"])
    assert created is not None
    return ApiKey(
        str(m["id"]),
        str(m["operator"]),
        str(m["name"]),
        created,
        aware(m["last_used_at"]),
        aware(m["expires_at"]),
        aware(m["revoked_at"]),
    )


_KEY_COLUMNS = (
    api_keys.c.id,
    operators.c.name.label("operator"),
    api_keys.c.name,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
    api_keys.c.expires_at,
    api_keys.c.revoked_at,
)


def _key_query() -> sa.Select[tuple[object, ...]]:
    return sa.select(*_KEY_COLUMNS).join(operators, operators.c.id == api_keys.c.operator_id)


_BY_OPERATOR_AGE = Order((operators.c.name, api_keys.c.created_at, api_keys.c.id))

# Every API request runs this: built once, so SQLAlchemy reuses its compiled form.
_KEY_CHECK = (
    sa.select(
        api_keys.c.secret_hash,
        api_keys.c.last_used_at,
        api_keys.c.expires_at,
        api_keys.c.revoked_at,
        operators.c.name,
        operators.c.role,
        operators.c.disabled,
    )
    .join(operators, operators.c.id == api_keys.c.operator_id)
    .where(api_keys.c.id == sa.bindparam("key_id"))
)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 128 or not name.isprintable():
        raise InvalidInput("name the key after what uses it, e.g. ci-export (1-128 characters)")
    return name


class ApiKeyStore:
    """Create, list, revoke and check API keys on an open vault."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    def create(
        self, actor: Actor, operator_name: str, name: str, *, days: int | None = 365
    ) -> CreatedKey:
        """A new key for ``operator_name`` (admin only); ``days=None``: it never expires."""
        require(actor, Permission.MANAGE_OPERATORS)
        name = _check_name(name)
        if days is not None and not 1 <= days <= MAX_DAYS:
            raise InvalidInput(f"a key lives 1 to {MAX_DAYS} days (or never expires)")
        key_id = secrets.token_hex(ID_HEX // 2)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode()
        now = utc_now()
        expires = None if days is None else now + timedelta(days=days)
        with self.vault.unit_of_work(actor) as work:
            owner = work.conn.execute(
                sa.select(operators.c.id, operators.c.disabled).where(
                    operators.c.name == operator_name.strip()
                )
            ).first()
            if owner is None:
                raise NotFound(
                    f"no operator {operator_name}; list them with `oathdesk operator list`"
                )
            if owner.disabled:
                raise InvalidInput(f"operator {operator_name} is disabled; a key would not work")
            work.conn.execute(
                api_keys.insert().values(
                    id=key_id,
                    operator_id=owner.id,
                    name=name,
                    secret_hash=_secret_hash(key_id, secret),
                    created_at=now,
                    expires_at=expires,
                )
            )
            work.audit(
                "api_key.created",
                details={
                    "operator": operator_name.strip(),
                    "key_id": key_id,
                    "name": name,
                    "expires_at": expires.isoformat() if expires else None,
                },
            )
        key = ApiKey(key_id, operator_name.strip(), name, now, None, expires, None)
        return CreatedKey(key, f"{PREFIX}_{key_id}_{secret}")

    def list(self, actor: Actor, operator_name: str | None = None) -> list[ApiKey]:
        """Keys of one operator (or all); an operator may list their own, an admin anyone's."""
        return list(
            walk(lambda cursor: self.page(actor, operator_name, cursor=cursor, limit=MAX_LIMIT))
        )

    def page(
        self,
        actor: Actor,
        operator_name: str | None = None,
        *,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page[ApiKey]:
        """A page of ``list``: by operator, then oldest first (the id breaks ties)."""
        if operator_name != actor.name:
            require(actor, Permission.MANAGE_OPERATORS)
        query = _key_query()
        if operator_name is not None:
            query = query.where(operators.c.name == operator_name)
        with db.reading(self.vault.engine) as conn:
            return read_page(
                conn,
                query,
                order=_BY_OPERATOR_AGE,
                cursors=self.vault.cursors,
                listing="api_keys",
                wanted={"operator": operator_name},
                cursor=cursor,
                limit=limit,
                key_of=lambda row: (row.operator, row.created_at, row.id),
                item_of=_key_from_row,
            )

    def get(self, key_id: str) -> ApiKey:
        with db.reading(self.vault.engine) as conn:
            row = conn.execute(_key_query().where(api_keys.c.id == key_id)).first()
        if row is None:
            raise NotFound(f"no API key {key_id}; list them with `oathdesk operator api-key list`")
        return _key_from_row(row)

    def revoke(self, actor: Actor, key_id: str) -> ApiKey:
        """Revoke a key for good: its own operator or an admin may."""
        with self.vault.unit_of_work(actor) as work:
            row = work.conn.execute(_key_query().where(api_keys.c.id == key_id)).first()
            if row is None:
                raise NotFound(
                    f"no API key {key_id}; list them with `oathdesk operator api-key list`"
                )
            key = _key_from_row(row)
            if key.operator != actor.name:
                require(actor, Permission.MANAGE_OPERATORS)
            if key.revoked_at is None:
                now = utc_now()
                work.conn.execute(
                    api_keys.update().where(api_keys.c.id == key_id).values(revoked_at=now)
                )
                work.audit(
                    "api_key.revoked",
                    details={"operator": key.operator, "key_id": key_id, "name": key.name},
                )
                key = ApiKey(
                    key.id,
                    key.operator,
                    key.name,
                    key.created_at,
                    key.last_used_at,
                    key.expires_at,
                    now,
                )
        return key

    def authenticate(self, presented: str, *, now: datetime | None = None) -> tuple[Actor, str]:
        """The operator a key acts for and the key's id; ``ApiKeyRefused`` otherwise."""
        moment = now or utc_now()
        with db.reading(self.vault.engine) as conn:
            check = check_key(conn, presented, moment)
        if check.refusal:
            with self.vault.unit_of_work(check.actor) as work:
                work.audit(REFUSED_ACTION, details=check.refusal_details())
            raise ApiKeyRefused(REFUSAL)
        if check.stamp_due:
            with self.vault.transaction() as conn:
                stamp_last_use(conn, check.key_id, moment)
        return check.actor, check.key_id


@dataclass(frozen=True)
class KeyCheck:
    """What checking a presented key found: the operator it acts for, or why it is refused
    (``refusal``, for the audit record only: the caller is told ``REFUSAL`` whatever it is)."""

    actor: Actor
    key_id: str
    refusal: str = ""
    stamp_due: bool = False  # last_used_at is older than LAST_USED_EVERY

    def refusal_details(self) -> dict[str, str]:
        """The details of the ``REFUSED_ACTION`` record of a refused use of an existing key."""
        return {"key_id": self.key_id, "reason": self.refusal}


def key_shape(presented: str) -> tuple[str, str]:
    """The id and secret of a key in its ``odk_<id>_<secret>`` form; ``ApiKeyRefused`` for
    anything else (no database needed to refuse those)."""
    match = _SHAPE.fullmatch(presented.strip())
    if match is None:
        raise ApiKeyRefused(REFUSAL)
    key_id, secret = match.groups()
    return key_id, secret


def check_key(conn: sa.Connection, presented: str, moment: datetime) -> KeyCheck:
    """Check a presented key inside the caller's transaction, writing nothing.

    ``ApiKeyRefused`` for a malformed or unknown key (nothing to audit: no operator to name);
    a ``KeyCheck`` with ``refusal`` set for an existing key that may not be used."""
    key_id, secret = key_shape(presented)
    row = conn.execute(_KEY_CHECK, {"key_id": key_id}).first()
    if row is None:
        raise ApiKeyRefused(REFUSAL)
    actor = Actor(row.name, row.role)
    reason = ""
    expires = aware(row.expires_at)
    if not hmac.compare_digest(_secret_hash(key_id, secret), row.secret_hash):
        reason = "wrong secret"
    elif row.revoked_at is not None:
        reason = "revoked"
    elif expires is not None and expires <= moment:
        reason = "expired"
    elif row.disabled:
        reason = "operator disabled"
    elif not allowed(row.role, Permission.LOOK_UP) and not allowed(row.role, Permission.READ_AUDIT):
        reason = "unknown role"
    last_used = aware(row.last_used_at)
    due = not reason and (last_used is None or moment - last_used >= LAST_USED_EVERY)
    return KeyCheck(actor, key_id, reason, due)


_STAMP_LAST_USE = (
    api_keys.update()
    .where(api_keys.c.id == sa.bindparam("key_id"))
    .values(last_used_at=sa.bindparam("moment"))
)


def stamp_last_use(conn: sa.Connection, key_id: str, moment: datetime) -> None:
    """Refresh a key's ``last_used_at`` (at most once a minute, so reads stay reads)."""
    conn.execute(_STAMP_LAST_USE, {"key_id": key_id, "moment": moment})
