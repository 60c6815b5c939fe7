"""The node's database schema: its migrations (``nodes/migrations``), run at start."""

from __future__ import annotations

from pathlib import Path

from infra import db

MIGRATIONS = Path(__file__).with_name("migrations")


def migrate(url: str) -> None:
    """Bring the node database at ``url`` to the latest schema (idempotent).

    Raises:
        InvalidInput: an unsupported URL.
        sqlalchemy.exc.OperationalError: the database cannot be reached.
    """
    db.migrate(url, scripts=MIGRATIONS)
