"""The work-order sidebar in a real browser (SQLite and PostgreSQL): 徐丽 (客服部) chats with the demo
customer 大大怪 in the emulator's chat page, opens the chat toolbar's 工单 page (ticketbot's sidebar,
framed by the chat page, signed in through WeCom's OAuth, wx.agentConfig checked by the emulator),
ticks two of the customer's messages and creates a work order. The order exists with the customer
relation and exactly the two messages linked, and the sidebar shows its order number.

Every wait is Playwright's auto-waiting on a condition in the page, or awaiting the app's tasks."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from playwright.async_api import Page, expect

from bot.app import RUNTIME
from bot.demo import Demo
from bot.wecom.routes import WECOM_CALLBACKS
from core.order_no import ticket_id_of
from core.workorder import CUSTOMER
from store.chat_records import SqlChatRecords
from store.customers import SqlCustomers
from store.queries import SqlTicketQueries
from store.workorders import SqlWorkOrders

pytestmark = pytest.mark.browser

STAFF = "XuLi"  # 徐丽, 客服部 (config/org.yaml)
CUSTOMER_ID = "wmDemoDaDaGuai00000000000000001"  # 大大怪 (bot/demo.py DEMO_CUSTOMERS)
SHOTS = os.environ.get("TICKETBOT_SCREENSHOTS", "")


def _shot_path(name: str) -> str:
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    return str(Path(SHOTS) / name)


async def shot(page: Page, name: str) -> None:
    if SHOTS:
        await page.screenshot(path=_shot_path(name))


async def _customers_synced(demo: Demo) -> None:
    """The demo announced its customers at start: let ticketbot finish keeping them."""
    async with asyncio.timeout(15):
        while tasks := set(demo.app[WECOM_CALLBACKS].tasks):
            await asyncio.gather(*tasks, return_exceptions=True)
    assert await SqlCustomers(demo.app[RUNTIME].db).get(CUSTOMER_ID) is not None


async def _say(page: Page, text: str, *, as_customer: bool = False) -> None:
    count = await page.get_by_test_id("customer-message").count()
    await page.get_by_test_id("customer-input").fill(text)
    await page.get_by_test_id("customer-send-as-customer" if as_customer else "customer-send").click()
    await expect(page.get_by_test_id("customer-message")).to_have_count(count + 1)


async def test_staff_creates_a_work_order_with_two_chat_records_from_the_sidebar(
    demo: Demo, new_page: Callable[..., Any]
) -> None:
    await _customers_synced(demo)
    page: Page = await new_page(width=1200, height=900)
    await page.goto(f"{demo.urls.chat}?platform=wecom&userid={STAFF}")
    await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "open")

    await page.get_by_test_id("customers-button").click()
    await page.locator(f'[data-testid="customer-option"][data-external-userid="{CUSTOMER_ID}"]').click()
    await expect(page.get_by_test_id("customer-title")).to_have_text("大大怪")
    await _say(page, "您好，我是客服徐丽，请问有什么可以帮您？")
    await _say(page, "我买的路由器一直连不上网", as_customer=True)
    await _say(page, "指示灯一直在闪红灯", as_customer=True)
    await expect(page.get_by_test_id("customer-message").last).to_have_attribute("data-direction", "in")

    await page.get_by_test_id("toolbar-page").filter(has_text="工单").click()
    await expect(page.get_by_test_id("sidebar-overlay")).to_be_visible()
    sidebar = page.frame_locator('[data-testid="sidebar-frame"]')
    await expect(sidebar.get_by_test_id("sidebar")).to_have_attribute("data-state", "ready")
    await expect(sidebar.get_by_test_id("sidebar-staff")).to_have_text("徐丽")
    await expect(sidebar.get_by_test_id("sidebar-customer-name")).to_have_text("大大怪")
    messages = sidebar.get_by_test_id("sidebar-message")
    await expect(messages).to_have_count(3)
    customer_lines = messages.filter(has_text="路由器").or_(messages.filter(has_text="红灯"))
    await expect(customer_lines).to_have_count(2)
    chosen = [await customer_lines.nth(i).get_attribute("data-msg-id") for i in range(2)]
    for i in range(2):
        await customer_lines.nth(i).get_by_test_id("sidebar-message-check").check()

    await expect(sidebar.locator("#f-customer-name")).to_have_value("大大怪")
    await sidebar.locator("#f-category").select_option("fault")
    await sidebar.locator("#f-priority").select_option("high")
    await sidebar.locator("#f-description").fill("路由器无法联网，指示灯闪红灯")
    await sidebar.get_by_test_id("sidebar-create").click()

    flash = sidebar.get_by_test_id("sidebar-flash")
    await expect(flash).to_contain_text("已创建工单 147")
    await expect(flash).to_contain_text("关联 2 条")
    order_no = await flash.get_attribute("data-order-no")
    assert order_no is not None
    order = sidebar.locator(f'[data-testid="sidebar-order"][data-order-no="{order_no}"]')
    await expect(order.get_by_test_id("sidebar-order-no")).to_have_text(order_no)
    await expect(order).to_contain_text("已关联 2 条")
    await shot(page, "demo-sidebar.png")

    ticket_id = ticket_id_of(order_no)
    assert ticket_id is not None
    db = demo.app[RUNTIME].db
    ticket = await SqlTicketQueries(db).get_ticket(ticket_id)
    assert ticket is not None and ticket.workflow_id == 3 and ticket.creator == "xuli"
    assert ticket.fields["customer_id"] == CUSTOMER_ID and ticket.fields["customer_name"] == "大大怪"
    assert ticket.fields["category"] == "fault" and ticket.fields["priority"] == "high"
    relation = (await SqlWorkOrders(db).relations([ticket_id]))[ticket_id]
    assert (relation.relation_type, relation.relation_id) == (CUSTOMER, CUSTOMER_ID)
    linked = await SqlChatRecords(db).linked(ticket_id)
    assert sorted(linked) == sorted(cast("list[str]", chosen))  # get_attribute is typed str | None
    records = await SqlChatRecords(db).get(linked)
    assert {r.content["text"] for r in records} == {"我买的路由器一直连不上网", "指示灯一直在闪红灯"}
    assert all(r.source == "archive" and r.from_id == CUSTOMER_ID and r.to_ids == (STAFF,) for r in records)
