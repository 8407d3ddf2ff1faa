"""trigram indexes for the console's search (issue 15)

A search is a case-insensitive substring of a UPN, display name, serial or tracking reference;
without an index each one read every user and token (0.23 s on 100,000 of each). PostgreSQL:
the pg_trgm extension and a GIN index on ``lower(column)`` of each (skipped, with a warning in
the log, where the role may not create the extension: search still works, scanning). SQLite:
an FTS5 trigram table over each table, filled here from the rows already there, with its
triggers and its mark (vault/search_index.py says how it keeps in step).

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from alembic import op

from oathdesk.vault import search_index

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    search_index.install(op.get_bind())


def downgrade() -> None:
    search_index.uninstall(op.get_bind())
