"""A real gateway over three real nodes, a small HTTP client for its API, and Chromium."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from credit.regions import Region
from gateway.access.keys import KeyStore
from gateway.demo import seed_demo_accounts
from gateway.server import RunningGateway, start_gateway
from gateway.settings import GatewaySettings
from nodes.seed import generate, registrations
from tests.conftest import NodeHandle, StartNode
from tests.gateway.browsing import CHROMIUM
from tests.gateway.contract import check_answer
from tests.gateway.sealing import ORGANISATION, federation

TODAY = date(2025, 6, 16)
REGISTERED = 20  # synthetic subjects per region whose register entries the nodes hold


def issue_on(running: RunningGateway, day: date) -> None:
    """Set the gateway's clock so that reports are issued on ``day`` (10:00 China Standard
    Time, then running on): the application date is the day of issue and no caller can
    choose it."""
    assert running.service is not None
    start = datetime.now(UTC)
    at = datetime.combine(day, time(2, 0), tzinfo=UTC)
    running.service.clock = lambda: at + (datetime.now(UTC) - start)


class Api:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base

    async def fetch(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> tuple[int, bytes, aiohttp.ClientResponse]:
        """The status, the body as bytes and the reply; an answer of the API is first
        checked against its OpenAPI document (``check_answer``, tests/gateway/contract.py)."""
        headers = {**kwargs.pop("headers", {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        async with self.http.request(method, self.base + path, headers=headers, **kwargs) as reply:
            data = await reply.read()
            check_answer(method, reply.url, reply.request_info.headers, reply.status, reply.headers, data)
            return reply.status, data, reply

    async def call(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        """Like :meth:`fetch`, the body decoded: JSON when the reply says so, else text."""
        status, _, reply = await self.fetch(method, path, token, **kwargs)
        text = await reply.text()  # the body read by fetch, decoded
        body = json.loads(text) if text and reply.content_type.endswith("json") else text
        return status, body, reply

    async def login(self, username: str, password: str) -> str:
        status, body, _ = await self.call("POST", "/api/v1/login", json={"username": username, "password": password})
        assert status == 200, body
        return str(body["token"])


async def start_demo_nodes(tmp_path: Path, start_node_at: StartNode) -> dict[Region, NodeHandle]:
    """The three regions' nodes over the demo records, each on its own SQLite file in
    ``tmp_path``, trusting the gateway keys in ``tmp_path / "keys"`` (made here if absent):
    they refuse queries without the gateway's assertion."""
    KeyStore(tmp_path / "keys").ensure()
    jwks = tmp_path / "gateway-jwks.json"
    jwks.write_text(json.dumps(KeyStore(tmp_path / "keys").keyring().jwks()), encoding="utf-8")
    nodes = {}
    for region in Region:
        drafts = [d for batch in generate(region, subjects=0, today=TODAY) for d in batch]
        # Every region holds a register (the demo enterprises in theirs, and a few
        # synthetic enterprises with no records), so that every register is looked in.
        entries = [e for batch in registrations(region, subjects=REGISTERED, today=TODAY) for e in batch]
        nodes[region] = await start_node_at(
            region, f"sqlite:///{tmp_path / region.value}.db", drafts, registrations=entries, gateway_jwks=str(jwks)
        )
    return nodes


@pytest.fixture
async def gateway(
    tmp_path: Path, start_node_at: StartNode
) -> AsyncIterator[tuple[Api, RunningGateway, dict[Region, Any]]]:
    nodes = await start_demo_nodes(tmp_path, start_node_at)
    settings = GatewaySettings.from_env(
        {},
        listen="127.0.0.1:0",
        grpc_listen="127.0.0.1:0",
        db_url=f"sqlite:///{tmp_path / 'gateway.db'}",
        keys_dir=str(tmp_path / "keys"),
        nodes={region: handle.address for region, handle in nodes.items()},
        deadline=3.0,
        region_deadline=2.0,
        # The issuing organisation, with its document-signing certificate from the test
        # federation's CA (against which handed-in PDFs are checked too).
        organisation=ORGANISATION,
        contact="022-00000000（工作日 9:00—17:00）",
        seal_cert=str(federation().seal_cert),
        seal_key=str(federation().seal_key),
        seal_ca=str(federation().ca),
    )
    running = await start_gateway(settings)
    seed_demo_accounts(running.registry)
    async with aiohttp.ClientSession() as http:
        yield Api(http, running.url), running, nodes
    await running.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium, driven by Playwright (tests/gateway/browsing.py opens its tabs)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        await chromium.close()
