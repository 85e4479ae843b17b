"""The WeCom JS-SDK in the emulator: the app's agent jsapi_ticket, the SDK script a page loads, and
the client side that checks wx.agentConfig and answers wx.invoke from the emulator's state.

    GET  /cgi-bin/ticket/get?access_token&type=agent_config
         -> {"ticket", "expires_in": 7200}; the same ticket while it is valid (as WeCom); a type
            other than agent_config is 40058; the token is checked like every /cgi-bin call
    GET  /wwopen/js/jwxwork.js
         the SDK (emulator/chat/static/jwxwork.js): defines wx.agentConfig and wx.invoke, which
         ask the page that frames it (the emulator's chat page plays the WeCom client) over
         window.postMessage; outside a frame every call fails ("not running inside WeCom")
    POST /_emulator/jsapi/agent_config  {userid, corpid, agentid, timestamp, nonceStr, signature,
                                         url, jsApiList}
         what the client does for wx.agentConfig: corpid must be the emulator's, agentid one of its
         apps, and signature = sha1("jsapi_ticket=<the app's live ticket>&noncestr=<nonceStr>
         &timestamp=<timestamp>&url=<url>") (constant-time compare). -> {"err_msg":
         "agentConfig:ok", "config_id"} or {"err_msg": "agentConfig:fail <why>"}
    POST /_emulator/jsapi/invoke  {userid, config_id, api, args}
         wx.invoke for a page that passed agentConfig (as `userid`, naming `api` in its
         jsApiList): getContext -> {"err_msg": "getContext:ok", "entry": "single_chat_tools"} while
         the member has a chat with a customer open in the chat page (else entry "normal");
         getCurExternalContact -> {"err_msg": "getCurExternalContact:ok", "userId": <external_userid>}
         (else "getCurExternalContact:fail ..."). Anything else: "<api>:fail ...".

Which customer chat each member has open is `WeComJsApi.open_chats` (the chat page sets it).
Every agentConfig check is recorded in `verifications`. The stand-in imports nothing of the product.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from emulator.wecom import MORE_INFO, ApiError

if TYPE_CHECKING:
    from emulator.wecom import WeComEmulator

TICKET_TTL = timedelta(seconds=7200)
SCRIPT = Path(__file__).resolve().parent / "chat" / "static" / "jwxwork.js"
SUPPORTED = frozenset({"getContext", "getCurExternalContact"})
ENTRY_CHAT = "single_chat_tools"
_AGENT_ID = re.compile(r"[0-9]{1,18}\Z", re.ASCII)
_TIMESTAMP = re.compile(r"[0-9]{1,12}\Z", re.ASCII)


def agent_config_signature(ticket: str, noncestr: str, timestamp: str, url: str) -> str:
    plain = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(plain.encode("utf-8")).hexdigest()  # noqa: S324 - the protocol's hash


@dataclass(slots=True)
class _Ticket:
    agentid: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class _Config:
    userid: str
    agentid: int
    apis: frozenset[str]
    url: str


@dataclass(frozen=True, slots=True)
class Verification:
    """One wx.agentConfig check: who, for which page, and the answer."""

    userid: str
    url: str
    err_msg: str
    at: datetime


def _answer(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(
        data,
        status=status,
        dumps=lambda v: json.dumps(v, ensure_ascii=False),
        headers={"Cache-Control": "no-store"},
    )


@dataclass(slots=True)
class WeComJsApi:
    emulator: WeComEmulator
    open_chats: dict[str, str] = field(default_factory=dict)  # member userid -> external_userid
    verifications: list[Verification] = field(default_factory=list)
    _tickets: dict[str, _Ticket] = field(default_factory=dict)
    _current: dict[int, str] = field(default_factory=dict)  # agentid -> its live ticket
    _configs: dict[str, _Config] = field(default_factory=dict)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/cgi-bin/ticket/get", self._ticket_get),
            web.get("/wwopen/js/jwxwork.js", self._script),
            web.post("/_emulator/jsapi/agent_config", self._agent_config),
            web.post("/_emulator/jsapi/invoke", self._invoke),
        ]

    # ---- state

    def ticket_for(self, agentid: int) -> str:
        """The app's live agent jsapi_ticket (a new one when there is none or it expired)."""
        now = self.emulator.clock.now()
        live = self._current.get(agentid)
        entry = self._tickets.get(live) if live else None
        if live is None or entry is None or now >= entry.expires_at:
            live = secrets.token_urlsafe(32)
            self._tickets[live] = _Ticket(agentid, now + TICKET_TTL)
            self._current[agentid] = live
        return live

    def _live_ticket(self, agentid: int) -> str | None:
        live = self._current.get(agentid)
        entry = self._tickets.get(live) if live else None
        if live is None or entry is None or self.emulator.clock.now() >= entry.expires_at:
            return None
        return live

    def open_chat(self, userid: str, external_userid: str | None) -> None:
        """The member now has the chat with `external_userid` open (None: no customer chat)."""
        if external_userid:
            self.open_chats[userid] = external_userid
        else:
            self.open_chats.pop(userid, None)

    # ---- GET /cgi-bin/ticket/get

    async def _ticket_get(self, request: web.Request) -> web.Response:
        emu = self.emulator

        async def body(req: web.Request) -> dict[str, Any]:
            agentid = emu._agent_for(req)
            if req.query.get("type") != "agent_config":
                raise ApiError(40058, f"invalid parameter: type must be agent_config, {MORE_INFO}40058")
            ticket = self.ticket_for(agentid)
            left = self._tickets[ticket].expires_at - emu.clock.now()
            return {"ticket": ticket, "expires_in": int(left.total_seconds())}

        return await emu._answer(request, body)

    # ---- GET /wwopen/js/jwxwork.js

    async def _script(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=SCRIPT.read_bytes(),
            content_type="application/javascript",
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    # ---- the client side

    async def _json(self, request: web.Request) -> dict[str, Any] | None:
        try:
            data = json.loads(await request.text())
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        return data if isinstance(data, dict) else None

    def _member(self, data: dict[str, Any]) -> str | None:
        userid = data.get("userid")
        return userid if isinstance(userid, str) and userid in self.emulator.users else None

    def check(self, data: dict[str, Any]) -> tuple[str, str | None]:
        """(err_msg, config_id) of a wx.agentConfig call (`data` as the SDK sends it)."""
        emu = self.emulator
        userid = self._member(data)
        if userid is None:
            return "agentConfig:fail no WeCom member is signed in", None
        if data.get("corpid") != emu.corp_id:
            return "agentConfig:fail invalid corpid", None
        raw_agent = data.get("agentid")
        agent_text = (
            str(raw_agent) if isinstance(raw_agent, int | str) and not isinstance(raw_agent, bool) else ""
        )
        if not _AGENT_ID.match(agent_text) or int(agent_text) not in emu.apps:
            return "agentConfig:fail invalid agentid", None
        agentid = int(agent_text)
        raw_ts = data.get("timestamp")
        timestamp = str(raw_ts) if isinstance(raw_ts, int | str) and not isinstance(raw_ts, bool) else ""
        nonce, url, signature = data.get("nonceStr"), data.get("url"), data.get("signature")
        apis = data.get("jsApiList")
        if (
            not _TIMESTAMP.match(timestamp)
            or not isinstance(nonce, str)
            or not nonce
            or not isinstance(url, str)
            or not url.startswith(("http://", "https://"))
            or "#" in url
            or not isinstance(signature, str)
        ):
            return "agentConfig:fail invalid arguments", None
        if not isinstance(apis, list) or not apis or not all(isinstance(a, str) for a in apis):
            return "agentConfig:fail jsApiList must name the APIs to use", None
        ticket = self._live_ticket(agentid)
        if ticket is None:
            return "agentConfig:fail no jsapi_ticket was issued to this app (or it expired)", None
        expected = agent_config_signature(ticket, nonce, timestamp, url)
        if not hmac.compare_digest(expected.encode("ascii"), signature.lower().encode("utf-8")):
            return "agentConfig:fail invalid signature", None
        config_id = secrets.token_urlsafe(16)
        self._configs[config_id] = _Config(userid, agentid, frozenset(apis), url)
        return "agentConfig:ok", config_id

    async def _agent_config(self, request: web.Request) -> web.Response:
        data = await self._json(request)
        if data is None:
            return _answer({"err_msg": "agentConfig:fail the body must be a JSON object"}, 400)
        err_msg, config_id = self.check(data)
        url = data.get("url")
        self.verifications.append(
            Verification(
                str(data.get("userid", "")),
                url if isinstance(url, str) else "",
                err_msg,
                self.emulator.clock.now(),
            )
        )
        return _answer({"err_msg": err_msg, **({"config_id": config_id} if config_id else {})})

    def invoke(self, userid: str, config_id: object, api: str) -> dict[str, Any]:
        """wx.invoke(api) for `userid` in a page whose agentConfig gave `config_id`."""
        config = self._configs.get(config_id) if isinstance(config_id, str) else None
        if config is None or config.userid != userid:
            return {"err_msg": f"{api}:fail no permission (call wx.agentConfig first)"}
        if api not in config.apis:
            return {"err_msg": f"{api}:fail no permission (not in jsApiList)"}
        if api not in SUPPORTED:
            return {"err_msg": f"{api}:fail not supported by the emulator"}
        external = self.open_chats.get(userid)
        if api == "getContext":
            return {
                "err_msg": "getContext:ok",
                "entry": ENTRY_CHAT if external else "normal",
                "shareTicket": "",
            }
        if external is None:
            return {"err_msg": "getCurExternalContact:fail no chat with an external contact is open"}
        return {"err_msg": "getCurExternalContact:ok", "userId": external}

    async def _invoke(self, request: web.Request) -> web.Response:
        data = await self._json(request)
        if data is None:
            return _answer({"err_msg": "invoke:fail the body must be a JSON object"}, 400)
        api = data.get("api")
        if not isinstance(api, str) or not api or len(api) > 64:
            return _answer({"err_msg": "invoke:fail api is required"}, 400)
        userid = self._member(data)
        if userid is None:
            return _answer({"err_msg": f"{api}:fail no WeCom member is signed in"})
        return _answer(self.invoke(userid, data.get("config_id"), api))
