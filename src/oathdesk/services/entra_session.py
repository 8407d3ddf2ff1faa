"""An open connection to Entra for one command: the stored settings and credentials, a token
source, a Graph client whose every call lands in the audit chain, and the hardware OATH calls.

Graph calls are made outside any vault transaction; each call's audit record is its own small
transaction (operation, target, HTTP status, result; never a body or a secret). A job that makes
many calls in a row (`entra sync` pages the whole inventory) collects them instead
(``collecting_calls``): a run of calls alike (same operation, method and object) becomes one
``graph.call`` record with how many calls it was and their statuses and results, and the records
are appended together, in the transaction of the changes they led to (``call_records``) or
in one of their own. A transaction per call cost a sync of 10,000 devices more than its listing.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator

from oathdesk.graph.api import HardwareOath
from oathdesk.graph.auth import TokenSource
from oathdesk.graph.client import GraphCall, GraphClient
from oathdesk.graph.throttle import RetryPolicy
from oathdesk.services.entra_store import StoredConnection, load_connection, save_token_cache
from oathdesk.vault.audit import AuditEntry
from oathdesk.vault.models import Actor
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Vault


class EntraSession:
    """Use as a context manager; a refreshed device-code token cache is saved on the way out."""

    def __init__(
        self,
        vault: Vault,
        actor: Actor,
        connection: StoredConnection,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.vault = vault
        self.actor = actor
        self.connection = connection
        self.settings = connection.settings
        self.tokens = TokenSource(
            connection.settings, secret=connection.secret, cache_text=connection.cache_text
        )
        self.client = GraphClient(self.tokens, retry=retry, observer=self._audit, sleep=sleep)
        self.api = HardwareOath(self.client)
        self._collecting = 0  # nesting depth of ``collecting_calls``
        self._calls: list[GraphCall] = []

    def __repr__(self) -> str:
        return f"EntraSession(tenant={self.settings.tenant_id!r})"

    def _audit(self, call: GraphCall) -> None:
        if self._collecting:
            self._calls.append(call)
            return
        with self.vault.unit_of_work(self.actor) as work:
            work.audit("graph.call", details=_call_details(call))

    @contextlib.contextmanager
    def collecting_calls(self) -> Iterator[None]:
        """Collect the audit records of the Graph calls made in the block instead of writing
        each in a transaction of its own. When the block fails (Graph refused, the connection
        dropped) the calls so far are audited at once, in one transaction, before the error goes
        on: a failed run is audited as fully as one that worked. Otherwise they wait for
        ``call_records`` (or ``write_call_records``; ``close`` writes what is left)."""
        self._collecting += 1
        try:
            yield
        except BaseException:
            self._collecting -= 1
            if not self._collecting:
                self.write_call_records()
            raise
        self._collecting -= 1

    def call_records(self) -> list[AuditEntry]:
        """The audit records of the calls collected so far (see ``collecting_calls``), for the
        caller to append in its own transaction; ``forget_call_records`` once it committed."""
        return [
            AuditEntry(self.actor.name, "graph.call", details=details)
            for details in _summaries(self._calls)
        ]

    def forget_call_records(self) -> None:
        self._calls = []

    def write_call_records(self) -> None:
        """Append the collected calls' records in one transaction of their own."""
        entries = self.call_records()
        if entries:
            with self.vault.transaction() as conn:
                self.vault.audit_entries(conn, entries)
        self.forget_call_records()

    def close(self) -> None:
        self.write_call_records()
        self.client.close()
        refreshed = self.tokens.cache_text()
        if refreshed is not None:
            save_token_cache(self.vault, self.settings, refreshed)

    def __enter__(self) -> EntraSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _call_details(call: GraphCall) -> dict[str, object]:
    return {
        "operation": call.operation,
        "method": call.method,
        "object": call.target,
        "status": call.status,
        "result": call.result,
    }


def _summaries(calls: list[GraphCall]) -> list[dict[str, object]]:
    """One record's details per run of consecutive calls alike (operation, method, object):
    a call alone keeps the single call's form; a run says how many calls, each status and
    result with its count, and the last call's status and result (how the run ended)."""
    runs: list[list[GraphCall]] = []
    for call in calls:
        if runs and runs[-1][0][:3] == call[:3]:
            runs[-1].append(call)
        else:
            runs.append([call])
    summaries: list[dict[str, object]] = []
    for run in runs:
        details = _call_details(run[-1])
        if len(run) > 1:
            details["calls"] = len(run)
            details["statuses"] = dict(Counter(str(c.status) for c in run))
            details["results"] = dict(Counter(c.result for c in run))
        summaries.append(details)
    return summaries


def open_session(
    vault: Vault,
    actor: Actor,
    *,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> EntraSession:
    """A session acting for ``actor``; the entra commands are the admin's (MANAGE_TOKENS)."""
    require(actor, Permission.MANAGE_TOKENS)
    return EntraSession(vault, actor, load_connection(vault), retry=retry, sleep=sleep)
