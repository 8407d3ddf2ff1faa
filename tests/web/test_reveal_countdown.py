"""The reveal page's live countdown (static/reveal.js) says what the server rendered
(timetext.duration_text): the same words for every duration, from seconds to days."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import oathdesk
from oathdesk.timetext import duration_text

REVEAL_JS = Path(oathdesk.__file__).parent / "web" / "static" / "reveal.js"


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the page's script")
def test_the_countdown_words_match_the_servers_at_1000_durations() -> None:
    script = REVEAL_JS.read_text()
    # The two helpers, lifted out of the page's closure as they are.
    functions = re.search(
        r"  function two\(.*?\n  }\n\n.*?  function plural\(.*?\n  }\n", script, re.S
    )
    assert functions is not None, "reveal.js no longer has two() and plural()"
    durations = sorted({0, 1, 59, 60, 3599, 3600, 86_399, 86_400, 172_814, 172_830}
                       | {(k * 7919) % 260_000 for k in range(1000)})  # fmt: skip
    program = (
        functions.group(0) + f"console.log(JSON.stringify({json.dumps(durations)}.map(plural)));"
    )
    out = subprocess.run(["node", "-e", program], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [f"in {duration_text(s)}" for s in durations]
