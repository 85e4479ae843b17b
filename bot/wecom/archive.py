"""The chat archive (会话存档) over HTTP: core.chat_archive.ChatArchive for a source answering

    GET <url>?seq=<after>&limit=<n>    [Authorization: Bearer <token>]
    -> {"errcode": 0, "errmsg": "ok", "chatdata": [
          {"seq": 12, "msgid": "...", "action": "send", "from": "XuLi", "tolist": ["wm..."],
           "roomid": "", "msgtime": 1700000000123, "msgtype": "text", "text": {"content": "..."}}]}

i.e. WeCom's finance/getchatdata with each message already decrypted (decrypting needs Tencent's
native SDK and the archive's private key: a sidecar does that; the emulator serves this shape at
/_emulator/archive). Messages with `action` other than "send" (recall, switch) are not kept, but
the seq moves past them; a malformed message is logged (seq and msgid only) and skipped. A text
message is kept as {"text": content}, any other type as {msgtype: its object}.

The token never reaches a log line or an exception message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp

from core.chat_archive import ArchivePage
from core.workorder import ChatRecord

log = logging.getLogger("ticketbot.wecom.archive")

SOURCE = "archive"
MAX_ID = 128


class ArchiveError(Exception):
    """The archive could not be read (unreachable, not JSON, or an errcode)."""


def _record(item: Mapping[str, Any]) -> ChatRecord | None:
    """The chat record of one decrypted message, or None for one not kept (or malformed)."""
    if item.get("action", "send") != "send":
        return None
    msgid, sender, msgtype = item.get("msgid"), item.get("from"), item.get("msgtype")
    msgtime, tolist, roomid = item.get("msgtime"), item.get("tolist") or [], item.get("roomid") or ""
    if (
        not isinstance(msgid, str)
        or not 0 < len(msgid) <= MAX_ID
        or not isinstance(sender, str)
        or not isinstance(msgtype, str)
        or not msgtype
        or isinstance(msgtime, bool)
        or not isinstance(msgtime, int)
        or not isinstance(tolist, list)
        or not all(isinstance(t, str) for t in tolist)
        or not isinstance(roomid, str)
    ):
        raise ValueError("malformed message")
    body = item.get(msgtype)
    if msgtype == "text":
        text = body.get("content") if isinstance(body, Mapping) else None
        if not isinstance(text, str):
            raise ValueError("text message without content")
        content: dict[str, Any] = {"text": text}
    else:
        content = {msgtype: dict(body)} if isinstance(body, Mapping) else {}
    try:
        sent_at = datetime.fromtimestamp(msgtime / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError("msgtime out of range") from None
    return ChatRecord(
        id=msgid,
        source=SOURCE,
        sent_at=sent_at,
        from_id=sender,
        to_ids=tuple(tolist),
        room_id=roomid,
        msg_type=msgtype,
        content=content,
    )


def parse_page(body: Mapping[str, Any], after_seq: int) -> ArchivePage:
    """The records of one answer and the seq to ask after next time."""
    errcode = body.get("errcode", 0)
    if errcode != 0:
        raise ArchiveError(f"the archive answered errcode {errcode}: {str(body.get('errmsg', ''))[:200]}")
    items = body.get("chatdata")
    if not isinstance(items, list):
        raise ArchiveError("the archive answered without a chatdata list")
    records: list[ChatRecord] = []
    next_seq = after_seq
    for item in items:
        seq = item.get("seq") if isinstance(item, Mapping) else None
        if isinstance(seq, bool) or not isinstance(seq, int) or seq <= after_seq:
            raise ArchiveError(f"the archive answered a message without a seq above {after_seq}")
        next_seq = max(next_seq, seq)
        try:
            record = _record(item)
        except ValueError as exc:
            msgid = item.get("msgid")
            log.warning(
                "chat archive message skipped",
                extra={"seq": seq, "msg_id": msgid if isinstance(msgid, str) else "", "reason": str(exc)},
            )
            continue
        if record is not None:
            records.append(record)
    return ArchivePage(tuple(records), next_seq)


class HttpChatArchive:
    """core.chat_archive.ChatArchive over a getchatdata-like HTTP source (see the module docstring)."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, *, token: str = "", timeout: float = 10.0
    ) -> None:
        self._session = session
        self._url = url
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:
        return f"HttpChatArchive(url={self._url!r})"

    async def fetch(self, after_seq: int, limit: int) -> ArchivePage:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        params = {"seq": str(after_seq), "limit": str(limit)}
        try:
            async with self._session.get(
                self._url, params=params, headers=headers, timeout=self._timeout
            ) as resp:
                if resp.status != 200:
                    raise ArchiveError(f"the archive answered HTTP {resp.status}")
                body = await resp.json(content_type=None)
        except ArchiveError:
            raise
        except TimeoutError:
            raise ArchiveError("the archive did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise ArchiveError(f"the archive could not be reached ({type(exc).__name__})") from None
        except ValueError:
            raise ArchiveError("the archive did not answer JSON") from None
        if not isinstance(body, dict):
            raise ArchiveError("the archive did not answer a JSON object")
        return parse_page(body, after_seq)
