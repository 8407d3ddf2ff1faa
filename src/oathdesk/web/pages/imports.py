"""/import (admin): an Entra CSV, vendor PSKC, helpdesk spreadsheet or otpauth list into the
vault, all or nothing, through ``services.importer``.

The upload is read into memory (never spooled to a temporary file: the multipart parser here
keeps up to ``MAX_UPLOAD_BYTES`` in RAM, and bigger uploads are refused). Small files are
imported at once; big ones run in the background while the page polls a JSON progress endpoint.
The result is the full problem report (line, column, what, how to fix) or the summary with the
advice to destroy the original.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from oathdesk.errors import InvalidInput, OathdeskError
from oathdesk.services.importer import DEFAULT_KINDS, FORMATS
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.web.deps import render, verify_csrf
from oathdesk.web.import_jobs import ImportJob, ImportJobs, ImportOptions
from oathdesk.web.pages.helpdesk_common import (
    NO_STORE,
    AdminDep,
    VaultDep,
    kept,
    status_for,
    text_fields,
)

router = APIRouter()

MAX_UPLOAD_BYTES = 64 * 1024 * 1024
BACKGROUND_BYTES = 256 * 1024  # files above this import in the background with progress
# Problems the page lists; the rest are counted by kind. A file of 100,000 rows uploaded twice
# has 100,000 (every serial already in the vault): a table of them all was a 20 MB page.
SHOWN_PROBLEMS = 500
FORMAT_LABELS = {
    "entra-csv": "Entra CSV (upn, serial number, secret key, time interval, ...)",
    "pskc": "Vendor PSKC (XML seed file)",
    "spreadsheet": "Helpdesk spreadsheet (CSV or XLSX)",
    "otpauth": "List of otpauth:// URIs (UPN as the account label)",
    "graph-csv": "Vendor stock, Graph-style CSV (serialNumber, secretKey, ...)",
    "serial-list": "Vendor stock, serial,secret list",
}


class _InMemoryMultiPart(MultiPartParser):
    # Starlette spools file parts above 1 MB to a temporary file; a seed file must not touch
    # the disk unencrypted, so keep everything up to the upload limit in memory.
    spool_max_size = MAX_UPLOAD_BYTES + 1


def get_jobs(request: Request) -> ImportJobs:
    jobs: ImportJobs = request.app.state.import_jobs
    return jobs


async def upload_form(request: Request) -> FormData:
    """The upload form parsed in memory, its CSRF token checked (as ``verify_csrf`` does)."""
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise InvalidInput("send the file with the upload form (the request has no length)")
    if int(length) > MAX_UPLOAD_BYTES:
        raise InvalidInput(
            f"the file is over {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; split it, or use "
            "`oathdesk import FILE` on the server"
        )
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInput("send the file with the upload form (multipart/form-data)")
    parser = _InMemoryMultiPart(
        request.headers, request.stream(), max_files=1, max_fields=20, max_part_size=64 * 1024
    )
    try:
        form = await parser.parse()
    except MultiPartException as broken:
        raise InvalidInput(f"the upload could not be read ({broken.message})") from None
    request._form = form  # verify_csrf reads the parsed form from the request
    await verify_csrf(request)
    return form


def _page(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    error: str = "",
    job: ImportJob | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    response = render(
        request,
        "import.html",
        {
            "formats": FORMAT_LABELS,
            "kinds": [k.value for k in TokenKind],
            "default_kinds": _default_kinds(),
            "values": values or {},
            "error": error,
            "job": job,
            **_problems_shown(job),
        },
        status_code=status_code,
    )
    response.headers.update(NO_STORE)
    return response


def _problems_shown(job: ImportJob | None) -> dict[str, object]:
    """The problems the page lists, and how many more of each kind it leaves out."""
    problems = job.result.problems if job is not None and job.result is not None else []
    hidden = Counter(str(problem.code) for problem in problems[SHOWN_PROBLEMS:])
    return {
        "shown_problems": problems[:SHOWN_PROBLEMS],
        "hidden_problems": sum(hidden.values()),
        "hidden_by_kind": ", ".join(f"{count} {code}" for code, count in hidden.most_common()),
    }


def _default_kinds() -> str:
    """What the import does without a kind, from the table it applies (as `import --help`)."""
    by_kind: dict[str, list[str]] = {}
    for name, kind in DEFAULT_KINDS.items():
        by_kind.setdefault(kind.value, []).append(name)
    return "; ".join(f"{kind} for {', '.join(names)}" for kind, names in by_kind.items())


@router.get("/import", response_class=HTMLResponse)
def import_page(request: Request, actor: AdminDep) -> HTMLResponse:
    return _page(request)


def _options(fields: dict[str, str], filename: str) -> ImportOptions:
    chosen = fields.get("format", "").strip()
    if chosen and chosen not in FORMATS:
        raise InvalidInput(f"unknown format {chosen[:20]!r}; choose one of {', '.join(FORMATS)}")
    kind = fields.get("kind", "").strip()
    if kind and kind not in {k.value for k in TokenKind}:
        raise InvalidInput("the token kind is classic or programmable")
    psk = None
    if fields.get("psk", "").strip():
        try:
            psk = bytes.fromhex(fields["psk"].strip())
        except ValueError:
            raise InvalidInput("the PSKC pre-shared key must be given in hex") from None
    return ImportOptions(
        filename=filename,
        file_format=chosen or None,
        kind=TokenKind(kind) if kind else None,
        dry_run=fields.get("dry_run", "") in ("on", "true", "1"),
        skip_hotp=fields.get("skip_hotp", "") in ("on", "true", "1"),
        password=fields.get("password") or None,
        psk=psk,
    )


@router.post("/import", response_class=HTMLResponse)
async def import_post(
    request: Request,
    vault: VaultDep,
    actor: AdminDep,
    form: Annotated[FormData, Depends(upload_form)],
) -> Response:
    fields = text_fields(form)
    upload = form.get("file")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InvalidInput("choose a file to import")
        filename = upload.filename.replace("\\", "/").rsplit("/", 1)[-1][:120]
        data = await upload.read()
        await form.close()
        if not data:
            raise InvalidInput(f"{filename} is empty")
        options = _options(fields, filename)
    except OathdeskError as refused:
        return _page(
            request, values=kept(fields), error=refused.message, status_code=status_for(refused)
        )
    jobs = get_jobs(request)
    if len(data) > BACKGROUND_BYTES:
        job = jobs.start(vault, actor, data, options, background=True)
        return RedirectResponse(f"/import/jobs/{job.id}", status_code=303)
    job = await run_in_threadpool(jobs.start, vault, actor, data, options, background=False)
    return _result(request, job)


def _result(request: Request, job: ImportJob) -> HTMLResponse:
    status = 200
    if job.phase == "failed":
        status = 400
    elif job.result is not None and job.result.problems:
        status = 422
    return _page(
        request,
        job=job,
        values={"dry_run": "on" if job.options.dry_run else ""},
        status_code=status,
    )


@router.get("/import/jobs/{job_id}", response_class=HTMLResponse)
def import_job_page(request: Request, job_id: str, actor: AdminDep) -> HTMLResponse:
    return _result(request, get_jobs(request).get(job_id, actor))


@router.get("/import/jobs/{job_id}/progress")
def import_job_progress(request: Request, job_id: str, actor: AdminDep) -> JSONResponse:
    job = get_jobs(request).get(job_id, actor)
    return JSONResponse(job.progress(), headers=NO_STORE)
