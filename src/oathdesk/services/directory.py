"""Finding users and tokens, a user's overview, the audit viewer and the drift overview.

What the consoles show when an operator looks something up; each call checks the actor's role
first, so the web pages and the API show the same things to the same people.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from oathdesk.errors import InvalidInput, PolicyRefused
from oathdesk.services.audit_checks import AuditChecks
from oathdesk.services.drift import window_seconds
from oathdesk.services.token_actions import available_actions
from oathdesk.services.token_checks import DriftRow, drift_rows
from oathdesk.vault import lookup, search_index
from oathdesk.vault.audit_filter import AuditFilter
from oathdesk.vault.lifecycle import SECRET_STATES
from oathdesk.vault.paging import Page
from oathdesk.vault.roles import Permission, allowed, require
from oathdesk.vault.vault import Actor, Token, User, Vault

MAX_QUERY = 320  # the longest UPN Entra takes
SEARCH_LIMIT = 50
AUDIT_PAGE_SIZE = 50
DRIFT_PAGE_SIZE = 50  # measured tokens a drift page looks at (and charts), as an audit page


@dataclass(frozen=True)
class SearchResult:
    query: str
    users: list[User]
    tokens: list[Token]
    next_users: str | None = None  # cursors of the next page of each (None: no more)
    next_tokens: str | None = None
    too_short: bool = False  # 1-2 characters: not searched (the page asks for a third)

    @property
    def empty(self) -> bool:
        return not self.users and not self.tokens


def search(
    vault: Vault,
    actor: Actor,
    query: str,
    *,
    users_after: str | None = None,
    tokens_after: str | None = None,
) -> SearchResult:
    """Users by UPN or name, tokens by serial or tracking reference; partial, any case; a
    page of each (``users_after``/``tokens_after``: the cursor of the page to show).

    At least MIN_TRIGRAM characters: text that short has no trigram to look up, and what one
    or two characters would match anywhere in a name is most of the directory, read row by row.
    A helpdesk has a third character to type (the UPN's or serial's start does it)."""
    require(actor, Permission.LOOK_UP)
    text = query.strip()
    if len(text) > MAX_QUERY:
        raise InvalidInput(f"a search is at most {MAX_QUERY} characters; type part of a name")
    if not text:
        return SearchResult("", [], [])
    if len(text) < search_index.MIN_TRIGRAM:
        return SearchResult(text, [], [], too_short=True)
    search_index.keep_up(vault.engine)
    found_users = lookup.search_users(vault, text, cursor=users_after, limit=SEARCH_LIMIT)
    found_tokens = lookup.search_tokens(vault, text, cursor=tokens_after, limit=SEARCH_LIMIT)
    return SearchResult(
        text,
        found_users.items,
        found_tokens.items,
        found_users.next_cursor,
        found_tokens.next_cursor,
    )


@dataclass(frozen=True)
class TokenView:
    token: Token
    actions: list[str]  # what this actor may do next with it (see token_actions)


@dataclass(frozen=True)
class UserOverview:
    user: User
    tokens: list[TokenView]
    events: list[dict[str, Any]]  # recent audit records about the user or their tokens
    can_reveal: bool  # the actor may reveal and a token still has its seed
    can_edit: bool = False  # the actor may change the name, phone number and notes
    older_events: str | None = None  # cursor of the next (older) page of events
    first_events: bool = True  # False: a cursor led to these events
    can_approve: bool = False  # the actor may approve one reveal beyond the per-user limit


def user_overview(
    vault: Vault, actor: Actor, upn: str, *, events: int = 20, events_cursor: str | None = None
) -> UserOverview:
    """The user, their tokens, and a page of the events about them (newest first; older ones
    with ``events_cursor``, the previous page's ``older_events``)."""
    require(actor, Permission.LOOK_UP)
    user = vault.get_user(upn)
    owned = vault.list_tokens(upn=user.upn)
    views = [TokenView(t, available_actions(t, actor.role)) for t in owned]
    revealable = any(t.has_secret and t.state in SECRET_STATES for t in owned)
    about = lookup.audit_about_page(
        vault, user.upn, [t.serial for t in owned], cursor=events_cursor, limit=events
    )
    return UserOverview(
        user,
        views,
        about.items,
        revealable and allowed(actor.role, Permission.REVEAL),
        allowed(actor.role, Permission.MANAGE_USERS),
        about.next_cursor,
        not events_cursor,
        can_approve=revealable and allowed(actor.role, Permission.SETTINGS),
    )


@dataclass(frozen=True)
class AuditView:
    page: Page[dict[str, Any]]  # newest first
    first_page: bool  # False: a cursor led here (the page offers a way back to the first)
    page_size: int
    actions: list[str]  # every action in the log, for the filter
    chain_breaks: list[str]  # empty: the chain and its head verify
    log_size: int  # records in the whole log
    whole_chain_checked_at: datetime  # the records since then were checked for this view

    @property
    def intact(self) -> bool:
        return not self.chain_breaks


def audit_view(
    vault: Vault,
    actor: Actor,
    wanted: AuditFilter,
    *,
    cursor: str | None = None,
    page_size: int = AUDIT_PAGE_SIZE,
    checks: AuditChecks | None = None,
    whole_chain: bool = False,
) -> AuditView:
    """A page of the log, with the chain's state: from ``checks`` (a server's, which checks
    the whole chain only now and then, or when ``whole_chain``), else from a whole check."""
    require(actor, Permission.READ_AUDIT)
    if wanted.since and wanted.until and wanted.since > wanted.until:
        raise InvalidInput("the 'from' date is after the 'to' date; swap them")
    chain = (checks or AuditChecks(vault)).status(whole=whole_chain)
    return AuditView(
        lookup.audit_page(vault, wanted, cursor=cursor, limit=page_size),
        not cursor,
        page_size,
        lookup.audit_actions(vault),
        chain.problems,
        # The check read the verified head: its count saves the page a read of its own.
        chain.records if chain.records is not None else lookup.audit_log_size(vault),
        chain.whole_checked_at,
    )


@dataclass(frozen=True)
class DriftOverview:
    """A page of the measured tokens (by serial): those near or outside, and all of them."""

    rows: list[DriftRow]  # the tokens `oathdesk drift` lists (near or outside the window)
    history: dict[str, list[tuple[datetime, int]]]  # measurements of those tokens, oldest first
    latest: list[tuple[Token, int, int]]  # every measured token: (token, drift, window seconds)
    next_cursor: str | None = None  # the next page of measured tokens (None: the last)
    first_page: bool = True


def drift_overview(
    vault: Vault, actor: Actor, *, cursor: str | None = None, page_size: int = DRIFT_PAGE_SIZE
) -> DriftOverview:
    require(actor, Permission.LOOK_UP)
    measured = lookup.token_page(vault, drift_measured=True, cursor=cursor, limit=page_size)
    history = lookup.drift_history(vault, measured.items)
    profile_name = vault.settings().acceptance_profile
    report = drift_rows(measured.items, history, profile_name)
    latest = []
    for token in measured.items:
        if token.serial in history and token.drift_seconds is not None:
            latest.append((token, token.drift_seconds, window_seconds(profile_name, token.period)))
    shown = {row.token.serial for row in report}
    return DriftOverview(
        report,
        {serial: history[serial] for serial in shown if serial in history},
        latest,
        measured.next_cursor,
        not cursor,
    )


@dataclass(frozen=True)
class TokenOverview:
    view: TokenView
    events: list[dict[str, Any]]


def token_overview(vault: Vault, actor: Actor, serial: str, *, events: int = 20) -> TokenOverview:
    require(actor, Permission.LOOK_UP)
    token = vault.get_token(serial)
    wanted = AuditFilter(serial=token.serial)
    return TokenOverview(
        TokenView(token, available_actions(token, actor.role)),
        lookup.audit_page(vault, wanted, limit=events).items,
    )


@dataclass(frozen=True)
class RevealForm:
    """What the identity-verification form offers before a code is revealed."""

    user: User
    tokens: list[Token]  # the user's tokens that still hold a seed
    four_eyes: bool
    profile: str

    def check_callback(self, method: str) -> None:
        """Refuse a "called back" verification when no number is on file: a callback on a
        number the caller gives proves nothing, and with none on file there was nothing to
        call back on. (The console asks this before it submits a reveal; with no seed to
        reveal, the reveal's own refusal says what to do instead.)"""
        if method.strip() == "callback" and not self.user.phone and self.tokens:
            raise PolicyRefused(
                f"{self.user.upn} has no phone number on file to call back on; an admin adds it "
                "on the user's page (Edit), or verify the identity another way"
            )


def reveal_form(vault: Vault, actor: Actor, upn: str) -> RevealForm:
    require(actor, Permission.REVEAL)
    user = vault.get_user(upn)
    settings = vault.settings()
    usable = [
        t for t in vault.list_tokens(upn=user.upn) if t.has_secret and t.state in SECRET_STATES
    ]
    return RevealForm(user, usable, settings.four_eyes, settings.acceptance_profile)
