"""Alembic environment: oathdesk runs migrations programmatically (see vault/db.py)."""

from __future__ import annotations

from alembic import context

from oathdesk.vault.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("oathdesk migrations run through `oathdesk init`, not the alembic CLI")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
