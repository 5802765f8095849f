"""Release 0.1.0 schema.

The tables, indexes, triggers and view release 0.1.0 made with its stores' SQL scripts; on
SQLite exactly those (text times), on PostgreSQL the same tables with the triggers in
PL/pgSQL. A database release 0.1.0 made is checked against this and stamped 0001 by
`metertrace collector db upgrade`, not created again.

Revision ID: 0001
Revises:
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

from collector.db.migrations import release_0_1_0

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    release_0_1_0.create(op.get_bind())


def downgrade() -> None:
    release_0_1_0.drop(op.get_bind())
