"""Burning programmable tokens from the vault, checking them, and resetting their clocks.

The token is written first; the vault changes only after the token confirmed every write and the
operator typed a code that the token showed. Then one unit of work records it all (the new token
record if the seed came with the burn, the move to ``burned``, the clock measurement, the audit
record naming who burned what). A token pulled off the reader mid-write, a refused write or a
wrong code leave the vault exactly as it was: the next try starts over.

How a token gets into the vault before its burn (see docs/burning.md):
- already there: added with ``oathdesk token add --serial ... --user ...`` (seed from a QR
  screenshot or standard input) or imported; ``burn UPN`` or ``burn --serial`` picks it, and the
  serial read from the device must be that token's;
- not yet there (the serial is known only once the token is on the reader): the seed comes with
  the burn (``burn UPN --qr-image FILE``, the secret on standard input, or ``--generate`` for a
  token bound for an Entra CSV) and the token record is created, already burned, with the serial
  read from the device, in the same unit of work as the burn.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from oathdesk.errors import Conflict, InvalidInput, NotFound, OathdeskError, PolicyRefused
from oathdesk.nfc.apdu import HASHES, MAX_SEED_BYTES, STEPS
from oathdesk.nfc.errors import NotProgrammable
from oathdesk.nfc.models import TokenModel, model_for_serial
from oathdesk.nfc.token import DeviceInfo, Link, TokenSession
from oathdesk.otp import Algorithm, totp
from oathdesk.vault.lifecycle import CLOSING, TokenKind, TokenState
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Actor, NewToken, Token, Vault

T = TypeVar("T")
CODE_ATTEMPTS = 3
DIGITS = 6  # these tokens show 6 digits; there is no digits field to write
BURNABLE = (TokenState.ASSIGNED, TokenState.BURNED)  # burned again: same seed, same record


class TokenReader(Protocol):
    """A reader (``oathdesk.nfc.transport.PcscReader``, or a test double)."""

    name: str

    def token(self, timeout: float) -> AbstractContextManager[Link]: ...

    def wait_for_removal(self, timeout: float) -> bool: ...


@dataclass(frozen=True)
class SeedInput:
    """A seed brought to the burn (QR screenshot, standard input, or freshly generated)."""

    secret: bytes = field(repr=False)
    source: str  # qr | entered | generated
    algorithm: str | None = None
    period: int | None = None
    digits: int | None = None


@dataclass(frozen=True)
class BurnTarget:
    """Which token to burn: a user's, a serial, or (all empty) any token awaiting its burn."""

    upn: str | None = None
    serial: str | None = None
    new_seed: SeedInput | None = None
    hash_name: str | None = None
    period: int | None = None
    batch: str | None = None  # the queue it came from, named in the burn's audit record

    def describe(self) -> str:
        return self.upn or self.serial or "any token awaiting its burn"


@dataclass(frozen=True)
class CodeRequest:
    """What the operator is asked: press the button of this token and type its code."""

    serial: str
    model: str
    attempt: int


ReadCode = Callable[[CodeRequest], str]
Clock = Callable[[], float]


@dataclass(frozen=True)
class BurnResult:
    token: Token
    model: TokenModel
    drift_seconds: int  # the clock read back after the write, minus this computer's clock
    added: bool  # the token record was created by this burn


@dataclass(frozen=True)
class Plan:
    existing: list[Token]  # the vault tokens the device may be (empty: a new record)
    upn: str | None


def plan_burn(vault: Vault, target: BurnTarget) -> Plan:
    """What the vault expects before the reader is touched (a mistake costs no token write)."""
    if target.new_seed is not None:
        if not target.upn:
            raise InvalidInput("a seed given to the burn needs the user it belongs to (UPN)")
        return Plan([], _check_new_seed(vault, target.upn, target.new_seed.secret))
    if target.serial:
        token = vault.get_token(target.serial)
        _check_burnable(token)
        return Plan([token], token.upn)
    upn = vault.get_user(target.upn).upn if target.upn else None
    waiting = [
        t
        for t in vault.list_tokens(state=TokenState.ASSIGNED.value, upn=upn)
        if t.kind is TokenKind.PROGRAMMABLE and t.has_secret
    ]
    if not waiting:
        who = f"user {upn} has" if upn else "the vault has"
        hint = (
            f"give the seed to the burn (`oathdesk burn {upn} --qr-image FILE`, or --generate)"
            if upn
            else "add them first (`oathdesk token add --user UPN ...` or `oathdesk import`)"
        )
        raise NotFound(f"{who} no programmable token waiting to be burned; {hint}")
    return Plan(waiting, upn)


def _check_new_seed(vault: Vault, upn: str, secret: bytes) -> str:
    """What adding the token would refuse, checked before the token is written."""
    user = vault.get_user(upn)
    limit = vault.settings().max_tokens_per_user
    if vault.token_counts([user.upn])[user.upn] >= limit:
        raise Conflict(
            f"user {user.upn} already has {limit} tokens, the limit; retire one first "
            "or raise max_tokens_per_user"
        )
    holder = vault.secret_holders([secret])[0]
    if holder is not None:
        raise Conflict(
            f"token {holder} already has this seed; every token needs its own (for a new "
            f"token of {user.upn}, get a new QR code at aka.ms/mfasetup)"
        )
    return user.upn


def _check_burnable(token: Token) -> None:
    if token.kind is not TokenKind.PROGRAMMABLE:
        raise Conflict(f"token {token.serial} is a classic token with a factory seed")
    if token.state is TokenState.IN_STOCK:
        raise Conflict(
            f"token {token.serial} is in stock; assign it first (`oathdesk token assign "
            f"{token.serial} UPN`), then burn it"
        )
    if token.state not in BURNABLE:
        raise Conflict(
            f"token {token.serial} is {token.state.value}; only assigned (or burned) tokens are "
            "burned: use `oathdesk token resync` for its clock, `oathdesk token reassign` for a "
            "new owner"
        )
    if not token.has_secret:
        raise Conflict(f"the vault no longer holds the seed of token {token.serial}")


def _match(plan: Plan, device: DeviceInfo, vault: Vault) -> Token | None:
    if not plan.existing:
        if vault.existing_serials([device.serial]):
            raise Conflict(
                f"token {device.serial} is already in the vault; burn it with "
                f"`oathdesk burn --serial {device.serial}`, or present a new token"
            )
        return None
    for token in plan.existing:
        if token.serial == device.serial:
            return token
    if len(plan.existing) == 1:
        wanted = plan.existing[0].serial
        raise Conflict(
            f"the token on the reader is {device.serial}, not {wanted}; present {wanted}"
        )
    owner = f"of {plan.upn} " if plan.upn else ""
    raise Conflict(
        f"the token on the reader ({device.serial}) is not a token {owner}waiting to be burned; "
        "present one that is, or add it to the vault first"
    )


def _settings(token: Token | None, target: BurnTarget) -> tuple[str, int]:
    """The hash and time step to write; a token already in the vault keeps its own."""
    seed = target.new_seed
    if token is not None:
        wanted = (target.hash_name or token.algorithm.value, target.period or token.period)
        if wanted != (token.algorithm.value, token.period):
            raise InvalidInput(
                f"token {token.serial} is stored as {token.algorithm.value}/{token.period} s; "
                "the burn writes what the vault holds: drop --hash/--period"
            )
        if token.digits != DIGITS:
            raise InvalidInput(
                f"token {token.serial} is stored with {token.digits} digits; these tokens show 6"
            )
        hash_name, period = wanted
    else:
        assert seed is not None
        hash_name = _agree("hash", target.hash_name, seed.algorithm) or "sha1"
        period = _agree("period", target.period, seed.period) or 30
        if seed.digits not in (None, DIGITS):
            raise InvalidInput(f"the seed asks for {seed.digits} digits; these tokens show 6")
    if hash_name not in HASHES:
        raise InvalidInput(f"these tokens do SHA-1 or SHA-256, not {hash_name}")
    if period not in STEPS:
        raise InvalidInput(f"these tokens use a 30 or 60 s time step, not {period} s")
    return hash_name, period


def _agree(name: str, option: T | None, from_seed: T | None) -> T | None:
    if option is not None and from_seed is not None and option != from_seed:
        raise InvalidInput(f"the seed says {name} {from_seed}, the option says {option}; drop one")
    return option if option is not None else from_seed


def code_matches(secret: bytes, code: str, at: float, *, hash_name: str, period: int) -> bool:
    """The typed code is the one shown now, or one step either side; constant time."""
    typed = "".join(code.split()).encode()
    matched = False
    for offset in (-1, 0, 1):
        expected = totp(secret, at + offset * period, algorithm=Algorithm(hash_name), period=period)
        matched |= hmac.compare_digest(expected.encode(), typed)
    return matched


def code_confirmed(
    read_code: ReadCode,
    device: DeviceInfo,
    secret: bytes,
    clock: Clock,
    hash_name: str,
    period: int,
) -> bool:
    """The operator typed, within three tries, the code of ``secret`` that the token shows."""
    for attempt in range(1, CODE_ATTEMPTS + 1):
        code = read_code(CodeRequest(device.serial, device.model.name, attempt))
        if code_matches(secret, code, clock(), hash_name=hash_name, period=period):
            return True
    return False


def _confirm_code(
    read_code: ReadCode,
    device: DeviceInfo,
    secret: bytes,
    clock: Clock,
    hash_name: str,
    period: int,
) -> None:
    if not code_confirmed(read_code, device, secret, clock, hash_name, period):
        raise PolicyRefused(
            f"the code typed does not match token {device.serial} ({CODE_ATTEMPTS} tries); "
            "nothing was recorded: check the token's display and burn it again"
        )


@dataclass(frozen=True)
class Programmed:
    """A token written and read back, not yet confirmed by its code nor recorded."""

    device: DeviceInfo
    token: Token | None  # its vault record (None: the burn creates it)
    upn: str | None
    secret: bytes = field(repr=False)
    hash_name: str = "sha1"
    period: int = 30
    drift: int = 0


def burn(
    vault: Vault,
    actor: Actor,
    reader: TokenReader,
    target: BurnTarget,
    read_code: ReadCode,
    *,
    timeout: float = 30.0,
    clock: Clock = time.time,
) -> BurnResult:
    """Program one token and record it; see the module's docstring for the order of things."""
    require_burn(actor, target)
    plan = plan_burn(vault, target)
    with reader.token(timeout) as link:
        session = TokenSession(link)
        device = session.identify()
        token = _match(plan, device, vault)
        programmed = program(vault, actor, session, device, token, plan.upn, target, clock)
    return record_burn(vault, actor, reader.name, programmed, target, read_code, clock)


def require_burn(actor: Actor, target: BurnTarget) -> None:
    require(actor, Permission.SHIP)
    require(actor, Permission.REVEAL)
    if target.new_seed is not None:
        require(actor, Permission.MANAGE_TOKENS)  # it adds a token


def program(
    vault: Vault,
    actor: Actor,
    session: TokenSession,
    device: DeviceInfo,
    token: Token | None,
    upn: str | None,
    target: BurnTarget,
    clock: Clock,
) -> Programmed:
    """Write the configuration (clock, hash, step) and the seed to the identified token."""
    hash_name, period = _settings(token, target)
    secret = _secret(vault, actor, token, target)
    session.authenticate()
    session.write_config(int(clock()), hash_name=hash_name, period=period)
    session.write_seed(secret)
    drift = session.clock() - int(clock())
    return Programmed(device, token, upn, secret, hash_name, period, drift)


def record_burn(
    vault: Vault,
    actor: Actor,
    reader_name: str,
    done: Programmed,
    target: BurnTarget,
    read_code: ReadCode,
    clock: Clock,
) -> BurnResult:
    """Ask for the code the token shows; only if it matches, record the burn."""
    device, token = done.device, done.token
    _confirm_code(read_code, device, done.secret, clock, done.hash_name, done.period)
    details: dict[str, object] = {
        "model": device.model.name,
        "reader": reader_name,
        "hash": done.hash_name,
        "period": done.period,
        "drift_seconds": done.drift,
        "seed_source": target.new_seed.source if target.new_seed else "vault",
    }
    if target.batch:
        details["batch"] = target.batch
    try:
        with vault.unit_of_work(actor) as work:
            if token is None:
                work.add_tokens(
                    [
                        _new_token(
                            device, target, done.upn, done.secret, done.hash_name, done.period
                        )
                    ],
                    source="burn",
                )
                token = work.token(device.serial)
            if token.state is TokenState.BURNED:
                work.audit(
                    "token.reburned", upn=token.upn or "", serial=token.serial, details=details
                )
            else:
                token = work.move(
                    token.serial, TokenState.BURNED, details=details, expected_version=token.version
                )
            work.record_drift(token, done.drift)
    except OathdeskError as error:
        raise type(error)(
            f"token {device.serial} is programmed but the vault did not record it "
            f"({error.message}); burn it again"
        ) from None
    return BurnResult(vault.get_token(device.serial), device.model, done.drift, done.token is None)


def _secret(vault: Vault, actor: Actor, token: Token | None, target: BurnTarget) -> bytes:
    if token is None:
        assert target.new_seed is not None
        secret = target.new_seed.secret
    else:
        # Not audited on its own: the burn's record (written only if the burn succeeds) says it.
        with vault.transaction() as conn:
            secret = vault.read_secret(conn, actor, token, purpose="burn", audit=False)
    if not 1 <= len(secret) <= MAX_SEED_BYTES:
        raise InvalidInput(
            f"the seed is {len(secret)} bytes; these tokens take 1 to {MAX_SEED_BYTES}"
        )
    return secret


def _new_token(
    device: DeviceInfo,
    target: BurnTarget,
    upn: str | None,
    secret: bytes,
    hash_name: str,
    period: int,
) -> NewToken:
    return NewToken(
        serial=device.serial,
        manufacturer="Token2",
        model=device.model.name,
        kind=TokenKind.PROGRAMMABLE,
        secret=secret,
        algorithm=Algorithm(hash_name),
        digits=DIGITS,
        period=period,
        upn=upn,
    )


# -- reading and resynchronising ----------------------------------------------------------------


@dataclass(frozen=True)
class TokenReport:
    device: DeviceInfo
    drift_seconds: int  # the token's clock minus this computer's
    stored: Token | None  # the vault's record of it, if a vault was given and holds it


def token_info(
    reader: TokenReader,
    *,
    vault: Vault | None = None,
    timeout: float = 30.0,
    clock: Clock = time.time,
) -> TokenReport:
    """Serial, model and clock of the token on the reader; nothing is written anywhere."""
    with reader.token(timeout) as link:
        device = TokenSession(link).identify()
        drift = device.clock - int(clock())
    stored = None
    if vault is not None and vault.existing_serials([device.serial]):
        stored = vault.get_token(device.serial)
    return TokenReport(device, drift, stored)


@dataclass(frozen=True)
class ResyncResult:
    token: Token
    model: TokenModel
    drift_before: int
    drift_after: int
    reburned: bool


def resync(
    vault: Vault,
    actor: Actor,
    reader: TokenReader,
    serial: str,
    read_code: ReadCode,
    *,
    timeout: float = 30.0,
    clock: Clock = time.time,
) -> ResyncResult:
    """Set the token's clock; on restricted-sync models re-burn the stored seed with it."""
    require(actor, Permission.SHIP)
    token = vault.get_token(serial)
    model = model_for_serial(token.serial)
    if model is None or token.kind is not TokenKind.PROGRAMMABLE:
        raise NotProgrammable(f"token {token.serial} is not programmable; its clock cannot be set")
    if token.state in CLOSING:
        raise Conflict(f"token {token.serial} is {token.state.value}; it is out of service")
    reburn = not model.seed_survives_clock_sync
    if reburn and not token.has_secret:
        raise Conflict(
            f"token {token.serial} is a {model.name}: setting its clock erases its seed, and the "
            "vault no longer holds that seed; replace the token (or reassign it with a new seed)"
        )
    secret = None
    if token.has_secret:
        require(actor, Permission.REVEAL)
        with vault.transaction() as conn:
            secret = vault.read_secret(conn, actor, token, purpose="resync", audit=False)
    hash_name, period = token.algorithm.value, token.period
    with reader.token(timeout) as link:
        session = TokenSession(link)
        device = session.identify()
        if device.serial != token.serial:
            raise Conflict(
                f"the token on the reader is {device.serial}, not {token.serial}; "
                f"present {token.serial}"
            )
        drift_before = device.clock - int(clock())
        session.authenticate()
        session.write_config(int(clock()), hash_name=hash_name, period=period)
        if reburn:
            assert secret is not None
            session.write_seed(secret)
        drift_after = session.clock() - int(clock())
    if secret is not None:
        _confirm_code(read_code, device, secret, clock, hash_name, period)
    with vault.unit_of_work(actor) as work:
        current = work.token(token.serial, expected_version=token.version)
        work.record_drift(current, drift_after)
        work.audit(
            "token.resynced",
            upn=current.upn or "",
            serial=current.serial,
            details={
                "model": model.name,
                "reader": reader.name,
                "drift_before": drift_before,
                "drift_after": drift_after,
                "seed_reburned": reburn,
            },
        )
    return ResyncResult(vault.get_token(token.serial), model, drift_before, drift_after, reburn)
