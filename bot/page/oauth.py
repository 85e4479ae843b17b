"""What the ticket page needs from a platform's OAuth to identify a person who opened it without a
valid link. Platform-neutral: the WeCom implementation is bot.wecom.oauth, wired by bot.app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Identity:
    """Who an OAuth code belongs to: a directory username, or a `problem` to show (with `status`)."""

    username: str = ""
    problem: str = ""
    status: int = 403


class PageOAuth(Protocol):
    def authorize_url(self, redirect_uri: str, state: str) -> str:
        """Where to send the browser to be identified; it comes back to `redirect_uri` with
        ``code`` and ``state``."""
        ...

    async def identify(self, code: str) -> Identity:
        """The person behind `code` (single use). Never raises."""
        ...
