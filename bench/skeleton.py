"""The bare skeleton the gateway is measured against: aiohttp in, three grpc.aio calls to
do-nothing servers, an Ed25519 signature out, nothing else.

    python -m bench.skeleton --port 8090
"""

from __future__ import annotations

import argparse
import asyncio

import grpc
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def main(port: int) -> None:
    servers, stubs = [], []
    for _ in range(3):
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health_aio.HealthServicer(), server)
        grpc_port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        stubs.append(health_pb2_grpc.HealthStub(grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")))
    key = Ed25519PrivateKey.generate()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        await asyncio.gather(*(stub.Check(health_pb2.HealthCheckRequest()) for stub in stubs))
        return web.Response(body=key.sign(body))

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"skeleton on 127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
