"""A node's CPU per ``QuerySubject``, as the gateway asks it: a fresh on-behalf-of
assertion on every call, full answers or lean ones (the caller names the coverage it
holds).

    python -m bench.node_query [--work var/bench-gateway] [--calls 2000]

The Tianjin node of ``bench.gateway``'s seeded directory (run that first, or copy its
directory) serves in its own process; this process asks it for random subjects one call
at a time, and the node's CPU time is read from ``/proc`` around each run, so the
figures hold on a busy machine better than wall-clock ones. Runs alternate full and
lean, twice each, after a warm-up.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import grpc

from bench.procs import Component, free_port, grpc_serving, main_or_fail, processes
from credit.catalogue import catalogue
from credit.profiles import DEFAULT_PROFILE, get_profile
from credit.regions import Region
from federation import wire
from federation.assertions import METADATA_KEY, on_behalf_of
from gateway.access.keys import KeyStore
from nodes.seed import SyntheticSubject, synthetic_subject
from protos.credit.v1 import node_pb2 as pb
from protos.credit.v1 import node_pb2_grpc

REGION = Region.TIANJIN
WARM_UP = 500


async def _run(
    stub: node_pb2_grpc.RegionalNodeStub, key_dir: Path, pool: list[SyntheticSubject], calls: int, *, lean: bool
) -> int:
    """``calls`` queries; the pairs the answers held in all."""
    key = KeyStore(key_dir).current()
    profile = get_profile(DEFAULT_PROFILE)
    held = catalogue(REGION)
    pairs = 0
    for i in range(calls):
        subject = pool[i % len(pool)]
        token = on_behalf_of(key, issuer="bench", user="bench", role="enterprise", subject=subject.id, purpose="基准")
        known = wire.coverage_digest(held, profile, subject.kind) if lean else b""
        reply = await stub.QuerySubject(
            pb.QuerySubjectRequest(subject_id=subject.id, purpose="基准", known_coverage=known),
            metadata=((METADATA_KEY, token),),
        )
        pairs += len(reply.results)
    return pairs


async def main(args: argparse.Namespace) -> None:
    work = Path(args.work)
    db = next(work.glob(f"{REGION.value}-*.db"), None)
    if db is None:
        raise SystemExit(f"no seeded {REGION.value} database in {work}: run python -m bench.gateway first")
    subjects = int(db.stem.rsplit("-", 1)[1])
    rng = random.Random(7)
    pool = [synthetic_subject(REGION, rng.randrange(subjects)) for _ in range(2000)]
    port = free_port()
    with processes(work / "logs") as running:
        argv = ["jjj", "node", "--region", REGION.value, "--db", f"sqlite:///{db}", "--listen", f"127.0.0.1:{port}"]
        node: Component = running.start_python(
            "node-query", [*argv, "--gateway-jwks", str(work / "gateway-jwks.json")], port=port
        )
        await running.wait_ready(node, grpc_serving(f"127.0.0.1:{port}"))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = node_pb2_grpc.RegionalNodeStub(channel)
            await _run(stub, work / "keys", pool, WARM_UP, lean=False)
            for lean in (False, True, False, True):
                cpu, started = node.cpu_seconds(), time.perf_counter()
                pairs = await _run(stub, work / "keys", pool, args.calls, lean=lean)
                used, took = node.cpu_seconds() - cpu, time.perf_counter() - started
                print(
                    f"{'lean' if lean else 'full'}: {args.calls} calls, node CPU {used / args.calls * 1000:.3f} ms "
                    f"a call, {pairs / args.calls:.1f} pairs an answer, {took / args.calls * 1000:.2f} ms a call"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="var/bench-gateway")
    parser.add_argument("--calls", type=int, default=2000)
    arguments = parser.parse_args()
    main_or_fail(lambda: main(arguments))
