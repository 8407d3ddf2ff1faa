"""Bounds on the XML a parser is given, checked while streaming, before any tree is built. Pure.

python-pskc builds an ElementTree and then deep-copies it; the copy recurses in C, so 200,000
nested elements overflow the C stack and kill the process (a segmentation fault, the server
with it). Millions of elements or attributes cost seconds and gigabytes for a tree nobody needs.
So the bytes go first through expat alone, which keeps no tree and does not recurse: it counts
depth and nodes and stops at the first bound crossed, and refuses a DTD the moment one starts
(as defusedxml's ``forbid_dtd`` does), so no entity is ever declared, let alone expanded. Only a
document within the bounds reaches a tree-building parser.

expat is driven directly rather than through SAX: SAX feeds it 64 KiB at a time, and expat
2.5 scans a start tag that spans chunks again with every chunk, which turns one element with a
million attributes into a quarter of a minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import IO
from xml.parsers import expat

# An RFC 6030 file nests about 8 deep (KeyContainer, KeyPackage, Key, Data, Secret,
# EncryptedValue, CipherData, CipherValue), an XLSX part about 6; 64 leaves room for any
# vendor's extensions and is far below where a recursive parser gets into trouble.
MAX_DEPTH = 64
# Elements and attributes of a whole document: a PSKC key takes about 25, so this is some
# 40,000 keys per file (one vendor order is usually far fewer); parsed into a tree, 1,000,000
# nodes take a few hundred MiB and seconds, which one request may cost, but not more.
MAX_NODES = 1_000_000
# Attributes of one element: PSKC and XLSX elements carry a handful.
MAX_ATTRIBUTES = 100
# Rows of a table (CSV lines, otpauth lines, XLSX rows): far more tokens than one order holds,
# and as many as one import reports on in seconds; a bigger stock is imported in parts.
MAX_ROWS = 200_000
# One line of a text file: csv's own limit for a field (128 KiB), which no row of a seed file
# comes near (an otpauth URI or an Entra CSV row is a few hundred bytes).
MAX_LINE_BYTES = 128 * 1024


class RefusalKind(StrEnum):
    UNSAFE = "unsafe"  # a DTD, entities or external references
    MALFORMED = "malformed"  # not well-formed XML (or a damaged encoding)
    TOO_DEEP = "too-deep"
    TOO_MANY = "too-many"  # too many elements, attributes, lines or rows
    TOO_MANY_RECORDS = "too-many-records"  # over RecordBound.most records (an XLSX sheet's rows)
    TOO_LONG = "too-long"  # a line of text


@dataclass(frozen=True)
class Refusal:
    """Why the input is not parsed, with the line where that was seen (0 when unknown)."""

    kind: RefusalKind
    line: int
    message: str


@dataclass(frozen=True)
class RecordBound:
    """At most ``most`` elements named ``element`` (local name) that hold one of ``values``:
    an XLSX sheet's rows with a value, where a row kept only for its formatting does not
    count. Counted in the same pass as the other bounds, so a sheet of too many rows is refused
    before openpyxl spends a minute reading them."""

    element: str
    values: frozenset[str]
    most: int


class _Bound(Exception):
    def __init__(self, kind: RefusalKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def check_xml(
    source: bytes | IO[bytes],
    *,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
    records: RecordBound | None = None,
) -> Refusal | None:
    """None when ``source`` is well-formed XML without a DTD and within the bounds; else why not.

    Memory stays small whatever the size (a file object is read in chunks), and it stops at the
    first bound crossed.
    """
    # Namespace processing on, as the tree parsers after it use it: an unbound prefix is
    # malformed here too.
    parser = expat.ParserCreate(namespace_separator="}")
    depth = 0
    nodes = 0
    # Records: the depth of the record element being read (0: outside one) and whether it
    # has been counted (its first value seen).
    record_depth = 0
    counted = False
    filled = 0

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth, nodes, record_depth, counted, filled
        depth += 1
        if depth > max_depth:
            raise _Bound(RefusalKind.TOO_DEEP, f"the XML nests elements over {max_depth} deep")
        count = len(attributes)
        if count > MAX_ATTRIBUTES:
            raise _Bound(
                RefusalKind.TOO_MANY,
                f"an element has {count:,} attributes (at most {MAX_ATTRIBUTES} are read)",
            )
        nodes += 1 + count
        if nodes > max_nodes:
            raise _Bound(
                RefusalKind.TOO_MANY, f"the XML holds over {max_nodes:,} elements and attributes"
            )
        if records is None:
            return
        local = name.rpartition("}")[2]
        if record_depth == 0:
            if local == records.element:
                record_depth, counted = depth, False
        elif not counted and local in records.values:
            counted = True
            filled += 1
            if filled > records.most:
                raise _Bound(
                    RefusalKind.TOO_MANY_RECORDS,
                    f"over {records.most:,} {records.element}s with a value",
                )

    def end(_name: str) -> None:
        nonlocal depth, record_depth
        if depth == record_depth:
            record_depth = 0
        depth -= 1

    def doctype(*_args: object) -> int:
        raise _Bound(RefusalKind.UNSAFE, "the XML declares a DTD or entities")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.StartDoctypeDeclHandler = doctype
    # Without a DTD expat knows no entity but the five predefined ones; these two only make
    # sure nothing is resolved if a future expat changed that.
    parser.EntityDeclHandler = doctype
    parser.ExternalEntityRefHandler = doctype
    try:
        if isinstance(source, bytes):
            parser.Parse(source, True)
        else:
            parser.ParseFile(source)
    except _Bound as bound:
        return Refusal(bound.kind, _line(parser), bound.message)
    except Exception:  # ExpatError, LookupError or ValueError (a damaged encoding name), ...
        return Refusal(RefusalKind.MALFORMED, _line(parser), "the XML is not well-formed")
    return None


def _line(parser: expat.XMLParserType) -> int:
    line = parser.CurrentLineNumber
    return line if isinstance(line, int) and line > 0 else 0


def check_lines(
    data: bytes, *, max_lines: int = MAX_ROWS, max_line_bytes: int = MAX_LINE_BYTES
) -> Refusal | None:
    """None when the text ``data`` has at most ``max_lines`` lines of at most ``max_line_bytes``.

    A CSV or otpauth reader keeps every row and every problem of every row: two million lines
    took minutes and gigabytes. Checked on the bytes, before anything is decoded or split; CR,
    LF and CRLF all end a line (csv reads all three).
    """
    ends = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    lines = ends if data.endswith((b"\n", b"\r")) else ends + 1
    if lines > max_lines:
        return Refusal(
            RefusalKind.TOO_MANY,
            0,
            f"the file has {lines:,} lines, more than the {max_lines:,} one import reads",
        )
    # The longest line, measured in C on the text with every line end made one LF: only a file
    # with a line over the limit is walked line by line, to name that line.
    if len(data) <= max_line_bytes or max_line_bytes >= max(
        map(len, data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"))
    ):
        return None
    # The next LF and CR at or after ``start``, each searched again only once passed: one pass.
    start, next_lf, next_cr = 0, data.find(b"\n"), data.find(b"\r")
    for number in range(1, lines + 2):
        if 0 <= next_lf < start:
            next_lf = data.find(b"\n", start)
        if 0 <= next_cr < start:
            next_cr = data.find(b"\r", start)
        end = min((at for at in (next_lf, next_cr) if at >= 0), default=len(data))
        if end - start > max_line_bytes:
            return Refusal(
                RefusalKind.TOO_LONG,
                number,
                f"the line is {_size(end - start)} long, over the {_size(max_line_bytes)} a "
                "line of a seed file may have",
            )
        if end >= len(data):
            return None
        start = end + (2 if data[end : end + 2] == b"\r\n" else 1)
    return None


def _size(count: int) -> str:
    return f"{count / 2**20:.1f} MiB" if count >= 2**20 else f"{count:,} bytes"
