"""OData query options the fake understands: ``$filter=prop eq 'v'`` or ``prop in ('a', 'b')``
(at most 15 values, Graph's limit for ``in``), ``$top``, paging."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from tests.graph.fake_graph.errors import GraphError

_EQ = re.compile(r"^\s*([A-Za-z]+(?:/[A-Za-z]+)?)\s+eq\s+'((?:[^']|'')*)'\s*$")
_IN = re.compile(r"^\s*([A-Za-z]+(?:/[A-Za-z]+)?)\s+in\s+\((.*)\)\s*$")
_QUOTED = re.compile(r"\s*'((?:[^']|'')*)'\s*(?:,|$)")
MAX_IN_VALUES = 15
IGNORED_OPTIONS = {"$select", "$count"}  # accepted and ignored: answers carry every property
MAX_TOP = 999


def unsupported(message: str) -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", message)


def parse_filter(expression: str, supported: set[str]) -> tuple[str, str]:
    """``serialNumber eq 'X'`` -> ("serialNumber", "X"); anything else is a 400."""
    match = _EQ.match(expression)
    if not match:
        raise unsupported(f"Invalid filter clause: {expression!r} (the fake supports prop eq 'v').")
    prop, value = match.group(1), match.group(2).replace("''", "'")
    if prop not in supported:
        raise unsupported(f"Unsupported or invalid query filter clause specified for '{prop}'.")
    return prop, value


def parse_in_filter(expression: str, supported: set[str]) -> tuple[str, set[str]] | None:
    """``id in ('a','b')`` -> ("id", {"a", "b"}); None when it is not an ``in`` clause."""
    match = _IN.match(expression)
    if not match:
        return None
    prop, listed = match.group(1), match.group(2)
    values = [v.replace("''", "'") for v in _QUOTED.findall(listed)]
    if not values or _QUOTED.sub("", listed).strip():
        raise unsupported(f"Invalid filter clause: {expression!r}.")
    if len(values) > MAX_IN_VALUES:
        raise unsupported(
            f"Too many values in an 'in' clause: {len(values)} (at most {MAX_IN_VALUES})."
        )
    if prop not in supported:
        raise unsupported(f"Unsupported or invalid query filter clause specified for '{prop}'.")
    return prop, set(values)


def check_options(query: dict[str, str], allowed: set[str]) -> None:
    for name in query:
        if name.startswith("$") and name not in allowed | IGNORED_OPTIONS:
            raise unsupported(f"Query option '{name}' is not supported on this resource.")


def page(
    items: Sequence[Any],
    query: dict[str, str],
    url: str,
    default_size: int,
) -> dict[str, Any]:
    """One page of a collection, with ``@odata.nextLink`` when more remain."""
    size = default_size
    if "$top" in query:
        top = query["$top"]
        if not top.isdigit() or not 1 <= int(top) <= MAX_TOP:
            raise GraphError(400, "BadRequest", f"Invalid $top value {top!r} (1..{MAX_TOP}).")
        size = int(top)
    offset = 0
    if "$skiptoken" in query:
        offset = _decode_skiptoken(query["$skiptoken"])
    body: dict[str, Any] = {"value": list(items[offset : offset + size])}
    if offset + size < len(items):
        following = {k: v for k, v in query.items() if k != "$skiptoken"}
        following["$skiptoken"] = _encode_skiptoken(offset + size)
        body["@odata.nextLink"] = url + "?" + urlencode(following, safe="$'", quote_via=quote)
    return body


def _encode_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(f"fake-offset:{offset}".encode()).decode().rstrip("=")


def _decode_skiptoken(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "fake-offset" or not number.isdigit():
            raise ValueError(text)
        return int(number)
    except ValueError as exc:
        raise GraphError(400, "BadRequest", "Invalid $skiptoken.") from exc


def filtered(
    items: Sequence[Any], query: dict[str, str], fields: dict[str, Callable[[Any], Any]]
) -> list[Any]:
    if "$filter" not in query:
        return list(items)
    listed = parse_in_filter(query["$filter"], set(fields))
    if listed is not None:
        getter_in = fields[listed[0]]
        return [item for item in items if str(getter_in(item)) in listed[1]]
    prop, value = parse_filter(query["$filter"], set(fields))
    getter = fields[prop]
    return [item for item in items if str(getter(item)) == value]
