"""Imports running in the console: small files at once, big ones in a background thread whose
progress the browser polls.

A job keeps the uploaded bytes only until the import is done (in memory of the process running
it, never on disk). Its state (phase, progress, then the problem report or the summary, none of
which holds a secret) is a small JSON file in a private directory of the server, so that every
worker process of `serve --workers N` can answer the polls: the kernel hands each connection to
any of them. Several servers behind a proxy have a directory each: keep an operator on one server
(sticky sessions) while an import runs, or import big files with `oathdesk import`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from oathdesk.errors import NotFound, OathdeskError
from oathdesk.formats.problems import Problem
from oathdesk.services.importer import ImportResult, SkippedKey, import_seeds
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.vault import Actor, Vault

log = logging.getLogger("oathdesk.web.imports")

KEEP_SECONDS = 3600  # finished jobs' reports are kept this long, then forgotten
SAVE_EVERY_SECONDS = 0.25  # progress is written at most this often (a phase change at once)
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")  # secrets.token_urlsafe(16)
NO_SUCH_JOB = "no such import here (finished imports are kept for an hour)"


@dataclass(frozen=True)
class ImportOptions:
    filename: str
    file_format: str | None
    kind: TokenKind | None
    dry_run: bool
    skip_hotp: bool = False  # PSKC: leave HOTP keys out (listed in the result) instead of refusing
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
    """The console's imports, by job id, as files in ``directory`` (one per server, shared by
    its worker processes, readable by this user only)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory = directory

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
        self._forget_old()
        self._save(job)
        if background:
            thread = threading.Thread(
                target=self._run,
                args=(job, vault, actor, data),
                name="oathdesk-import",
                daemon=True,
            )
            thread.start()
        else:
            self._run(job, vault, actor, data)
        return job

    def get(self, job_id: str, actor: Actor) -> ImportJob:
        if not _JOB_ID.match(job_id):
            raise NotFound(NO_SUCH_JOB)
        try:
            job = _job_from_json(json.loads((self.directory / f"{job_id}.json").read_text()))
        except FileNotFoundError:
            raise NotFound(NO_SUCH_JOB) from None
        if job.operator != actor.name:
            raise NotFound(NO_SUCH_JOB)
        return job

    def _save(self, job: ImportJob) -> None:
        """Replace the job's file at once: a poll reads the old state or the new, never half."""
        path = self.directory / f"{job.id}.json"
        partial = path.with_name(f".{job.id}.{threading.get_ident()}.tmp")
        partial.write_text(json.dumps(_job_as_json(job)))
        os.replace(partial, path)

    def _forget_old(self) -> None:
        cutoff = time.time() - KEEP_SECONDS
        for path in self.directory.glob("*.json"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except FileNotFoundError:
                pass  # another worker forgot it first

    def _run(self, job: ImportJob, vault: Vault, actor: Actor, data: bytes) -> None:
        saved = time.monotonic()

        def progress(done: int, total: int) -> None:
            nonlocal saved
            changed = job.phase != "storing"
            job.phase, job.done, job.total = "storing", done, total
            if changed or time.monotonic() - saved >= SAVE_EVERY_SECONDS:
                self._save(job)
                saved = time.monotonic()

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
                skip_hotp=options.skip_hotp,
            )
            job.phase = "finished"
        except OathdeskError as refused:
            job.error, job.phase = refused.message, "failed"
        except Exception as unexpected:  # a thread's failure must reach the page
            job.error = (
                f"the import failed unexpectedly ({type(unexpected).__name__}); nothing changed"
            )
            # ... and the server's log: a bug to report. The type only: the message may quote
            # the file.
            log.error("console import %s failed: unexpected %s", job.id, type(unexpected).__name__)
            job.phase = "failed"
        finally:
            job.finished_at = time.time()
            if job.result is not None and job.result.imported:
                job.done = job.total = job.result.imported
            self._save(job)


# -- the job's file: everything but the uploaded bytes and the file's password or key ----------


def _job_as_json(job: ImportJob) -> dict[str, Any]:
    options = job.options
    return {
        "id": job.id,
        "operator": job.operator,
        "options": {
            "filename": options.filename,
            "file_format": options.file_format,
            "kind": options.kind.value if options.kind else None,
            "dry_run": options.dry_run,
            "skip_hotp": options.skip_hotp,
        },
        "started": job.started,
        "phase": job.phase,
        "done": job.done,
        "total": job.total,
        "result": asdict(job.result) if job.result is not None else None,
        "error": job.error,
        "finished_at": job.finished_at,
    }


def _job_from_json(data: dict[str, Any]) -> ImportJob:
    options = data["options"]
    result = data["result"]
    return ImportJob(
        id=data["id"],
        operator=data["operator"],
        options=ImportOptions(
            filename=options["filename"],
            file_format=options["file_format"],
            kind=TokenKind(options["kind"]) if options["kind"] else None,
            dry_run=options["dry_run"],
            skip_hotp=options.get("skip_hotp", False),
        ),
        started=data["started"],
        phase=data["phase"],
        done=data["done"],
        total=data["total"],
        result=None
        if result is None
        else ImportResult(
            **{
                **result,
                "problems": [Problem(**p) for p in result["problems"]],
                "warnings": [Problem(**p) for p in result["warnings"]],
                "skipped": [SkippedKey(**k) for k in result.get("skipped", [])],
            }
        ),
        error=data["error"],
        finished_at=data["finished_at"],
    )
