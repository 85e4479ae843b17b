"""Linking chat records to a work order from chat: after `关联 <order_no>`, what a person sends to the
bot is kept and linked to that order until they say 完成 or the session expires. The port is
implemented in store/chat_links.py (table chat_link_session)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ChatLinkSession:
    """One person's open linking session on one platform (one at a time per platform and person)."""

    platform: str
    username: str
    ticket_id: int
    expires_at: datetime
    updated_at: datetime

    def live(self, now: datetime) -> bool:
        return now < self.expires_at


class ChatLinks(Protocol):
    async def start(
        self, platform: str, username: str, ticket_id: int, expires_at: datetime, now: datetime
    ) -> None:
        """Open (or replace) the person's session on `platform`."""
        ...

    async def current(self, platform: str, username: str) -> ChatLinkSession | None:
        """The person's session, expired or not (the caller decides), or None."""
        ...

    async def extend(self, platform: str, username: str, expires_at: datetime, now: datetime) -> None:
        """Move the session's expiry (a message was linked); nothing when there is none."""
        ...

    async def end(self, platform: str, username: str) -> bool:
        """Close the session; False when there was none."""
        ...
