"""An API client against the real composed app (shipped demo config) on SQLite and PostgreSQL.

`api.call(method, path, username=..., json=..., params=...)` signs the request the loonflow way
(appname `demo`, md5(timestamp + token)) and returns (HTTP status, parsed JSON body).

The shipped config is copied with the IT access hook (state 205) pointed at a local hook target
(`HookTarget`, answering {"code": 0}); `await api.hooks_settled()` waits until every due hook call
has been made (so a ticket that entered 205 has a call waiting for hook_call_back).
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import HOOKS, RUNTIME, Runtime, create_app
from config.settings import load_settings
from tests.fakes import RecordingSender

CONFIG = Path(__file__).resolve().parents[2] / "config"
DEMO_APP, DEMO_TOKEN = "demo", "demo-token"
SHIPPED_HOOK_URL = "http://127.0.0.1:9/hook"  # config/workflows/it_access.yaml, state 205


@dataclass
class HookTarget:
    """A hook receiver: records every POST (headers, JSON body) and answers {"code": 0}."""

    calls: list[tuple[dict[str, str], Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((dict(request.headers), await request.json()))
        return web.json_response({"code": 0, "msg": "accepted"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        return app


def config_with_hook(tmp_path: Path, hook_url: str) -> Path:
    """A copy of the shipped config with the IT access hook pointed at `hook_url`."""
    config = tmp_path / "config-with-hook"
    shutil.copytree(CONFIG, config, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = config / "workflows" / "it_access.yaml"
    text = path.read_text(encoding="utf-8")
    assert SHIPPED_HOOK_URL in text
    path.write_text(text.replace(SHIPPED_HOOK_URL, hook_url), encoding="utf-8")
    return config


def loonflow_headers(
    username: str, *, app: str = DEMO_APP, token: str = DEMO_TOKEN, timestamp: int | None = None
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "appname": app,
        "timestamp": ts,
        "signature": hashlib.md5((ts + token).encode()).hexdigest(),  # noqa: S324 - loonflow's scheme
        "username": username,
    }


@dataclass
class Api:
    client: TestClient[web.Request, web.Application]
    runtime: Runtime

    async def call(
        self,
        method: str,
        path: str,
        *,
        username: str = "admin",
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> tuple[int, Any]:
        url = path if path.startswith("/") else f"/api/v1.0/{path}"
        hdrs = loonflow_headers(username) if headers is None else headers
        resp = await self.client.request(method, url, json=json, params=params, headers=hdrs, data=data)
        body = await resp.json(content_type=None)
        return resp.status, body

    async def hooks_settled(self) -> None:
        """Every due hook call has been made (a pass under way is waited for)."""
        await self.client.app[HOOKS].drain()


@pytest.fixture
async def hook_target(aiohttp_server: Any) -> tuple[HookTarget, str]:
    target = HookTarget()
    server: TestServer = await aiohttp_server(target.app())
    return target, str(server.make_url("/hook"))


async def make_api(
    aiohttp_client: Any, database_url: str, config: Path, env: dict[str, str] | None = None
) -> Api:
    settings = load_settings(env=env or {}, database_url=database_url, config_dir=config)
    app = await create_app(settings, senders={"wecom": RecordingSender()})  # urges can reach someone
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    return Api(client, app[RUNTIME])


@pytest.fixture
async def api(
    aiohttp_client: Any, database_url: str, tmp_path: Path, hook_target: tuple[HookTarget, str]
) -> Api:
    return await make_api(aiohttp_client, database_url, config_with_hook(tmp_path, hook_target[1]))
