"""The emulator as one web application: the platforms' APIs, the control surface (/_emulator/...)
and, when the bot's address is known, the web chat page, whose callbacks go through a `Redelivery`
per platform (duplicates and late replays on demand)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from emulator.chaos import Redelivery
from emulator.chat import ChatPage, DingTalkBot, WeComBot
from emulator.chat.customers import CustomerChats, ToolbarPage
from emulator.control import Control
from emulator.dingtalk import DingTalkEmulator
from emulator.merge import merged_app
from emulator.wecom import WeComEmulator


@dataclass(slots=True)
class Stack:
    app: web.Application
    wecom: WeComEmulator | None = None
    dingtalk: DingTalkEmulator | None = None
    chat: ChatPage | None = None
    redelivery: dict[str, Redelivery] = field(default_factory=dict)


def build_stack(
    *,
    wecom: WeComEmulator | None = None,
    dingtalk: DingTalkEmulator | None = None,
    wecom_bot: WeComBot | None = None,
    dingtalk_bot: DingTalkBot | None = None,
    toolbar: tuple[ToolbarPage, ...] = (),
) -> Stack:
    """`toolbar`: the pages of WeCom's chat toolbar (聊天工具栏) the chat page offers in a customer chat."""
    apps = [e.app() for e in (wecom, dingtalk) if e is not None]
    if not apps:
        raise ValueError("the emulator needs at least one platform")
    app = apps[0] if len(apps) == 1 else merged_app(*apps)
    redelivery = {
        name: Redelivery()
        for name, bot in (("wecom", wecom_bot), ("dingtalk", dingtalk_bot))
        if bot is not None
    }
    chat: ChatPage | None = None
    if redelivery:
        chat = ChatPage(
            wecom=wecom if wecom_bot is not None else None,
            wecom_bot=wecom_bot,
            dingtalk=dingtalk if dingtalk_bot is not None else None,
            dingtalk_bot=dingtalk_bot,
            deliver={name: r.deliver for name, r in redelivery.items()},
        )
        chat.add_routes(app)
        if wecom is not None and wecom_bot is not None:  # staff <-> customer chats, their toolbar
            CustomerChats(wecom, toolbar).add_routes(app)
    if wecom is not None and wecom_bot is not None:  # staff changes to customers reach the bot too
        wecom.contacts.connect(
            wecom_bot.callback_url, wecom_bot.token, wecom_bot.aes_key, deliver=redelivery["wecom"].deliver
        )
    Control(wecom=wecom, dingtalk=dingtalk, redelivery=redelivery).add_routes(app)
    return Stack(app, wecom, dingtalk, chat, redelivery)
