"""Log injection: a request cannot forge a log line or send control characters to the terminal
or journal of the server. A real `oathdesk serve` and raw HTTP requests (no client library to
tidy the bytes up); every line it logs is checked."""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oathdesk.logsafe import SafeFormatter, one_line
from tests.conftest import OATHDESK
from tests.web.conftest import free_port
from tests.web.test_serve import Served, clean_env, read_banner, stop

FORGED = "2026-12-04T19:50:34+0000 INFO 127.0.0.1 POST /signin 303 1.0ms"
# Control characters of every kind a terminal or a journal reader acts on.
RAW_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
ACCESS_LINE = re.compile(r"^\S+ INFO 127\.0\.0\.1 GET /.* \d{3} [\d.]+ms$")


def raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def get(path: str, *, host: str = "127.0.0.1", agent: str = "test") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {agent}\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")


# Requests the app answers (404): each must be one access line, escaped.
ANSWERED = [
    # A whole forged line after a newline, as in the issue.
    get("/x%0A" + FORGED.replace(" ", "%20")),
    get("/x%0D%0A" + FORGED.replace(" ", "%20")),
    # Terminal escapes (clear the screen, set the window title), NUL, DEL, C1 (CSI, NEL).
    get("/x%1B%5B2J%1B%5D0;pwned%07"),
    get("/nul%00byte%7Fdel"),
    get("/c1%C2%9B31m%C2%85next"),
    # Unicode line and paragraph separators and a right-to-left override.
    get("/sep%E2%80%A8line%E2%80%A9para%E2%80%AEevil"),
    # Not valid UTF-8 at all.
    get("/bad%FF%FEutf8"),
    # Bytes beyond ASCII in headers (HTTP allows them): a user agent and a host.
    get("/", agent="evil\x85\x9bred"),
    get("/", host="bad\xe9\x85host"),
]
# Requests uvicorn refuses before the app (400): each must be at most one line, escaped.
REFUSED = [
    get("/", agent="evil\x1b[31mred\x07"),
    get("/", host="bad\x1b]0;title\x07host"),
    b"GET /a\x00b\x1b[2J HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /a\nforged HTTP/1.1\r\nHost: x\r\n\r\n",
]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    # Housekeeping off: the log then holds only what the requests caused (a cycle's own line
    # would come at start-up).
    process = subprocess.Popen(
        [str(OATHDESK), "serve", "--port", str(port), "--housekeeping-every", "off"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(tmp_path / "data"),
    )
    try:
        yield Served(process, read_banner(process, timeout=20), port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_requests_cannot_forge_or_colour_the_log(served: Served) -> None:
    for request in ANSWERED + REFUSED:
        raw_request(served.port, request)
    time.sleep(0.5)  # the last access line is written after the response is sent
    _stdout, stderr = stop(served)
    lines = stderr.splitlines()
    assert not [line for line in lines if RAW_CONTROLS.search(line)], lines
    assert "\x1b" not in stderr
    assert "\x00" not in stderr
    # Exactly one line per request the app answered, each of the access log's shape; at most
    # one per request refused before it; nothing else.
    access = [line for line in lines if " 127.0.0.1 GET " in line]
    assert len(access) == len(ANSWERED), lines
    assert all(ACCESS_LINE.match(line) for line in access), access
    assert len(lines) - len(access) <= len(REFUSED), lines
    # The forged record is inside the request's line, never a line of its own.
    assert not [line for line in lines if line.startswith("2026-12-04T19:50:34")]
    assert any("/x\\n2026-12-04T19:50:34" in line for line in access), access


def test_the_formatter_escapes_messages_arguments_and_tracebacks() -> None:
    formatter = SafeFormatter("%(levelname)s %(message)s")
    try:
        raise ValueError("bad\nvalue \x1b[2J")
    except ValueError as error:
        record = logging.LogRecord(
            "oathdesk", logging.ERROR, __file__, 1, "path %s", ("/a\nb\u2028c",), None
        )
        record.exc_info = (type(error), error, error.__traceback__)
    text = formatter.format(record)
    assert "\n" not in text
    assert "\x1b" not in text
    assert "\u2028" not in text
    assert text.startswith("ERROR path /a\\nb\\u2028c")
    assert "ValueError: bad\\nvalue \\x1b[2J" in text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, ünïcode ✓", "plain text, ünïcode ✓"),
        ("a\nb\rc\td", "a\\nb\\rc\\td"),
        ("\x00\x1b\x7f", "\\x00\\x1b\\x7f"),
        ("\x85\x9b", "\\x85\\x9b"),
        ("\u2028\u2029\u202e\u2066", "\\u2028\\u2029\\u202e\\u2066"),
    ],
)
def test_one_line(text: str, shown: str) -> None:
    assert one_line(text) == shown


def test_every_handler_of_the_server_escapes(tmp_path: Path) -> None:
    """Whatever logger a record comes from (ours, uvicorn's, a library's that no handler takes),
    the handler it reaches formats it safely."""
    from oathdesk.cli.serve import log_config
    from oathdesk.logsafe import guard_unhandled

    config = log_config()
    for name, handler in config["handlers"].items():
        formatter = config["formatters"][handler["formatter"]]
        assert formatter.get("()") is SafeFormatter, name
    previous = logging.lastResort
    try:
        guard_unhandled()
        assert logging.lastResort is not None
        assert isinstance(logging.lastResort.formatter, SafeFormatter)
    finally:
        logging.lastResort = previous


def test_a_background_threads_crash_is_one_log_line_by_type(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A thread of the server that dies (an import job's, the reveal writer's) is logged, one
    line, by its exception's type: not Python's raw traceback on standard error, which bypasses
    the formatter and may quote input."""
    import threading

    from oathdesk.logsafe import guard_unhandled

    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logger = logging.getLogger("oathdesk.threads")
    keep = Keep()
    logger.addHandler(keep)
    previous, last_resort = threading.excepthook, logging.lastResort
    try:
        guard_unhandled()

        def crash() -> None:
            raise ValueError("typed input\nforged line")

        thread = threading.Thread(target=crash, name="oathdesk-import-test")
        thread.start()
        thread.join()
    finally:
        threading.excepthook, logging.lastResort = previous, last_resort
        logger.removeHandler(keep)
    (record,) = seen
    assert record.levelno == logging.ERROR
    text = record.getMessage()
    assert "oathdesk-import-test" in text
    assert "ValueError" in text
    assert "typed input" not in text
    assert record.exc_info is None
    assert "Traceback" not in capsys.readouterr().err
