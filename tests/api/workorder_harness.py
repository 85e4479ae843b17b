"""The work-order open API (/open-api) over the real runtime and store (SQLite and PostgreSQL),
with one fake clock for the engine, the API and its nonces, for the tests of tests/api/test_workorder_*.

`wo` builds the sub-application exactly as bot.app does (api.workorder.build over a
WorkOrderContext of the store's Sql* implementations) but with the fake clock, so times in answers
are known; `wo.call(...)` signs the request the loonflow way (app `demo`) at the clock's time and
returns (HTTP status, parsed JSON). The seed's detail example is read from the copy of seed 000
beside this file (tests/api/seed_000_workorder_detail.txt).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from api.context import ApiContext
from api.workorder import build
from api.workorder.context import WorkOrderContext, corp_number
from bot.app import Runtime, build_runtime, with_granted_workflows
from config.apps import ApiApp
from config.settings import load_settings
from core.order_no import order_no
from core.service import TicketService
from core.workorder import ChatRecord, Customer
from store.chat_records import SqlChatRecords
from store.customers import SqlCustomers
from store.nonces import SqlNonceStore
from store.queries import SqlTicketQueries
from store.tables import chat_record, flow_log, ticket, work_order, work_order_message
from store.tickets import SqlTicketStore
from store.workorders import SqlWorkOrders
from tests.api.conftest import CONFIG, loonflow_headers
from tests.fakes import FakeClock

SEED = Path(__file__).with_name("seed_000_workorder_detail.txt")
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CORP = "ww1a2b3c4d5e6f"
CUSTOMER = Customer("wm8xjUCAAAjzIxv1bnZErBXWZgBV2RBg", "大大怪", "http://wx.qlogo.cn/x/0", "大大怪公司", 1)
TEMPLATE = 3  # config/workflows/cs_workorder.yaml: 客服工单
ACCESS = 2  # it_access.yaml, made template type 2 (automated) in the tests' config copy
SUBMIT = 351  # 301 新建工单 -> 302 客服受理 (accept first: wujuan, xuli, heping of 客服部)
SOLVE, TO_TECH, TECH_DONE, VISITED = 352, 353, 354, 356
LEAVE_ONLY, LEAVE_ONLY_TOKEN = "leaveonly", "leave-only-token-5a6b"
STRICT, STRICT_TOKEN = "strict", "strict-token-7c8d9e"


def workorder_config(tmp_path: Path) -> Path:
    """The shipped config with the IT access workflow made a work-order template too (type 2), so
    that the tests see two templates of both types."""
    config = tmp_path / "config-workorder"
    shutil.copytree(CONFIG, config, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = config / "workflows" / "it_access.yaml"
    text = path.read_text(encoding="utf-8")
    anchor = "display_fields: [system, access_level, expires]\n"
    assert anchor in text
    path.write_text(text.replace(anchor, anchor + "label:\n  workorder_template_type: 2\n"), encoding="utf-8")
    return config


def seed_example() -> dict[str, Any]:
    """The JSON example of seed 000 (the detail's successful answer)."""
    text = SEED.read_text(encoding="utf-8")
    start = text.index("{", text.index("\n示例\n"))
    end = text.rindex("}", 0, text.index("最后修改时间")) + 1
    example: dict[str, Any] = json.loads(text[start:end])
    return example


def components(**values: Any) -> list[dict[str, Any]]:
    """A component_list naming components by key."""
    out: list[dict[str, Any]] = []
    for key, value in values.items():
        item: dict[str, Any] = {"key": key}
        item["values" if isinstance(value, list) else "value"] = value
        out.append(item)
    return out


BASIC = components(customer_name="ACME", category=["咨询"], priority=["普通"], description="登录不了")


@dataclass
class OpenApi:
    client: TestClient[web.Request, web.Application]
    runtime: Runtime
    clock: FakeClock
    ctx: WorkOrderContext
    shared: list[tuple[int, str]] = field(default_factory=list)

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
        url = path if path.startswith("/") else f"/open-api/workorder/{path}"
        ts = int(self.clock.now().timestamp())
        hdrs = loonflow_headers(username, timestamp=ts) if headers is None else headers
        resp = await self.client.request(method, url, json=json, params=params, headers=hdrs, data=data)
        return resp.status, await resp.json(content_type=None)

    async def ok(self, method: str, path: str, **kw: Any) -> Any:
        status, body = await self.call(method, path, **kw)
        assert (status, body["errcode"], body["errmsg"]) == (200, 0, "ok"), body
        return body

    async def create(self, username: str = "liuyang", **body: Any) -> str:
        body.setdefault("template_id", TEMPLATE)
        body.setdefault("component_list", BASIC)
        answer = await self.ok("POST", "create", username=username, json=body)
        number = answer["order_no"]
        assert isinstance(number, str) and number == order_no(answer["id"])
        return number

    async def detail(self, number: str, username: str = "admin") -> dict[str, Any]:
        body = await self.ok("GET", "detail", username=username, params={"order_no": number})
        work_order: dict[str, Any] = body["work_order"]
        return work_order

    async def refused(
        self, method: str, path: str, errcode: int, status: int, *, contains: str = "", **kw: Any
    ) -> str:
        got_status, body = await self.call(method, path, **kw)
        assert set(body) == {"errcode", "errmsg"}, body
        assert (got_status, body["errcode"]) == (status, errcode), body
        assert contains in body["errmsg"], body
        assert "Traceback" not in body["errmsg"]
        return str(body["errmsg"])

    async def snapshot(self) -> tuple[int, ...]:
        """Counts and versions that any change would move: tickets, their versions, flow logs,
        relations, kept and linked chat records."""
        async with self.runtime.db.read() as conn:

            async def count(table: Any) -> int:
                return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())

            versions = int(
                (await conn.execute(select(func.coalesce(func.sum(ticket.c.version), 0)))).scalar_one()
            )
            return (
                await count(ticket),
                versions,
                await count(flow_log),
                await count(work_order),
                await count(work_order_message),
                await count(chat_record),
            )

    async def keep(self, *ids: str) -> None:
        """Chat records kept for work orders (as the archive would keep them)."""
        records = [
            ChatRecord(
                i, "archive", self.clock.now(), "LiuYang", (CUSTOMER.external_userid,), content={"text": i}
            )
            for i in ids
        ]
        await self.ctx.chat_records.add(records, self.clock.now())


@pytest.fixture
async def wo(aiohttp_client: Any, database_url: str, tmp_path: Path) -> AsyncIterator[OpenApi]:
    settings = load_settings(env={}, database_url=database_url, config_dir=workorder_config(tmp_path))
    runtime = await build_runtime(settings)
    clock = FakeClock(START)
    db = runtime.db
    service = TicketService(SqlTicketStore(db), runtime.catalog, runtime.directory, clock, rng=lambda: 0)
    apps = {a.name: with_granted_workflows(a, runtime.config.workflows) for a in runtime.config.apps}
    apps[LEAVE_ONLY] = ApiApp(LEAVE_ONLY, token=LEAVE_ONLY_TOKEN, workflow_ids=frozenset({1}))
    apps[STRICT] = ApiApp(STRICT, token=STRICT_TOKEN, strong_auth=True)
    api = ApiContext(
        service=service,
        queries=SqlTicketQueries(db),
        catalog=runtime.catalog,
        directory=runtime.directory,
        apps=apps,
        clock=clock,
        nonces=SqlNonceStore(db, clock=clock),
    )
    shared: list[tuple[int, str]] = []

    def share_link(ticket_id: int, username: str) -> str:
        shared.append((ticket_id, username))
        return f"https://tickets.example/tickets/{ticket_id}?u={username}&e=1&s=sig"

    ctx = WorkOrderContext(
        api=api,
        customers=SqlCustomers(db),
        chat_records=SqlChatRecords(db),
        work_orders=SqlWorkOrders(db),
        share_link=share_link,
        corp_id=corp_number(CORP),
    )
    await ctx.customers.upsert(CUSTOMER, clock.now())
    app = web.Application()
    app.add_subapp("/open-api", build(ctx))
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    try:
        yield OpenApi(client, runtime, clock, ctx, shared)
    finally:
        await db.dispose()
