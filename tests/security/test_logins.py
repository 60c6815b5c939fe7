"""Logins under attack: parallel guessing cannot outrun the throttles, which every front
door shares, and password hashing does not stall the gateway."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import grpc
import pytest

from gateway.access.auth import ADDRESS_LIMIT, LOCK_AFTER
from gateway.api.grpc_api import peer_address
from protos.credit.v1 import gateway_pb2 as gpb
from protos.credit.v1 import gateway_pb2_grpc


async def test_parallel_wrong_logins_are_throttled_and_the_gateway_keeps_answering(gateway: Any) -> None:
    """60 wrong logins at once from one address: at most the limit reach a password check,
    the rest are refused with 429; health checks are answered in the meantime."""
    api, _, _ = gateway
    usernames = [f"nobody-{i}" for i in range(60)]

    async def attempt(name: str) -> int:
        status, _, _ = await api.call("POST", "/api/v1/login", json={"username": name, "password": "wrong"})
        return status

    async def health() -> int:
        status, _, _ = await api.call("GET", "/healthz")
        return status

    results = await asyncio.gather(*(attempt(n) for n in usernames), *(health() for _ in range(5)))
    logins, healths = results[:60], results[60:]
    assert set(logins) <= {401, 429}
    assert logins.count(401) <= ADDRESS_LIMIT
    assert logins.count(429) >= 60 - ADDRESS_LIMIT
    assert healths == [200] * 5


async def test_parallel_guesses_at_one_account_stop_at_the_lock(gateway: Any) -> None:
    api, _, _ = gateway

    async def attempt() -> int:
        status, _, _ = await api.call("POST", "/api/v1/login", json={"username": "bank", "password": "guess"})
        return status

    results = await asyncio.gather(*(attempt() for _ in range(15)))
    assert results.count(401) <= LOCK_AFTER
    assert results.count(429) >= 15 - LOCK_AFTER
    # Locked: even the right password waits now.
    status, body, _ = await api.call("POST", "/api/v1/login", json={"username": "bank", "password": "demo-bank-2024"})
    assert status == 429, body


async def test_one_throttle_for_every_front_door(gateway: Any) -> None:
    api, running, _ = gateway
    for i in range(ADDRESS_LIMIT):
        status, _, _ = await api.call("POST", "/api/v1/login", json={"username": f"x{i}", "password": "wrong"})
        assert status == 401
    # The portal's form and the gRPC API count the same address.
    _, form, _ = await api.call("GET", "/")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    status, page, _ = await api.call(
        "POST",
        "/login",
        data={"username": "admin", "password": "demo-admin-2024", "csrf": csrf[1]},
        headers={"Cookie": f"jjj_csrf={csrf[1]}"},  # the client's jar keeps no cookies for an IP host
    )
    assert status == 429 and "尝试次数过多" in page and "too many" not in page  # the page speaks Chinese only
    async with grpc.aio.insecure_channel(running.grpc_address) as channel:
        stub = gateway_pb2_grpc.ReportGatewayStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Login(gpb.LoginRequest(username="admin", password="demo-admin-2024"))
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_right_password_does_not_count_against_the_address(gateway: Any) -> None:
    api, _, _ = gateway
    for _ in range(ADDRESS_LIMIT + 5):
        await api.login("li-hua", "demo-person-2024")


@pytest.mark.parametrize(
    ("peer", "address"),
    [("ipv4:127.0.0.1:5555", "127.0.0.1"), ("ipv6:[::1]:5555", "::1"), ("unix:/tmp/s", "unix")],
)
def test_grpc_peers_count_as_the_http_door_sees_them(peer: str, address: str) -> None:
    assert peer_address(peer) == address
