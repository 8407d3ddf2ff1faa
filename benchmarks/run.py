"""Run every benchmark section side by side and write docs/benchmarks.md.

Each module in SECTIONS_MODULES exposes ``SECTIONS``: functions returning a ``Section``.
"""

from __future__ import annotations

import importlib
import platform
import subprocess
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.harness import Section

SECTIONS_MODULES = [
    "benchmarks.otp_bench",
    "benchmarks.import_bench",
    "benchmarks.export_bench",
    "benchmarks.api_bench",
    "benchmarks.audit_bench",
    "benchmarks.audit_export_bench",
    "benchmarks.sync_bench",
    "benchmarks.list_bench",
]
OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        cpu = model
    except (OSError, StopIteration):
        pass
    oathtool = subprocess.run(
        ["oathtool", "--version"], capture_output=True, text=True, check=False
    )
    version = oathtool.stdout.splitlines()[0] if oathtool.returncode == 0 else "not installed"
    return f"{cpu}; Python {platform.python_version()}; {version}"


def render(sections: list[Section]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m benchmarks.run`). Peers run side by side in the same",
        "run on the same machine, so the ratios mean more than the absolute numbers.",
        "",
        f"- Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {_machine()}",
        "",
    ]
    for section in sections:
        lines += [f"## {section.title}", "", section.explanation, ""]
        lines += ["| subject | result | unit | note |", "|---|---:|---|---|"]
        for row in section.rows:
            lines.append(f"| {row.subject} | {row.value:,.1f} | {row.unit} | {row.note} |")
        lines.append("")
        lines += [f"- {line}" for line in section.verdicts]
        lines.append("")
    return "\n".join(lines)


def replace_sections(text: str, sections: list[Section]) -> str:
    """``text`` (a written benchmarks.md) with the sections of these titles rewritten in place,
    or added at the end; the rest, and the run line, stay as they were."""
    parts = text.split("\n## ")
    parts[0] = _note_reruns(parts[0], [section.title for section in sections])
    fresh = {section.title: render([section]).split("\n## ", 1)[1] for section in sections}
    kept = [
        part if part.split("\n", 1)[0] not in fresh else fresh.pop(part.split("\n", 1)[0])
        for part in parts[1:]
    ]
    return "\n## ".join([parts[0], *kept, *fresh.values()])


_RERUN = "- Rerun alone on {moment} UTC: "


def _note_reruns(header: str, titles: list[str]) -> str:
    """The header with a line per section rerun alone, saying when (the run line is the full
    run's): a section's earlier rerun line is replaced."""
    moment = f"{datetime.now(UTC):%Y-%m-%d %H:%M}"
    lines = header.rstrip("\n").split("\n")
    kept = [
        line
        for line in lines
        if not (line.startswith("- Rerun alone on ") and line.split(" UTC: ", 1)[-1] in titles)
    ]
    kept += [_RERUN.format(moment=moment) + title for title in titles]
    return "\n".join(kept) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Every section, or only those of the modules named (``python -m benchmarks.run
    benchmarks.audit_bench``), which then replace their own sections in docs/benchmarks.md."""
    only = list(sys.argv[1:] if argv is None else argv)
    sections: list[Section] = []
    failed: list[str] = []
    for module_name in only or SECTIONS_MODULES:
        module = importlib.import_module(module_name)
        functions: list[Callable[[], Section]] = module.SECTIONS
        for function in functions:
            try:
                section = function()
            except Exception as error:
                # The other sections' figures are still written; this one says what failed.
                traceback.print_exc()
                where = f"{module_name}.{function.__name__}"
                failed.append(where)
                section = Section(
                    f"FAILED: {where}",
                    f"The section raised {type(error).__name__}: {error}",
                    [],
                    [f"FAILED: {where} did not finish"],
                )
            print(f"{section.title}")
            for row in section.rows:
                print(f"  {row.subject:<40} {row.value:>14,.1f} {row.unit}")
            for line in section.verdicts:
                print(f"  {line}")
            sections.append(section)
    if only and OUTPUT.exists():
        OUTPUT.write_text(replace_sections(OUTPUT.read_text(), sections))
    else:
        OUTPUT.write_text(render(sections))
    print(f"wrote {OUTPUT}")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
