"""Standard health checking, and a generic client that knows the node only by reflection."""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from credit.regions import Region
from tests.conftest import StartNode
from tests.nodes.builders import ACME, penalty


async def test_health_answers_serving_then_not_serving_on_shutdown(tmp_path: object, start_node_at: StartNode) -> None:
    node = await start_node_at(Region.BEIJING, f"sqlite:///{tmp_path}/n.db")
    health = health_pb2_grpc.HealthStub(node.channel)
    for service in ("", "credit.v1.RegionalNode"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    await node.node.health.enter_graceful_shutdown()
    reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_reflection_lists_services(tmp_path: object, start_node_at: StartNode) -> None:
    node = await start_node_at(Region.TIANJIN, f"sqlite:///{tmp_path}/n.db")
    stub = reflection_pb2_grpc.ServerReflectionStub(node.channel)
    names: set[str] = set()
    async for reply in stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])):
        names |= {s.name for s in reply.list_services_response.service}
    assert {"credit.v1.RegionalNode", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names


def test_a_generic_client_discovers_and_calls_the_node(tmp_path: object) -> None:
    """Like grpcurl: no generated code of ours, only what reflection tells."""
    import asyncio

    from nodes.server import start_node
    from nodes.settings import NodeSettings
    from tests.conftest import load

    db = f"sqlite:///{tmp_path}/n.db"
    load(db, [penalty(decision_no="R-1")])

    async def serve() -> tuple[object, int]:
        settings = NodeSettings.from_env(
            {}, region=Region.TIANJIN, db_url=db, listen="127.0.0.1:0", allow_unasserted=True
        )
        node = await start_node(settings)
        return node, node.port

    loop = asyncio.new_event_loop()
    try:
        node, port = loop.run_until_complete(serve())
        result = loop.run_until_complete(asyncio.to_thread(_generic_call, port))
        loop.run_until_complete(node.stop(0))  # type: ignore[attr-defined]
    finally:
        loop.close()
    penalties = [
        r
        for r in result["results"]
        if r["domain"] == "market_regulation" and r["scope"] == "SCOPE_ADMINISTRATIVE_PENALTY"
    ]
    assert penalties[0]["outcome"] == "OUTCOME_RECORDS"
    assert penalties[0]["records"][0]["decisionNo"] == "R-1"


def _generic_call(port: int) -> dict[str, object]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = database.get_services()
        assert "credit.v1.RegionalNode" in services
        pool = descriptor_pool.DescriptorPool(database)
        service = pool.FindServiceByName("credit.v1.RegionalNode")
        method = service.FindMethodByName("QuerySubject")
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        request = json_format.ParseDict({"subjectId": ACME, "options": {"profile": "tianjin-2023"}}, request_class())
        call = channel.unary_unary(
            f"/{service.full_name}/{method.name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        return json_format.MessageToDict(call(request, timeout=10))
