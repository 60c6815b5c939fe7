"""Sessions end when they should: at logout (API and portal), when the account's role
changes and when the account is removed — in every process on the database."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from gateway.access import auth
from gateway.access.auth import Sessions
from gateway.api.http import SESSIONS
from gateway.registry import Account


async def _works(api: Any, token: str) -> int:
    status, _, _ = await api.call("GET", "/api/v1/reports/JJJ-NONE", token)
    return int(status)  # 404: the session works; 401: it does not


async def test_logout_ends_the_session(gateway: Any) -> None:
    api, _, _ = gateway
    token = await api.login("clean-co", "demo-clean-2024")
    assert await _works(api, token) == 404
    status, _, _ = await api.call("POST", "/api/v1/logout", token)
    assert status == 204
    assert await _works(api, token) == 401
    status, body, _ = await api.call("POST", "/api/v1/logout", token)
    assert status == 401 and "logged out" in body["detail"]


async def test_the_portal_logout_ends_the_session_server_side(gateway: Any) -> None:
    api, _, _ = gateway
    token = await api.login("clean-co", "demo-clean-2024")
    _, home, _ = await api.call("GET", "/", headers={"Cookie": f"jjj_session={token}"})
    csrf = re.search(r'name="csrf" value="([^"]+)"', home)
    assert csrf is not None
    status, _, _ = await api.call(
        "POST",
        "/logout",
        data={"csrf": csrf[1]},
        headers={"Cookie": f"jjj_csrf={csrf[1]}; jjj_session={token}"},
        allow_redirects=False,
    )
    assert status in (302, 303)
    assert await _works(api, token) == 401


@pytest.mark.parametrize("change", ["role", "removed"])
async def test_an_account_change_ends_its_sessions(gateway: Any, change: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "ENDED_REFRESH", 0.0)
    api, running, _ = gateway
    token = await api.login("bank", "demo-bank-2024")
    assert await _works(api, token) == 404
    account = await running.registry.account("bank")
    assert account is not None
    if change == "role":
        running.registry.add_account(
            Account(account.username, account.password_hash, "admin", None, account.display_name)
        )
    else:
        assert running.registry.remove_account("bank")
    assert await _works(api, token) == 401
    if change == "role":
        fresh = await api.login("bank", "demo-bank-2024")
        assert await _works(api, fresh) == 404


async def test_another_process_sees_the_logout(gateway: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second gateway process on the same database: its own Sessions, the same keys."""
    monkeypatch.setattr(auth, "ENDED_REFRESH", 0.0)
    api, running, _ = gateway
    mine: Sessions = running.runner.app[SESSIONS]
    other = Sessions(
        issuer=mine.issuer, signing_key=mine.signing_key, keyring=mine.keyring, lifetime=timedelta(minutes=30)
    )
    other.watch_ended(running.registry.ended_since)
    token = await api.login("li-hua", "demo-person-2024")
    assert other.verify(token).username == "li-hua"  # remembered there now
    await api.call("POST", "/api/v1/logout", token)
    with pytest.raises(auth.Unauthenticated):
        other.verify(token)
