"""The sidebar's HTML: the page shell its script fills in, and pages that only say something.
Pure text builders; every value is escaped.

The shell carries what the script needs in data attributes of <body> (the CSRF token, the API
base) and loads the WeCom JS-SDK scripts (configurable: WeCom's own in production, the emulator's in
the demo) before its own script. The page has no inline script or style, so its
Content-Security-Policy can forbid both (bot.sidebar.routes).
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.page.render import e, message_page

__all__ = ["message_page", "shell"]


def shell(*, csrf_token: str, staff_name: str, script_urls: Sequence[str], static: str = "static") -> str:
    """The page itself (at /sidebar/workorder; `static` relative to it)."""
    sdk = "".join(f'<script src="{e(url)}"></script>' for url in script_urls)
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer"><title>客服工单</title>'
        '<link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{e(static)}/sidebar.css">'
        f"{sdk}"
        f'<script src="{e(static)}/sidebar.js" defer></script></head>'
        f'<body data-csrf="{e(csrf_token)}" data-api="api" data-staff="{e(staff_name)}">'
        '<main id="app" data-testid="sidebar" data-state="loading">'
        '<header class="head"><h1>客服工单</h1>'
        f'<p class="muted">当前客服：<span data-testid="sidebar-staff">{e(staff_name)}</span></p></header>'
        '<p id="status" class="status" data-testid="sidebar-status" role="status">正在连接企业微信…</p>'
        '<p id="flash" class="flash" data-testid="sidebar-flash" role="alert" hidden></p>'
        '<section id="customer" data-testid="sidebar-customer" hidden></section>'
        '<section id="orders-box" hidden><h2>该客户的工单</h2>'
        '<ul id="orders" class="orders" data-testid="sidebar-orders"></ul></section>'
        '<section id="messages-box" hidden><h2>最近的聊天记录 <span class="muted">（勾选后可关联到工单）</span></h2>'
        '<ul id="messages" class="messages" data-testid="sidebar-messages"></ul></section>'
        '<section id="create-box" hidden><h2>创建工单</h2>'
        '<form id="create-form" data-testid="sidebar-create-form" novalidate>'
        '<label for="f-customer-name">客户名称</label>'
        '<input id="f-customer-name" name="customer_name" type="text" maxlength="200" required>'
        '<label for="f-category">问题分类</label><select id="f-category" name="category" required></select>'
        '<label for="f-priority">优先级</label><select id="f-priority" name="priority" required></select>'
        '<label for="f-description">问题描述</label>'
        '<textarea id="f-description" name="description" maxlength="2000" required></textarea>'
        '<div class="buttons"><button type="submit" class="primary" data-testid="sidebar-create">创建工单'
        "</button></div></form></section>"
        '<section id="link-box" hidden><h2>关联到已有工单</h2>'
        '<form id="link-form" data-testid="sidebar-link-form" novalidate>'
        '<label for="f-order">工单</label><select id="f-order" name="order_no" required></select>'
        '<div class="buttons"><button type="submit" data-testid="sidebar-link">关联到工单</button></div>'
        "</form></section>"
        "</main></body></html>"
    )
