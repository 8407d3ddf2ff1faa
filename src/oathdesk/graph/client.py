"""HTTP to Microsoft Graph: bearer tokens, throttling (429/503 with Retry-After, exponential
backoff with jitter and a cap), paging by ``@odata.nextLink``, errors as one-line messages.

Every call is reported to ``observer`` (operation, target, status, result) so that the service
can audit it; bodies, tokens and query values that may be secret are never part of that report.
Only reads are retried after a dropped connection: a write that may have happened raises
``GraphConnectionLost`` and the caller checks Graph before redoing it.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from oathdesk.graph.auth import TokenSource
from oathdesk.graph.errors import GraphConnectionLost, GraphError, graph_error
from oathdesk.graph.operations import Operation
from oathdesk.graph.throttle import RETRYABLE_STATUSES, RetryPolicy

if TYPE_CHECKING:
    import httpx

# httpx is imported when a client is made, not with this module: importing httpx also loads its
# command line's click and rich, which services (and the web console) must not carry.
TIMEOUT_SECONDS, CONNECT_TIMEOUT_SECONDS = 30.0, 10.0
# Requests in one JSON batch (POST /$batch), as Graph documents.
BATCH_LIMIT = 20


class GraphCall(NamedTuple):
    """One HTTP exchange, as audited: never a body, a token or a secret."""

    operation: str
    method: str
    target: str
    status: int | None
    result: str  # ok | throttled | error | connection lost


class GraphResponse(NamedTuple):
    status: int
    body: Any  # parsed JSON, or None (204, empty)


class GraphClient:
    """Calls Graph at ``token_source.settings.graph_base`` on behalf of the signed-in app."""

    def __init__(
        self,
        token_source: TokenSource,
        *,
        retry: RetryPolicy | None = None,
        observer: Callable[[GraphCall], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.tokens = token_source
        self.settings = token_source.settings
        self.retry = retry or RetryPolicy()
        self._observer = observer
        self._sleep = sleep
        import httpx

        self._transport_error = httpx.TransportError
        self._connect_error = httpx.ConnectError
        verify: ssl.SSLContext | bool = True
        if self.settings.ca_bundle:
            try:
                verify = ssl.create_default_context(cafile=self.settings.ca_bundle)
            except (OSError, ssl.SSLError):
                raise GraphError(
                    f"cannot read the CA bundle {self.settings.ca_bundle}; run `oathdesk entra "
                    "login` again with --ca-bundle pointing at a PEM file"
                ) from None
        self._http = httpx.Client(
            verify=verify,
            timeout=httpx.Timeout(TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS),
            transport=transport,
        )
        self.waited = 0.0  # seconds spent waiting on throttling, for the summary

    def __repr__(self) -> str:
        return f"GraphClient({self.settings.graph_base!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------------------

    def call(
        self,
        operation: Operation,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        target: str = "",
        secrets: Sequence[str] = (),
        accept: Sequence[int] = (),
        reads_only: bool = False,
    ) -> GraphResponse:
        """One Graph request, retried while throttled; GraphError unless 2xx or in ``accept``.
        ``reads_only``: a POST that changes nothing (a ``$batch`` of GETs) is retried after a
        dropped connection or a gateway timeout as a GET is."""
        url = path if path.startswith("https://") else f"{self.settings.graph_base}{path}"
        reading = method == "GET" or reads_only
        fresh_token = False
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    headers={"Authorization": f"Bearer {self.tokens.token(fresh=fresh_token)}"},
                )
            except self._transport_error as error:
                self._report(operation, method, target, None, "connection lost")
                if reading and attempt + 1 < self.retry.attempts:
                    self._wait(self.retry.delay(attempt, None))
                    attempt += 1
                    continue
                raise self._lost(operation, "GET" if reading else method, target, error) from None
            status = response.status_code
            if status == 504 and not reading:
                # A gateway timeout on a write: it may have been carried out. Say so rather
                # than send it again (an activation sent twice fails the second time).
                self._report(operation, method, target, status, "outcome unknown")
                raise GraphConnectionLost(
                    f"Graph timed out (504) while trying to {operation.what} {target}; it may "
                    "or may not have happened: run the command again, it checks Entra before "
                    "redoing anything"
                )
            if status in RETRYABLE_STATUSES and attempt + 1 < self.retry.attempts:
                self._report(operation, method, target, status, "throttled")
                self._wait(self.retry.delay(attempt, response.headers.get("Retry-After")))
                attempt += 1
                continue
            if status == 401 and not fresh_token:
                # An access token can be revoked or expire mid-run: one fresh token, one retry.
                self._report(operation, method, target, status, "token refused")
                fresh_token = True
                continue
            body = _parse(response)
            if 200 <= status < 300 or status in accept:
                self._report(operation, method, target, status, "ok")
                return GraphResponse(status, body)
            self._report(operation, method, target, status, "error")
            raise graph_error(
                operation,
                status,
                body,
                app_only=self.settings.auth.app_only,
                target=target,
                secrets=secrets,
            )

    def pages(
        self,
        operation: Operation,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        target: str = "",
    ) -> Iterator[dict[str, Any]]:
        """Every item of a collection, following ``@odata.nextLink`` page after page."""
        next_url: str | None = path
        next_params = params
        while next_url:
            body = self.call(operation, "GET", next_url, params=next_params, target=target).body
            if not isinstance(body, dict):
                raise GraphError(f"Graph answered {operation.what} with something not JSON")
            for item in body.get("value") or []:
                if isinstance(item, dict):
                    yield item
            link = body.get("@odata.nextLink")
            if link is not None and not _same_origin(str(link), self.settings.graph_base):
                raise GraphError(
                    f"Graph's next page link for {operation.what} points at another host; refusing"
                )
            next_url = str(link) if link else None
            next_params = None  # the next link carries the query already

    def batch_get(
        self, operation: Operation, urls: Sequence[str], *, target: str = ""
    ) -> list[list[dict[str, Any]]]:
        """GET each of ``urls`` (relative to the Graph version, at most ``BATCH_LIMIT``) in one
        JSON batch (``POST /$batch``); per url, in order, every item of its collection (a next
        page is followed with plain GETs). A request Graph throttles inside the batch (429 or
        503 with its own Retry-After) is sent again in a batch of the throttled ones, within the
        retry policy's attempts; any other refusal is a GraphError, as the call alone would be."""
        if not urls:
            return []
        if len(urls) > BATCH_LIMIT:
            raise ValueError(f"a JSON batch holds at most {BATCH_LIMIT} requests")
        bodies: dict[str, Any] = {}
        waiting = {str(index): url for index, url in enumerate(urls, 1)}
        attempt = 0
        while waiting:
            requests = [{"id": i, "method": "GET", "url": url} for i, url in waiting.items()]
            body = self.call(
                operation,
                "POST",
                "/$batch",
                json={"requests": requests},
                target=target,
                reads_only=True,
            ).body
            answers = body.get("responses") if isinstance(body, dict) else None
            if not isinstance(answers, list):
                raise GraphError(f"Graph answered {operation.what} with something not JSON")
            delay: float | None = None
            for answer in answers:
                if not isinstance(answer, dict) or str(answer.get("id")) not in waiting:
                    continue
                status, inner = int(answer.get("status") or 0), answer.get("body")
                headers = answer.get("headers") if isinstance(answer.get("headers"), dict) else {}
                if 200 <= status < 300:
                    bodies[str(answer["id"])] = inner
                    del waiting[str(answer["id"])]
                elif status in RETRYABLE_STATUSES and attempt + 1 < self.retry.attempts:
                    self._report(operation, "GET", target, status, "throttled")
                    wait = self.retry.delay(attempt, (headers or {}).get("Retry-After"))
                    delay = wait if delay is None else max(delay, wait)
                else:
                    self._report(operation, "GET", target, status, "error")
                    raise graph_error(
                        operation,
                        status,
                        inner,
                        app_only=self.settings.auth.app_only,
                        target=target,
                    )
            if waiting and delay is None:
                raise GraphError(f"Graph's batch answer to {operation.what} left requests out")
            if waiting:
                self._wait(delay or 0.0)
                attempt += 1
        return [
            self._rest_of(operation, bodies[str(index)], target)
            for index in range(1, len(urls) + 1)
        ]

    def _rest_of(self, operation: Operation, body: Any, target: str) -> list[dict[str, Any]]:
        """A collection's items from its first page ``body``, with the pages after it."""
        if not isinstance(body, dict):
            raise GraphError(f"Graph answered {operation.what} with something not JSON")
        items = [item for item in body.get("value") or [] if isinstance(item, dict)]
        link = body.get("@odata.nextLink")
        if link:
            if not _same_origin(str(link), self.settings.graph_base):
                raise GraphError(
                    f"Graph's next page link for {operation.what} points at another host; refusing"
                )
            items += list(self.pages(operation, str(link), target=target))
        return items

    # -- helpers -------------------------------------------------------------------------------

    def _wait(self, seconds: float) -> None:
        self.waited += seconds
        self._sleep(seconds)

    def _report(
        self, operation: Operation, method: str, target: str, status: int | None, result: str
    ) -> None:
        if self._observer is not None:
            self._observer(GraphCall(operation.name, method, target, status, result))

    def _lost(
        self, operation: Operation, method: str, target: str, error: Exception
    ) -> GraphConnectionLost:
        about = f" {target}" if target else ""
        if isinstance(error, self._connect_error) and "CERTIFICATE" in str(error).upper():
            return GraphConnectionLost(
                f"TLS verification failed for {self.settings.graph_base}; check --ca-bundle"
            )
        if method == "GET":
            return GraphConnectionLost(
                f"cannot reach Graph at {self.settings.graph_base} to {operation.what}{about} "
                f"({type(error).__name__}); check --graph-url and the network"
            )
        return GraphConnectionLost(
            f"the connection to Graph dropped while trying to {operation.what}{about} "
            f"({type(error).__name__}); it may or may not have happened: run the command "
            "again, it checks Entra before redoing anything"
        )


def _parse(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _same_origin(link: str, base: str) -> bool:
    from urllib.parse import urlsplit

    left, right = urlsplit(link), urlsplit(base)
    return (left.scheme, left.hostname, left.port) == (right.scheme, right.hostname, right.port)
