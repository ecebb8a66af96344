"""Alembic environment for the fleet store: always run programmatically (``fleet.store.migrate``),
with the connection handed over in ``config.attributes``; there is no alembic.ini."""

from __future__ import annotations

from alembic import context

from fleet.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
