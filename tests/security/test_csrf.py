"""Portal forms: the CSRF token is signed, bound to the session and renewed at login."""

from __future__ import annotations

import re
from typing import Any


async def _token(api: Any, session: str = "") -> str:
    headers = {"Cookie": f"jjj_session={session}"} if session else {}
    _, page, _ = await api.call("GET", "/", headers=headers)
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found[1]


async def _logout(api: Any, session: str, csrf: str) -> int:
    status, _, _ = await api.call(
        "POST",
        "/logout",
        data={"csrf": csrf},
        headers={"Cookie": f"jjj_csrf={csrf}; jjj_session={session}"},
        allow_redirects=False,
    )
    return int(status)


async def test_a_planted_cookie_does_not_pass(gateway: Any) -> None:
    api, _, _ = gateway
    session = await api.login("clean-co", "demo-clean-2024")
    planted = "attacker-chosen-value"
    assert await _logout(api, session, planted) == 403
    planted = "nonce.0123456789abcdef0123456789abcdef"
    assert await _logout(api, session, planted) == 403


async def test_a_token_of_another_session_does_not_pass(gateway: Any) -> None:
    api, _, _ = gateway
    mine = await api.login("clean-co", "demo-clean-2024")
    theirs = await api.login("records-co", "demo-records-2024")
    stolen = await _token(api, theirs)
    assert await _logout(api, mine, stolen) == 403
    assert await _logout(api, mine, await _token(api, mine)) in (302, 303)


async def test_logging_in_renews_the_token(gateway: Any) -> None:
    api, _, _ = gateway
    before = await _token(api)
    status, _, reply = await api.call(
        "POST",
        "/login",
        data={"username": "clean-co", "password": "demo-clean-2024", "csrf": before},
        headers={"Cookie": f"jjj_csrf={before}"},
        allow_redirects=False,
    )
    assert status in (302, 303)
    cookies = {c.split("=", 1)[0]: c.split("=", 1)[1].split(";", 1)[0] for c in reply.headers.getall("Set-Cookie")}
    assert cookies["jjj_csrf"] != before
    session = cookies["jjj_session"]
    # The pre-login token does not work for the new session; the renewed one does.
    assert await _logout(api, session, before) == 403
    assert await _logout(api, session, cookies["jjj_csrf"]) in (302, 303)
