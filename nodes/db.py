"""Database URLs, engines and migrations: one code path for SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from credit.errors import InvalidInput

_MIGRATIONS = Path(__file__).with_name("migrations")


def database_url(url: str) -> str:
    """The SQLAlchemy URL with the driver this project uses for it.

    ``sqlite:///node.db`` and ``postgresql://…`` are accepted as they are commonly
    written; the standard sqlite3 module and psycopg (3) are used underneath.

    Raises:
        InvalidInput: not a SQLite or PostgreSQL URL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidInput.for_field("db", f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        driver = "pysqlite"
    elif backend == "postgresql":
        driver = "psycopg"
    else:
        raise InvalidInput.for_field("db", f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
    return parsed.set(drivername=f"{backend}+{driver}").render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the node read while an ingest writes; NORMAL is durable across process
    # crashes in WAL mode, which is what a node needs.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-524288")
    cursor.close()


def sync_engine(url: str) -> Engine:
    """A synchronous engine (ingest, seeding, migrations).

    Raises:
        InvalidInput: an unsupported URL.
    """
    engine = create_engine(database_url(url))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def migrate(url: str, *, scripts: Path = _MIGRATIONS) -> None:
    """Bring the database at ``url`` to the latest schema of ``scripts`` (idempotent).

    The node's migrations by default; the gateway passes its own.

    Raises:
        InvalidInput: an unsupported URL.
        sqlalchemy.exc.OperationalError: the database cannot be reached.
    """
    engine = sync_engine(url)
    try:
        config = Config()
        config.set_main_option("script_location", str(scripts))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
