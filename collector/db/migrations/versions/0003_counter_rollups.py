"""Counter rollups: a meter's usable readings per 15 minutes, filled from the raw readings;
a partial index of the usable readings with their value (readings_usable).

The table is derived (collector/ledger/rollups.py explains it) and kept in step with ingest from
this revision on; the upgrade builds it from every stored reading, one meter and quantity at a
time (on a large ledger this is the long step of the upgrade: about a minute per 10 M readings
on SQLite). `metertrace collector db rollups --check` compares it with the readings later.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


_KEY = sa.Text().with_variant(sa.dialects.postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "counter_rollups",
        sa.Column("device", _KEY, nullable=False),
        sa.Column("quantity", _KEY, nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("first_ts", sa.BigInteger(), nullable=False),
        sa.Column("first_value", sa.Double(), nullable=False),
        sa.Column("last_ts", sa.BigInteger(), nullable=False),
        sa.Column("last_value", sa.Double(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("max_dt", sa.BigInteger(), nullable=False),
        sa.Column("min_dv", sa.Double(), nullable=True),
        sa.Column("dirty", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("device", "quantity", "bucket"),
    )
    # The usable readings with their value, for the allocation's boundary probes (index only);
    # the condition as collector/db/schema.py writes it, frozen here.
    usable = sa.text("(quality = 'good' OR quality = 'counter_reset') AND value IS NOT NULL")
    op.create_index(
        "readings_usable", "readings", ["device", "quantity", "ts", "value"],
        sqlite_where=usable, postgresql_where=usable,
    )  # fmt: skip
    # Filled with the same code a rebuild runs, on this migration's connection.
    from collector.ledger.rollup_store import rebuild_on

    rebuild_on(op.get_bind())


def downgrade() -> None:
    op.drop_index("readings_usable", "readings")
    op.drop_table("counter_rollups")
