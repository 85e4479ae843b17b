"""An API client against the real composed app (shipped demo config) on SQLite and PostgreSQL.

`api.call(method, path, username=..., json=..., params=...)` signs the request the loonflow way
(appname `demo`, md5(timestamp + token)) and returns (HTTP status, parsed JSON body).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app import RUNTIME, Runtime, create_app
from config.settings import load_settings
from tests.fakes import RecordingSender

CONFIG = Path(__file__).resolve().parents[2] / "config"
DEMO_APP, DEMO_TOKEN = "demo", "demo-token"


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
    client: TestClient
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


@pytest.fixture
async def api(aiohttp_client: Any, database_url: str) -> Api:
    settings = load_settings(env={}, database_url=database_url, config_dir=CONFIG)
    app = await create_app(settings, senders={"wecom": RecordingSender()})  # urges can reach someone
    client: TestClient = await aiohttp_client(app)
    return Api(client, app[RUNTIME])
