"""The chat page's customer chats (WeCom): a staff member opens a 1:1 chat with one of their customers
(the external contacts that follow them, emulator/wecom_contacts.py), sends messages both ways
(each recorded in the chat archive, emulator/wecom_archive.py) and opens the chat toolbar's page
(聊天工具栏, e.g. ticketbot's work-order sidebar) beside it. The chat that is open is what the
JS-SDK's wx.invoke answers (emulator/wecom_jsapi.py).

    GET  /_chat/customers?userid=          {"customers": [{"external_userid", "name", "corp_name"}],
                                            "toolbar": [{"name", "url"}]}
    GET  /_chat/customers/messages?userid=&external_userid=   {"messages": [archive messages]}
    POST /_chat/customers/open {userid, external_userid | null}   that chat is open now (or none)
    POST /_chat/customers/send {userid, external_userid, text, as: "staff" | "customer"}
         -> {"message": the archived message}

Bad input is a 4xx {"error": "..."}: 400 malformed, 404 an unknown member or a customer who does not
follow them. The browser side is static/customers.js. It imports nothing of the product.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from emulator.wecom import WeComEmulator

MAX_TEXT = 2048
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class ToolbarPage:
    """A page of the chat toolbar (聊天工具栏), as the admin console configures one."""

    name: str
    url: str


class CustomerError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data,
        status=status,
        dumps=lambda v: json.dumps(v, ensure_ascii=False),
        headers={"Cache-Control": "no-store"},
    )


class CustomerChats:
    def __init__(self, wecom: WeComEmulator, toolbar: Sequence[ToolbarPage] = ()) -> None:
        self.wecom = wecom
        self.toolbar = tuple(toolbar)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/_chat/customers", self._guarded(self._list))
        app.router.add_get("/_chat/customers/messages", self._guarded(self._messages))
        app.router.add_post("/_chat/customers/open", self._guarded(self._open))
        app.router.add_post("/_chat/customers/send", self._guarded(self._send))

    @staticmethod
    def _guarded(handler: Any) -> Any:
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                response: web.StreamResponse = await handler(request)
            except CustomerError as exc:
                return _json({"error": exc.message}, exc.status)
            return response

        return run

    # ---- who follows whom

    def customers_of(self, userid: str) -> list[dict[str, Any]]:
        """The external contacts that follow `userid`, by name."""
        contacts = self.wecom.contacts
        found = [
            contacts.contacts[ext]
            for ext, follows in contacts.follows.items()
            if userid in follows and ext in contacts.contacts
        ]
        return sorted(found, key=lambda c: (str(c.get("name", "")), str(c["external_userid"])))

    def _member(self, value: object) -> str:
        if not isinstance(value, str) or value not in self.wecom.users:
            raise CustomerError(404, f"{value!r} is not a member of the WeCom directory")
        return value

    def _customer(self, userid: str, value: object) -> str:
        if not isinstance(value, str) or not value:
            raise CustomerError(400, "external_userid is required")
        if not any(c["external_userid"] == value for c in self.customers_of(userid)):
            raise CustomerError(404, f"{value!r} is not a customer of {userid!r}")
        return value

    @staticmethod
    async def _body(request: web.Request) -> Mapping[str, Any]:
        try:
            data = json.loads(await request.text())
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise CustomerError(400, "the body must be a JSON object") from None
        if not isinstance(data, dict):
            raise CustomerError(400, "the body must be a JSON object")
        return data

    # ---- routes

    async def _list(self, request: web.Request) -> web.Response:
        userid = self._member(request.query.get("userid"))
        customers = [
            {
                "external_userid": c["external_userid"],
                "name": str(c.get("name", "")),
                "corp_name": str(c.get("corp_name", "")),
            }
            for c in self.customers_of(userid)
        ]
        toolbar = [{"name": t.name, "url": t.url} for t in self.toolbar]
        return _json({"customers": customers, "toolbar": toolbar})

    async def _messages(self, request: web.Request) -> web.Response:
        userid = self._member(request.query.get("userid"))
        external = self._customer(userid, request.query.get("external_userid"))
        return _json({"messages": [m.to_json() for m in self.wecom.archive.between(userid, external)]})

    async def _open(self, request: web.Request) -> web.Response:
        data = await self._body(request)
        userid = self._member(data.get("userid"))
        raw = data.get("external_userid")
        external = self._customer(userid, raw) if raw is not None else None
        self.wecom.jsapi.open_chat(userid, external)
        return _json({"userid": userid, "external_userid": external})

    async def _send(self, request: web.Request) -> web.Response:
        data = await self._body(request)
        userid = self._member(data.get("userid"))
        external = self._customer(userid, data.get("external_userid"))
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise CustomerError(400, "text is required (a non-empty string)")
        if len(text) > MAX_TEXT or _SURROGATE.search(text):
            raise CustomerError(400, f"text must be at most {MAX_TEXT} characters of valid text")
        who = data.get("as", "staff")
        if who not in ("staff", "customer"):
            raise CustomerError(400, "as must be staff or customer")
        sender, to = (userid, external) if who == "staff" else (external, userid)
        message = self.wecom.archive.record(sender, [to], text)
        return _json({"message": message.to_json()})
