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


class XmlRefusalKind(StrEnum):
    UNSAFE = "unsafe"  # a DTD, entities or external references
    MALFORMED = "malformed"  # not well-formed XML (or a damaged encoding)
    TOO_DEEP = "too-deep"
    TOO_MANY = "too-many"  # too many elements or attributes


@dataclass(frozen=True)
class XmlRefusal:
    """Why the XML is not parsed, with the line where that was seen (0 when unknown)."""

    kind: XmlRefusalKind
    line: int
    message: str


class _Bound(Exception):
    def __init__(self, kind: XmlRefusalKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def check_xml(
    source: bytes | IO[bytes], *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES
) -> XmlRefusal | None:
    """None when ``source`` is well-formed XML without a DTD and within the bounds; else why not.

    Memory stays small whatever the size (a file object is read in chunks), and it stops at the
    first bound crossed.
    """
    # Namespace processing on, as the tree parsers after it use it: an unbound prefix is
    # malformed here too.
    parser = expat.ParserCreate(namespace_separator="}")
    depth = 0
    nodes = 0

    def start(_name: str, attributes: dict[str, str]) -> None:
        nonlocal depth, nodes
        depth += 1
        if depth > max_depth:
            raise _Bound(XmlRefusalKind.TOO_DEEP, f"the XML nests elements over {max_depth} deep")
        count = len(attributes)
        if count > MAX_ATTRIBUTES:
            raise _Bound(
                XmlRefusalKind.TOO_MANY,
                f"an element has {count:,} attributes (at most {MAX_ATTRIBUTES} are read)",
            )
        nodes += 1 + count
        if nodes > max_nodes:
            raise _Bound(
                XmlRefusalKind.TOO_MANY, f"the XML holds over {max_nodes:,} elements and attributes"
            )

    def end(_name: str) -> None:
        nonlocal depth
        depth -= 1

    def doctype(*_args: object) -> int:
        raise _Bound(XmlRefusalKind.UNSAFE, "the XML declares a DTD or entities")

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
        return XmlRefusal(bound.kind, _line(parser), bound.message)
    except Exception:  # ExpatError, LookupError or ValueError (a damaged encoding name), ...
        return XmlRefusal(XmlRefusalKind.MALFORMED, _line(parser), "the XML is not well-formed")
    return None


def _line(parser: expat.XMLParserType) -> int:
    line = parser.CurrentLineNumber
    return line if isinstance(line, int) and line > 0 else 0
