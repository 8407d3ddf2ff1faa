"""The schema revision this oathdesk's migrations end at, found without SQLAlchemy or Alembic.

The quick read path (``quickread``) compares a vault's revision with it before answering, so it
must not cost what loading Alembic costs (a fifth of a second). Migration files are named
``NNNN_what.py`` with zero-padded revisions (``migrations/versions``), so the newest is the
greatest name: one directory listing. ``db.SCHEMA_HEAD`` is this value, read once at import; a
test checks it against Alembic's head.
"""

from __future__ import annotations

import os
import re

VERSIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations", "versions")
_MIGRATION = re.compile(r"(\d{4})_\w+\.py")


def schema_head() -> str:
    """The newest migration's revision (e.g. ``"0012"``)."""
    found = [m.group(1) for name in os.listdir(VERSIONS) if (m := _MIGRATION.fullmatch(name))]
    return max(found)
