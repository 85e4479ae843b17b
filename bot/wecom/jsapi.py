"""The signature of `wx.agentConfig` (the WeCom JS-SDK's app identity), for the work-order sidebar.

    signature = sha1("jsapi_ticket=<ticket>&noncestr=<nonce>&timestamp=<ts>&url=<page url>")

as lowercase hex, where the ticket is the app's agent_config jsapi_ticket (GET /cgi-bin/ticket/get
?type=agent_config, valid 7200 s; WeCom limits how often it may be fetched, so it is cached until
shortly before it expires and concurrent callers share one fetch) and the URL is the page's,
without its #fragment. The ticket never reaches a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.wecom.client import WeComClient
from core.ports import Clock

log = logging.getLogger("ticketbot.wecom.jsapi")

REFRESH_MARGIN = timedelta(minutes=5)


def agent_config_signature(ticket: str, noncestr: str, timestamp: int, url: str) -> str:
    """WeCom's JS-SDK signature (sha1 over the four pairs in this fixed order), lowercase hex."""
    plain = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(plain.encode("utf-8")).hexdigest()  # noqa: S324 - the protocol's hash


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """What the page passes to wx.agentConfig (besides jsApiList and the callbacks)."""

    corpid: str
    agentid: int
    timestamp: int
    nonce_str: str
    signature: str

    def to_json(self) -> dict[str, object]:
        return {
            "corpid": self.corpid,
            "agentid": self.agentid,
            "timestamp": self.timestamp,
            "nonceStr": self.nonce_str,
            "signature": self.signature,
        }


class AgentConfigSigner:
    """Signs page URLs for wx.agentConfig with the app's cached agent jsapi_ticket."""

    def __init__(self, client: WeComClient, clock: Clock) -> None:
        self._client = client
        self._clock = clock
        self._ticket = ""
        self._expires_at: datetime | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"AgentConfigSigner(corp_id={self._client.corp_id!r}, agent_id={self._client.agent_id})"

    async def _current(self) -> str:
        if self._ticket and self._expires_at is not None and self._clock.now() < self._expires_at:
            return self._ticket
        async with self._lock:
            now = self._clock.now()
            if self._ticket and self._expires_at is not None and now < self._expires_at:
                return self._ticket
            ticket, expires_in = await self._client.agent_jsapi_ticket()
            lifetime = timedelta(seconds=expires_in)
            self._ticket = ticket
            self._expires_at = now + max(lifetime - REFRESH_MARGIN, lifetime / 2)
            log.info("wecom agent jsapi ticket refreshed", extra={"expires_in": expires_in})
            return ticket

    async def sign(self, url: str) -> AgentConfig:
        """wx.agentConfig's parameters for the page at `url` (no #fragment); raises WeComError."""
        ticket = await self._current()
        timestamp = int(self._clock.now().timestamp())
        nonce = secrets.token_urlsafe(12)
        return AgentConfig(
            corpid=self._client.corp_id,
            agentid=self._client.agent_id,
            timestamp=timestamp,
            nonce_str=nonce,
            signature=agent_config_signature(ticket, nonce, timestamp, url),
        )
