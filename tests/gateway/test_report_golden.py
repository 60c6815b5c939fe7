"""The documents the gateway signs, byte for byte, against golden files.

Real nodes on SQLite answer a real gateway over gRPC for a fixed set of subjects: with
records, without, under an open objection, with excluded records only, enterprises and
persons, where catalogues differ between regions (not-covered pairs), with a region
whose node is down (its catalogue known, or not), and with a region served from a
peer's replica. Every input is fixed (data as-of times, the replica's sync time, the
clock), so the canonical JSON of each report must equal what the golden files hold.
Changing how nodes and the gateway talk must not change a byte of it.

The files are ``tests/data/reports/<scenario>.jsonl``: one document per line, in the
order of :data:`SUBJECTS`. ``JJJ_WRITE_GOLDEN=1`` writes them instead of comparing (only
when a change to the documents is intended, and reviewed as such).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import text

from credit.cases import CaseKind
from credit.catalogue import Scope, catalogue
from credit.identifiers import SubjectKind, make_resident_id, make_uscc
from credit.policy import Principal, Role
from credit.regions import Region
from credit.registers import SubjectRegistration
from credit.rules import Procedure, RecordStatus
from credit.signing import canonical
from federation.client import GrpcNodeClient, NodeClient
from gateway.access.keys import KeyStore
from gateway.server import RunningGateway, start_gateway
from gateway.settings import GatewaySettings
from infra.db import sync_engine
from nodes.records import RecordDraft
from nodes.replica import Received
from nodes.service import NodeService
from nodes.servicer import RegionalNodeServicer
from nodes.store import MemoryRecordStore
from protos.credit.v1 import node_pb2 as pb
from protos.credit.v1 import node_pb2_grpc
from tests.conftest import NodeHandle, StartNode, load, load_register
from tests.nodes.builders import penalty

GOLDEN = Path(__file__).parent.parent / "data" / "reports"
WRITE = os.environ.get("JJJ_WRITE_GOLDEN") == "1"

ISSUED_AT = datetime(2025, 6, 16, 2, 0, tzinfo=UTC)  # 10:00 in Beijing: application date 2025-06-16
DATA_AS_OF = {
    Region.BEIJING: "2025-06-12 08:00:00.000000",
    Region.TIANJIN: "2025-06-13 09:30:00.000000",
    Region.HEBEI: "2025-06-11 23:15:00.000000",
}
REPLICA_SYNCED = datetime(2025, 6, 15, 20, 0, tzinfo=UTC)

RECORDS_CO = make_uscc("91120116MA05JBXQ1")  # records in Beijing and Tianjin, one under objection
EXCLUDED_CO = make_uscc("91120104MA06KLMN2")  # only records the profile leaves out
CLEAN_CO = make_uscc("91110105MA01ABCD3")  # nothing anywhere; in Beijing's register
LISTED_CO = make_uscc("91130102MA0XYW123")  # list entries in Hebei, one removed before the window
PERSON = make_resident_id("12010119800101123")  # a penalty in Tianjin
CLEAN_PERSON = make_resident_id("11010519900202234")
SUBJECTS = (RECORDS_CO, EXCLUDED_CO, CLEAN_CO, LISTED_CO, PERSON, CLEAN_PERSON)


def _records() -> dict[Region, list[RecordDraft]]:
    return {
        Region.BEIJING: [
            penalty(RECORDS_CO, decision_no="京市监罚〔2024〕7号", domain="market_regulation"),
            # Beijing covers civil air defence; the other regions do not.
            penalty(RECORDS_CO, decision_no="京人防罚〔2023〕2号", domain="civil_air_defence",
                    decided_on=date(2023, 9, 1)),
            penalty(RECORDS_CO, decision_no="京市监罚〔2021〕1号", decided_on=date(2021, 1, 5)),  # before the window
            penalty(RECORDS_CO, decision_no="京城管强〔2024〕3号", domain="urban_management",
                    scope=Scope.ADMINISTRATIVE_COERCION),  # a scope the profile does not count
            penalty(EXCLUDED_CO, decision_no="京市监简〔2024〕9号", procedure=Procedure.SIMPLIFIED),
        ],
        Region.TIANJIN: [
            penalty(RECORDS_CO, decision_no="津市场监管罚〔2024〕1号", decided_on=date(2024, 3, 15)),
            penalty(RECORDS_CO, decision_no="津市场监管罚〔2024〕5号", decided_on=date(2024, 8, 2)),
            penalty(RECORDS_CO, decision_no="津环罚〔2023〕12号", domain="ecology_environment",
                    decided_on=date(2023, 5, 20), status=RecordStatus.REPAIRED),
            penalty(RECORDS_CO, decision_no="津网信罚〔2024〕1号", domain="cyberspace"),  # not in Tianjin's catalogue
            penalty(EXCLUDED_CO, decision_no="津市场监管不罚〔2024〕2号", category="不予行政处罚"),
            penalty(EXCLUDED_CO, decision_no="津市场监管罚〔2024〕3号", status=RecordStatus.REVOKED),
            penalty(EXCLUDED_CO, decision_no="津税罚〔2024〕4号", domain="taxation", procedure=Procedure.SIMPLIFIED),
            penalty(PERSON, decision_no="津卫罚〔2024〕8号", domain="health", kind=SubjectKind.PERSON, category="警告"),
        ],
        Region.HEBEI: [
            penalty(LISTED_CO, decision_no="冀市监异〔2023〕4号", scope=Scope.ABNORMAL_OPERATIONS_LIST,
                    decided_on=date(2023, 2, 1), procedure=Procedure.NOT_APPLICABLE, category="列入经营异常名录"),
            penalty(LISTED_CO, decision_no="冀市监异〔2019〕1号", scope=Scope.ABNORMAL_OPERATIONS_LIST,
                    decided_on=date(2019, 2, 1), removed_on=date(2020, 1, 1), procedure=Procedure.NOT_APPLICABLE),
            penalty(LISTED_CO, decision_no="冀应急〔2024〕1号", domain="work_safety",
                    scope=Scope.FATAL_ACCIDENT_LIST, decided_on=date(2024, 11, 30),
                    procedure=Procedure.NOT_APPLICABLE),
        ],
    }  # fmt: skip


def _register(region: Region) -> list[SubjectRegistration]:
    entry = {
        Region.BEIJING: (CLEAN_CO, "北京清白科技有限公司", "北京市朝阳区光明路1号", date(2015, 4, 1)),
        Region.TIANJIN: (RECORDS_CO, "天津测试科技有限公司", "天津市滨海新区人民路5号", date(2012, 7, 9)),
    }.get(region)
    if entry is None:
        return []
    subject_id, name, address, established = entry
    return [
        SubjectRegistration(
            subject_id=subject_id,
            name=name,
            region=region,
            legal_rep="张三",
            address=address,
            authority=f"{region.name_zh}市场监督管理局",
            established_on=established,
            status="存续",
        )
    ]


class Down(RegionalNodeServicer):
    """A node whose queries fail as an unreachable one's do; with ``catalogue_down`` its
    catalogue too, so that the gateway never learns what the region covers."""

    def __init__(self, region: Region, *, catalogue_down: bool) -> None:
        super().__init__(service=NodeService(store=MemoryRecordStore(region=region), catalogue=catalogue(region)))
        self.catalogue_down = catalogue_down

    async def GetCatalogue(self, request: Any, context: Any) -> Any:
        if self.catalogue_down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "scripted outage")
        return await super().GetCatalogue(request, context)

    async def QuerySubject(self, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "scripted outage")


@pytest.fixture
async def down() -> AsyncIterator[Callable[..., Any]]:
    servers = []

    async def start(region: Region, *, catalogue_down: bool = False) -> str:
        server = grpc.aio.server()
        node_pb2_grpc.add_RegionalNodeServicer_to_server(Down(region, catalogue_down=catalogue_down), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        await server.stop(0)


async def _nodes(tmp_path: Path, start_node_at: StartNode, jwks: Path) -> dict[Region, NodeHandle]:
    records = _records()
    handles = {}
    for region in Region:
        db = f"sqlite:///{tmp_path / region.value}.db"
        load(db, records[region])
        if _register(region):
            load_register(db, _register(region))
        engine = sync_engine(db)
        with engine.begin() as conn:
            conn.execute(text("UPDATE ingests SET finished_at = :at"), {"at": DATA_AS_OF[region]})
        engine.dispose()
        handles[region] = await start_node_at(region, db, gateway_jwks=str(jwks))
    # An open objection against one of Tianjin's records, and a closed-looking one: an
    # objection's repair application (a repair case does not mark the record).
    tianjin = handles[Region.TIANJIN].node.desk
    marked = next(d for d in records[Region.TIANJIN] if d.decision_no == "津市场监管罚〔2024〕5号")
    await tianjin.file(
        subject_id=RECORDS_CO, record_id=marked.record_id, kind=CaseKind.OBJECTION, reason="金额有误", filed_by="t"
    )
    repair = next(d for d in records[Region.TIANJIN] if d.decision_no == "津市场监管罚〔2024〕1号")
    await tianjin.file(
        subject_id=RECORDS_CO, record_id=repair.record_id, kind=CaseKind.CREDIT_REPAIR, reason="已缴清", filed_by="t"
    )
    await _replicate(handles[Region.TIANJIN], into=handles[Region.BEIJING])
    return handles


async def _replicate(origin: NodeHandle, *, into: NodeHandle) -> None:
    """Beijing's replica of Tianjin, as a follower would keep it, synced at a fixed time."""
    region = origin.node.settings.region
    replica = into.node.replica
    batches = [b async for b in origin.node.servicer.WatchChangeBatches(pb.WatchChangesRequest(), _NoPeer())]
    assert batches[-1].caught_up
    replica.start(region, "tianjin.example:50051")
    replica.save_catalogue(region, await origin.stub.GetCatalogue(pb.GetCatalogueRequest()))
    replica.apply(region, [Received(batch, REPLICA_SYNCED) for batch in batches], after_seq=0)


class _NoPeer:
    """The context of a call from inside the test (no certificate, no metadata)."""

    def peer(self) -> str:
        return "test"


async def _documents(tmp_path: Path, name: str, clients: list[NodeClient], keys: Path) -> list[bytes]:
    settings = GatewaySettings.from_env(
        {},
        listen="127.0.0.1:0",
        grpc_listen="127.0.0.1:0",
        db_url=f"sqlite:///{tmp_path / f'gateway-{name}.db'}",
        keys_dir=str(keys),
        nodes={client.region: "given" for client in clients},
        replica_max_age_seconds=1e10,  # the replica's fixed sync time is long past
    )
    running: RunningGateway = await start_gateway(settings, clients=clients)
    try:
        assert running.service is not None
        running.service.clock = lambda: ISSUED_AT
        # A region's breaker opens after five failed subjects; its cool-down must not end
        # because the machine was slow, or the last report's reason would change.
        for state in running.service.fanout._regions.values():
            state.breaker.clock = lambda: 0.0
        admin = Principal("golden-admin", Role.ADMIN, None, settings.issuer)
        documents = []
        for subject in SUBJECTS:
            document = await running.service.draft(admin, subject_id=subject, purpose="投标")
            documents.append(canonical(document))
        return documents
    finally:
        await running.stop()


def _check(name: str, documents: list[bytes]) -> None:
    path = GOLDEN / f"{name}.jsonl"
    if WRITE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(d + b"\n" for d in documents))
        return
    expected = path.read_bytes().splitlines()
    assert len(expected) == len(SUBJECTS)
    for subject, want, got in zip(SUBJECTS, expected, documents, strict=True):
        assert got == want, f"{name}: the report on {subject} changed"


@pytest.fixture
async def federation(tmp_path: Path, start_node_at: StartNode) -> tuple[dict[Region, NodeHandle], Path]:
    keys = tmp_path / "keys"
    store = KeyStore(keys)
    store.ensure()
    jwks = tmp_path / "gateway-jwks.json"
    jwks.write_text(json.dumps(store.keyring().jwks()), encoding="utf-8")
    return await _nodes(tmp_path, start_node_at, jwks), keys


def _clients(handles: dict[Region, NodeHandle], **addresses: str) -> list[NodeClient]:
    return [GrpcNodeClient(region, addresses.get(region.value, handles[region].address)) for region in Region]


async def test_the_reports_are_the_golden_ones(
    tmp_path: Path, federation: tuple[dict[Region, NodeHandle], Path], down: Callable[..., Any]
) -> None:
    handles, keys = federation
    scenarios = {
        "answered": _clients(handles),
        "hebei-down": _clients(handles, hebei=await down(Region.HEBEI)),
        "hebei-unknown": _clients(handles, hebei=await down(Region.HEBEI, catalogue_down=True)),
        "tianjin-from-replica": _clients(handles, tianjin=await down(Region.TIANJIN)),
    }
    for name, clients in scenarios.items():
        _check(name, await _documents(tmp_path, name, clients, keys))
