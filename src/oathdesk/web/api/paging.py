"""What every list endpoint shares: ``limit`` and ``cursor`` parameters and the page's shape
(``items``, ``next_cursor``), plus a ``Link: <...>; rel="next"`` header (RFC 8288)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Generic, TypeVar

from fastapi import Query, Request, Response
from pydantic import BaseModel, Field

from oathdesk.vault.paging import DEFAULT_LIMIT, MAX_LIMIT, Page

T = TypeVar("T")
Out = TypeVar("Out")

Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"items per page (at most {MAX_LIMIT})")
]
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="`next_cursor` of the previous page; only with the same filter",
    ),
]
LIMIT_DEFAULT = DEFAULT_LIMIT


class PageOut(BaseModel, Generic[Out]):
    items: list[Out]
    next_cursor: str | None = Field(
        description="pass as `cursor` (with the same filter) for the next page; null: the last"
    )


def page_out(
    request: Request, response: Response, page: Page[T], convert: Callable[[T], Out]
) -> PageOut[Out]:
    """The page as the API answers it, with the next page's link in a header too."""
    if page.next_cursor is not None:
        query = request.url.include_query_params(cursor=page.next_cursor).query
        response.headers["Link"] = f'<{request.url.path}?{query}>; rel="next"'
    return PageOut(items=[convert(item) for item in page.items], next_cursor=page.next_cursor)
