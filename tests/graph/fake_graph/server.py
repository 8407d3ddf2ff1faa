"""The HTTPS front of the fake: routing, the request log, throttling and fault injection.

A stdlib ``ThreadingHTTPServer`` rather than uvicorn: it starts in milliseconds, and it can drop a
connection without answering (``fail_next(drop_connection=True)``), which an ASGI app cannot.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import socket
import ssl
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.graph.fake_graph.errors import GraphError, OAuthError, retry_after
from tests.graph.fake_graph.graph_api import Call, GraphApi
from tests.graph.fake_graph.identity import Identity
from tests.graph.fake_graph.state import Tenant

GRAPH_CONTENT_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
    "charset=utf-8"
)
SECRET_FIELDS = {
    "secretKey",
    "verificationCode",
    "client_secret",
    "client_assertion",
    "refresh_token",
    "device_code",
    "code",
    "access_token",
    "password",
}
REDACTED = "<redacted>"
BATCH_LIMIT = 20  # requests in one JSON batch, as Graph documents


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    drop: bool = False  # close the connection without answering
    delay: float = 0.0  # seconds to wait before answering (outside the tenant lock)


@dataclass
class Fault:
    """One entry of throttle()/fail_next(): the next ``remaining`` matching requests fail."""

    remaining: int
    status: int
    retry_after: float | None = None  # seconds for the Retry-After header; None: no header
    throttle: bool = False  # a throttle() entry (checked after the fail_next() ones)
    drop: bool = False
    apply: bool = False  # carry the request out first, then fail (the answer is lost)
    delay: float = 0.0  # delay_next(): answer normally, but this many seconds late
    path_contains: str = ""
    method: str = ""  # only requests of this HTTP method ("": any)

    def matches(self, method: str, path_and_query: str) -> bool:
        if self.method and method != self.method:
            return False
        if self.path_contains:
            return self.path_contains in path_and_query
        # By default only Graph calls: failing the token endpoint is asked for explicitly.
        return path_and_query.startswith(("/beta/", "/v1.0/"))


@dataclass
class LoggedRequest:
    method: str
    target: str  # path + query, as received
    status: int  # 0 when the connection was dropped without an answer
    body: Any  # parsed JSON or form, secrets replaced by "<redacted>"


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if k in SECRET_FIELDS else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    all_headers = {"Content-Type": GRAPH_CONTENT_TYPE, **(headers or {})}
    if body is None:
        all_headers.pop("Content-Type")
        return Response(status, all_headers)
    return Response(status, all_headers, json.dumps(body).encode())


def graph_error(exc: GraphError, request_id: str, client_request_id: str) -> Response:
    body = {
        "error": {
            "code": exc.code,
            "message": exc.message,
            "innerError": {
                "date": _now_text(),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }
    headers = dict(exc.headers)
    if exc.status == 401:
        headers["WWW-Authenticate"] = (
            'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/'
            'oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'
        )
    return _json(exc.status, body, headers)


@dataclass
class Router:
    tenant: Tenant
    identity: Identity
    api: GraphApi
    faults: list[Fault] = field(default_factory=list)
    log: list[LoggedRequest] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)

    def dispatch(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Response:
        with self.tenant.lock:
            fault = self._take(method, target, throttle=False)
            if fault is not None and fault.delay:
                response = self._throttled(method, target, headers) or self._answer(
                    method, target, headers, raw
                )
                response.delay = fault.delay
            elif fault is not None and not fault.apply:
                response = self._fault_response(fault, target, headers)
            else:
                response = self._throttled(method, target, headers) or self._answer(
                    method, target, headers, raw
                )
                if fault is not None:
                    response = self._fault_response(fault, target, headers)
            self.log.append(
                LoggedRequest(method, target, 0 if response.drop else response.status, _body(raw))
            )
            return response

    def _take(self, method: str, target: str, *, throttle: bool) -> Fault | None:
        for fault in self.faults:
            if fault.throttle == throttle and fault.remaining > 0 and fault.matches(method, target):
                fault.remaining -= 1
                return fault
        return None

    def _throttled(self, method: str, target: str, headers: dict[str, str]) -> Response | None:
        fault = self._take(method, target, throttle=True)
        return None if fault is None else self._fault_response(fault, target, headers)

    def _fault_response(self, fault: Fault, target: str, headers: dict[str, str]) -> Response:
        if fault.drop:
            return Response(0, drop=True)
        extra = {}
        if fault.retry_after is not None:
            extra["Retry-After"] = retry_after(fault.retry_after)
        if not target.startswith(("/beta/", "/v1.0/")):  # the identity platform's shape
            error = "temporarily_unavailable" if fault.status in (429, 503) else "server_error"
            oauth = OAuthError(fault.status, error, 90033 if fault.status == 503 else 50196, "")
            oauth.description = "Injected by the test: the identity platform is unavailable."
            body = oauth.body(str(uuid.uuid4()), _now_text().replace("T", " ") + "Z")
            return _plain(fault.status, body, extra)
        code = {429: "TooManyRequests", 503: "serviceNotAvailable"}.get(
            fault.status, "generalException"
        )
        message = {
            429: "Too many requests, please retry after the time in Retry-After.",
            503: "The service is temporarily unavailable.",
        }.get(fault.status, "An internal server error occurred (injected by the test).")
        request_id = str(uuid.uuid4())
        return graph_error(
            GraphError(fault.status, code, message, extra),
            request_id,
            headers.get("client-request-id", request_id),
        )

    # -- normal answers ---------------------------------------------------------------------
    def _answer(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Response:
        parts = urlsplit(target)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        request_id = str(uuid.uuid4())
        client_request_id = headers.get("client-request-id", request_id)
        try:
            if segments[:1] in (["beta"], ["v1.0"]) and segments[1:] == ["$batch"]:
                response = self._batch(method, segments[0], headers, raw)
            elif segments[:1] in (["beta"], ["v1.0"]):
                response = self._graph(method, segments, query, headers, raw, parts.path)
            else:
                response = self._identity(method, segments, query, headers, raw)
        except GraphError as exc:
            return graph_error(exc, request_id, client_request_id)
        except OAuthError as exc:
            body = exc.body(request_id, _now_text().replace("T", " ") + "Z")
            return Response(
                exc.status,
                {"Content-Type": "application/json; charset=utf-8"},
                json.dumps(body).encode(),
            )
        except Exception:  # a bug in the fake: answer 500 and let the fixture fail the test
            self.internal_errors.append(traceback.format_exc())
            return graph_error(
                GraphError(500, "generalException", "The fake Graph failed; see the test log."),
                request_id,
                client_request_id,
            )
        response.headers.setdefault("request-id", request_id)
        response.headers.setdefault("client-request-id", client_request_id)
        return response

    def _graph(
        self,
        method: str,
        segments: list[str],
        query: dict[str, str],
        headers: dict[str, str],
        raw: bytes,
        path: str,
    ) -> Response:
        claims = self.identity.verify_access_token(headers.get("authorization"))
        body: Any = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from exc
        call = Call(
            method=method,
            version=segments[0],
            segments=segments[1:],
            query=query,
            body=body,
            claims=claims,
            url=self.identity.origin + path,
        )
        status, answer, extra = self.api.handle(call)
        return _json(status, answer, extra)

    def _batch(self, method: str, version: str, headers: dict[str, str], raw: bytes) -> Response:
        """JSON batching (learn.microsoft.com/graph/json-batching): ``POST /$batch`` with
        ``{"requests": [{"id", "method", "url", "headers"?, "body"?}]}``, at most 20, ids unique,
        each url relative to the version. Answers 200 with ``{"responses": [{"id", "status",
        "headers", "body"}]}``, one per request, each request judged, throttled and failed on its
        own (``throttle``/``fail_next`` match its own path) as Graph evaluates every request of a
        batch against its limits. The batch as a whole fails (400) only when it cannot be read.
        The fake's choices where the reference leaves room: requests run in the order given and
        are answered in that order; ``dependsOn`` is refused (oathdesk does not use it)."""
        if method != "POST":
            raise GraphError(
                405, "Request_BadRequest", f"The HTTP method '{method}' is not allowed."
            )
        self.identity.verify_access_token(headers.get("authorization"))
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError as exc:
            raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from exc
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise GraphError(400, "BadRequest", "Invalid batch payload format.")
        if len(requests) > BATCH_LIMIT:
            raise GraphError(
                400, "BadRequest", f"Limit of {BATCH_LIMIT} requests in a batch exceeded."
            )
        ids = [r.get("id") if isinstance(r, dict) else None for r in requests]
        if any(not isinstance(i, str) or not i for i in ids) or len(set(ids)) != len(ids):
            raise GraphError(400, "BadRequest", "Batch request ids must be unique strings.")
        for request in requests:
            if not isinstance(request.get("method"), str) or not isinstance(
                request.get("url"), str
            ):
                raise GraphError(400, "BadRequest", "Each request needs a method and a url.")
            if "dependsOn" in request:
                raise GraphError(400, "BadRequest", "dependsOn is not supported by the fake.")
        return _json(
            200, {"responses": [self._one_of_batch(version, r, headers) for r in requests]}
        )

    def _one_of_batch(
        self, version: str, request: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any]:
        method = request["method"].upper()
        url = request["url"] if request["url"].startswith("/") else "/" + request["url"]
        target = f"/{version}{url}"
        inner = {**headers, **{k.lower(): v for k, v in (request.get("headers") or {}).items()}}
        raw = b"" if request.get("body") is None else json.dumps(request["body"]).encode()
        if urlsplit(url).path.rstrip("/") == "/$batch":
            answer = graph_error(
                GraphError(400, "BadRequest", "A batch cannot hold a batch."), "", ""
            )
        else:
            fault = self._take(method, target, throttle=False) or self._take(
                method, target, throttle=True
            )
            if fault is not None:
                answer = self._fault_response(fault, target, inner)
            else:
                answer = self._answer(method, target, inner, raw)
        return {
            "id": request["id"],
            "status": answer.status,
            "headers": {
                k: v for k, v in answer.headers.items() if k in ("Content-Type", "Retry-After")
            },
            "body": json.loads(answer.body) if answer.body else None,
        }

    def _identity(
        self,
        method: str,
        segments: list[str],
        query: dict[str, str],
        headers: dict[str, str],
        raw: bytes,
    ) -> Response:
        identity = self.identity
        match method, segments:
            case "GET", ["common", "discovery", "instance"]:
                return _plain(
                    200, identity.instance_discovery(query.get("authorization_endpoint", ""))
                )
            case "GET", [tenant, "v2.0", ".well-known", "openid-configuration"] | [
                tenant,
                ".well-known",
                "openid-configuration",
            ]:
                self._known(tenant)
                return _plain(200, identity.openid_configuration(tenant))
            case "GET", [tenant, "discovery", "v2.0", "keys"]:
                self._known(tenant)
                return _plain(200, identity.jwks())
            case "POST", [tenant, "oauth2", "v2.0", "token"]:
                self._known(tenant)
                form = _form(raw, headers)
                endpoint = f"{identity.origin}/{tenant}/oauth2/v2.0/token"
                return _plain(200, identity.token(form, endpoint), {"Cache-Control": "no-store"})
            case "POST", [tenant, "oauth2", "v2.0", "devicecode"]:
                self._known(tenant)
                return _plain(200, identity.start_device_flow(_form(raw, headers)))
        return _plain(404, {"error": "not_found", "error_description": "No such endpoint."})

    def _known(self, tenant: str) -> None:
        if not self.identity.known_tenant(tenant):
            raise OAuthError(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID.",
            )


def _plain(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status,
        {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        json.dumps(body).encode(),
    )


def _form(raw: bytes, headers: dict[str, str]) -> dict[str, str]:
    form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    basic = headers.get("authorization", "")
    if basic.startswith("Basic "):  # client_secret_basic
        user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
        form.setdefault("client_id", unquote(user))
        form.setdefault("client_secret", unquote(password))
    return form


def _body(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return redact(json.loads(raw))
    except ValueError:
        return redact(dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections close on their own
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake keeps its own log (FakeGraph.requests)."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = self.server.router.dispatch(self.command, self.path, headers, raw)
        if response.delay:
            time.sleep(response.delay)
        if response.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    # http.server looks the handlers up by these names.
    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, router: Router, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.router = router
        # The handshake happens in the handler thread, so a stuck client blocks only itself.
        self.socket = context.wrap_socket(
            self.socket, server_side=True, do_handshake_on_connect=False
        )

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: TLS handshakes refused by a client, resets, timeouts."""


class RunningServer:
    def __init__(self, router: Router, cert_file: str, key_file: str) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self._server = _Server(router, context)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-graph-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
