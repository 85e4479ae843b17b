"""The demo in a real browser, on WeCom and on DingTalk (SQLite and PostgreSQL): an employee asks
for leave from the web chat page, the approver (another tab, another person) approves it from the
card, the card turns into the greyed "已同意" result, and the employee is told.

Every wait is Playwright's auto-waiting on a condition in the page (no sleeps). With
TICKETBOT_SCREENSHOTS=<dir> the tests also save the screenshots the README shows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from bot.demo import Demo

pytestmark = pytest.mark.browser

LEAVE = "发起 请假申请 start_date=2026-12-01 end_date=2026-12-02 days=2 reason=家里有事 proxy=zhaolei"
# who is who on each platform (config/org.yaml): 刘洋 asks, 王强 approves (技术部's approver)
PEOPLE = {"wecom": ("LiuYang", "WangQiang"), "dingtalk": ("staff0005", "staff0004")}
SHOTS = os.environ.get("TICKETBOT_SCREENSHOTS", "")


async def open_chat(page: Page, demo: Demo, platform: str, userid: str) -> None:
    await page.goto(f"{demo.urls.chat}?platform={platform}&userid={userid}")
    await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "open")


async def say(page: Page, text: str) -> None:
    await page.get_by_test_id("message-input").fill(text)
    await page.get_by_test_id("send-button").click()


def incoming(page: Page, text: str | re.Pattern[str]) -> Any:
    return page.locator('[data-testid="message"][data-direction="in"]').filter(has_text=text)


def _shot_path(name: str) -> str:
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    return str(Path(SHOTS) / name)


async def shot(page: Page, name: str) -> None:
    if SHOTS:
        await page.screenshot(path=_shot_path(name))


@pytest.mark.parametrize("platform", ["wecom", "dingtalk"])
async def test_leave_request_asked_in_chat_approved_from_the_card(
    demo: Demo, new_page: Callable[..., Any], platform: str
) -> None:
    employee, approver = PEOPLE[platform]
    asker: Page = await new_page()
    await open_chat(asker, demo, platform, employee)
    await say(asker, LEAVE)
    await expect(incoming(asker, "已发起工单").first).to_be_visible()

    boss: Page = await new_page()
    await open_chat(boss, demo, platform, approver)
    card = boss.get_by_test_id("card").filter(has_text="请假").first
    await expect(card).to_be_visible()
    await expect(card.get_by_test_id("card-title")).to_contain_text("请假")
    await expect(card.get_by_test_id("card-row").first).to_be_visible()
    await expect(card.get_by_test_id("card-button")).to_have_text(["同意", "驳回"])
    await shot(boss, f"demo-{platform}-card.png")

    await card.get_by_test_id("card-button").filter(has_text="同意").click()
    await expect(card.get_by_test_id("card-result")).to_contain_text("已同意 · 王强")
    await expect(card).to_have_attribute("data-state", "done")
    await expect(card.get_by_test_id("card-button")).to_have_count(0)
    await shot(boss, f"demo-{platform}-approved.png")

    # the employee is told, live, on the page that is already open
    await expect(incoming(asker, "同意").last).to_be_visible()
    await expect(incoming(asker, "王强").last).to_be_visible()


async def test_two_tabs_of_one_browser_are_two_people_and_the_card_opens_the_ticket_page(
    demo: Demo, new_page: Callable[..., Any]
) -> None:
    """WeCom: both people in tabs of ONE browser (one cookie jar); the approver opens the ticket page
    from the card inside the chat, sees the flow with the current step, and approves there."""
    asker: Page = await new_page()
    boss = await asker.context.new_page()
    await open_chat(asker, demo, "wecom", "LiuYang")
    await open_chat(boss, demo, "wecom", "WangQiang")
    await say(asker, LEAVE)
    card = boss.get_by_test_id("card").filter(has_text="请假").first
    await expect(card.get_by_test_id("card-button")).to_have_text(["同意", "驳回"])

    await card.get_by_test_id("card-link").click()
    await expect(boss.get_by_test_id("link-overlay")).to_be_visible()
    ticket = boss.frame_locator('[data-testid="link-frame"]')
    await expect(ticket.locator("h1")).to_contain_text("请假")
    current = ticket.locator('svg [data-status="current"]')
    await expect(current).to_have_count(1)
    await expect(current).to_contain_text("部门领导审批")
    await shot(boss, "demo-ticket-page.png")
    await ticket.get_by_role("button", name="同意").click()
    await expect(ticket.locator("body")).to_contain_text("已同意")

    # the card in the chat follows the decision taken on the page
    await boss.get_by_test_id("link-close").click()
    await expect(card.get_by_test_id("card-result")).to_contain_text("已同意 · 王强")
    await expect(incoming(asker, "王强").last).to_be_visible()
