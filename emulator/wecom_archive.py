"""The chat archive (会话存档) in the WeCom emulator: every 1:1 message between a staff member and a
customer that the web chat page sends (emulator/chat/customers.py) is recorded here, in order.

    GET /_emulator/archive?seq=<after>&limit=<n>
        -> {"errcode": 0, "errmsg": "ok", "chatdata": [
              {"seq", "msgid", "action": "send", "from", "tolist": [...], "roomid": "",
               "msgtime": <ms>, "msgtype": "text", "text": {"content": ...}}, ...]}

i.e. what WeCom's finance/getchatdata gives after each message is decrypted with the archive's
private key (the real one needs Tencent's native SDK). `seq` defaults to 0, `limit` to 100 (at
most 1000, as WeCom's); a bad value is errcode 40058 (HTTP 200, as WeCom answers). Like the rest of
/_emulator, it has no auth: the emulator listens on loopback only.

The stand-in imports nothing of the product.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
_NUMBER = re.compile(r"[0-9]{1,18}\Z", re.ASCII)


class _Clock(Protocol):
    def now(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class ArchivedMessage:
    seq: int
    msgid: str
    sender: str
    tolist: tuple[str, ...]
    msgtime: int  # milliseconds since the epoch
    content: str
    roomid: str = ""
    msgtype: str = "text"
    action: str = "send"

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "msgid": self.msgid,
            "action": self.action,
            "from": self.sender,
            "tolist": list(self.tolist),
            "roomid": self.roomid,
            "msgtime": self.msgtime,
            "msgtype": self.msgtype,
            "text": {"content": self.content},
        }


@dataclass(slots=True)
class ChatArchive:
    clock: _Clock
    messages: list[ArchivedMessage] = field(default_factory=list)

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/_emulator/archive", self._get)]

    def record(self, sender: str, tolist: Sequence[str], text: str, *, roomid: str = "") -> ArchivedMessage:
        """Archive one text message (seq and msgid assigned here)."""
        message = ArchivedMessage(
            seq=len(self.messages) + 1,
            msgid=f"{secrets.token_hex(10)}_{len(self.messages) + 1}_external",
            sender=sender,
            tolist=tuple(tolist),
            msgtime=int(self.clock.now().timestamp() * 1000),
            content=text,
            roomid=roomid,
        )
        self.messages.append(message)
        return message

    def after(self, seq: int, limit: int) -> list[ArchivedMessage]:
        return [m for m in self.messages if m.seq > seq][:limit]

    def between(self, a: str, b: str) -> list[ArchivedMessage]:
        """The 1:1 messages between `a` and `b`, oldest first."""
        return [
            m
            for m in self.messages
            if not m.roomid and ((m.sender == a and b in m.tolist) or (m.sender == b and a in m.tolist))
        ]

    async def _get(self, request: web.Request) -> web.Response:
        raw_seq = request.query.get("seq", "0")
        raw_limit = request.query.get("limit", str(DEFAULT_LIMIT))
        if not _NUMBER.match(raw_seq) or not _NUMBER.match(raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
            body: dict[str, Any] = {
                "errcode": 40058,
                "errmsg": f"invalid parameter: seq must be a number >= 0 and limit 1..{MAX_LIMIT}",
            }
        else:
            chatdata = [m.to_json() for m in self.after(int(raw_seq), int(raw_limit))]
            body = {"errcode": 0, "errmsg": "ok", "chatdata": chatdata}
        return web.json_response(
            body, dumps=lambda v: json.dumps(v, ensure_ascii=False), headers={"Cache-Control": "no-store"}
        )
