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

from oathdesk.errors import InvalidInput
from oathdesk.formats.problems import Problem
from oathdesk.services.importer import FORMATS, import_seeds
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.roles import Permission, require
from oathdesk.web.api.auth import ApiActor, VaultDep
from oathdesk.web.api.errors import ApiError, ApiRoute, ProblemOut, responses
from oathdesk.web.api.multipart import parse_multipart

router = APIRouter(tags=["import and export"], route_class=ApiRoute)

MAX_BYTES = 64 * 1024 * 1024
FORMAT_NAMES = list(FORMATS)


class ImportOut(BaseModel):
    format: str
    dry_run: bool
    imported: int
    placeholder_serials: int
    problems: list[ProblemOut]
    in_stock: int = 0  # imported tokens without a user
    skipped: list[str] = []  # serials of PSKC HOTP keys left out (skip_hotp)


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
    """The file's bytes, its name, and a PSKC password / pre-shared key if given; all in
    memory (a seed file is never written to disk here)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BYTES:
        raise ApiError(413, "invalid_input", f"the file is over {MAX_BYTES // 2**20} MiB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BYTES:
            raise ApiError(413, "invalid_input", f"the file is over {MAX_BYTES // 2**20} MiB")
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return bytes(body), "upload", None, None
    parts = parse_multipart(bytes(body), content_type)
    upload = parts.get("file")
    if upload is None:
        raise InvalidInput("send the file in the multipart field 'file'")

    def text(name: str) -> str | None:
        part = parts.get(name)
        return part.data.decode("utf-8", "replace") if part and part.data else None

    return bytes(upload.data), upload.filename or "upload", text("password"), text("psk_hex")


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
    skip_hotp: Annotated[
        bool, Query(description="PSKC: import the TOTP keys, list the HOTP ones as skipped")
    ] = False,
    x_pskc_password: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> ImportOut:
    """Import an Entra CSV, vendor PSKC, helpdesk spreadsheet (CSV/XLSX) or otpauth list (admin).

    The file is parsed whole; problems (422 ``import_refused``) list every one at once."""
    require(actor, Permission.MANAGE_TOKENS)
    if file_format is not None and file_format not in FORMATS:
        raise InvalidInput(f"unknown format; use one of {', '.join(FORMATS)}")
    data, name, password, psk_hex = await _read_upload(request)
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
        skip_hotp=skip_hotp,
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
        in_stock=result.imported - result.assigned,
        skipped=[key.serial for key in result.skipped],
    )
