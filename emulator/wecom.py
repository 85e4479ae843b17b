"""A local stand-in for WeCom (企业微信): the /cgi-bin API of https://qyapi.weixin.qq.com, and the
callback side (encrypted, signed POSTs to the bot, with WeCom's deadline and retries).

It speaks the wire protocol only and imports nothing of the product.

API (under /cgi-bin):
    GET  gettoken?corpid&corpsecret              40013 bad corpid, 40001 bad secret; 7200 s tokens
    POST message/send?access_token               text | template_card; 30/min/person silent drop
    POST message/update_template_card?access_token   60140 unknown / used / expired response_code
    GET  user/get?userid   user/list?department_id   department/list[?id]
    GET  auth/getuserinfo?access_token&code      the member behind a web OAuth code: {"userid"};
                                                 40029 unknown / used / expired code, 41008 none
    GET  externalcontact/get?external_userid   externalcontact/list?userid
                                                 customers (客户) and their follow users, and the
                                                 change_external_contact callbacks: emulator/wecom_contacts.py

Web OAuth (网页授权登录, open.weixin.qq.com in WeCom; emulator/wecom_oauth.py):
    GET  /connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state[&agentid]
         302 to redirect_uri?code&state for the member of the cookie emulator_wecom_user (the web
         chat page sets it), or a page to pick a member; bad appid / response_type: a 400 page.
         Codes work once, for 5 minutes, for that app. `WeComEmulator.oauth` holds them.

Error codes the platform documents are used where it documents them (shared/docs/platforms.md).
Where it does not, the emulator picks a code in the documented 42027..42051 template-card range:

    42014  task_id has characters other than [0-9A-Za-z_@-], is empty or is over 128 bytes (doc)
    42027  card_type missing or not one of the five types; template_card not an object
    42028  button_list has more than 6 buttons
    42029  button keys not unique
    42030  button key missing or over 1024 bytes
    42031  button style not 1..4
    42032  horizontal_content_list has more than 6 items
    42033  button_interaction without buttons
    42034  interaction card without task_id
    42035  task_id already used by this app
    42045  card_action missing on text_notice / news_notice (doc)
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import secrets
import time
import urllib.parse
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol
from xml.etree import ElementTree as ET

import aiohttp
from aiohttp import web
from yarl import URL

from emulator.chaos import Stalls
from emulator.wecom_crypto import WeComCipher, signature

TOKEN_TTL = 7200
RESPONSE_CODE_TTL = timedelta(hours=24)
PER_MINUTE = 30
PER_HOUR = 1000
CARD_TYPES = frozenset(
    {"text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction"}
)
INTERACTIVE = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})
TASK_ID = re.compile(r"[0-9A-Za-z_\-@]{1,128}")
MORE_INFO = "more info at https://open.work.weixin.qq.com/devtool/query?e="


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


# ---------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class TokenRequest:
    at: datetime
    corpid: str
    errcode: int


@dataclass(frozen=True, slots=True)
class SentMessage:
    msgid: str
    agentid: int
    msgtype: str
    body: dict[str, Any]
    recipients: tuple[str, ...]  # every valid addressee
    delivered_to: tuple[str, ...]  # those under the rate limit
    invaliduser: tuple[str, ...]
    response_code: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class DroppedMessage:
    msgid: str
    userid: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CardUpdate:
    msgid: str
    response_code: str
    userids: tuple[str, ...]
    body: dict[str, Any]
    at: datetime


@dataclass(frozen=True, slots=True)
class Failure:
    path: str
    errcode: int
    at: datetime


@dataclass(slots=True)
class Records:
    """What the emulator received: for tests to assert on."""

    token_requests: list[TokenRequest] = field(default_factory=list)
    messages: list[SentMessage] = field(default_factory=list)
    drops: list[DroppedMessage] = field(default_factory=list)
    updates: list[CardUpdate] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)  # errcodes answered to API calls (chaos included)
    calls: list[str] = field(default_factory=list)  # paths, in order

    @property
    def gettoken_calls(self) -> int:
        return len(self.token_requests)

    def delivered_to(self, userid: str) -> list[SentMessage]:
        return [m for m in self.messages if userid in m.delivered_to]


@dataclass(slots=True)
class _Token:
    agentid: int
    expires_at: datetime
    revoked: bool = False


@dataclass(slots=True)
class _ResponseCode:
    msgid: str
    agentid: int
    recipients: tuple[str, ...]
    issued_at: datetime
    used: bool = False


@dataclass(slots=True)
class _Chaos:
    remaining: int
    errcode: int
    errmsg: str
    path: str | None
    http_status: int | None = None


class HttpFailure(Exception):
    """Chaos: the call is answered with this HTTP status and a plain-text body, as a gateway does."""

    def __init__(self, status: int) -> None:
        super().__init__(f"{status} emulated gateway error")
        self.status = status


class ApiError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


ERRMSG = {
    -1: "system busy",
    40001: "invalid secret",
    40008: "invalid message type",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40056: "invalid agentid",
    40058: "invalid parameter",
    41001: "access_token missing",
    41002: "corpid missing",
    41004: "corpsecret missing",
    41011: "agentid missing",
    42001: "access_token expired",
    44004: "empty content",
    45002: "content size out of limit",
    45009: "reach max api daily quota limit",
    45033: "api concurrent out of limit",
    47001: "data format error",
    48002: "api forbidden",
    60003: "department not found",
    60020: "not allow to access from your ip",
    60111: "userid not found",
    60140: "invalid response_code",
    81013: "user & party & tag all invalid",
}


def _err(errcode: int, detail: str = "") -> ApiError:
    base = ERRMSG.get(errcode, "error")
    return ApiError(errcode, f"{base}{', ' + detail if detail else ''}, {MORE_INFO}{errcode}")


# ---------------------------------------------------------------- the emulator


class WeComEmulator:
    """One corp with one or more self-built apps (agentid -> secret) and an org directory.

    org = {"departments": [{"id": 1, "name": "总部", "parentid": 0}, ...],
           "users": [{"userid": "zhangsan", "name": "张三", "department": [1]}, ...]}
    """

    def __init__(
        self,
        *,
        corp_id: str,
        apps: Mapping[int, str],
        clock: Clock,
        org: Mapping[str, Iterable[Mapping[str, Any]]] | None = None,
        seed: int = 0,
        per_minute: int = PER_MINUTE,
        per_hour: int = PER_HOUR,
    ) -> None:
        self.corp_id = corp_id
        self.apps = dict(apps)
        self.clock = clock
        org = org or {}
        self.departments: list[dict[str, Any]] = [dict(d) for d in org.get("departments", [])]
        self.users: dict[str, dict[str, Any]] = {str(u["userid"]): dict(u) for u in org.get("users", [])}
        self.per_minute = per_minute
        self.per_hour = per_hour
        self.records = Records()
        # called with each SentMessage / CardUpdate / DroppedMessage / Failure as it is recorded
        # (synchronously, in the emulator's event loop): benchmarks time arrivals with it
        self.on_record: Callable[[SentMessage | CardUpdate | DroppedMessage | Failure], None] | None = None
        self.trusted_ips: set[str] | None = None  # None: every IP is trusted
        self.forbidden_paths: set[str] = set()  # answered with 48002
        self._rng = random.Random(seed)  # noqa: S311 - chaos and ids, not security
        self._tokens: dict[str, _Token] = {}
        self._current: dict[int, str] = {}  # agentid -> its live token
        self._response_codes: dict[str, _ResponseCode] = {}
        self._task_ids: dict[int, set[str]] = defaultdict(set)
        self._deliveries: dict[str, deque[datetime]] = defaultdict(deque)
        self._chaos: list[_Chaos] = []
        self.stalls = Stalls()  # chaos: calls that answer late, or only once released
        self._fail_ratio = 0.0
        self._fail_ratio_errcode = -1
        self._fail_ratio_path: str | None = None
        self._msg_seq = 0
        from emulator.wecom_oauth import WeComOAuth  # here: that module builds on this one

        self.oauth = WeComOAuth(self)
        from emulator.wecom_archive import ChatArchive
        from emulator.wecom_jsapi import WeComJsApi  # builds on this module too

        self.jsapi = WeComJsApi(self)  # agent jsapi_ticket, the JS-SDK, wx.invoke's answers
        self.archive = ChatArchive(clock)  # 会话存档: staff <-> customer messages of the chat page
        from emulator.wecom_contacts import WeComContacts  # here: that module builds on this one

        self.contacts = WeComContacts(self)

    # ---- switches

    def expire_all_tokens(self) -> None:
        """Every issued token answers 42001 from now on (as if 7200 s had passed)."""
        for tok in self._tokens.values():
            tok.expires_at = min(tok.expires_at, self.clock.now())
        self._current.clear()

    def revoke_all_tokens(self) -> None:
        """Every issued token answers 40014 from now on (WeCom invalidated them early)."""
        for tok in self._tokens.values():
            tok.revoked = True
        self._current.clear()

    def fail_next(self, n: int, errcode: int, *, path: str | None = None, errmsg: str | None = None) -> None:
        """The next `n` API calls (to `path` only, if given, e.g. "/cgi-bin/message/send") answer `errcode`."""
        self._chaos.append(_Chaos(n, errcode, errmsg or _err(errcode).errmsg, path))

    def fail_next_http(self, n: int, status: int = 503, *, path: str | None = None) -> None:
        """The next `n` API calls (to `path` only, if given) answer HTTP `status` (500..599) with no JSON."""
        if not 500 <= status <= 599:
            raise ValueError("status must be within 500..599")
        self._chaos.append(_Chaos(n, status, f"{status} emulated gateway error", path, http_status=status))

    def stall_next(self, n: int, *, path: str | None = None, seconds: float | None = None) -> None:
        """The next `n` API calls answer only after `seconds`, or once `stalls.release()` is called."""
        self.stalls.stall_next(n, path=path, seconds=seconds)

    def fail_ratio(self, ratio: float, errcode: int = -1, *, path: str | None = None) -> None:
        """From now on each API call fails with `errcode` with probability `ratio` (seeded random)."""
        if not 0.0 <= ratio <= 1.0:
            raise ValueError("ratio must be within 0..1")
        self._fail_ratio, self._fail_ratio_errcode, self._fail_ratio_path = ratio, errcode, path

    def issued_tokens(self) -> list[str]:
        """Every access token handed out so far (for tests that check nothing leaks them)."""
        return list(self._tokens)

    def issue_click_response_code(self, msgid: str) -> str:
        """A fresh response_code for a click on the card sent as `msgid` (WeCom puts one in each click event)."""
        sent = next((m for m in self.records.messages if m.msgid == msgid), None)
        if sent is None:
            raise KeyError(msgid)
        return self._new_response_code(sent.msgid, sent.agentid, sent.recipients)

    def _record(self, where: list[Any], item: SentMessage | CardUpdate | DroppedMessage | Failure) -> None:
        where.append(item)
        if self.on_record is not None:
            self.on_record(item)

    # ---- app

    def app(self) -> web.Application:
        app = web.Application()
        routes = [
            web.get("/cgi-bin/gettoken", self._gettoken),
            web.post("/cgi-bin/message/send", self._send),
            web.post("/cgi-bin/message/update_template_card", self._update_card),
            web.get("/cgi-bin/user/get", self._user_get),
            web.get("/cgi-bin/user/list", self._user_list),
            web.get("/cgi-bin/department/list", self._department_list),
        ]
        routes += self.oauth.routes()
        routes += self.jsapi.routes() + self.archive.routes()
        routes += self.contacts.routes()
        app.add_routes(routes)
        return app

    async def _answer(
        self, request: web.Request, body: Callable[[web.Request], Awaitable[dict[str, Any]]]
    ) -> web.Response:
        path = request.path
        self.records.calls.append(path)
        await request.read()  # kept: a stalled call whose client left is still carried out when released
        await self.stalls.wait(path)
        try:
            self._chaos_check(path)
            if self.trusted_ips is not None and request.remote not in self.trusted_ips:
                raise _err(60020, f"from ip: {request.remote}")
            result = await body(request)
        except ApiError as exc:
            self._record(self.records.failures, Failure(path, exc.errcode, self.clock.now()))
            return web.json_response({"errcode": exc.errcode, "errmsg": exc.errmsg})
        except HttpFailure as exc:
            self._record(self.records.failures, Failure(path, exc.status, self.clock.now()))
            return web.Response(status=exc.status, text=str(exc))
        return web.json_response({"errcode": 0, "errmsg": "ok", **result})

    def _chaos_check(self, path: str) -> None:
        for chaos in self._chaos:
            if chaos.remaining > 0 and (chaos.path is None or chaos.path == path):
                chaos.remaining -= 1
                self._chaos = [c for c in self._chaos if c.remaining > 0]
                if chaos.http_status is not None:
                    raise HttpFailure(chaos.http_status)
                raise ApiError(chaos.errcode, chaos.errmsg)
        applies = self._fail_ratio and (self._fail_ratio_path is None or self._fail_ratio_path == path)
        if applies and self._rng.random() < self._fail_ratio:
            raise _err(self._fail_ratio_errcode)

    def _agent_for(self, request: web.Request) -> int:
        token = request.query.get("access_token", "")
        if not token:
            raise _err(41001)
        tok = self._tokens.get(token)
        if tok is None or tok.revoked:
            raise _err(40014)
        if self.clock.now() >= tok.expires_at:
            raise _err(42001)
        if request.path in self.forbidden_paths:
            raise _err(48002)
        return tok.agentid

    # ---- gettoken

    async def _gettoken(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            corpid = req.query.get("corpid", "")
            secret = req.query.get("corpsecret", "")
            try:
                if not corpid:
                    raise _err(41002)
                if not secret:
                    raise _err(41004)
                if corpid != self.corp_id:
                    raise _err(40013)
                agentid = next((a for a, s in self.apps.items() if secrets.compare_digest(s, secret)), None)
                if agentid is None:
                    raise _err(40001)
            except ApiError as exc:
                self.records.token_requests.append(TokenRequest(self.clock.now(), corpid, exc.errcode))
                raise
            now = self.clock.now()
            self.records.token_requests.append(TokenRequest(now, corpid, 0))
            live = self._current.get(agentid)
            tok = self._tokens.get(live) if live else None
            if live is None or tok is None or tok.revoked or now >= tok.expires_at:
                live = secrets.token_urlsafe(48)
                tok = _Token(agentid, now + timedelta(seconds=TOKEN_TTL))
                self._tokens[live] = tok
                self._current[agentid] = live
            return {"access_token": live, "expires_in": int((tok.expires_at - now).total_seconds())}

        return await self._answer(request, body)

    # ---- message/send

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            data = json.loads(await request.text())
        except (ValueError, UnicodeDecodeError):
            raise _err(47001, "body is not JSON") from None
        if not isinstance(data, dict):
            raise _err(47001, "body is not a JSON object")
        return data

    def _check_agentid(self, data: Mapping[str, Any], agentid: int) -> None:
        if "agentid" not in data:
            raise _err(41011)
        try:
            given = int(data["agentid"])
        except (TypeError, ValueError):
            raise _err(40056) from None
        if given != agentid:
            raise _err(40056, "agentid does not match the access_token's app")

    def _recipients(self, data: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(valid userids in order, invalid userids) for touser / toparty."""
        valid: list[str] = []
        invalid: list[str] = []
        touser = str(data.get("touser", "") or "")
        toparty = str(data.get("toparty", "") or "")
        if touser == "@all":
            valid = list(self.users)
        else:
            for uid in filter(None, touser.split("|")):
                (valid if uid in self.users else invalid).append(uid)
        for part in filter(None, toparty.split("|")):
            ids = self._subtree(int(part)) if part.isdigit() else set()
            for uid, user in self.users.items():
                if ids & {int(d) for d in user.get("department", [])} and uid not in valid:
                    valid.append(uid)
        return tuple(dict.fromkeys(valid)), tuple(invalid)

    def _validate_card(self, card: Any, agentid: int) -> tuple[str, str | None]:
        """(card_type, task_id) of a valid card; ApiError otherwise."""
        if not isinstance(card, dict):
            raise _err(42027, "template_card must be an object")
        card_type = card.get("card_type")
        if card_type not in CARD_TYPES:
            raise _err(42027, f"invalid card_type {card_type!r}")
        if card_type in {"text_notice", "news_notice"} and not card.get("card_action"):
            raise _err(42045, "card_action missing")
        if len(card.get("horizontal_content_list") or []) > 6:
            raise _err(42032, "horizontal_content_list has more than 6 items")
        buttons = card.get("button_list") or []
        if not isinstance(buttons, list):
            raise _err(42028, "button_list must be a list")
        if len(buttons) > 6:
            raise _err(42028, "button_list has more than 6 buttons")
        if card_type == "button_interaction" and not buttons:
            raise _err(42033, "button_interaction needs button_list")
        keys: set[str] = set()
        for b in buttons:
            key = b.get("key") if isinstance(b, dict) else None
            if not isinstance(key, str) or not key or len(key.encode()) > 1024:
                raise _err(42030, "button key missing or over 1024 bytes")
            if key in keys:
                raise _err(42029, f"duplicate button key {key!r}")
            keys.add(key)
            style = b.get("style", 1)
            if not isinstance(style, int) or not 1 <= style <= 4:
                raise _err(42031, "button style must be 1..4")
        task_id = card.get("task_id")
        if task_id is None:
            if card_type in INTERACTIVE:
                raise _err(42034, "task_id missing")
            return card_type, None
        if not isinstance(task_id, str) or not TASK_ID.fullmatch(task_id):
            raise _err(42014, "task_id must be 1..128 of [0-9A-Za-z_-@]")
        if task_id in self._task_ids[agentid]:
            raise _err(42035, f"task_id {task_id!r} already used")
        return card_type, task_id

    def _under_limit(self, userid: str, now: datetime) -> str | None:
        """None if a message may reach `userid` now, else why it is dropped."""
        window = self._deliveries[userid]
        while window and now - window[0] >= timedelta(hours=1):
            window.popleft()
        last_minute = sum(1 for t in window if now - t < timedelta(minutes=1))
        if last_minute >= self.per_minute:
            return f"over {self.per_minute}/min"
        if len(window) >= self.per_hour:
            return f"over {self.per_hour}/hour"
        return None

    def _new_response_code(self, msgid: str, agentid: int, recipients: tuple[str, ...]) -> str:
        code = "".join(self._rng.choice("abcdefghijklmnopqrstuvwxyz0123456789_-") for _ in range(43))
        self._response_codes[code] = _ResponseCode(msgid, agentid, recipients, self.clock.now())
        return code

    async def _send(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            agentid = self._agent_for(req)
            data = await self._json(req)
            self._check_agentid(data, agentid)
            msgtype = data.get("msgtype")
            task_id: str | None = None
            card_type = ""
            if msgtype == "text":
                text = data.get("text")
                content = text.get("content") if isinstance(text, dict) else None
                if not isinstance(content, str) or not content:
                    raise _err(44004)
                if len(content.encode()) > 2048:
                    raise _err(45002, "text content over 2048 bytes")
            elif msgtype == "template_card":
                card_type, task_id = self._validate_card(data.get("template_card"), agentid)
            else:
                raise _err(40008, f"msgtype {msgtype!r} not supported by the emulator")
            recipients, invalid = self._recipients(data)
            if not recipients:
                raise _err(81013)
            now = self.clock.now()
            self._msg_seq += 1
            msgid = f"msg{self._msg_seq:06d}_{self._rng.getrandbits(32):08x}"
            delivered: list[str] = []
            for uid in recipients:
                why = self._under_limit(uid, now)
                if why is None:
                    self._deliveries[uid].append(now)
                    delivered.append(uid)
                else:  # WeCom answers ok and drops the excess silently
                    self._record(self.records.drops, DroppedMessage(msgid, uid, why, now))
            if task_id is not None:
                self._task_ids[agentid].add(task_id)
            code = self._new_response_code(msgid, agentid, recipients) if card_type in INTERACTIVE else None
            self._record(
                self.records.messages,
                SentMessage(
                    msgid, agentid, str(msgtype), data, recipients, tuple(delivered), invalid, code, now
                ),
            )
            result: dict[str, Any] = {"invaliduser": "|".join(invalid), "msgid": msgid}
            if code is not None:
                result["response_code"] = code
            return result

        return await self._answer(request, body)

    # ---- message/update_template_card

    async def _update_card(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            agentid = self._agent_for(req)
            data = await self._json(req)
            self._check_agentid(data, agentid)
            code = data.get("response_code")
            if not isinstance(code, str):
                raise _err(60140, "response_code missing")
            entry = self._response_codes.get(code)
            now = self.clock.now()
            if entry is None or entry.agentid != agentid:
                raise _err(60140, "response_code unknown")
            if entry.used:
                raise _err(60140, "response_code already used")
            if now - entry.issued_at >= RESPONSE_CODE_TTL:
                raise _err(60140, "response_code expired")
            button = data.get("button")
            card = data.get("template_card")
            if isinstance(card, dict):
                self._validate_update_card(card)
            elif not (isinstance(button, dict) and button.get("replace_name")):
                raise _err(40058, "need button.replace_name or template_card")
            userids = data.get("userids") or []
            if not isinstance(userids, list):
                raise _err(40058, "userids must be a list")
            entry.used = True
            targets = tuple(str(u) for u in userids) if userids else entry.recipients
            invalid = [u for u in targets if u not in entry.recipients]
            self._record(self.records.updates, CardUpdate(entry.msgid, code, targets, data, now))
            return {"invaliduser": invalid}

        return await self._answer(request, body)

    def _validate_update_card(self, card: Mapping[str, Any]) -> None:
        if card.get("card_type") not in CARD_TYPES:
            raise _err(42027, f"invalid card_type {card.get('card_type')!r}")
        buttons = card.get("button_list") or []
        if len(buttons) > 6:
            raise _err(42028, "button_list has more than 6 buttons")

    # ---- directory

    def _subtree(self, dept_id: int) -> set[int]:
        ids = {dept_id}
        grew = True
        while grew:
            more = {int(d["id"]) for d in self.departments if int(d.get("parentid", 0)) in ids}
            grew = not more <= ids
            ids |= more
        return ids

    async def _user_get(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            self._agent_for(req)
            user = self.users.get(req.query.get("userid", ""))
            if user is None:
                raise _err(60111)
            return dict(user)

        return await self._answer(request, body)

    async def _user_list(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            self._agent_for(req)
            raw = req.query.get("department_id", "")
            if not raw.isdigit() or not any(int(d["id"]) == int(raw) for d in self.departments):
                raise _err(60003)
            dept = int(raw)
            ids = self._subtree(dept) if req.query.get("fetch_child") == "1" else {dept}
            users = [dict(u) for u in self.users.values() if ids & {int(d) for d in u.get("department", [])}]
            return {"userlist": users}

        return await self._answer(request, body)

    async def _department_list(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            self._agent_for(req)
            raw = req.query.get("id")
            if raw is None:
                return {"department": [dict(d) for d in self.departments]}
            if not raw.isdigit() or not any(int(d["id"]) == int(raw) for d in self.departments):
                raise _err(60003)
            ids = self._subtree(int(raw))
            return {"department": [dict(d) for d in self.departments if int(d["id"]) in ids]}

        return await self._answer(request, body)


# ---------------------------------------------------------------- callbacks (WeCom -> the bot)


class CallbackResponse(NamedTuple):
    status: int
    body: str


class UrlCheck(NamedTuple):
    status: int
    body: str
    expected: str

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.body == self.expected


@dataclass(frozen=True, slots=True)
class CallbackAttempt:
    status: int | None  # None: no answer within the deadline, or the connection failed
    body: str
    error: str = ""


@dataclass(frozen=True, slots=True)
class CallbackDelivery:
    attempts: tuple[CallbackAttempt, ...]

    @property
    def delivered(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].status == 200


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _signed_url(url: str, params: Mapping[str, str]) -> URL:
    """`url` with params appended, percent-encoded exactly (a '+' in base64 becomes %2B, never a space)."""
    query = "&".join(f"{k}={urllib.parse.quote(v, safe='')}" for k, v in params.items())
    sep = "&" if "?" in url else "?"
    return URL(url + sep + query, encoded=True)


def _agent_id_of(plaintext_xml: str) -> str:
    try:
        node = ET.fromstring(plaintext_xml).find("AgentID")  # noqa: S314 - our own XML
    except ET.ParseError:
        return ""
    return (node.text or "").strip() if node is not None else ""


def encrypt_callback(
    plaintext_xml: str,
    *,
    token: str,
    aes_key: str,
    corp_id: str,
    timestamp: str,
    nonce: str,
    agent_id: str | int | None = None,
) -> tuple[dict[str, str], str]:
    """(query params, XML body) of the POST WeCom makes for this message or event."""
    encrypt = WeComCipher(aes_key).encrypt(plaintext_xml, corp_id)
    agent = str(agent_id) if agent_id is not None else _agent_id_of(plaintext_xml)
    body = (
        f"<xml><ToUserName>{_cdata(corp_id)}</ToUserName><AgentID>{_cdata(agent)}</AgentID>"
        f"<Encrypt>{_cdata(encrypt)}</Encrypt></xml>"
    )
    params = {
        "msg_signature": signature(token, timestamp, nonce, encrypt),
        "timestamp": timestamp,
        "nonce": nonce,
    }
    return params, body


async def send_callback(
    session: aiohttp.ClientSession,
    url: str,
    plaintext_xml: str,
    *,
    token: str,
    aes_key: str,
    corp_id: str,
    timestamp: str | None = None,
    nonce: str | None = None,
    agent_id: str | int | None = None,
    deadline: float = 5.0,
) -> CallbackResponse:
    """POST one encrypted, signed message/event to the bot as WeCom does; (status, body)."""
    ts = timestamp if timestamp is not None else str(int(time.time()))
    nc = nonce if nonce is not None else str(secrets.randbelow(10**10))
    params, body = encrypt_callback(
        plaintext_xml,
        token=token,
        aes_key=aes_key,
        corp_id=corp_id,
        timestamp=ts,
        nonce=nc,
        agent_id=agent_id,
    )
    return await _post(session, _signed_url(url, params), body, deadline)


async def _post(session: aiohttp.ClientSession, url: URL, body: str, deadline: float) -> CallbackResponse:
    async with asyncio.timeout(deadline):
        async with session.post(url, data=body.encode(), headers={"Content-Type": "text/xml"}) as resp:
            return CallbackResponse(resp.status, await resp.text())


async def retrying_send_callback(
    session: aiohttp.ClientSession,
    url: str,
    plaintext_xml: str,
    *,
    token: str,
    aes_key: str,
    corp_id: str,
    timestamp: str | None = None,
    nonce: str | None = None,
    agent_id: str | int | None = None,
    attempts: int = 3,
    deadline: float = 5.0,
    delay: float = 0.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> CallbackDelivery:
    """WeCom's delivery: the same signed POST up to `attempts` times, each with a `deadline`;
    any non-200 or a missed deadline counts as a failure; `sleep(delay)` between attempts."""
    ts = timestamp if timestamp is not None else str(int(time.time()))
    nc = nonce if nonce is not None else str(secrets.randbelow(10**10))
    params, body = encrypt_callback(
        plaintext_xml,
        token=token,
        aes_key=aes_key,
        corp_id=corp_id,
        timestamp=ts,
        nonce=nc,
        agent_id=agent_id,
    )
    target = _signed_url(url, params)
    done: list[CallbackAttempt] = []
    for i in range(attempts):
        if i:
            await sleep(delay)
        try:
            status, text = await _post(session, target, body, deadline)
        except TimeoutError:
            done.append(CallbackAttempt(None, "", f"no answer within {deadline} s"))
            continue
        except aiohttp.ClientError as exc:
            done.append(CallbackAttempt(None, "", f"{type(exc).__name__}: {exc}"))
            continue
        done.append(CallbackAttempt(status, text))
        if status == 200:
            break
    return CallbackDelivery(tuple(done))


async def verify_url(
    session: aiohttp.ClientSession,
    url: str,
    *,
    token: str,
    aes_key: str,
    corp_id: str,
    timestamp: str | None = None,
    nonce: str | None = None,
    echo: str | None = None,
    deadline: float = 1.0,
) -> UrlCheck:
    """The GET echostr handshake WeCom makes when the callback URL is saved; the bot must answer `echo`."""
    ts = timestamp if timestamp is not None else str(int(time.time()))
    nc = nonce if nonce is not None else str(secrets.randbelow(10**10))
    plain = echo if echo is not None else str(secrets.randbelow(10**19))
    echostr = WeComCipher(aes_key).encrypt(plain, corp_id)
    params = {
        "msg_signature": signature(token, ts, nc, echostr),
        "timestamp": ts,
        "nonce": nc,
        "echostr": echostr,
    }
    async with asyncio.timeout(deadline):
        async with session.get(_signed_url(url, params)) as resp:
            return UrlCheck(resp.status, await resp.text(), plain)


# ---------------------------------------------------------------- XML builders (decrypted payloads)


def text_message_xml(
    *, corp_id: str, from_user: str, content: str, msg_id: str | int, agent_id: str | int, create_time: int
) -> str:
    """The decrypted XML of a text message a member sends to the app."""
    return (
        f"<xml><ToUserName>{_cdata(corp_id)}</ToUserName>"
        f"<FromUserName>{_cdata(from_user)}</FromUserName>"
        f"<CreateTime>{create_time}</CreateTime>"
        f"<MsgType>{_cdata('text')}</MsgType>"
        f"<Content>{_cdata(content)}</Content>"
        f"<MsgId>{msg_id}</MsgId>"
        f"<AgentID>{agent_id}</AgentID></xml>"
    )


def template_card_event_xml(
    *,
    corp_id: str,
    from_user: str,
    create_time: int,
    event_key: str,
    task_id: str,
    response_code: str,
    agent_id: str | int,
    card_type: str = "button_interaction",
) -> str:
    """The decrypted XML of a template_card_event (a button click)."""
    return (
        f"<xml><ToUserName>{_cdata(corp_id)}</ToUserName>"
        f"<FromUserName>{_cdata(from_user)}</FromUserName>"
        f"<CreateTime>{create_time}</CreateTime>"
        f"<MsgType>{_cdata('event')}</MsgType>"
        f"<Event>{_cdata('template_card_event')}</Event>"
        f"<EventKey>{_cdata(event_key)}</EventKey>"
        f"<TaskId>{_cdata(task_id)}</TaskId>"
        f"<CardType>{_cdata(card_type)}</CardType>"
        f"<ResponseCode>{_cdata(response_code)}</ResponseCode>"
        f"<AgentID>{agent_id}</AgentID></xml>"
    )
