"""Group commit for reveals: the reveals of many operators at once, one transaction per batch.

Run one at a time, every reveal pays for a transaction of its own and its own fsync while it
holds the vault's write lock. A server (the console's reveal page and the REST API) instead
hands its reveals to one vault writer, which takes every reveal waiting and runs them with
``reveal_batch``: one transaction, one audit append and one commit for the lot.

- Nothing waits for a batch to fill: a reveal that finds the writer idle runs at once; those
  that arrive meanwhile form the next batch.
- A caller hears of its outcome only after the commit, so no code is shown whose audit record
  could still be lost; if the transaction fails, every reveal in the batch fails with its error.

The writer is a thread of the server's process (``RevealQueue``) or, for a server of several
worker processes, a process of its own that every worker reaches through a pipe
(``serve_workers`` and ``RemoteRevealQueue``). SQLite takes one writer at a time; several
workers each writing would queue for its lock, and each would hold it longer for sharing its
interpreter with the worker's web requests. The per-key throttle counts in the writer, so the
workers of one server share it.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError
from multiprocessing.connection import Connection, wait
from typing import Protocol

from oathdesk.errors import OathdeskError
from oathdesk.services.reveal import RevealJob, RevealOutcome, reveal_batch
from oathdesk.services.reveal_throttle import KeyThrottle
from oathdesk.vault.db import StorageError
from oathdesk.vault.vault import Vault

MAX_BATCH = 64  # reveals per transaction at most: bounds how long one batch holds the vault

log = logging.getLogger("oathdesk.reveals")


class Reveals(Protocol):
    """Where a server sends its reveals: a ``RevealQueue`` or a ``RemoteRevealQueue``."""

    def submit(self, job: RevealJob) -> Future[RevealOutcome]: ...

    def close(self) -> None: ...


def settle(
    vault: Vault, jobs: Sequence[RevealJob], throttle: KeyThrottle | None
) -> list[RevealOutcome | OathdeskError]:
    """Run ``jobs`` as one batch: an outcome for each, or, when the transaction itself failed,
    the failure for each (a copy each: the callers raise it in their own threads)."""
    try:
        return list(reveal_batch(vault, jobs, throttle=throttle))
    except OathdeskError as error:
        return [copy.copy(error) for _ in jobs]
    except Exception as error:
        # A bug. Its message might quote input: by type only, here and to the callers.
        log.error("reveal batch failed: %s", type(error).__name__)
        failure = f"unexpected internal error ({type(error).__name__}); report it"
        return [OathdeskError(failure) for _ in jobs]


def _deliver(future: Future[RevealOutcome], outcome: RevealOutcome | OathdeskError) -> None:
    try:
        if isinstance(outcome, OathdeskError):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    except InvalidStateError:
        pass  # the caller gave up (a cancelled future): nobody to tell


_Waiting = tuple[RevealJob, "Future[RevealOutcome]"]


class RevealQueue:
    """A vault writer thread in the server's own process, started at the first reveal."""

    def __init__(
        self, vault: Vault, throttle: KeyThrottle | None = None, *, max_batch: int = MAX_BATCH
    ) -> None:
        self._vault = vault
        self._throttle = throttle
        self._max_batch = max_batch
        self._waiting: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"RevealQueue({self._vault!r})"

    def submit(self, job: RevealJob) -> Future[RevealOutcome]:
        """Queue ``job``; the future holds its outcome once its batch has committed."""
        future: Future[RevealOutcome] = Future()
        with self._lock:
            if self._closed:
                # 503 from the API: the vault cannot be reached through us now.
                raise StorageError("the server is stopping; try again in a moment")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="oathdesk-reveals", daemon=True
                )
                self._thread.start()
            self._waiting.put((job, future))
        return future

    def close(self, timeout: float = 30) -> None:
        """Run what is queued, then stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._waiting.put(None)
            thread.join(timeout)

    def _serve(self) -> None:
        stopping = False
        while not stopping:
            first = self._waiting.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    waiting = self._waiting.get_nowait()
                except queue.Empty:
                    break
                if waiting is None:
                    stopping = True
                    break
                batch.append(waiting)
            # A reveal whose caller gave up before its batch began is not run.
            live = [(job, future) for job, future in batch if future.set_running_or_notify_cancel()]
            if live:
                outcomes = settle(self._vault, [job for job, _ in live], self._throttle)
                for (_, future), outcome in zip(live, outcomes, strict=True):
                    _deliver(future, outcome)


# -- a writer process for a server of several workers -------------------------------------------

WRITER_GONE = "the server's vault writer has stopped, so no code can be given; restart the server"


def serve_workers(
    vault: Vault,
    connections: Sequence[Connection],
    throttle: KeyThrottle | None,
    *,
    max_batch: int = MAX_BATCH,
    parent: int | None = None,
) -> None:
    """The vault writer process: run the reveals the workers send, in batches across all of
    them, until every worker has hung up. A message is ``(ticket, RevealJob)``, answered with
    ``(ticket, RevealOutcome | OathdeskError)``; ``None`` is a worker's goodbye, answered with
    ``None`` once everything it sent before is answered.

    ``parent``: the server's sentinel (``platform_io.parent_sentinel``); once it is ready the
    server is gone (killed outright), and the writer stops after answering what it has, rather
    than serve on for workers nobody will stop."""
    open_connections = list(connections)
    orphaned = False
    while open_connections and not orphaned:
        waiting: list[tuple[Connection, int, RevealJob]] = []
        leaving: list[Connection] = []
        watched: list[Connection | int] = [*open_connections]
        if parent is not None:
            watched.append(parent)
        for connection in wait(watched):
            if connection == parent:
                orphaned = True
                continue
            assert isinstance(connection, Connection)
            try:
                while len(waiting) < max_batch:
                    message = connection.recv()
                    if message is None:
                        leaving.append(connection)
                        break
                    ticket, job = message
                    waiting.append((connection, ticket, job))
                    if not connection.poll():
                        break
            except (EOFError, OSError):
                open_connections.remove(connection)  # the worker is gone
        if waiting:
            outcomes = settle(vault, [job for _, _, job in waiting], throttle)
            for (connection, ticket, _), outcome in zip(waiting, outcomes, strict=True):
                # A worker that is gone: its connection is dropped at the next wait.
                with contextlib.suppress(OSError):
                    connection.send((ticket, outcome))
        for connection in leaving:
            open_connections.remove(connection)
            with contextlib.suppress(OSError):
                connection.send(None)
            connection.close()


class RemoteRevealQueue:
    """A worker's way to the server's vault writer process (``serve_workers``): sends each
    reveal through the pipe, and a thread of its own hands the answers back."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._lock = threading.Lock()
        self._pending: dict[int, Future[RevealOutcome]] = {}
        self._tickets = itertools.count()
        self._reader: threading.Thread | None = None
        self._broken = False

    def __repr__(self) -> str:
        return "RemoteRevealQueue()"

    def submit(self, job: RevealJob) -> Future[RevealOutcome]:
        future: Future[RevealOutcome] = Future()
        # Running from now on: the writer cannot be told to skip it, so it cannot be cancelled.
        future.set_running_or_notify_cancel()
        with self._lock:
            if self._broken:
                raise StorageError(WRITER_GONE)
            if self._reader is None:
                self._reader = threading.Thread(
                    target=self._read, name="oathdesk-reveal-answers", daemon=True
                )
                self._reader.start()
            ticket = next(self._tickets)
            self._pending[ticket] = future
            try:
                self._connection.send((ticket, job))
            except OSError:
                del self._pending[ticket]
                self._broken = True
                raise StorageError(WRITER_GONE) from None
        return future

    def close(self) -> None:
        """Say goodbye: the writer answers what it has of ours, then hangs up on us."""
        with self._lock:
            if self._broken:
                return
            self._broken = True
            try:
                self._connection.send(None)
            except OSError:
                self._connection.close()
                return
            reader = self._reader
        if reader is None:
            self._connection.close()  # nothing sent, nothing to wait for
        else:
            reader.join(30)

    def _read(self) -> None:
        while True:
            try:
                message = self._connection.recv()
            except (EOFError, OSError):
                break
            if message is None:  # the writer's answer to our goodbye
                break
            ticket, outcome = message
            with self._lock:
                future = self._pending.pop(ticket, None)
            if future is not None:
                _deliver(future, outcome)
        with self._lock:
            self._broken = True
            unanswered = list(self._pending.values())
            self._pending.clear()
        self._connection.close()
        for future in unanswered:
            _deliver(future, StorageError(WRITER_GONE))
