"""The open API's authentication: the loonflow dialect's apps and both signature schemes, every
refusal in the errcode envelope (never the token, a secret or a signature in it), and the
envelope of everything that is not a route's own answer (unknown endpoint, wrong method, big body)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from api.auth import canonical_request, hmac_signature
from tests.api.conftest import DEMO_TOKEN, loonflow_headers
from tests.api.workorder_harness import BASIC, STRICT, STRICT_TOKEN, TEMPLATE, OpenApi, wo

__all__ = ["wo"]  # the fixture

SECRETS = (DEMO_TOKEN, STRICT_TOKEN)


def md5(wo: OpenApi, username: str = "admin", *, skew: int = 0, **kw: Any) -> dict[str, str]:
    return loonflow_headers(username, timestamp=int(wo.clock.now().timestamp()) + skew, **kw)


def strong(
    wo: OpenApi,
    method: str,
    path_qs: str,
    body: bytes = b"",
    *,
    username: str = "admin",
    app: str = "demo",
    secret: str = DEMO_TOKEN,
    nonce: str = "nonce-wo-000001",
) -> dict[str, str]:
    ts = str(int(wo.clock.now().timestamp()))
    canonical = canonical_request(method, path_qs, ts, nonce, username, body)
    return {
        "appname": app,
        "timestamp": ts,
        "nonce": nonce,
        "username": username,
        "x-ticketbot-signature": hmac_signature(secret, canonical),
        "content-type": "application/json",
    }


async def refused_auth(wo: OpenApi, headers: dict[str, str], status: int, contains: str, **kw: Any) -> None:
    method = "POST" if "data" in kw else "GET"
    if method == "GET":
        kw.setdefault("params", {"limit": "1"})
    path = "create" if method == "POST" else "list"
    got_status, body = await wo.call(method, path, headers=headers, **kw)
    assert (got_status, body["errcode"], set(body)) == (status, 40001, {"errcode", "errmsg"}), body
    assert body["errmsg"].startswith("authentication failed: ") and contains in body["errmsg"], body
    for secret in SECRETS:
        assert secret not in body["errmsg"]
    for header in ("signature", "x-ticketbot-signature"):
        if headers.get(header):
            assert headers[header] not in body["errmsg"]


async def test_a_signed_call_is_answered(wo: OpenApi) -> None:
    status, body = await wo.call("GET", "list", headers=md5(wo, "liuyang"))
    assert (status, body) == (200, {"errcode": 0, "errmsg": "ok", "total": 0, "workorder_list": []})


@pytest.mark.parametrize("missing", ["appname", "timestamp", "signature", "username"])
async def test_each_missing_header_is_named(wo: OpenApi, missing: str) -> None:
    headers = md5(wo)
    del headers[missing]
    await refused_auth(wo, headers, 401, f"missing header(s): {missing}")


async def test_unknown_app_bad_signature_and_stale_timestamp(wo: OpenApi) -> None:
    await refused_auth(wo, md5(wo, app="nope"), 401, "unknown app 'nope'")
    await refused_auth(wo, md5(wo, token="wrong-token"), 401, "signature check failed for app 'demo'")
    await refused_auth(wo, md5(wo, skew=-121), 401, "121 seconds behind the server clock")
    await refused_auth(wo, md5(wo, skew=500), 401, "500 seconds ahead of the server clock")


async def test_unknown_or_inactive_user_is_403(wo: OpenApi) -> None:
    await refused_auth(wo, md5(wo, "ghost"), 403, "no active user 'ghost'")


async def test_a_strong_auth_app_refuses_the_md5_signature(wo: OpenApi) -> None:
    headers = md5(wo, app=STRICT, token=STRICT_TOKEN)
    await refused_auth(wo, headers, 401, "requires the HMAC scheme")


async def test_the_hmac_scheme_signs_the_body_and_a_nonce_is_used_once(wo: OpenApi) -> None:
    body = json.dumps({"template_id": TEMPLATE, "component_list": BASIC}).encode()
    path = "/open-api/workorder/create"
    headers = strong(wo, "POST", path, body, username="liuyang", app=STRICT, secret=STRICT_TOKEN)
    status, answer = await wo.call("POST", path, headers=headers, data=body)
    assert (status, answer["errcode"]) == (200, 0), answer
    before = await wo.snapshot()
    await refused_auth(wo, headers, 401, "nonce already used", data=body)  # replayed
    tampered = body.replace(b"3", b"1")
    fresh = strong(
        wo, "POST", path, body, username="liuyang", app=STRICT, secret=STRICT_TOKEN, nonce="nonce-wo-2"
    )
    await refused_auth(wo, fresh, 401, "signature check failed", data=tampered)
    assert await wo.snapshot() == before


async def test_a_refused_write_changes_nothing(wo: OpenApi) -> None:
    before = await wo.snapshot()
    body = json.dumps({"template_id": TEMPLATE, "component_list": BASIC}).encode()
    await refused_auth(wo, md5(wo, "liuyang", token="bad"), 401, "signature check failed", data=body)
    assert await wo.snapshot() == before


async def test_unknown_endpoints_and_methods_answer_the_envelope(wo: OpenApi) -> None:
    status, body = await wo.call("GET", "nothing-here", headers=md5(wo))
    assert (status, body["errcode"]) == (404, 40004), body
    status, body = await wo.call("GET", "create", headers=md5(wo))
    assert (status, body["errcode"]) == (405, 40004), body
    assert "does not take GET" in body["errmsg"]


async def test_a_body_over_the_limit_is_413(wo: OpenApi) -> None:
    big = b'{"title": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    status, body = await wo.call("POST", "create", headers=md5(wo), data=big)
    assert (status, body["errcode"]) == (413, 40003), body
    path = "/open-api/workorder/create"
    status, body = await wo.call("POST", path, headers=strong(wo, "POST", path, big), data=big)
    assert (status, body["errcode"]) == (413, 40003), body
