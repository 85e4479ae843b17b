"""api_nonce: nonces of the API's HMAC signature scheme, kept for the replay window.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-24

Written by hand (types are frozen here, not imported from store.tables). The primary key
(app, nonce) is what refuses a replayed nonce; the expires_at index serves the purge of old rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
STR = sa.String()


def upgrade() -> None:
    op.create_table(
        "api_nonce",
        sa.Column("app", STR, nullable=False),
        sa.Column("nonce", STR, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("app", "nonce", name="pk_api_nonce"),
    )
    op.create_index("ix_api_nonce_expires_at", "api_nonce", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_api_nonce_expires_at", table_name="api_nonce")
    op.drop_table("api_nonce")
