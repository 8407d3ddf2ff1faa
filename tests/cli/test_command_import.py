"""A command's module is imported with the garbage collector paused and what it made frozen
(cli/main.py ``_import_quietly``): the collector is on again afterwards, and left off for a
caller that had turned it off; a second run of a command freezes nothing more. Run in a fresh
interpreter, where the modules are not yet imported."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import gc, sys
from oathdesk.cli.main import cli
if sys.argv[1] == "off":
    gc.disable()
frozen = gc.get_freeze_count()
assert "sqlalchemy" not in sys.modules
command = cli.get_command(None, "settings")
assert command is not None and "sqlalchemy" in sys.modules
after = gc.get_freeze_count()
made_since = [[] for _ in range(1000)]
assert cli.get_command(None, "settings") is command
assert gc.get_freeze_count() == after  # imported already: nothing frozen again
print(gc.isenabled(), after - frozen)
"""


def probe(collector: str) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, collector], capture_output=True, text=True, check=True
    )
    enabled, frozen = done.stdout.split()
    return enabled, int(frozen)


def test_the_collector_is_on_again_and_the_import_frozen() -> None:
    enabled, frozen = probe("on")
    assert enabled == "True"
    assert frozen > 50_000  # SQLAlchemy and the vault: far more objects than this


def test_a_collector_turned_off_by_the_caller_stays_off() -> None:
    enabled, frozen = probe("off")
    assert enabled == "False"
    assert frozen > 50_000
