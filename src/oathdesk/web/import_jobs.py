"""Imports running in the console: small files at once, big ones in a background thread whose
progress the browser polls.

A job keeps the uploaded bytes only until the import is done (in memory, never on disk); what
stays for the result page is the problem report or the summary, which hold no secret. Jobs live
in this process: with several instances behind a proxy, keep an operator on one instance
(sticky sessions) while an import runs, or import big files with `oathdesk import`.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from oathdesk.errors import NotFound, OathdeskError
from oathdesk.services.importer import ImportResult, import_seeds
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.vault import Actor, Vault

KEEP_SECONDS = 3600  # finished jobs' reports are kept this long, then forgotten


@dataclass(frozen=True)
class ImportOptions:
    filename: str
    file_format: str | None
    kind: TokenKind | None
    dry_run: bool
    password: str | None = field(default=None, repr=False)
    psk: bytes | None = field(default=None, repr=False)


@dataclass
class ImportJob:
    id: str
    operator: str
    options: ImportOptions
    started: float
    phase: str = "checking"  # checking | storing | finished | failed
    done: int = 0
    total: int = 0
    result: ImportResult | None = None
    error: str = ""
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.phase in ("finished", "failed")

    def progress(self) -> dict[str, object]:
        return {
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "finished": self.finished,
        }


class ImportJobs:
    """The imports of one console process, by job id."""

    def __init__(self) -> None:
        self._jobs: dict[str, ImportJob] = {}
        self._lock = threading.Lock()

    def start(
        self,
        vault: Vault,
        actor: Actor,
        data: bytes,
        options: ImportOptions,
        *,
        background: bool,
    ) -> ImportJob:
        job = ImportJob(secrets.token_urlsafe(16), actor.name, options, time.time())
        with self._lock:
            self._forget_old()
            self._jobs[job.id] = job
        if background:
            thread = threading.Thread(
                target=_run, args=(job, vault, actor, data), name="oathdesk-import", daemon=True
            )
            thread.start()
        else:
            _run(job, vault, actor, data)
        return job

    def get(self, job_id: str, actor: Actor) -> ImportJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.operator != actor.name:
            raise NotFound("no such import here (finished imports are kept for an hour)")
        return job

    def _forget_old(self) -> None:
        cutoff = time.time() - KEEP_SECONDS
        for job_id in [
            j.id for j in self._jobs.values() if j.finished_at and j.finished_at < cutoff
        ]:
            del self._jobs[job_id]


def _run(job: ImportJob, vault: Vault, actor: Actor, data: bytes) -> None:
    def progress(done: int, total: int) -> None:
        job.phase, job.done, job.total = "storing", done, total

    options = job.options
    try:
        job.result = import_seeds(
            vault,
            actor,
            data,
            file_format=options.file_format,
            kind=options.kind,
            dry_run=options.dry_run,
            source=f"import:{options.filename}",
            password=options.password,
            psk=options.psk,
            progress=progress,
        )
        job.phase = "finished"
    except OathdeskError as refused:
        job.error, job.phase = refused.message, "failed"
    except Exception as unexpected:  # a thread's failure must reach the page
        job.error = f"the import failed unexpectedly ({type(unexpected).__name__}); nothing changed"
        job.phase = "failed"
    finally:
        job.finished_at = time.time()
        if job.result is not None and job.result.imported:
            job.done = job.total = job.result.imported
