"""Running the gateway: HTTP front door over the fan-out, registry and signing keys."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import grpc
import structlog
from aiohttp import web
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from credit.errors import CreditError, FailedPrecondition
from federation.client import GrpcNodeClient, NodeClient
from federation.interceptors import ServiceInterceptor
from federation.tls import channel_credentials
from gateway.access.auth import Sessions
from gateway.access.checkpoints import watch_peer_checkpoints
from gateway.access.grant_store import RedemptionStore
from gateway.access.grants import GrantService
from gateway.access.keys import KeyStore
from gateway.access.peers import refresh_peers, watch_peers
from gateway.api.grpc_api import ReportGatewayServicer
from gateway.api.http import build_app
from gateway.batch.jobs import BatchService
from gateway.batch.store import JobStore
from gateway.objections.service import ObjectionService
from gateway.portal import PORTAL, Portal, add_portal
from gateway.registry import Registry
from gateway.reports.fanout import FanOut
from gateway.reports.seal import Seal, SealTrust
from gateway.reports.service import ReportService
from gateway.reports.supersede import SupersedeWatcher
from gateway.settings import GatewaySettings
from infra.auditlog import AuditLog, PeerCheckpoints
from infra.leases import Leases
from infra.lifecycle import until_stopped
from protos.credit.v1 import gateway_pb2, gateway_pb2_grpc

log = structlog.get_logger("jjj.gateway")


@dataclass
class RunningGateway:
    settings: GatewaySettings
    runner: web.AppRunner
    port: int
    registry: Registry
    clients: list[NodeClient]
    grpc_server: grpc.aio.Server
    grpc_port: int
    key_watch: asyncio.Task[None] | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    service: ReportService | None = None
    batches: BatchService | None = None
    watcher: SupersedeWatcher | None = None

    @property
    def url(self) -> str:
        host = self.settings.listen.rsplit(":", 1)[0]
        return f"http://{host}:{self.port}"

    @property
    def grpc_address(self) -> str:
        return f"{self.settings.grpc_listen.rsplit(':', 1)[0]}:{self.grpc_port}"

    @property
    def where(self) -> str:
        """Where it listens, as the command line says it."""
        return f"{self.url} (HTTP) and {self.grpc_address} (gRPC, {self.grpc_tls})"

    @property
    def grpc_tls(self) -> str:
        """How the gRPC API is served: ``mutual TLS``, ``TLS`` or ``plaintext``."""
        if self.settings.grpc_api_tls() is None:
            return "plaintext"
        return "mutual TLS" if self.settings.grpc_require_client_cert else "TLS"

    async def stop(self) -> None:
        if self.key_watch is not None:
            self.key_watch.cancel()
        for task in self.tasks:
            task.cancel()
        # Waited for: a task holding a lease gives it back as it stops.
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.batches is not None:
            await self.batches.stop()
        if self.watcher is not None:
            await self.watcher.stop()
        await self.grpc_server.stop(1.0)
        await self.runner.cleanup()
        await self.registry.writes.flush()
        for client in self.clients:
            await client.close()
        await asyncio.to_thread(self.registry.close)


async def start_gateway(
    settings: GatewaySettings,
    clients: Sequence[NodeClient] | None = None,
    *,
    shared_ports: bool = False,
    metrics_dir: str = "",
) -> RunningGateway:
    """Open the registry and keys, connect to the nodes, and serve HTTP and gRPC.

    ``clients`` are the nodes to ask; by default a gRPC client for each of
    ``settings.nodes`` (tests pass in-process nodes). With ``shared_ports`` (a worker of
    ``jjj gateway --workers``) both listeners share their ports with the other workers
    (``SO_REUSEPORT``); otherwise they bind exclusively, so that a second gateway
    started on the same ports fails instead of taking some of this one's calls.
    ``metrics_dir``: where the workers keep their metrics, for ``/metrics`` to add up.

    Raises:
        InvalidInput: bad settings.
        FailedPrecondition: an unreadable signing key or TLS file.
        OSError: the HTTP address cannot be bound.
        RuntimeError: the gRPC address cannot be bound (another process holds the port).
    """
    async with contextlib.AsyncExitStack() as undo:  # what is open so far, closed if starting fails
        registry = await asyncio.to_thread(Registry.open, settings.db_url)
        undo.callback(registry.close)
        undo.push_async_callback(registry.writes.flush)
        running = await _start(settings, registry, undo, clients, shared_ports=shared_ports, metrics_dir=metrics_dir)
        undo.pop_all()
    return running


async def _start(
    settings: GatewaySettings,
    registry: Registry,
    undo: contextlib.AsyncExitStack,
    given: Sequence[NodeClient] | None,
    *,
    shared_ports: bool,
    metrics_dir: str,
) -> RunningGateway:
    grpc_credentials = grpc_api_credentials(settings)  # bad TLS settings stop the start here
    store = KeyStore(Path(settings.keys_dir))
    signing_key = await asyncio.to_thread(store.ensure)
    keyring = await asyncio.to_thread(store.keyring)
    tls = settings.tls_files()
    credentials = channel_credentials(tls) if tls is not None else None
    clients: list[NodeClient] = (
        list(given)
        if given is not None
        else [GrpcNodeClient(region, address, credentials=credentials) for region, address in settings.nodes.items()]
    )
    for client in clients:
        undo.push_async_callback(client.close)
    fanout = FanOut(
        {client.region: client for client in clients},
        deadline=settings.deadline,
        region_deadline=settings.region_deadline,
        replica_fallback=settings.replica_fallback,
        replica_max_age=settings.replica_max_age_seconds,
    )
    await fanout.refresh_catalogues()
    sessions = Sessions(
        issuer=settings.issuer,
        signing_key=signing_key,
        keyring=keyring,
        lifetime=timedelta(minutes=settings.session_minutes),
    )
    peers = settings.trusted()
    await refresh_peers(sessions, peers)
    # Checkpoints are signed with the key reports are signed with at the time.
    audit = AuditLog(registry.engine, writes=registry.writes, sealer=lambda: service.signing_key)
    seal, seal_trust = await asyncio.to_thread(load_seal, settings)
    service = ReportService(
        fanout=fanout,
        registry=registry,
        signing_key=signing_key,
        keyring=keyring,
        issuer=settings.issuer,
        audit=audit,
        default_profile=settings.default_profile,
        # Whoever was given a report through a grant may open and download it again.
        redeemers=RedemptionStore(registry).redeemers_of,
        organisation=settings.organisation,
        contact=settings.contact,
        seal=seal,
        seal_trust=seal_trust,
        # The instance's limit per address, shared out among its worker processes: a
        # client's connections land on any of them.
        lookups_per_minute=settings.lookups_per_process(),
    )
    host, port = settings.listen.rsplit(":", 1)
    grants = GrantService(service, public_url=settings.public_url or f"http://{host}:{port}")
    # Background work one process of the instance does at a time (see infra.leases).
    leases = Leases(registry.engine, run=registry.run)
    batches = BatchService(
        service,
        {client.region: client for client in clients},
        store=JobStore(registry),
        leases=leases,
        lease_seconds=settings.lease_seconds,
    )
    objections = ObjectionService(service, {client.region: client for client in clients})
    app = build_app(
        service=service,
        sessions=sessions,
        registry=registry,
        grants=grants,
        batches=batches,
        objections=objections,
        metrics_dir=metrics_dir,
    )
    add_portal(
        app,
        Portal(
            service, sessions, registry, grants, grants.public_url, batches, objections, operator=settings.operator()
        ),
    )
    runner = web.AppRunner(app, access_log=None)
    watcher = SupersedeWatcher(registry, clients, leases=leases, lease_seconds=settings.lease_seconds)
    await watcher.start_new_registry_at_heads()  # before any report can be issued
    await runner.setup()
    undo.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, host, int(port), reuse_port=shared_ports)
    await site.start()
    bound = int(runner.addresses[0][1])
    if not settings.public_url:
        # Links and QR codes point at the address actually bound (port 0 picks one).
        grants.public_url = runner.app[PORTAL].public_url = f"http://{host}:{bound}"
    grpc_server = grpc.aio.server(
        interceptors=[ServiceInterceptor(region="gateway")],
        # grpc binds with SO_REUSEPORT unless told not to: a second gateway would then share
        # the port and take some of the first one's calls. Workers share it on purpose
        # (the parent checked that nothing else listens there).
        options=[("grpc.so_reuseport", 1 if shared_ports else 0)],
    )
    gateway_pb2_grpc.add_ReportGatewayServicer_to_server(
        ReportGatewayServicer(service=service, sessions=sessions, registry=registry, grants=grants, batches=batches),
        grpc_server,
    )
    gateway_health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(gateway_health, grpc_server)
    name = gateway_pb2.DESCRIPTOR.services_by_name["ReportGateway"].full_name
    reflection.enable_server_reflection((name, health.SERVICE_NAME, reflection.SERVICE_NAME), grpc_server)
    grpc_port = _listen_grpc(grpc_server, settings.grpc_listen, grpc_credentials)
    await grpc_server.start()
    undo.push_async_callback(grpc_server.stop, None)
    for service_name in ("", name):
        await gateway_health.set(service_name, health_pb2.HealthCheckResponse.SERVING)
    running = RunningGateway(settings, runner, bound, registry, clients, grpc_server, grpc_port)
    running.service = service
    running.batches = batches
    running.watcher = watcher
    running.watcher.start()
    running.key_watch = asyncio.create_task(_watch_keys(store, service, sessions))
    running.tasks = [
        # Unfinished jobs nobody runs: left by an earlier process, or by one that died.
        asyncio.create_task(batches.adopt()),
        asyncio.create_task(_seal_periodically(audit, settings.audit_seal_seconds)),
        asyncio.create_task(watch_peers(sessions, peers)),
    ]
    if witnessed := settings.checkpoint_sources():
        kept = PeerCheckpoints(registry.engine, writes=registry.writes)

        async def witness() -> None:
            await watch_peer_checkpoints(kept, sessions.peers.get, witnessed, every=settings.audit_seal_seconds)

        # One process of the instance fetches the peers' checkpoints: two would keep
        # each one twice over, and the second copy is refused.
        running.tasks.append(
            asyncio.create_task(leases.keep("peer-checkpoints", witness, seconds=settings.lease_seconds))
        )
    log.info(
        "gateway_started",
        url=running.url,
        grpc=running.grpc_address,
        grpc_tls=running.grpc_tls,
        nodes={r.value: a for r, a in settings.nodes.items()},
    )
    return running


def load_seal(settings: GatewaySettings) -> tuple[Seal | None, SealTrust | None]:
    """The organisation's document-signing certificate and the CA(s) a handed-in PDF's
    signature must chain to, from the settings (either may be absent: then no PDF is
    printed, or none verified, and the log says so).

    Raises:
        FailedPrecondition: a file cannot be read, or the certificate names another
            organisation than the one configured (reports would name one and be signed
            by another).
    """
    seal = Seal.from_files(settings.seal_cert, settings.seal_key) if settings.seal_cert else None
    if seal is not None and seal.organisation != settings.organisation:
        raise FailedPrecondition(
            f"the document-signing certificate is {seal.organisation!r}'s, but this instance issues reports as "
            f"{settings.organisation!r} (JJJ_GATEWAY_ORGANISATION)"
        )
    if seal is None:
        log.warning("pdf_seal_missing", note="no document-signing certificate: reports are not printed as PDF")
    trust = SealTrust.from_file(settings.seal_roots) if settings.seal_roots else None
    if trust is None:
        log.warning("pdf_trust_missing", note="no CA for PDF signatures: handed-in PDFs cannot be verified")
    return seal, trust


def grpc_api_credentials(settings: GatewaySettings) -> grpc.ServerCredentials | None:
    """TLS for the gRPC API with the gateway's certificate, or None where the settings
    allow plaintext. Callers need only trust the federation CA, unless
    ``grpc_require_client_cert``: then they must present a certificate from it, or the
    handshake fails.

    Raises:
        InvalidInput: plaintext where it is not allowed, or an incomplete certificate.
        FailedPrecondition: a TLS file cannot be read.
    """
    tls = settings.grpc_api_tls()
    if tls is None:
        log.warning("grpc_api_plaintext", address=settings.grpc_listen, note="development only: logins cross in clear")
        return None
    cert, key, ca = tls.read()
    if settings.grpc_require_client_cert:
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)
    return grpc.ssl_server_credentials([(key, cert)])


def _listen_grpc(server: grpc.aio.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    """Bind the gRPC API to ``address``; the port bound.

    Raises:
        RuntimeError: the address cannot be bound.
    """
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as exc:  # what grpcio raises when the bind fails
        raise RuntimeError(f"cannot listen on {address} for gRPC (is another gateway using it?): {exc}") from exc
    if port == 0:  # what older grpcio returns instead
        raise RuntimeError(f"cannot listen on {address} for gRPC: the port is in use or the address is not local")
    return port


async def _watch_keys(store: KeyStore, service: ReportService, sessions: Sessions, every: float = 5.0) -> None:
    """Pick up `jjj keys rotate` without a restart: sign with the new key, publish all."""
    while True:
        await asyncio.sleep(every)
        try:
            if await asyncio.to_thread(store.current_kid) == service.signing_key.kid:
                continue  # the common case: one small file read, no key parsing
            current = await asyncio.to_thread(store.current)
            keyring = await asyncio.to_thread(store.keyring)
        except CreditError as exc:
            log.warning("signing_keys_unreadable", reason=exc.detail)
            continue
        service.signing_key = sessions.signing_key = current
        service.keyring = sessions.keyring = keyring
        log.info("signing_key_rotated", kid=current.kid, published=len(keyring))


async def _seal_periodically(audit: AuditLog, every: float) -> None:
    """Seal the audit chain with a signed checkpoint every ``every`` seconds."""
    while True:
        await asyncio.sleep(every)
        try:
            await audit.seal()
        except Exception:
            log.exception("audit_seal_failed")


async def serve(settings: GatewaySettings) -> None:
    """Run the gateway until SIGINT or SIGTERM."""
    gateway = await start_gateway(settings)
    print(f"gateway listening on {gateway.where}", flush=True)
    await until_stopped()
    await gateway.stop()


async def serve_as_worker(
    settings: GatewaySettings, *, ready: Callable[[str], None], parent: int, metrics_dir: str
) -> None:
    """Run the gateway as one of several worker processes on the same ports (see
    :mod:`infra.workers`) until SIGINT or SIGTERM, or until the parent process is gone;
    ``ready`` is told where it listens once it serves."""
    gateway = await start_gateway(settings, shared_ports=True, metrics_dir=metrics_dir)
    ready(gateway.where)
    await until_stopped(parent=parent)
    await gateway.stop()
