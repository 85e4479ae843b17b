"""The emulator's web chat page: employees of the demo org chat with the bot on WeCom or DingTalk
from a browser (page.py: the HTTP side; timeline.py: each person's conversation, live; views.py:
what each platform's client shows for a message or card; customers.py: WeCom staff's chats with
customers and the chat toolbar; static/: the page)."""

from __future__ import annotations

from emulator.chat.customers import CustomerChats, ToolbarPage
from emulator.chat.page import ChatPage, DingTalkBot, WeComBot
from emulator.chat.timeline import Entry, Timeline

__all__ = ["ChatPage", "CustomerChats", "DingTalkBot", "Entry", "Timeline", "ToolbarPage", "WeComBot"]
