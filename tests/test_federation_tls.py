"""Mutual TLS under the federation's CA, and one login honoured across gateway instances."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import jwt
import pytest
from cryptography import x509

from credit.errors import FailedPrecondition
from credit.regions import Region
from federation.tls import gateway_identity, init_ca, init_federation, issue, node_identity
from gateway.access.keys import KeyStore
from gateway.demo import seed_demo_accounts
from gateway.server import RunningGateway, start_gateway
from gateway.settings import GatewaySettings
from nodes.seed import DEMO_SUBJECTS, generate
from protos.credit.v1 import node_pb2 as pb
from protos.credit.v1 import node_pb2_grpc
from tests.conftest import StartNode
from tests.gateway.conftest import TODAY, Api


def _credentials(certs: Path, name: str | None) -> grpc.ChannelCredentials:
    ca = (certs / "ca.pem").read_bytes()
    if name is None:
        return grpc.ssl_channel_credentials(root_certificates=ca)
    return grpc.ssl_channel_credentials(
        root_certificates=ca,
        private_key=(certs / f"{name}.key").read_bytes(),
        certificate_chain=(certs / f"{name}.pem").read_bytes(),
    )


async def _catalogue(address: str, credentials: grpc.ChannelCredentials) -> pb.Catalogue:
    async with grpc.aio.secure_channel(address, credentials) as channel:
        return await node_pb2_grpc.RegionalNodeStub(channel).GetCatalogue(pb.GetCatalogueRequest(), timeout=5)


@pytest.fixture
async def tls_node(tmp_path: Path, start_node_at: StartNode) -> tuple[Any, Path]:
    certs = tmp_path / "certs"
    init_federation(certs)
    node = await start_node_at(
        Region.TIANJIN,
        f"sqlite:///{tmp_path / 'tianjin.db'}",
        allow_unasserted=True,
        tls_cert=str(certs / "node-tianjin.pem"),
        tls_key=str(certs / "node-tianjin.key"),
        tls_ca=str(certs / "ca.pem"),
    )
    return node, certs


async def test_certificates_name_their_member_and_cover_loopback(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    assert init_federation(certs, hosts=["node.tianjin.example"]) == [
        "ca",
        "node-beijing",
        "node-tianjin",
        "node-hebei",
        "gateway",
    ]
    cert = x509.load_pem_x509_certificate((certs / "node-tianjin.pem").read_bytes())
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "node:tianjin"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"node-tianjin", "node.tianjin.example", "localhost"} <= set(sans.get_values_for_type(x509.DNSName))
    assert 360 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 366
    assert oct((certs / "ca.key").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(FailedPrecondition):
        init_ca(certs)  # a CA is never overwritten


async def test_a_node_accepts_a_member_and_refuses_strangers(tls_node: tuple[Any, Path], tmp_path: Path) -> None:
    node, certs = tls_node
    address = node.node.address
    catalogue = await _catalogue(address, _credentials(certs, "gateway"))
    assert catalogue.region == "tianjin"

    # No client certificate: the handshake fails.
    with pytest.raises(grpc.aio.AioRpcError) as none:
        await _catalogue(address, _credentials(certs, None))
    assert none.value.code() is grpc.StatusCode.UNAVAILABLE

    # A certificate from another CA (trusting the right server CA all the same).
    foreign = tmp_path / "foreign"
    init_federation(foreign)
    stranger = grpc.ssl_channel_credentials(
        root_certificates=(certs / "ca.pem").read_bytes(),
        private_key=(foreign / "gateway.key").read_bytes(),
        certificate_chain=(foreign / "gateway.pem").read_bytes(),
    )
    with pytest.raises(grpc.aio.AioRpcError) as other_ca:
        await _catalogue(address, stranger)
    assert other_ca.value.code() is grpc.StatusCode.UNAVAILABLE

    # An expired certificate from the right CA.
    issue(
        certs,
        "gateway-old",
        gateway_identity("old"),
        days=1,
        now=datetime.now(UTC) - timedelta(days=10),
    )
    with pytest.raises(grpc.aio.AioRpcError) as expired:
        await _catalogue(address, _credentials(certs, "gateway-old"))
    assert expired.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_a_node_authorises_callers_by_the_identity_in_their_certificate(tls_node: tuple[Any, Path]) -> None:
    node, certs = tls_node
    address = node.node.address
    request = pb.QuerySubjectRequest(subject_id=DEMO_SUBJECTS[0].id)
    # A peer node may follow the change feed and read the catalogue, but not query subjects.
    async with grpc.aio.secure_channel(address, _credentials(certs, "node-beijing")) as channel:
        stub = node_pb2_grpc.RegionalNodeStub(channel)
        assert (await stub.GetCatalogue(pb.GetCatalogueRequest(), timeout=5)).region == "tianjin"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.QuerySubject(request, timeout=5)
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert "node:beijing" in (refused.value.details() or "")
        changes = [c async for c in stub.WatchChanges(pb.WatchChangesRequest(after_seq=0, follow=False), timeout=5)]
        assert changes == []
    async with grpc.aio.secure_channel(address, _credentials(certs, "gateway")) as channel:
        answer = await node_pb2_grpc.RegionalNodeStub(channel).QuerySubject(request, timeout=5)
        assert answer.region == "tianjin"
    # An identity the federation never issued to a member is refused too.
    issue(certs, "intruder", "someone:else")
    with pytest.raises(grpc.aio.AioRpcError) as odd:
        await _catalogue(address, _credentials(certs, "intruder"))
    assert odd.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert node_identity(Region.TIANJIN) == "node:tianjin"


async def _instance(
    tmp_path: Path, name: str, nodes: dict[Region, str], certs: Path, trust: str = ""
) -> RunningGateway:
    settings = GatewaySettings.from_env(
        {},
        listen="127.0.0.1:0",
        grpc_listen="127.0.0.1:0",
        db_url=f"sqlite:///{tmp_path / ('gateway-' + name)}.db",
        keys_dir=str(tmp_path / f"keys-{name}"),
        issuer=f"jjj-gateway-{name}",
        nodes=nodes,
        trust=trust,
        tls_cert=str(certs / "gateway.pem"),
        tls_key=str(certs / "gateway.key"),
        tls_ca=str(certs / "ca.pem"),
    )
    running = await start_gateway(settings)
    seed_demo_accounts(running.registry)
    return running


async def test_one_login_is_honoured_by_trusting_instances_only(tmp_path: Path, start_node_at: StartNode) -> None:
    certs = tmp_path / "certs"
    init_federation(certs)
    jwks_files = []
    for name in ("tianjin", "beijing", "hebei"):
        store = KeyStore(tmp_path / f"keys-{name}")
        store.ensure()
        path = tmp_path / f"jwks-{name}.json"
        path.write_text(json.dumps(store.keyring().jwks()), encoding="utf-8")
        jwks_files.append(str(path))
    nodes = {}
    for region in Region:
        drafts = [d for batch in generate(region, subjects=0, today=TODAY) for d in batch]
        handle = await start_node_at(
            region,
            f"sqlite:///{tmp_path / region.value}.db",
            drafts,
            gateway_jwks=",".join(jwks_files),  # the nodes serve every instance of the federation
            tls_cert=str(certs / f"node-{region.value}.pem"),
            tls_key=str(certs / f"node-{region.value}.key"),
            tls_ca=str(certs / "ca.pem"),
        )
        nodes[region] = handle.node.address
    tianjin = await _instance(tmp_path, "tianjin", nodes, certs)
    beijing = await _instance(tmp_path, "beijing", nodes, certs, trust=f"jjj-gateway-tianjin={jwks_files[0]}")
    hebei = await _instance(tmp_path, "hebei", nodes, certs)  # trusts nobody else
    try:
        async with aiohttp.ClientSession() as http:
            at_tianjin, at_beijing, at_hebei = Api(http, tianjin.url), Api(http, beijing.url), Api(http, hebei.url)
            token = await at_tianjin.login("records-co", "demo-records-2024")
            status, report, _ = await at_beijing.call("POST", "/api/v1/reports", token, json={"years": 3})
            assert status == 201, report
            assert report["report"]["issuer"] == "jjj-gateway-beijing"
            assert {r["status"] for r in report["report"]["regions"]} == {"answered"}  # over mTLS
            status, body, _ = await at_hebei.call("POST", "/api/v1/reports", token, json={"years": 3})
            assert status == 401 and "unknown key" in body["detail"]

            # A token signed by a trusted peer's key but claiming another issuer is refused.
            claims = jwt.decode(token, options={"verify_signature": False})
            claims["iss"] = "jjj-gateway-hebei"
            key = KeyStore(tmp_path / "keys-tianjin").current()
            forged = jwt.encode(claims, key.private, algorithm="EdDSA", headers={"kid": key.kid})
            status, body, _ = await at_beijing.call("POST", "/api/v1/reports", forged, json={"years": 3})
            assert status == 401 and "signed by 'jjj-gateway-tianjin'" in body["detail"]
    finally:
        for running in (tianjin, beijing, hebei):
            await running.stop()


def test_trust_settings_are_checked() -> None:
    from credit.errors import InvalidInput

    with pytest.raises(InvalidInput):
        GatewaySettings.from_env({}, trust="no-equals-sign")
    with pytest.raises(InvalidInput):
        GatewaySettings.from_env({}, issuer="a", trust="a=/tmp/x.json")
    with pytest.raises(InvalidInput):
        GatewaySettings.from_env({}, tls_cert="only-one.pem")
