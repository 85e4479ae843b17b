"""Test doubles that are honest stand-ins: a fake clock you move by hand, a chat platform that
records what it was asked to send."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from unittest import mock

from aiohttp import StreamReader, web
from aiohttp.test_utils import make_mocked_request

from bot.cards.model import Card
from bot.notify.ports import Delivery, SendFailed, SentRef
from core.org import User
from tests.core.builders import NOW


class FakeClock:
    def __init__(self, now: datetime = NOW) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, **kw: float) -> None:
        self.current += timedelta(**kw)


@dataclass
class RecordingSender:
    """A platform that records what it is asked to do; `fail` / `fail_update` queue errors."""

    platform: str = "wecom"
    sent: list[tuple[int, str, Card, int]] = field(default_factory=list)  # delivery, address, card, fresh
    updated: list[tuple[int, str, Card]] = field(default_factory=list)  # delivery, response code, card
    fail: list[SendFailed] = field(default_factory=list)  # for the next sends
    fail_update: list[SendFailed] = field(default_factory=list)  # for the next updates

    def address_of(self, user: User) -> str:
        return user.wecom_userid or ""

    async def send_card(self, delivery: Delivery, card: Card, *, fresh: int = 0) -> SentRef:
        if self.fail:
            raise self.fail.pop(0)
        self.sent.append((delivery.id, delivery.address, card, fresh))
        code = f"rc{len(self.sent)}" if card.buttons else ""
        return SentRef(
            f"m{len(self.sent)}", code, f"task{delivery.id}_{fresh}", timedelta(hours=24) if code else None
        )

    def can_update(self, delivery: Delivery, now: datetime) -> bool:
        expires = delivery.code_expires_at
        return bool(delivery.response_code) and expires is not None and expires > now

    async def update_card(self, delivery: Delivery, card: Card) -> None:
        if self.fail_update:
            raise self.fail_update.pop(0)
        self.updated.append((delivery.id, delivery.response_code, card))

    async def send_text(self, address: str, text: str) -> None:  # pragma: no cover - unused here
        raise AssertionError("no texts expected")

    def to(self, address: str) -> list[Card]:
        return [card for _, a, card, _ in self.sent if a == address]


def cut_short_request(app: web.Application, path: str, headers: dict[str, str]) -> web.Request:
    """A POST whose sender went away after a few bytes of its declared body: as deployed
    (aiohttp's handler_cancellation off) the handler runs on and its body read raises
    ConnectionResetError, as here."""
    payload = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
    payload.feed_data(b"<xml><Encrypt>")
    payload.set_exception(ConnectionResetError("Connection lost"))
    return make_mocked_request(
        "POST", path, headers={"Content-Length": "1000", **headers}, payload=payload, app=app
    )
