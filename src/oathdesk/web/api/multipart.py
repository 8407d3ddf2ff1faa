"""multipart/form-data read in memory: an uploaded seed file must never be spooled to a
temporary file on disk in clear (Starlette's form parser writes parts over 1 MiB to one)."""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header

from oathdesk.errors import InvalidInput

MAX_PARTS = 10


@dataclass
class Part:
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray, repr=False)


def parse_multipart(body: bytes, content_type: str) -> dict[str, Part]:
    """The parts of a multipart body by field name (the first of each name)."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidInput("the multipart body has no boundary; let your HTTP client build it")
    parts: list[Part] = []
    header_name = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        if len(parts) >= MAX_PARTS:
            raise InvalidInput(f"send at most {MAX_PARTS} multipart fields")
        parts.append(Part())

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].data += data[start:end]

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        if bytes(header_name).lower() == b"content-disposition":
            _, disposition = parse_options_header(bytes(header_value))
            parts[-1].name = disposition.get(b"name", b"").decode("utf-8", "replace")
            filename = disposition.get(b"filename")
            parts[-1].filename = None if filename is None else filename.decode("utf-8", "replace")
        header_name.clear()
        header_value.clear()

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except InvalidInput:
        raise
    except Exception:
        raise InvalidInput(
            "the multipart body cannot be read; send the file in the field 'file'"
        ) from None
    found: dict[str, Part] = {}
    for part in parts:
        found.setdefault(part.name, part)
    return found
