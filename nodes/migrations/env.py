"""Alembic environment for a node's database; run through :func:`nodes.db.migrate`."""

from alembic import context

from nodes.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
