"""Error answers in the two shapes the fake speaks: Graph's OData error and OAuth 2.0's."""

from __future__ import annotations

from typing import Any


class GraphError(Exception):
    """A Graph answer with ``{"error": {"code", "message", "innerError": {...}}}``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class OAuthError(Exception):
    """An identity-platform answer with ``{"error", "error_description", "error_codes"}``."""

    def __init__(self, status: int, error: str, aadsts: int, description: str) -> None:
        super().__init__(f"{status} {error}: AADSTS{aadsts}")
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description

    def body(self, trace_id: str, timestamp: str) -> dict[str, Any]:
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.aadsts}: {self.description} "
            f"Trace ID: {trace_id} Timestamp: {timestamp}",
            "error_codes": [self.aadsts],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": trace_id,
        }


def retry_after(seconds: float) -> str:
    """A Retry-After value: whole seconds as Graph sends them; fractions kept for fast tests."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def bad_request(message: str, code: str = "invalidRequest") -> GraphError:
    return GraphError(400, code, message)


def not_found(what: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{what}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def conflict(message: str) -> GraphError:
    return GraphError(409, "conflict", message)
