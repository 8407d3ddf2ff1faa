"""Text shown to a person kept to one line: every control character escaped.

What files and requests put in the vault (a vendor's model name, a UPN) is shown by the CLI's
tables and written to logs (``logsafe``, which re-exports ``one_line``). A module of its own,
importing nothing, so that a short reading command does not load ``logging`` to print a table.
"""

from __future__ import annotations


def _escaped(char: str) -> str:
    code = ord(char)
    if char in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char]
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


def one_line(text: str) -> str:
    """``text`` with everything that is not a printable character escaped (C0, DEL, C1, line
    and paragraph separators, bidi controls, unassigned code points), so it stays one line and
    shows what was sent. Printable text, in any script, is left as it is."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escaped(char) for char in text)
