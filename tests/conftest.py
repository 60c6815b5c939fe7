"""Shared fixtures: databases (SQLite files, PostgreSQL schemas) and real running nodes."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from sqlalchemy import create_engine, text

from credit.regions import Region
from credit.registers import SubjectRegistration
from infra.db import sync_engine
from nodes.db import migrate
from nodes.records import RecordDraft
from nodes.registers import RegisterWriter, frame_of
from nodes.server import RunningNode, start_node
from nodes.settings import NodeSettings
from nodes.store import SqlRecordWriter
from protos.credit.v1 import node_pb2_grpc

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postgres_available() -> str:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means: no server to test against
        return f"no PostgreSQL server answers on 127.0.0.1:5432 ({type(exc).__name__})"
    return ""


_PG_MISSING = _postgres_available()


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    """A PostgreSQL URL whose search path is a fresh schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search path is a fresh schema, dropped afterwards."""
    if _PG_MISSING:
        pytest.skip(_PG_MISSING)
    with pg_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every storage test runs on SQLite and on the local PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'node.db'}"
    return str(request.getfixturevalue("pg_url"))


def load(db: str, drafts: Sequence[RecordDraft], *, source: str = "test", now: datetime | None = None) -> None:
    """Store drafts in a node database (migrating it first)."""
    migrate(db)
    engine = sync_engine(db)
    try:
        SqlRecordWriter(engine).load([list(drafts)], source=source, now=now or datetime.now(UTC))
    finally:
        engine.dispose()


def load_register(db: str, entries: Sequence[SubjectRegistration], *, source: str = "test") -> None:
    """Store register entries in a node database (migrating it first)."""
    migrate(db)
    engine = sync_engine(db)
    try:
        RegisterWriter(engine).load([frame_of(entries)], source=source)
    finally:
        engine.dispose()


@dataclass
class NodeHandle:
    node: RunningNode
    channel: grpc.aio.Channel
    stub: node_pb2_grpc.RegionalNodeStub

    @property
    def address(self) -> str:
        return self.node.address


StartNode = Callable[..., Awaitable[NodeHandle]]


@pytest.fixture
async def start_node_at() -> AsyncIterator[StartNode]:
    """A builder: start a real node on 127.0.0.1:0 over a database, get a client stub."""
    started: list[NodeHandle] = []

    async def start(
        region: Region,
        db: str,
        drafts: Sequence[RecordDraft] = (),
        *,
        registrations: Sequence[SubjectRegistration] = (),
        **settings: object,
    ) -> NodeHandle:
        if drafts:
            load(db, drafts)
        if registrations:
            load_register(db, registrations)
        if "gateway_jwks" not in settings:
            settings.setdefault("allow_unasserted", True)  # node-only tests speak to it directly
        config = NodeSettings.from_env(
            {}, region=region, db_url=db, listen="127.0.0.1:0", grace_seconds=0.5, **settings
        )
        node = await start_node(config)
        channel = grpc.aio.insecure_channel(node.address)
        handle = NodeHandle(node, channel, node_pb2_grpc.RegionalNodeStub(channel))
        started.append(handle)
        return handle

    yield start
    for handle in started:
        await handle.channel.close()
        await handle.node.stop(0.5)
