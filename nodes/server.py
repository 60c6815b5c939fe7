"""Running a node: the grpc.aio server with health, reflection, limits and metrics."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import structlog
from aiohttp import web
from grpc_health.v1 import _async as health_aio  # the module behind health.aio, which grpc-stubs leaves out
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from credit.catalogue import catalogue
from credit.errors import InvalidInput
from federation.assertions import AssertionVerifier
from federation.interceptors import ServiceInterceptor
from federation.tls import channel_credentials, server_credentials
from infra.auditlog import AuditLog
from infra.db import sync_engine
from infra.lifecycle import until_stopped
from nodes.db import migrate
from nodes.objections import ObjectionDesk
from nodes.registers import SqlRegisterStore
from nodes.replica import ReplicaStore
from nodes.replication import Subscriber
from nodes.service import NodeService
from nodes.servicer import RegionalNodeServicer
from nodes.settings import NodeSettings
from nodes.store import SqlRecordStore
from protos.credit.v1 import node_pb2, node_pb2_grpc

log = structlog.get_logger("jjj.node")

SERVICE_NAME = node_pb2.DESCRIPTOR.services_by_name["RegionalNode"].full_name


@dataclass
class RunningNode:
    settings: NodeSettings
    server: grpc.aio.Server
    port: int
    store: SqlRecordStore
    health: health_aio.HealthServicer
    replica: ReplicaStore
    desk: ObjectionDesk
    servicer: RegionalNodeServicer
    register: SqlRegisterStore
    metrics_runner: web.AppRunner | None = None
    subscribers: list[Subscriber] = field(default_factory=list)
    following: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def address(self) -> str:
        host = self.settings.listen.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking calls, let those in flight finish within the grace period.

        Followed change feeds, which never finish by themselves, end at their next poll;
        this node's own following of its peers stops first, so that nodes stopping
        together do not each hold the others' feeds for the whole grace period."""
        await self.health.enter_graceful_shutdown()
        self.servicer.close_feeds()
        await self.stop_following()
        await self.server.stop(self.settings.grace_seconds if grace is None else grace)
        # Audit entries still being written (a feed reader's is written beside its
        # stream) are committed before the database is closed under them.
        await self.servicer.settle()
        if self.metrics_runner is not None:
            await self.metrics_runner.cleanup()
        await asyncio.to_thread(self.replica.close)
        await asyncio.to_thread(self.desk.close)
        await asyncio.to_thread(self.register.close)
        await asyncio.to_thread(self.store.close)
        log.info("node_stopped", region=self.settings.region.value)

    async def stop_following(self) -> None:
        """Stop following the peers' feeds (what was applied stays applied)."""
        for task in self.following:
            task.cancel()
        for task in self.following:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.following = []
        for subscriber in self.subscribers:
            await subscriber.close()


async def _metrics_app(settings: NodeSettings, node_health: health_aio.HealthServicer) -> web.AppRunner:
    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_request: web.Request) -> web.Response:
        # grpc_health annotates the async Check as returning None; it returns the response.
        response: health_pb2.HealthCheckResponse = await node_health.Check(  # type: ignore[func-returns-value]
            health_pb2.HealthCheckRequest(service=""), None
        )
        ok = response.status == health_pb2.HealthCheckResponse.SERVING
        return web.json_response({"status": "ok" if ok else "unavailable"}, status=200 if ok else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = settings.metrics_listen.rsplit(":", 1)
    await web.TCPSite(runner, host, int(port)).start()
    return runner


async def start_node(settings: NodeSettings) -> RunningNode:
    """Migrate the database, then start serving on ``settings.listen``.

    Raises:
        InvalidInput: bad settings (database URL, pilot codes file).
        RuntimeError: the address cannot be bound.
    """
    if settings.migrate:
        await asyncio.to_thread(migrate, settings.db_url)
    engine = sync_engine(settings.db_url)
    store = SqlRecordStore(engine, region=settings.region)
    replica = ReplicaStore(engine, region=settings.region)
    desk = ObjectionDesk(engine, region=settings.region)
    register = SqlRegisterStore(engine, region=settings.region)
    service = NodeService(
        store=store,
        catalogue=catalogue(settings.region),
        default_profile=settings.default_profile,
        pilot_codes=settings.pilot_codes(),
        max_batch=settings.max_batch,
        replica=replica,
        objections=desk,
        register=register,
    )
    server = grpc.aio.server(
        interceptors=[ServiceInterceptor(region=settings.region.value)],
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes * 4),
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    assertions = None
    if settings.gateway_jwks:
        assertions = AssertionVerifier(Path(settings.gateway_jwks), region=settings.region)
    elif settings.allow_unasserted:
        log.warning("unasserted_queries_allowed", region=settings.region.value, note="development only")
    else:
        replica.close()
        desk.close()
        register.close()
        store.close()
        raise InvalidInput.for_field(
            "gateway_jwks",
            "configure the gateway's keys (--gateway-jwks FILE or JJJ_NODE_GATEWAY_JWKS) so that queries can be "
            "checked, or pass --allow-unasserted for development",
        )
    tls = settings.tls_files()
    # The audit chain needs real transactions: not the store's autocommit reader engine.
    audit = AuditLog(engine)
    servicer = RegionalNodeServicer(
        service=service,
        assertions=assertions,
        audit=audit,
        require_identity=tls is not None,
        feed_heartbeat_seconds=settings.feed_heartbeat_seconds,
    )
    node_pb2_grpc.add_RegionalNodeServicer_to_server(servicer, server)
    node_health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(node_health, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    try:
        if tls is not None:
            port = server.add_secure_port(settings.listen, server_credentials(tls))
        else:
            port = server.add_insecure_port(settings.listen)
    except RuntimeError as exc:
        replica.close()
        desk.close()
        register.close()
        store.close()
        raise RuntimeError(f"cannot listen on {settings.listen}: {exc}") from exc
    await server.start()
    for name in ("", SERVICE_NAME):
        await node_health.set(name, health_pb2.HealthCheckResponse.SERVING)
    running = RunningNode(settings, server, port, store, node_health, replica, desk, servicer, register)
    if settings.metrics_listen:
        running.metrics_runner = await _metrics_app(settings, node_health)
    credentials = channel_credentials(tls) if tls is not None else None
    for origin, address in settings.peers.items():
        subscriber = Subscriber(
            replica, origin, address, credentials=credentials, idle_timeout=settings.peer_idle_seconds
        )
        running.subscribers.append(subscriber)
        running.following.append(asyncio.create_task(subscriber.run(), name=f"replicate-{origin.value}"))
    log.info(
        "node_started",
        region=settings.region.value,
        address=running.address,
        db=store.engine.url.render_as_string(),
        peers={region.value: address for region, address in settings.peers.items()},
    )
    return running


async def serve(settings: NodeSettings) -> None:
    """Run a node until SIGINT or SIGTERM, then shut down gracefully."""
    node = await start_node(settings)
    print(f"node {settings.region.value} ({settings.region.name_zh}) listening on {node.address}", flush=True)
    await until_stopped()
    await node.stop()
