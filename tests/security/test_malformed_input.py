"""No 500 from input: every malformed JSON body is a 400 problem on every route."""

from __future__ import annotations

from typing import Any

import pytest

DEEP_LIST = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 40 + b"1" + b"}" * 40
BODIES = {
    "deep list": DEEP_LIST,
    "deep object": DEEP_OBJECT,
    "lone surrogate": b'{"profile": "\\ud800", "purpose": "x", "username": "\\udfff", "password": "p"}',
    "surrogate key": b'{"\\ud800": 1}',
    "invalid UTF-8": b'{"purpose": "\xff\xfe"}',
    "NaN": b'{"years": NaN}',
    "Infinity": b'{"years": -Infinity}',
    "1e999": b'{"years": 1e999}',
    "truncated": b'{"years": 3',
    "not an object": b"[1, 2, 3]",
}
ROUTES = [
    ("POST", "/api/v1/login", None),
    ("POST", "/api/v1/reports", "records-co"),
    ("POST", "/api/v1/verify", None),
    ("POST", "/api/v1/batches", "agency"),
    ("POST", "/api/v1/grants/preview", "clean-co"),
    ("POST", "/api/v1/objections", "records-co"),
]
PASSWORDS = {"records-co": "demo-records-2024", "agency": "demo-agency-2024", "clean-co": "demo-clean-2024"}


async def test_malformed_json_is_a_400_problem_everywhere(gateway: Any) -> None:
    api, _, _ = gateway
    tokens = {user: await api.login(user, password) for user, password in PASSWORDS.items()}
    failures = []
    for method, path, user in ROUTES:
        for name, body in BODIES.items():
            status, answer, reply = await api.call(
                method,
                path,
                tokens.get(user or ""),
                data=body,
                headers={"Content-Type": "application/json"},
            )
            if status != 400 or reply.content_type != "application/problem+json":
                failures.append((path, name, status, str(answer)[:200]))
    assert not failures, failures


@pytest.mark.parametrize("field", ["profile", "purpose", "subject"])
async def test_a_lone_surrogate_in_any_field_is_refused_by_name(gateway: Any, field: str) -> None:
    api, _, _ = gateway
    token = await api.login("records-co", "demo-records-2024")
    body = b'{"%s": "A\\ud800B"}' % field.encode()
    status, answer, _ = await api.call(
        "POST", "/api/v1/reports", token, data=body, headers={"Content-Type": "application/json"}
    )
    assert status == 400 and "surrogate" in answer["detail"]


async def test_a_path_that_is_not_text_is_a_problem_not_a_crash(gateway: Any) -> None:
    api, _, _ = gateway
    token = await api.login("records-co", "demo-records-2024")
    status, answer, reply = await api.call("GET", "/api/v1/reports/%ED%A0%80", token)
    assert status in (400, 404) and reply.content_type == "application/problem+json", answer


async def test_the_verify_upload_takes_bad_json_calmly(gateway: Any) -> None:
    import re

    api, _, _ = gateway
    _, home, _ = await api.call("GET", "/verify")
    csrf = re.search(r'name="csrf" value="([^"]+)"', home)
    assert csrf is not None
    for content in (b'{"jws": NaN}', b'{"verification_code": 1e999}', b"[" * 50_000, b'{"jws": "\\ud800"}'):
        import aiohttp

        form = aiohttp.FormData()
        form.add_field("csrf", csrf[1])
        form.add_field("file", content, filename="report.json", content_type="application/json")
        status, page, _ = await api.call("POST", "/verify", data=form, headers={"Cookie": f"jjj_csrf={csrf[1]}"})
        assert status in (200, 400), (content[:20], status)
        assert "内部错误" not in page
