"""Alembic's environment: runs the revisions on the connection collector.db.migrate passes in.

Programmatic only (`metertrace collector db upgrade`, or `open_database` on an empty database);
the caller holds the transaction, so all revisions of one upgrade commit or roll back together.
"""

from __future__ import annotations

from alembic import context

from collector.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the collector's migrations run through collector.db.migrate: "
        "metertrace collector db upgrade -c collector.yaml"
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # a revision made with autogenerate rebuilds SQLite tables
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
