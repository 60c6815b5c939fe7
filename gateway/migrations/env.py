"""Alembic environment for the gateway's database; run through :func:`infra.db.migrate`."""

from alembic import context

from gateway.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection, target_metadata=Base.metadata, render_as_batch=True, version_table="alembic_version_gateway"
)
with context.begin_transaction():
    context.run_migrations()
