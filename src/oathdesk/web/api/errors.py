"""JSON errors with stable machine codes: ``{"error": {"code": ..., "message": one line}}``.

The API's routes use ``ApiRoute``, which turns every failure inside them into that shape whatever
the application's own (HTML) error handlers do: ``OathdeskError`` subclasses by their class,
FastAPI's validation errors as ``invalid_input`` (422) with a one-line message that never echoes
the input (it may be a secret), and anything unexpected as ``internal_error`` naming only the
exception's type.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from oathdesk.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    OathdeskError,
    PermissionDenied,
    PolicyRefused,
    RateLimited,
)

log = logging.getLogger("oathdesk.web.api")


class ProblemOut(BaseModel):
    """One problem in an imported file: where, what, and how to fix it (never a secret)."""

    line: int = Field(description="1-based line; 0 for the whole file")
    column: str = Field(description="the column as the file's header names it, or empty")
    code: str = Field(description="stable problem identifier, e.g. secret-not-base32")
    message: str
    hint: str = Field(description="what to do about it")


class ErrorDetail(BaseModel):
    code: str = Field(
        description="stable: unauthorized, forbidden, not_found, invalid_input, invalid_seed, "
        "conflict, policy_refused, rate_limited, import_refused, storage_error, "
        "identity_unreachable, internal_error"
    )
    message: str = Field(description="one line saying what went wrong and what to do")
    problems: list[ProblemOut] | None = Field(
        default=None, description="import_refused only: every problem in the file"
    )


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(OathdeskError):
    """An error raised by the API layer itself, with its own status and code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        problems: list[ProblemOut] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.problems = problems
        self.headers = headers


# Most specific first: PermissionDenied subclasses (ApiKeyRefused) carry their own code.
_STATUS: list[tuple[type[OathdeskError], int, str]] = [
    (RateLimited, 429, "rate_limited"),
    (InvalidInput, 400, "invalid_input"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (PolicyRefused, 403, "policy_refused"),
    (PermissionDenied, 403, "forbidden"),
]


def _status_and_code(error: OathdeskError) -> tuple[int, str]:
    if isinstance(error, ApiError):
        return error.status, error.code
    if error.code == "unauthorized":
        return 401, "unauthorized"
    for kind, status, code in _STATUS:
        if isinstance(error, kind):
            # Subclasses with their own stable code keep it (invalid_seed, sign_in_refused).
            specific = error.code if error.code not in ("error", "permission_denied") else code
            return status, specific
    if error.code in ("storage_error", "constraint_refused"):
        return (409, "conflict") if error.code == "constraint_refused" else (503, error.code)
    if error.code == "identity_unreachable":
        # Entra's keys or configuration could not be read for an access token: try again.
        return 503, error.code
    return 500, error.code if error.code != "error" else "internal_error"


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    problems: list[ProblemOut] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=" ".join(message.split()), problems=None))
    content = body.model_dump(exclude_none=True)
    if problems is not None:
        content["error"]["problems"] = [p.model_dump() for p in problems]
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="oathdesk"'}
    return JSONResponse(content, status_code=status, headers=headers)


def from_oathdesk_error(error: OathdeskError) -> JSONResponse:
    status, code = _status_and_code(error)
    if isinstance(error, ApiError):
        return error_response(
            status, code, error.message, problems=error.problems, headers=error.headers
        )
    if isinstance(error, RateLimited):
        return error_response(
            status, code, error.message, headers={"Retry-After": str(error.retry_after)}
        )
    return error_response(status, code, error.message)


def _validation_message(error: RequestValidationError) -> str:
    """The first problem as one line: where and what, never the value that was sent."""
    problems = error.errors()
    if not problems:
        return "the request is not valid; see /openapi.json for its shape"
    first = problems[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    message = str(first.get("msg", "is not valid"))
    return f"{where}: {message}{more}; see /openapi.json for the request's shape"


class ApiRoute(APIRoute):
    """A route whose every failure is a JSON error (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except OathdeskError as error:
                return from_oathdesk_error(error)
            except RequestValidationError as error:
                return error_response(422, "invalid_input", _validation_message(error))
            except HTTPException as error:
                code = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(
                    error.status_code, "invalid_input"
                )
                return error_response(error.status_code, code, str(error.detail))
            except Exception as error:
                # The message of an unexpected exception might quote input: log its type only.
                log.error("internal error in %s %s: %s", request.method, self.path, type(error))
                return error_response(
                    500,
                    "internal_error",
                    f"unexpected internal error ({type(error).__name__}); report it",
                )

        return handle


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer with."""
    described = {
        400: "invalid input (a value the vault refuses)",
        401: "no valid API key",
        403: "the operator's role or a policy refuses it",
        404: "not found",
        409: "conflicts with the current state",
        422: "the request does not match its schema",
        429: "rate limited",
    }
    chosen = (401, 422, *statuses)
    return {
        status: {"model": ErrorBody, "description": described[status]}
        for status in sorted(set(chosen))
    }
