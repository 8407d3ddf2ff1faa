"""``/import``: seeds into the vault, all or nothing, through the CLI's import service.

The file comes as multipart/form-data (field ``file``) or as the raw request body; ``dry_run``
checks without writing. A file with problems imports nothing and answers 422 ``import_refused``
with every problem as JSON (line, column, code, message, hint).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from oathdesk.errors import InvalidInput
from oathdesk.formats.problems import Problem
from oathdesk.services.importer import FORMATS, import_seeds
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.roles import Permission
from oathdesk.web.api.auth import ApiActor, VaultDep, may
from oathdesk.web.api.errors import ApiError, ApiRoute, ProblemOut, responses

router = APIRouter(tags=["import and export"], route_class=ApiRoute)

MAX_BYTES = 64 * 1024 * 1024
FORMAT_NAMES = list(FORMATS)


class ImportOut(BaseModel):
    format: str
    dry_run: bool
    imported: int
    placeholder_serials: int
    problems: list[ProblemOut]


def problem_out(problem: Problem) -> ProblemOut:
    return ProblemOut(
        line=problem.line,
        column=problem.column,
        code=str(problem.code),
        message=problem.message,
        hint=problem.fix,
    )


_BODY_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "password": {"type": "string", "format": "password", "writeOnly": True},
                        "psk_hex": {"type": "string", "format": "password", "writeOnly": True},
                    },
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


async def _read_upload(request: Request) -> tuple[bytes, str, str | None, str | None]:
    """The file's bytes, its name, and a PSKC password / pre-shared key if given."""
    content_type = request.headers.get("content-type", "")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BYTES:
        raise ApiError(413, "invalid_input", f"the file is over {MAX_BYTES // 2**20} MiB")
    if content_type.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=1, max_fields=10)
        except Exception:
            raise InvalidInput(
                "the multipart body cannot be read; send the file in the field 'file'"
            ) from None
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("send the file in the multipart field 'file'")
        data = await upload.read(MAX_BYTES + 1)
        password = form.get("password")
        psk = form.get("psk_hex")
        return (
            data,
            upload.filename or "upload",
            password if isinstance(password, str) and password else None,
            psk if isinstance(psk, str) and psk else None,
        )
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BYTES:
            break
    return data, "upload", None, None


@router.post(
    "/import",
    response_model=ImportOut,
    responses={**responses(400, 403), 413: {"description": "too big"}},
    openapi_extra=_BODY_SCHEMA,
)
async def import_file(
    request: Request,
    actor: ApiActor,
    vault: VaultDep,
    file_format: Annotated[
        str | None, Query(alias="format", description=f"one of {', '.join(FORMATS)}")
    ] = None,
    kind: Annotated[TokenKind | None, Query()] = None,
    dry_run: Annotated[bool, Query()] = False,
    x_pskc_password: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> ImportOut:
    """Import an Entra CSV, vendor PSKC, helpdesk spreadsheet (CSV/XLSX) or otpauth list (admin).

    The file is parsed whole; problems (422 ``import_refused``) list every one at once."""
    may(actor, Permission.MANAGE_TOKENS)
    if file_format is not None and file_format not in FORMATS:
        raise InvalidInput(f"unknown format; use one of {', '.join(FORMATS)}")
    data, name, password, psk_hex = await _read_upload(request)
    if len(data) > MAX_BYTES:
        raise ApiError(413, "invalid_input", f"the file is over {MAX_BYTES // 2**20} MiB")
    if not data:
        raise InvalidInput("the file is empty; send it as the body or the multipart field 'file'")
    psk = None
    if psk_hex is not None:
        try:
            psk = bytes.fromhex(psk_hex.strip())
        except ValueError:
            raise InvalidInput("psk_hex must be the pre-shared key in hex") from None
    result = await run_in_threadpool(
        import_seeds,
        vault,
        actor,
        data,
        file_format=file_format,
        kind=kind,
        dry_run=dry_run,
        source=f"api import:{name[:64]}",
        password=password or x_pskc_password,
        psk=psk,
    )
    problems = [problem_out(p) for p in result.problems]
    if problems:
        raise ApiError(
            422,
            "import_refused",
            f"{len(problems)} problem(s) in the file ({result.format}); nothing was imported: "
            "fix them and send it again",
            problems=problems,
        )
    return ImportOut(
        format=result.format,
        dry_run=result.dry_run,
        imported=result.imported,
        placeholder_serials=result.placeholder_serials,
        problems=[],
    )
