"""the audience of Entra access tokens the REST API accepts (issue 16)

``sso_settings.api_audience``: the Application (client) ID that Entra v2.0 access tokens for
oathdesk's API carry as ``aud``. Empty (NULL) means the API accepts API keys only: an admin
switches access tokens on explicitly, because they open the API to every automation app that
an Entra admin gives an oathdesk app role.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sso_settings") as batch:
        batch.add_column(sa.Column("api_audience", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sso_settings") as batch:
        batch.drop_column("api_audience")
