"""The /api/v1.0 auth middleware: loonflow's md5 scheme and the HMAC scheme, every refusal.

Most tests run against `signed`: the real loonflow sub-app built over the real runtime (SQLite and
PostgreSQL) but with a fake clock, strict statuses and a few extra apps, plus an /echo route that
records what reached a handler. A few run against the shipped app (`api` fixture) as is.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from api.auth import canonical_request, hmac_signature, md5_signature
from api.context import ApiContext, caller
from api.envelope import ok
from api.loonflow import build
from api.params import json_body
from config.apps import ApiApp
from store.nonces import SqlNonceStore
from store.queries import SqlTicketQueries
from store.tables import api_nonce, ticket
from tests.api.conftest import DEMO_TOKEN, Api, loonflow_headers
from tests.fakes import FakeClock

STRICT_TOKEN = "strict-token-9f8e7d"
KEYED_TOKEN = "keyed-token-1a2b3c"
KEYED_SECRET = "keyed-hmac-secret-4d5e6f"
SECRETS = (DEMO_TOKEN, STRICT_TOKEN, KEYED_TOKEN, KEYED_SECRET)
LEAVE = {
    "workflow_id": 1,
    "transition_id": 151,
    "leave_type": "annual",
    "start_date": "2026-02-02",
    "end_date": "2026-02-03",
    "days": 2,
    "reason": "家里有事",
}


@dataclass
class Signed:
    client: TestClient[web.Request, web.Application]
    clock: FakeClock
    api: Api
    echoed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def now(self) -> int:
        return int(self.clock.now().timestamp())

    def md5(
        self, username: str = "admin", *, app: str = "demo", token: str = DEMO_TOKEN, skew: int = 0
    ) -> dict[str, str]:
        return loonflow_headers(username, app=app, token=token, timestamp=self.now + skew)

    def strong(
        self,
        method: str,
        path_qs: str,
        body: bytes = b"",
        *,
        username: str = "admin",
        app: str = "demo",
        secret: str = DEMO_TOKEN,
        nonce: str = "nonce-0000000001",
        skew: int = 0,
    ) -> dict[str, str]:
        ts = str(self.now + skew)
        canonical = canonical_request(method, path_qs, ts, nonce, username, body)
        return {
            "appname": app,
            "timestamp": ts,
            "nonce": nonce,
            "username": username,
            "x-ticketbot-signature": hmac_signature(secret, canonical),
            "content-type": "application/json",
        }

    async def call(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> tuple[int, dict[str, Any]]:
        resp = await self.client.request(method, path, headers=headers, data=body)
        return resp.status, await resp.json(content_type=None)

    async def tickets(self) -> int:
        async with self.api.runtime.db.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(ticket))).scalar_one())

    async def nonces(self) -> int:
        async with self.api.runtime.db.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(api_nonce))).scalar_one())


@pytest.fixture
async def signed(api: Api, aiohttp_client: Any) -> Signed:
    runtime = api.runtime
    clock = FakeClock()
    apps = {a.name: a for a in runtime.config.apps}
    apps["strict"] = ApiApp(name="strict", token=STRICT_TOKEN, strong_auth=True)
    apps["keyed"] = ApiApp(name="keyed", token=KEYED_TOKEN, hmac_secret=KEYED_SECRET)
    ctx = ApiContext(
        service=runtime.service,
        queries=SqlTicketQueries(runtime.db),
        catalog=runtime.catalog,
        directory=runtime.directory,
        apps=apps,
        clock=clock,
        nonces=SqlNonceStore(runtime.db, clock=clock),
        strict_status=True,
    )
    sub = build(ctx)
    echoed: list[dict[str, Any]] = []

    async def echo(request: web.Request) -> web.Response:
        who = caller(request)
        body = await json_body(request)  # the auth middleware may have read the body already
        echoed.append({"app": who.app.name, "username": who.username, "body": body})
        return ok({"app": who.app.name, "username": who.username, "body": body})

    sub.router.add_route("*", "/echo", echo)
    app = web.Application()
    app.add_subapp("/api/v1.0", sub)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    return Signed(client, clock, api, echoed)


def _no_secret(body: dict[str, Any]) -> None:
    text = str(body)
    for secret in SECRETS:
        assert secret not in text


async def _refused(
    signed: Signed,
    headers: dict[str, str],
    status: int,
    msg: str,
    *,
    method: str = "GET",
    path: str = "/api/v1.0/echo",
    body: bytes | None = None,
) -> None:
    got_status, got = await signed.call(method, path, headers, body)
    assert (got_status, got) == (status, {"code": -1, "msg": msg, "data": {}})
    _no_secret(got)


# --- loonflow's md5 scheme --------------------------------------------------------------------------


async def test_loonflow_signature_vector() -> None:
    # The worked example of api/auth.py's docstring.
    assert md5_signature("1767603600", "demo-token") == "47e00ef6ea0c6e89cc9f1fed5e6e2110"


async def test_valid_md5_call_reaches_the_handler(signed: Signed) -> None:
    status, body = await signed.call("POST", "/api/v1.0/echo", signed.md5("lina"), b'{"a": 1}')
    assert (status, body) == (
        200,
        {"code": 0, "msg": "", "data": {"app": "demo", "username": "lina", "body": {"a": 1}}},
    )


async def test_shipped_app_accepts_the_demo_signature(api: Api) -> None:
    status, body = await api.call("GET", "workflows")
    assert status == 200
    assert body["code"] == 0


async def test_signature_may_be_upper_case(signed: Signed) -> None:
    headers = signed.md5()
    headers["signature"] = headers["signature"].upper()
    status, body = await signed.call("GET", "/api/v1.0/echo", headers)
    assert (status, body["code"]) == (200, 0)


@pytest.mark.parametrize("missing", ["appname", "timestamp", "signature", "username"])
async def test_each_missing_header_is_named(signed: Signed, missing: str) -> None:
    headers = signed.md5()
    del headers[missing]
    hint = " (or nonce and x-ticketbot-signature for the HMAC scheme)"
    await _refused(signed, headers, 401, f"permission check fail: missing header(s): {missing}{hint}")


async def test_several_missing_headers_are_all_named(signed: Signed) -> None:
    await _refused(
        signed,
        {"username": "admin", "timestamp": " "},
        401,
        "permission check fail: missing header(s): appname, timestamp, signature "
        "(or nonce and x-ticketbot-signature for the HMAC scheme)",
    )


async def test_unknown_app(signed: Signed) -> None:
    headers = signed.md5(app="nobody")
    await _refused(signed, headers, 401, "permission check fail: unknown app 'nobody'")


async def test_bad_signature(signed: Signed) -> None:
    await _refused(
        signed,
        signed.md5(token="wrong-token"),
        401,
        "permission check fail: signature check failed for app 'demo'",
    )
    headers = signed.md5()
    headers["signature"] = "zz"
    await _refused(signed, headers, 401, "permission check fail: signature check failed for app 'demo'")


async def test_signature_of_another_apps_token(signed: Signed) -> None:
    await _refused(
        signed,
        signed.md5(app="keyed", token=DEMO_TOKEN),
        401,
        "permission check fail: signature check failed for app 'keyed'",
    )


@pytest.mark.parametrize("raw", ["abc", "-5", "1.5", "+1767603600", "17676 03600"])
async def test_timestamp_not_an_integer(signed: Signed, raw: str) -> None:
    headers = signed.md5()
    headers["timestamp"] = raw
    headers["signature"] = md5_signature(raw, DEMO_TOKEN)
    await _refused(
        signed,
        headers,
        401,
        f"permission check fail: timestamp must be an integer (epoch seconds), got '{raw}'",
    )


async def test_timestamp_in_milliseconds_is_explained(signed: Signed) -> None:
    ts = str(signed.now * 1000)
    headers = signed.md5()
    headers["timestamp"] = ts
    headers["signature"] = md5_signature(ts, DEMO_TOKEN)
    await _refused(
        signed,
        headers,
        401,
        f"permission check fail: timestamp {ts} looks like milliseconds; send epoch seconds (10 digits)",
    )


@pytest.mark.parametrize("skew", [-120, -119, 0, 119, 120])
async def test_timestamp_within_the_window_is_accepted(signed: Signed, skew: int) -> None:
    status, body = await signed.call("GET", "/api/v1.0/echo", signed.md5(skew=skew))
    assert (status, body["code"]) == (200, 0)


@pytest.mark.parametrize(("skew", "where"), [(-121, "behind"), (121, "ahead of"), (-3600, "behind")])
async def test_timestamp_outside_the_window(signed: Signed, skew: int, where: str) -> None:
    await _refused(
        signed,
        signed.md5(skew=skew),
        401,
        f"permission check fail: timestamp {signed.now + skew} is {abs(skew)} seconds {where} "
        "the server clock (allowed window: +-120 seconds)",
    )


async def test_window_follows_the_clock(signed: Signed) -> None:
    headers = signed.md5()
    assert (await signed.call("GET", "/api/v1.0/echo", headers))[0] == 200
    signed.clock.advance(seconds=121)
    got_status, got = await signed.call("GET", "/api/v1.0/echo", headers)
    assert got_status == 401
    assert "is 121 seconds behind the server clock" in got["msg"]


async def test_md5_is_replayable_within_the_window(signed: Signed) -> None:
    # loonflow's scheme has no nonce: documented, and the reason for the HMAC scheme.
    headers = signed.md5()
    for _ in range(2):
        assert (await signed.call("GET", "/api/v1.0/echo", headers))[0] == 200


async def test_unknown_user(signed: Signed) -> None:
    await _refused(signed, signed.md5("ghost"), 403, "permission check fail: no active user 'ghost'")


async def test_inactive_user(signed: Signed) -> None:
    runtime = signed.api.runtime
    org = await runtime.directory.org()
    user = org.user("liuyang")
    assert user is not None and user.is_active
    from dataclasses import replace

    from core.org import Org
    from store.directory import replace_org

    users = [replace(u, is_active=False) if u.username == "liuyang" else u for u in org.users.values()]
    await replace_org(runtime.db, Org.build(users, org.departments.values(), org.roles.values()), "config")
    runtime.directory.invalidate()
    await _refused(signed, signed.md5("liuyang"), 403, "permission check fail: no active user 'liuyang'")


async def test_long_or_odd_values_are_clipped_in_messages(signed: Signed) -> None:
    name = "x" * 200
    got_status, got = await signed.call("GET", "/api/v1.0/echo", signed.md5(app=name))
    assert got_status == 401
    assert got["msg"] == f"permission check fail: unknown app '{'x' * 61}...'"


async def test_shipped_app_refuses_with_http_200_and_loonflow_text(api: Api) -> None:
    headers = loonflow_headers("admin", token="wrong")
    status, body = await api.call("GET", "workflows", headers=headers)
    assert (status, body) == (
        200,
        {"code": -1, "msg": "permission check fail: signature check failed for app 'demo'", "data": {}},
    )


async def test_refusals_change_nothing(signed: Signed) -> None:
    body = b'{"workflow_id": 1, "transition_id": 151}'
    for headers in (
        signed.md5(token="wrong"),
        signed.md5(skew=500),
        signed.md5("ghost"),
        signed.md5(app="strict", token=STRICT_TOKEN),
        signed.strong("POST", "/api/v1.0/tickets", b"{}"),  # signed another body
    ):
        status, got = await signed.call("POST", "/api/v1.0/tickets", headers, body)
        assert status in (401, 403)
        assert got["code"] == -1
        status, got = await signed.call("POST", "/api/v1.0/echo", headers, body)
        assert status in (401, 403)
    assert signed.echoed == []
    assert await signed.tickets() == 0
    assert await signed.nonces() == 0


async def test_refusals_are_logged_without_secrets(signed: Signed, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ticketbot.api.auth")
    headers = signed.md5(token="wrong")
    await signed.call("GET", "/api/v1.0/echo", headers)
    records = [r for r in caplog.records if r.name == "ticketbot.api.auth"]
    assert len(records) == 1
    assert records[0].levelno == logging.INFO
    assert records[0].__dict__["app"] == "demo"
    assert records[0].__dict__["why"] == "signature check failed for app 'demo'"
    text = caplog.text + str([r.__dict__ for r in records])
    assert headers["signature"] not in text
    for secret in SECRETS:
        assert secret not in text


async def test_replays_and_forgeries_are_logged_with_the_reason(
    signed: Signed, caplog: pytest.LogCaptureFixture
) -> None:
    """A replayed md5 signature outside its window, a reused nonce and a tampered HMAC body: each
    refused and logged with why (never the signature)."""
    caplog.set_level(logging.INFO, logger="ticketbot.api.auth")
    stale = signed.md5(skew=-121)
    await signed.call("GET", "/api/v1.0/echo", stale)
    strong = signed.strong("POST", "/api/v1.0/echo", b"{}")
    assert (await signed.call("POST", "/api/v1.0/echo", strong, b"{}"))[0] == 200
    await signed.call("POST", "/api/v1.0/echo", strong, b"{}")  # the same nonce again
    tampered = signed.strong("POST", "/api/v1.0/echo", b"{}", nonce="nonce-0000000009")
    await signed.call("POST", "/api/v1.0/echo", tampered, b'{"a": 1}')
    whys = [r.__dict__["why"] for r in caplog.records if r.name == "ticketbot.api.auth"]
    assert whys[0] == (
        f"timestamp {signed.now - 121} is 121 seconds behind the server clock (allowed window: +-120 seconds)"
    )
    assert whys[1] == "nonce already used (send a fresh nonce with every request)"
    assert whys[2].startswith("signature check failed for app 'demo'")
    assert len(whys) == 3 and len(signed.echoed) == 1
    assert stale["signature"] not in caplog.text
    for headers in (strong, tampered):
        assert headers["x-ticketbot-signature"] not in caplog.text


# --- the HMAC scheme --------------------------------------------------------------------------------


async def test_hmac_signature_vector() -> None:
    # The worked example of api/auth.py's docstring.
    body = b'{"workflow_id": 1, "transition_id": 151}'
    canonical = canonical_request(
        "POST", "/api/v1.0/tickets", "1767603600", "3f2a9c1e7b6d4a50", "admin", body
    )
    assert canonical == (
        "POST\n/api/v1.0/tickets\n1767603600\n3f2a9c1e7b6d4a50\nadmin\n"
        "dc0ad19595e4716195e2a3e40d7702b64c970d778f9279cd2596180268046de0"
    )
    expected = hmac.new(b"demo-token", canonical.encode(), hashlib.sha256).hexdigest()
    assert hmac_signature("demo-token", canonical) == expected
    assert expected == "cc177f0a362968d77c9c056bd79553cc4e7e5f9d8991a3ee77bed05efebeda6d"


async def test_valid_hmac_call_and_the_handler_still_reads_the_body(signed: Signed) -> None:
    body = '{"名字": "张三", "n": 2}'.encode()
    headers = signed.strong("POST", "/api/v1.0/echo?x=1&y=%E4%B8%AD", body, username="lina")
    status, got = await signed.call("POST", "/api/v1.0/echo?x=1&y=%E4%B8%AD", headers, body)
    assert (status, got["code"]) == (200, 0)
    assert got["data"] == {"app": "demo", "username": "lina", "body": {"名字": "张三", "n": 2}}
    assert await signed.nonces() == 1


async def test_hmac_get_without_body(signed: Signed) -> None:
    headers = signed.strong("GET", "/api/v1.0/workflows?page=1&per_page=2")
    status, got = await signed.call("GET", "/api/v1.0/workflows?page=1&per_page=2", headers)
    assert (status, got["code"]) == (200, 0)
    assert got["data"]["per_page"] == 2


async def test_hmac_create_ticket_end_to_end(signed: Signed) -> None:
    import json

    body = json.dumps(LEAVE).encode()
    headers = signed.strong("POST", "/api/v1.0/tickets", body, username="liuyang")
    status, got = await signed.call("POST", "/api/v1.0/tickets", headers, body)
    assert (status, got["code"]) == (200, 0), got
    assert await signed.tickets() == 1


async def test_hmac_uses_the_apps_secret_when_set(signed: Signed) -> None:
    ok_headers = signed.strong("GET", "/api/v1.0/echo", app="keyed", secret=KEYED_SECRET)
    assert (await signed.call("GET", "/api/v1.0/echo", ok_headers))[0] == 200
    token_headers = signed.strong(
        "GET", "/api/v1.0/echo", app="keyed", secret=KEYED_TOKEN, nonce="nonce-2222222"
    )
    got_status, got = await signed.call("GET", "/api/v1.0/echo", token_headers)
    assert got_status == 401
    assert got["msg"].startswith("permission check fail: signature check failed for app 'keyed'")
    _no_secret(got)


async def test_reused_nonce_is_refused(signed: Signed) -> None:
    headers = signed.strong("POST", "/api/v1.0/echo", b"{}")
    assert (await signed.call("POST", "/api/v1.0/echo", headers, b"{}"))[0] == 200
    await _refused(
        signed,
        headers,
        401,
        "permission check fail: nonce already used (send a fresh nonce with every request)",
        method="POST",
        body=b"{}",
    )
    assert len(signed.echoed) == 1
    fresh = signed.strong("POST", "/api/v1.0/echo", b"{}", nonce="nonce-0000000002")
    assert (await signed.call("POST", "/api/v1.0/echo", fresh, b"{}"))[0] == 200


async def test_nonces_are_per_app(signed: Signed) -> None:
    one = signed.strong("GET", "/api/v1.0/echo", nonce="shared-nonce-1")
    other = signed.strong("GET", "/api/v1.0/echo", app="keyed", secret=KEYED_SECRET, nonce="shared-nonce-1")
    assert (await signed.call("GET", "/api/v1.0/echo", one))[0] == 200
    assert (await signed.call("GET", "/api/v1.0/echo", other))[0] == 200


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("body", {"body": b'{"workflow_id": 2}'}),
        ("path", {"path": "/api/v1.0/echo?x=2"}),
        ("method", {"method": "PUT"}),
    ],
)
async def test_tampering_breaks_the_signature(signed: Signed, what: str, change: dict[str, Any]) -> None:
    body = b'{"workflow_id": 1}'
    headers = signed.strong("POST", "/api/v1.0/echo?x=1", body)
    method = change.get("method", "POST")
    path = change.get("path", "/api/v1.0/echo?x=1")
    sent = change.get("body", body)
    got_status, got = await signed.call(method, path, headers, sent)
    assert got_status == 401, what
    assert got["msg"].startswith(
        "permission check fail: signature check failed for app 'demo' (x-ticketbot-signature"
    )
    _no_secret(got)
    assert signed.echoed == []
    assert await signed.nonces() == 0  # a refused request does not burn its nonce


async def test_tampered_username_breaks_the_signature(signed: Signed) -> None:
    headers = signed.strong("GET", "/api/v1.0/echo", username="lina")
    headers["username"] = "admin"
    got_status, got = await signed.call("GET", "/api/v1.0/echo", headers)
    assert got_status == 401
    assert "signature check failed" in got["msg"]


@pytest.mark.parametrize("missing", ["appname", "timestamp", "nonce", "username"])
async def test_hmac_missing_headers(signed: Signed, missing: str) -> None:
    headers = signed.strong("GET", "/api/v1.0/echo")
    del headers[missing]
    await _refused(signed, headers, 401, f"permission check fail: missing header(s): {missing}")


@pytest.mark.parametrize("nonce", ["short", "x" * 65, "has space!", "nonce/with/slash"])
async def test_bad_nonce(signed: Signed, nonce: str) -> None:
    headers = signed.strong("GET", "/api/v1.0/echo", nonce=nonce)
    await _refused(
        signed,
        headers,
        401,
        "permission check fail: nonce must be 8 to 64 characters of A-Z, a-z, 0-9, '_' or '-'",
    )


@pytest.mark.parametrize("skew", [-121, 121])
async def test_hmac_stale_timestamp(signed: Signed, skew: int) -> None:
    got_status, got = await signed.call(
        "GET", "/api/v1.0/echo", signed.strong("GET", "/api/v1.0/echo", skew=skew)
    )
    assert got_status == 401
    assert "seconds" in got["msg"]
    assert "(allowed window: +-120 seconds)" in got["msg"]


async def test_hmac_unknown_and_inactive_user(signed: Signed) -> None:
    await _refused(
        signed,
        signed.strong("GET", "/api/v1.0/echo", username="ghost"),
        403,
        "permission check fail: no active user 'ghost'",
    )
    assert await signed.nonces() == 0


async def test_strong_auth_app_refuses_md5(signed: Signed) -> None:
    await _refused(
        signed,
        signed.md5(app="strict", token=STRICT_TOKEN),
        401,
        "permission check fail: app 'strict' requires the HMAC scheme (headers nonce and "
        "x-ticketbot-signature); the md5 signature is not accepted for it",
    )
    headers = signed.strong("GET", "/api/v1.0/echo", app="strict", secret=STRICT_TOKEN)
    status, got = await signed.call("GET", "/api/v1.0/echo", headers)
    assert (status, got["data"]["app"]) == (200, "strict")


async def test_hmac_body_over_the_limit(signed: Signed) -> None:
    limit = 1024 * 1024  # ApiContext.max_body_bytes
    body = b"{" + b" " * limit + b"}"
    headers = signed.strong("POST", "/api/v1.0/echo", body)
    got_status, got = await signed.call("POST", "/api/v1.0/echo", headers, body)
    assert got_status == 413
    assert got["msg"] == f"request body is larger than {limit} bytes"
    assert signed.echoed == []


async def test_a_request_stamped_ahead_of_the_clock_cannot_be_replayed_once_the_clock_catches_up(
    signed: Signed,
) -> None:
    headers = signed.strong("POST", "/api/v1.0/echo", b"{}", skew=100)  # client clock 100 s ahead
    assert (await signed.call("POST", "/api/v1.0/echo", headers, b"{}"))[0] == 200
    signed.clock.advance(seconds=121)  # the request's timestamp is still inside the window now
    status, body = await signed.call("POST", "/api/v1.0/echo", headers, b"{}")
    assert (status, body["msg"]) == (
        401,
        "permission check fail: nonce already used (send a fresh nonce with every request)",
    )
    assert len(signed.echoed) == 1
