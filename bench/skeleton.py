"""The floor the gateway is measured against, in four processes as a deployment has
them: three gRPC servers that do nothing but answer, and a front door that takes an
HTTP request, asks all three at once, joins their answers and signs them.

    python -m bench.skeleton node --port 50100
    python -m bench.skeleton front --port 8090 --nodes 127.0.0.1:50100,127.0.0.1:50101,127.0.0.1:50102

A node answers any request with ``ANSWER_BYTES`` fixed bytes, about what a real node's
``QuerySubject`` answer weighs; it also serves the standard health service, so that it
is checked for readiness as a real node is. The front door serves ``POST /`` (Ed25519
signature of the joined answers as the body) and ``GET /healthz``.
"""

from __future__ import annotations

import argparse
import asyncio

import grpc
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Mean serialised QuerySubjectResponse of the three nodes for the benchmark's subject
# pool (1.0–1.2 kB, measured at 100 k records per node).
ANSWER_BYTES = 1200
METHOD = "/bench.Skeleton/Query"


async def node(port: int) -> None:
    answer = b"\x0a" * ANSWER_BYTES

    async def query(_request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return answer

    # No serialisers: the method takes and returns raw bytes, so the floor holds no
    # protobuf work beyond the gRPC machinery itself.
    handler = grpc.method_handlers_generic_handler(
        "bench.Skeleton", {"Query": grpc.unary_unary_rpc_method_handler(query)}
    )
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler,))
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    print(f"skeleton node on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


async def front(port: int, nodes: list[str]) -> None:
    channels = [grpc.aio.insecure_channel(address) for address in nodes]
    calls = [channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None) for channel in channels]
    key = Ed25519PrivateKey.generate()

    async def report(request: web.Request) -> web.Response:
        body = await request.read()
        answers = await asyncio.gather(*(call(body, timeout=5.0) for call in calls))
        return web.Response(body=key.sign(b"".join(answers)))

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/", report)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"skeleton front on 127.0.0.1:{port} to {', '.join(nodes)}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    roles = parser.add_subparsers(dest="role", required=True)
    node_args = roles.add_parser("node", help="a gRPC server answering fixed bytes")
    node_args.add_argument("--port", type=int, required=True)
    front_args = roles.add_parser("front", help="HTTP in, three gRPC calls, an Ed25519 signature out")
    front_args.add_argument("--port", type=int, required=True)
    front_args.add_argument("--nodes", required=True, help="HOST:PORT,HOST:PORT,HOST:PORT")
    args = parser.parse_args()
    if args.role == "node":
        asyncio.run(node(args.port))
    else:
        asyncio.run(front(args.port, args.nodes.split(",")))
