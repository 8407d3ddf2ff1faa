"""The tables the CLI prints to a pipe or file, drawn without rich: the same characters rich
draws for them (``print_table``'s table at 160 columns), for the tables this module can
draw exactly; ``boxed_table`` returns None for the others and rich draws those.

Why: a short reading command (`oathdesk token list | grep ...`) spent as long importing rich as
reading the vault (issue 15), while scripts rely on the layout they have always seen.
tests/cli/test_table_text.py compares the two on many tables.
"""

from __future__ import annotations

from collections.abc import Sequence

_WORD_CHARACTERS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.,/()'+-"
)
WIDTH = 160  # print_table's console width when stdout is not a terminal


def boxed_table(title: str, headings: Sequence[str], rows: Sequence[Sequence[str]]) -> str | None:
    """The table rich prints (title, heavy-edged heading, light rows), or None when rich would
    lay it out in a way drawn here is not (wider than WIDTH, text other than printable ASCII,
    whose width on screen rich measures by its own tables)."""
    cells = [list(headings), *(list(row) for row in rows)]
    if not headings or any(len(line) != len(headings) for line in cells):
        return None
    if any(not _plain(text) for line in cells for text in line):
        return None
    # rich reads a title and headings as markup (styles, emoji codes) and wraps a title at
    # spaces; ours are plain words.
    if not all(_words(text) for text in (title, *headings) if text):
        return None
    widths = [max(len(line[index]) for line in cells) + 2 for index in range(len(headings))]
    total = sum(widths) + len(widths) + 1
    if total > WIDTH or len(title) > total:
        return None

    def rule(left: str, fill: str, middle: str, right: str) -> str:
        return left + middle.join(fill * width for width in widths) + right

    def line(texts: Sequence[str], edge: str) -> str:
        padded = (f" {text.ljust(width - 2)} " for text, width in zip(texts, widths, strict=True))
        return edge + edge.join(padded) + edge

    spare = total - len(title)
    out = [" " * (spare // 2) + title + " " * (spare - spare // 2)] if title else []
    out.append(rule("┏", "━", "┳", "┓"))
    out.append(line(headings, "┃"))
    out.append(rule("┡", "━", "╇", "┩"))
    out.extend(line(row, "│") for row in cells[1:])
    out.append(rule("└", "─", "┴", "┘"))
    return "\n".join(out) + "\n"


def _words(text: str) -> bool:
    """Words of letters, digits and . , / ( ) ' + - one space apart (no regex: ``re`` compiles
    a pattern at import, which a short command pays for)."""
    return all(word and _WORD_CHARACTERS.issuperset(word) for word in text.split(" "))


def _plain(text: str) -> bool:
    return text.isascii() and text.isprintable()
