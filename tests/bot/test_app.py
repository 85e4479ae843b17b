"""The composed app on both databases: start-up migrates, publishes the org, answers /healthz."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from api.context import API_CONTEXT, ApiContext
from api.errors import ApiError
from api.params import body_bytes
from bot.app import RUNTIME, create_app
from bot.http import error_middleware
from config.settings import load_settings
from core import commands as c
from core.service import Done
from store.queries import list_tickets
from tests.fakes import cut_short_request

CONFIG = Path(__file__).resolve().parents[2] / "config"


async def test_healthz_and_a_ticket_through_the_shipped_leave_workflow(
    aiohttp_client: object, database_url: str
) -> None:
    settings = load_settings(env={}, database_url=database_url, config_dir=CONFIG)
    app = await create_app(settings)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)  # type: ignore[operator]
    resp = await client.get("/healthz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok" and body["workflows"] == 3

    runtime = app[RUNTIME]
    leave = runtime.catalog.get(1)
    assert leave is not None
    start = leave.start_state()
    submit = next(t for t in leave.transitions_from(start.id) if t.destination_state_id != start.id)
    creator = next(u for u in runtime.config.org.users.values() if u.dept_ids and u.type == 0)
    required = {k for k, a in start.fields.items() if a == 2}
    sample = {
        "leave_type": "annual",
        "start_date": "2026-01-05",
        "end_date": "2026-01-06",
        "days": 2,
        "reason": "家里有事",
    }
    fields = {k: v for k, v in sample.items() if k in required or leave.field_def(k) is not None}
    done = await runtime.service.create(c.Create(creator.username, 1, submit.id, fields))
    assert isinstance(done, Done), done
    assert done.ticket.sn.startswith(f"{settings.sn_prefix}_")
    assert done.ticket.handlers, "the leave request must wait for someone"
    handler = done.ticket.handlers[0]
    rows, total = await list_tickets(runtime.db, username=handler, category="duty")
    assert total == 1 and rows[0].id == done.ticket.id


async def test_unknown_route_is_a_json_404(aiohttp_client: object, tmp_path: Path) -> None:
    settings = load_settings(env={}, database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", config_dir=CONFIG)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(await create_app(settings))  # type: ignore[operator]
    resp = await client.get("/no/such/route")
    assert resp.status == 404
    assert (await resp.json())["status"] == 404


async def test_tickets_keep_the_workflow_version_they_started_on(tmp_path: Path) -> None:
    import shutil

    from bot.app import build_runtime

    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    url = f"sqlite+aiosqlite:///{tmp_path}/pin.db"
    first = await build_runtime(load_settings(env={}, database_url=url, config_dir=config))
    old = first.catalog.get(1)
    assert old is not None
    await first.db.dispose()
    leave = config / "workflows" / "leave.yaml"
    leave.write_text(
        leave.read_text(encoding="utf-8").replace("部门领导审批", "直属领导审批"), encoding="utf-8"
    )
    second = await build_runtime(load_settings(env={}, database_url=url, config_dir=config))
    try:
        current, pinned = second.catalog.get(1), second.catalog.get(1, old.version)
        assert current is not None and pinned is not None and current.version != old.version
        assert pinned.state(102).name == "部门领导审批"  # type: ignore[union-attr]
        assert current.state(102).name == "直属领导审批"  # type: ignore[union-attr]
    finally:
        await second.db.dispose()


async def test_a_request_whose_client_went_away_is_a_400_logged_without_a_stack(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Wherever a body read meets a sender that went away (the handler runs on, as deployed), the
    app answers 400 and logs one INFO line, not an "unhandled error" with a stack and a 500."""

    async def reads(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(text="never")

    app = web.Application()
    request = cut_short_request(app, "/anything", {})
    with caplog.at_level(logging.INFO, logger="ticketbot"):
        answer = await error_middleware(request, reads)
    assert isinstance(answer, web.Response) and answer.status == 400
    assert json.loads(cast(bytes, answer.body)) == {"error": "the request ended early", "status": 400}
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records] == [
        ("INFO", "client went away mid-request", None)
    ]


async def test_an_api_body_cut_short_is_refused_in_the_envelope() -> None:
    app = web.Application()
    app[API_CONTEXT] = cast(ApiContext, SimpleNamespace(max_body_bytes=1024))
    with pytest.raises(ApiError, match="request body ended before its declared length") as refused:
        await body_bytes(cut_short_request(app, "/api/v1.0/tickets", {"Content-Type": "application/json"}))
    assert refused.value.status == 400
