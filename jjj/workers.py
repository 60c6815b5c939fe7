"""``jjj gateway --workers N``: one gateway instance in N processes on the same ports.

The parent checks and holds the ports (:func:`infra.workers.reserve`), brings the
database to its latest schema once, and runs the workers (:class:`infra.workers.WorkerPool`);
each worker is a whole gateway (:func:`gateway.server.serve_as_worker`). What the workers
must not each do for themselves is shared through the database (batch jobs and change
feeds under leases, throttles, ended sessions, the audit chain), so the workers of one
instance and the replicas of it on other machines behave as one.

Each worker keeps its metrics in a directory the parent makes (prometheus_client's
multiprocess mode, told by ``PROMETHEUS_MULTIPROC_DIR``), so ``/metrics`` adds up all
workers whichever one answers.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from typing import TYPE_CHECKING

from jjj import loop

if TYPE_CHECKING:
    from gateway.settings import GatewaySettings
    from infra.workers import WorkerLink, WorkerPool


def run_gateway_workers(settings: GatewaySettings, *, log_format: str, log_level: str) -> int:
    """Run ``settings.workers`` gateway workers until SIGTERM or SIGINT; the exit status.

    Raises:
        PortTaken: the HTTP or gRPC port is in use.
        sqlalchemy.exc.OperationalError: the database cannot be reached.
        RuntimeError: a worker could not start (its reason in the message).
    """
    from gateway.registry import MIGRATIONS
    from infra.db import migrate
    from infra.workers import WorkerPool, reserve

    reservation = reserve([("HTTP", settings.listen), ("gRPC", settings.grpc_listen)])
    metrics = tempfile.mkdtemp(prefix="jjj-gateway-metrics-")
    try:
        migrate(settings.db_url, scripts=MIGRATIONS)  # once, before the workers open the database
        listen, grpc_listen = reservation.addresses  # a port 0 resolved: every worker on the same one
        shared = dataclasses.replace(settings, listen=listen, grpc_listen=grpc_listen)
        # Read by prometheus_client as each worker imports it.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics
        pool = WorkerPool(
            gateway_worker,
            (shared, metrics, log_format, log_level),
            count=settings.workers,
            name="gateway-worker",
            on_exit=lambda pid: _forget_metrics_of(pid, metrics),
        )
        return pool.run(announce=_announce)
    finally:
        reservation.close()
        shutil.rmtree(metrics, ignore_errors=True)


def _announce(pool: WorkerPool) -> None:
    pids = ", ".join(str(pid) for pid in pool.pids)
    print(f"gateway listening on {pool.detail}, in {pool.count} worker processes (pids {pids})", flush=True)


def _forget_metrics_of(pid: int, directory: str) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]  # its series leave /metrics


def gateway_worker(link: WorkerLink, settings: GatewaySettings, metrics: str, log_format: str, log_level: str) -> None:
    """One worker: a whole gateway on the shared ports, until SIGTERM or its parent is gone."""
    import structlog

    from gateway.server import serve_as_worker
    from jjj.logs import configure

    configure(log_format, log_level)
    structlog.contextvars.bind_contextvars(worker=link.number)
    loop.run(serve_as_worker(settings, ready=link.ready, parent=link.parent, metrics_dir=metrics))
