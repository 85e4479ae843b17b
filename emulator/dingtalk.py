"""A local stand-in for DingTalk (钉钉), one internal app: the new API of https://api.dingtalk.com,
the old API of https://oapi.dingtalk.com, robot session webhooks, and the three callbacks DingTalk
makes to the bot (encrypted events, signed robot messages, signed card clicks).

It speaks the wire protocol only and imports nothing of the product. Everything is served on ONE
base URL: point the product's api_base and oapi_base both at it.

New API (token in header x-acs-dingtalk-access-token; errors are HTTP 4xx with
{"code", "message", "requestid"}):
    POST /v1.0/oauth2/accessToken               {appKey, appSecret} -> {accessToken, expireIn}
    POST /v1.0/card/instances/createAndDeliver  -> {success, result{outTrackId, deliverResults[]}}
    PUT  /v1.0/card/instances                   -> {success: true, result: true}
    POST /v1.0/card/callbacks/register          -> {success, result{callbackUrl, apiSecret}}
    POST /v1.0/robot/oToMessages/batchSend      -> {processQueryKey, invalidStaffIdList, flowControlledStaffIdList}
Old API (token in query access_token; answers HTTP 200 {"errcode", "errmsg", ..., "request_id"}):
    GET  /gettoken?appkey&appsecret             -> {access_token, expires_in}
    POST /topapi/message/corpconversation/asyncsend_v2        work notification -> {task_id}
    POST /topapi/message/corpconversation/status_bar/update   its status bar
    POST /topapi/v2/department/listsub | /topapi/v2/department/get | /topapi/v2/user/list | /topapi/v2/user/get
Session webhooks (no token; handed out in robot messages, valid 90 min on the clock):
    POST /robot/sendBySession?session=...       {"msgtype": "text", "text": {...}, "at": {...}}

Tokens: one live token for the app, 7200 s on the clock, the same token while valid (both token
endpoints hand out the same one). Error codes observed on the wire or documented by DingTalk:

    400 InvalidAuthentication      new API: token missing, unknown, expired or revoked (HTTP 400 as
                                   DingTalk answers it; `token_error_status = 401` to answer 401)
    400 invalidClientIdOrSecret    new API: wrong appKey / appSecret
    400 Missing<name>              new API: a required field is absent ("Missingbody": no JSON object)
    403 Forbidden.AccessDenied.AccessTokenPermissionDenied    new API: path in `forbidden_paths`
    403 Forbidden.AccessDenied.QpsLimitForApi                 (chaos only, through fail_next)
    403 Forbidden.AccessDenied.ApiCountLimitForOrg            monthly API-call quota exhausted
    40089 bad appkey / appsecret (gettoken) · 41001 access_token missing · 40014 invalid token ·
    42001 token expired · 88 + sub_code 60011 no permission · 90020 monthly quota exhausted ·
    60003 department not found · 60121 user not found · 40035 bad parameter ·
    300001 session webhook unknown or expired ("session 不存在")

Chosen by the emulator where DingTalk documents nothing (all HTTP 400 unless said):

    InvalidParameter.<name>        a field has the wrong type or form (e.g. a cardParamMap value
                                   that is not a string, a malformed openSpaceId, > 20 userIds)
    InvalidParameter.robotCode     robotCode is not this app's robot
    InvalidParameter.outTrackId.duplicate     createAndDeliver with an outTrackId already used
    InvalidParameter.callbackRouteKey.exists  re-registering a route key elsewhere without forceUpdate
    404 NotFound.outTrackId        updating a card that was never created

Card delivery to an unknown or inactive userId (or an unknown group) is NOT an error: the answer
is success true with that deliverResults entry success false, as DingTalk does.

Monthly quota (free orgs: 5,000 API calls and 3,000 messages a month, shared/docs/platforms.md):
`records.usage` counts per calendar month (China time, UTC+8) the metered API calls (every
authenticated call to an API endpoint; token requests and session webhooks are not API calls)
and the messages that reached people (session-webhook posts, each robot batchSend recipient, each
delivered card, each work-notification recipient). With `api_call_limit` / `message_limit` set,
a call that would go over is refused whole: ApiCountLimitForOrg (new API) or 90020 (old API and
session webhooks) and nothing is delivered. DingTalk does not document a separate code for the
message quota; the emulator uses the same two.

Work notifications: like DingTalk, the same content to the same person is delivered once a day;
a repeat is answered ok and dropped silently (recorded in `records.drops`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import hmac
import json
import random
import re
import secrets
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal, NamedTuple, Protocol

import aiohttp
from aiohttp import web
from yarl import URL

from emulator.chaos import Stalls
from emulator.wecom_crypto import CryptoError, WeComCipher, signature, signature_ok

__all__ = [
    "CryptoError",
    "DingTalkCipher",
    "DingTalkEmulator",
    "card_callback_signature",
    "encrypt_event",
    "open_event_reply",
    "retrying_send_event",
    "robot_sign",
    "robot_text_message",
    "send_card_callback",
    "send_event",
    "send_robot_message",
    "signature",
    "verify_callback_url",
]

TOKEN_TTL = 7200
SESSION_TTL = timedelta(minutes=90)
TOKEN_HEADER = "x-acs-dingtalk-access-token"  # noqa: S105 - a header name
CHINA = timezone(timedelta(hours=8))
MAX_BATCH_USERS = 20
MAX_OA_USERS = 100
MAX_PAGE = 100
ROBOT_MSG_KEYS = frozenset(
    {
        "sampleText",
        "sampleMarkdown",
        "sampleImageMsg",
        "sampleLink",
        "sampleActionCard",
        "sampleActionCard2",
        "sampleActionCard3",
        "sampleActionCard4",
        "sampleActionCard5",
        "sampleActionCard6",
    }
)
WEBHOOK_MSG_TYPES = frozenset({"text", "markdown", "actionCard", "link", "feedCard"})
OA_MSG_TYPES = frozenset({"text", "image", "voice", "file", "link", "oa", "markdown", "action_card"})
SPACE = re.compile(r"(IM_ROBOT|IM_GROUP)\.(.+)", re.IGNORECASE)
SPACE_PREFIX = "dtv1.card//"

Style = Literal["api", "oapi", "webhook"]


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


# ---------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class TokenRequest:
    at: datetime
    style: str  # "v1.0" (/v1.0/oauth2/accessToken) or "oapi" (/gettoken)
    app_key: str
    error: str = ""  # "" when a token was handed out, else the error code answered


@dataclass(frozen=True, slots=True)
class DeliverResult:
    space_type: str  # IM_ROBOT | IM_GROUP
    space_id: str  # the userId or openConversationId
    success: bool
    error_msg: str = ""


@dataclass(frozen=True, slots=True)
class CardCreated:
    out_track_id: str
    template_id: str
    param_map: dict[str, str]
    private_data: dict[str, Any]
    open_space_id: str
    callback_type: str
    callback_route_key: str
    deliver_results: tuple[DeliverResult, ...]
    body: dict[str, Any]
    at: datetime

    @property
    def delivered_to(self) -> tuple[str, ...]:
        return tuple(r.space_id for r in self.deliver_results if r.success)


@dataclass(frozen=True, slots=True)
class CardUpdated:
    out_track_id: str
    param_map: dict[str, str]
    private_data: dict[str, Any]
    update_card_data_by_key: bool
    update_private_data_by_key: bool
    body: dict[str, Any]
    at: datetime
    source: str = "api"  # "api" (PUT /v1.0/card/instances) or "callback" (the answer to a click)


@dataclass(frozen=True, slots=True)
class CallbackRegistration:
    route_key: str
    url: str
    api_secret: str
    force_update: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class RobotSend:
    process_query_key: str
    robot_code: str
    user_ids: tuple[str, ...]
    msg_key: str
    msg_param: dict[str, Any]  # the msgParam JSON string, parsed
    delivered_to: tuple[str, ...]
    invalid: tuple[str, ...]
    flow_controlled: tuple[str, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class WebhookPost:
    session: str
    conversation_id: str
    msgtype: str
    body: dict[str, Any]
    at_user_ids: tuple[str, ...]
    at: datetime

    @property
    def text(self) -> str:
        text = self.body.get("text")
        return str(text.get("content", "")) if isinstance(text, dict) else ""


@dataclass(frozen=True, slots=True)
class WorkNotice:
    task_id: int
    agent_id: int
    user_ids: tuple[str, ...]  # as addressed
    delivered_to: tuple[str, ...]
    invalid: tuple[str, ...]
    msg: dict[str, Any]
    at: datetime


@dataclass(frozen=True, slots=True)
class StatusBarUpdate:
    task_id: int
    status_value: str
    status_bg: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Drop:
    task_id: int
    userid: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Failure:
    path: str
    status: int
    code: str
    at: datetime


@dataclass(slots=True)
class Usage:
    """Metered spending in one calendar month (China time)."""

    month: str  # "2026-11"
    api_calls: int = 0
    messages: int = 0


@dataclass(slots=True)
class Records:
    """What the emulator received: for tests to assert on."""

    token_requests: list[TokenRequest] = field(default_factory=list)
    cards: list[CardCreated] = field(default_factory=list)
    card_updates: list[CardUpdated] = field(default_factory=list)
    callback_registrations: list[CallbackRegistration] = field(default_factory=list)
    robot_sends: list[RobotSend] = field(default_factory=list)
    webhook_posts: list[WebhookPost] = field(default_factory=list)
    work_notices: list[WorkNotice] = field(default_factory=list)
    status_bar_updates: list[StatusBarUpdate] = field(default_factory=list)
    drops: list[Drop] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)  # every error answered (chaos included)
    calls: list[str] = field(default_factory=list)  # paths, in order
    usage: dict[str, Usage] = field(default_factory=dict)  # month -> spending

    @property
    def token_calls(self) -> int:
        return len(self.token_requests)

    def card(self, out_track_id: str) -> CardCreated:
        return next(c for c in self.cards if c.out_track_id == out_track_id)


# ---------------------------------------------------------------- internals


class Refusal(Exception):
    """An error answer. New API: HTTP `status` with {"code", "message", "requestid"}. Old API and
    session webhooks: HTTP 200 {"errcode": int(code), "errmsg"} when status is 200 (a non-numeric
    code becomes errcode 88 with that sub_code), else HTTP `status` with a plain-text body."""

    def __init__(self, status: int, code: str, message: str, *, sub_code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.sub_code = sub_code


@dataclass(slots=True)
class _Token:
    expires_at: datetime
    revoked: bool = False


@dataclass(slots=True)
class _Card:
    template_id: str
    params: dict[str, str]
    private: dict[str, Any]
    route_key: str


@dataclass(slots=True)
class _Session:
    conversation_id: str
    user_id: str
    expires_at: datetime


@dataclass(slots=True)
class _Chaos:
    remaining: int
    failure: int | str
    status: int | None
    message: str | None
    path: str | None


class SessionWebhook(NamedTuple):
    url: str
    expires_at: datetime

    @property
    def expired_time_ms(self) -> int:
        return _ms(self.expires_at)


_HTTP_CODES = {
    400: "InvalidParameter",
    401: "InvalidAuthentication",
    403: "Forbidden",
    404: "NotFound",
    429: "Throttling",
    500: "InternalError",
    502: "ServiceUnavailable",
    503: "ServiceUnavailable",
    504: "ServiceUnavailable",
}
_ERRMSG = {
    -1: "系统繁忙",
    88: "鉴权异常",
    40014: "不合法的access_token",
    40035: "不合法的参数",
    40089: "不合法的appKey或appSecret",
    41001: "缺少access_token参数",
    42001: "access_token超时",
    60003: "部门不存在",
    60121: "找不到该用户",
    90002: "当前接口调用频率超过限制",
    90018: "当前企业应用调用该接口的频率超过限制",
    90020: "您的企业本月api调用量已超过限制",
    300001: "session 不存在",
}


def _status_of(code: str) -> int:
    if code.startswith("Forbidden"):
        return 403
    if code.startswith("Throttling"):
        return 429
    if code.startswith("NotFound"):
        return 404
    return 400


def _style_of(path: str) -> Style:
    if path.startswith("/v1.0/"):
        return "api"
    if path.startswith("/robot/"):
        return "webhook"
    return "oapi"


def _str_field(data: Mapping[str, Any], name: str, *, where: str = "") -> str:
    value = data.get(name)
    if value is None or value == "":
        raise Refusal(400, f"Missing{where}{name}", f"{where}{name} is mandatory for this action.")
    if not isinstance(value, str):
        raise Refusal(400, f"InvalidParameter.{where}{name}", f"{where}{name} must be a string")
    return value


def _param_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Refusal(400, f"InvalidParameter.{where}", f"{where} must be an object")
    bad = [k for k, v in value.items() if not isinstance(v, str)]
    if bad:
        raise Refusal(
            400,
            f"InvalidParameter.{where}",
            f"{where} values must be strings (JSON-encode objects): {', '.join(sorted(bad))}",
        )
    return dict(value)


def _private_data(value: Any) -> dict[str, Any]:
    """privateData = {userId: {"cardParamMap": {str: str}}}."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Refusal(400, "InvalidParameter.privateData", "privateData must be an object")
    out: dict[str, Any] = {}
    for user, data in value.items():
        if not isinstance(data, dict):
            raise Refusal(400, "InvalidParameter.privateData", "privateData maps userIds to {cardParamMap}")
        out[str(user)] = {"cardParamMap": _param_map(data.get("cardParamMap"), "privateData.cardParamMap")}
    return out


# ---------------------------------------------------------------- the emulator


class DingTalkEmulator:
    """One corp with one internal app (appKey/appSecret, its robot and its agent id) and a directory.

    org = {"departments": [{"dept_id": 1, "name": "总部"}, {"dept_id": 2, "name": "IT", "parent_id": 1}],
           "users": [{"userid": "zhangsan", "name": "张三", "mobile": "13800000000", "email": "z@x.cn",
                      "dept_id_list": [1], "leader_in_dept": [{"dept_id": 1, "leader": true}],
                      "active": true}],
           "groups": [{"open_conversation_id": "cidXXX", "name": "IT 群", "members": ["zhangsan"]}]}

    `base_url` (where the app is served, e.g. "http://127.0.0.1:8082") must be set before session
    webhooks are handed out; tests set it from their server's URL.
    """

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        robot_code: str,
        clock: Clock,
        org: Mapping[str, Iterable[Mapping[str, Any]]] | None = None,
        corp_id: str = "ding-emulated-corp",
        *,
        agent_id: int = 3000001,
        base_url: str | None = None,
        seed: int = 0,
        api_call_limit: int | None = None,
        message_limit: int | None = None,
        token_error_status: int = 400,
    ) -> None:
        self.app_key = app_key
        self.app_secret = app_secret
        self.robot_unreachable: set[str] = set()
        self.robot_code = robot_code
        self.clock = clock
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.base_url = base_url.rstrip("/") if base_url else None
        org = org or {}
        self.departments: list[dict[str, Any]] = [dict(d) for d in org.get("departments", [])]
        self.users: dict[str, dict[str, Any]] = {str(u["userid"]): dict(u) for u in org.get("users", [])}
        self.groups: dict[str, dict[str, Any]] = {
            str(g["open_conversation_id"]): dict(g) for g in org.get("groups", [])
        }
        self.api_call_limit = api_call_limit
        self.message_limit = message_limit
        self.token_error_status = token_error_status
        self.records = Records()
        self.forbidden_paths: set[str] = set()  # answered "no permission"
        self.flow_controlled: set[str] = set()  # userIds batchSend reports as flow-controlled
        # called with each record as it is made (synchronously, in the emulator's event loop)
        self.on_record: Callable[[object], None] | None = None
        self._rng = random.Random(seed)  # noqa: S311 - chaos and ids, not security
        self._tokens: dict[str, _Token] = {}
        self._live: str | None = None
        self._cards: dict[str, _Card] = {}
        self._routes: dict[str, CallbackRegistration] = {}
        self._sessions: dict[str, _Session] = {}
        self._tasks: dict[int, WorkNotice] = {}
        self._notified: dict[tuple[str, str], datetime] = {}  # (userid, content digest) -> last delivery
        self._task_seq = 0
        self._chaos: list[_Chaos] = []
        self.stalls = Stalls()  # chaos: calls that answer late, or only once released
        self._fail_ratio = 0.0
        self._fail_ratio_failure: int | str = 503
        self._fail_ratio_path: str | None = None

    # ---- switches

    def expire_all_tokens(self) -> None:
        """Every issued token is refused as expired from now on (as if 7200 s had passed)."""
        for tok in self._tokens.values():
            tok.expires_at = min(tok.expires_at, self.clock.now())
        self._live = None

    def revoke_all_tokens(self) -> None:
        """Every issued token is refused as invalid from now on (DingTalk invalidated them early)."""
        for tok in self._tokens.values():
            tok.revoked = True
        self._live = None

    def fail_next(
        self,
        n: int,
        failure: int | str,
        *,
        path: str | None = None,
        status: int | None = None,
        message: str | None = None,
    ) -> None:
        """The next `n` calls (to `path` only, if given) fail with `failure`:

        - an int 100..599: that HTTP status (new API: with an error JSON whose code fits the status;
          old API and webhooks: a plain-text body);
        - another int (e.g. -1, 90018, 90020, 40014): that errcode, HTTP 200 (old API / webhooks);
          on the new API it becomes code str(n) with HTTP `status` (default 400);
        - a str (e.g. "Forbidden.AccessDenied.QpsLimitForApi"): that code with HTTP `status`
          (default 403 for Forbidden.*, 429 for Throttling.*, 404 for NotFound.*, else 400); on the
          old API a numeric str is that errcode, another str errcode 88 with it as sub_code.
        """
        self._chaos.append(_Chaos(n, failure, status, message, path))

    def stall_next(self, n: int, *, path: str | None = None, seconds: float | None = None) -> None:
        """The next `n` calls answer only after `seconds`, or once `stalls.release()` is called."""
        self.stalls.stall_next(n, path=path, seconds=seconds)

    def fail_ratio(self, ratio: float, failure: int | str = 503, *, path: str | None = None) -> None:
        """From now on each call fails with `failure` (as in fail_next) with probability `ratio`."""
        if not 0.0 <= ratio <= 1.0:
            raise ValueError("ratio must be within 0..1")
        self._fail_ratio, self._fail_ratio_failure, self._fail_ratio_path = ratio, failure, path

    def issued_tokens(self) -> list[str]:
        """Every access token handed out so far (for tests that check nothing leaks them)."""
        return list(self._tokens)

    @property
    def usage(self) -> Usage:
        """This month's metered API calls and messages."""
        month = self.clock.now().astimezone(CHINA).strftime("%Y-%m")
        return self.records.usage.setdefault(month, Usage(month))

    def card_params(self, out_track_id: str) -> dict[str, str]:
        """The card's current cardParamMap (after every update)."""
        return dict(self._cards[out_track_id].params)

    def card_private_data(self, out_track_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._cards[out_track_id].private)

    def add_group(self, open_conversation_id: str, members: Iterable[str], name: str = "") -> None:
        self.groups[open_conversation_id] = {
            "open_conversation_id": open_conversation_id,
            "name": name,
            "members": list(members),
        }

    def _record(self, where: list[Any], item: object) -> None:
        where.append(item)
        if self.on_record is not None:
            self.on_record(item)

    # ---- session webhooks and robot messages

    def issue_session_webhook(
        self, conversation_id: str, *, user_id: str = "", ttl: timedelta = SESSION_TTL
    ) -> SessionWebhook:
        """A fresh session webhook URL for a conversation (DingTalk puts one in each robot message)."""
        if not self.base_url:
            raise ValueError("set DingTalkEmulator.base_url (where it is served) before handing out webhooks")
        token = secrets.token_urlsafe(24)
        expires_at = self.clock.now() + ttl
        self._sessions[token] = _Session(conversation_id, user_id, expires_at)
        url = f"{self.base_url}/robot/sendBySession?session={urllib.parse.quote(token, safe='')}"
        return SessionWebhook(url, expires_at)

    def robot_text_message(
        self,
        content: str,
        *,
        sender: str,
        conversation_id: str | None = None,
        group: bool = False,
        msg_id: str | None = None,
        sender_nick: str | None = None,
        is_in_at_list: bool = True,
        at_users: Iterable[Mapping[str, str]] = (),
        conversation_title: str = "",
    ) -> dict[str, Any]:
        """The body DingTalk posts to the bot for a text message from `sender` (a userId), with a
        fresh session webhook of this emulator; createAt is the emulator's clock."""
        conv = conversation_id or (f"cid-single-{sender}" if not group else "cid-group")
        hook = self.issue_session_webhook(conv, user_id=sender)
        user = self.users.get(sender, {})
        return robot_text_message(
            content=content,
            msg_id=msg_id or f"msg{self._rng.getrandbits(64):016x}",
            create_at=_ms(self.clock.now()),
            conversation_type="2" if group else "1",
            conversation_id=conv,
            sender_staff_id=sender,
            sender_nick=sender_nick if sender_nick is not None else str(user.get("name", sender)),
            sender_corp_id=self.corp_id,
            chatbot_corp_id=self.corp_id,
            chatbot_user_id=f"$:LWCP_v1:$robot-{self.robot_code}",
            robot_code=self.robot_code,
            is_in_at_list=is_in_at_list,
            session_webhook=hook.url,
            session_webhook_expired_time=hook.expired_time_ms,
            at_users=at_users,
            conversation_title=conversation_title,
        )

    async def click_card(
        self,
        session: aiohttp.ClientSession,
        out_track_id: str,
        user_id: str,
        *,
        action_id: str = "",
        params: Mapping[str, Any] | None = None,
        deadline: float = 2.0,
    ) -> CardCallbackResponse:
        """`user_id` clicks a button of the card: the signed callback to the URL registered for the
        card's callbackRouteKey. An answer with cardData updates the card (recorded, source "callback")."""
        card = self._cards[out_track_id]
        route = self._routes.get(card.route_key)
        if route is None:
            raise KeyError(f"no callback registered for route key {card.route_key!r}")
        answer = await send_card_callback(
            session,
            route.url,
            out_track_id=out_track_id,
            user_id=user_id,
            corp_id=self.corp_id,
            api_secret=route.api_secret,
            action_id=action_id,
            params=params,
            timestamp_ms=_ms(self.clock.now()),
            deadline=deadline,
        )
        if answer.status == 200 and isinstance(answer.json, dict) and answer.json.get("cardData"):
            # DingTalk ignores an unusable immediate update; the click itself went through
            with contextlib.suppress(Refusal):
                self._apply_update(out_track_id, answer.json, source="callback")
        return answer

    # ---- app

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                web.post("/v1.0/oauth2/accessToken", self._access_token),
                web.post("/v1.0/card/instances/createAndDeliver", self._create_and_deliver),
                web.put("/v1.0/card/instances", self._update_card),
                web.post("/v1.0/card/callbacks/register", self._register_callback),
                web.post("/v1.0/robot/oToMessages/batchSend", self._batch_send),
                web.post("/robot/sendBySession", self._session_webhook),
                web.get("/gettoken", self._gettoken),
                web.post("/topapi/message/corpconversation/asyncsend_v2", self._asyncsend),
                web.post("/topapi/message/corpconversation/status_bar/update", self._status_bar),
                web.post("/topapi/v2/department/listsub", self._dept_listsub),
                web.post("/topapi/v2/department/get", self._dept_get),
                web.post("/topapi/v2/user/list", self._user_list),
                web.post("/topapi/v2/user/get", self._user_get),
            ]
        )
        return app

    def _request_id(self) -> str:
        return "%08X-%04X-%04X-%04X-%012X" % (  # noqa: UP031 - a fixed-width hex id
            self._rng.getrandbits(32),
            self._rng.getrandbits(16),
            self._rng.getrandbits(16),
            self._rng.getrandbits(16),
            self._rng.getrandbits(48),
        )

    async def _answer(
        self, request: web.Request, body: Callable[[web.Request], Awaitable[dict[str, Any]]]
    ) -> web.Response:
        path = request.path
        style = _style_of(path)
        self.records.calls.append(path)
        await self.stalls.wait(path)
        try:
            self._chaos_check(path, style)
            result = await body(request)
        except Refusal as exc:
            self._record(self.records.failures, Failure(path, exc.status, exc.code, self.clock.now()))
            return self._refusal_response(style, exc)
        if style == "api":
            return web.json_response(result)
        if style == "webhook":
            return web.json_response({"errcode": 0, "errmsg": "ok", **result})
        return web.json_response({"errcode": 0, "errmsg": "ok", **result, "request_id": self._request_id()})

    def _refusal_response(self, style: Style, exc: Refusal) -> web.Response:
        if style == "api":
            return web.json_response(
                {"code": exc.code, "requestid": self._request_id(), "message": exc.message}, status=exc.status
            )
        if exc.status != 200:
            return web.Response(status=exc.status, text=f"{exc.status} {exc.message}")
        try:
            errcode = int(exc.code)
            sub_code = exc.sub_code
        except ValueError:
            errcode, sub_code = 88, exc.code
        answer: dict[str, Any] = {"errcode": errcode, "errmsg": exc.message}
        if sub_code:
            answer["sub_code"] = sub_code
            answer["sub_msg"] = exc.message
            answer["errmsg"] = f"ding talk error[subcode={sub_code},submsg={exc.message}]"
        if style == "oapi":
            answer["request_id"] = self._request_id()
        return web.json_response(answer)

    def _chaos_refusal(
        self, failure: int | str, style: Style, status: int | None, message: str | None
    ) -> Refusal:
        if isinstance(failure, int) and 100 <= failure <= 599:
            code = _HTTP_CODES.get(failure, "Error")
            return Refusal(failure, code, message or f"emulated HTTP {failure}")
        code = str(failure)
        if style == "api":
            return Refusal(status or _status_of(code), code, message or f"emulated {code}")
        number = int(code) if code.lstrip("-").isdigit() else 88
        return Refusal(status or 200, code, message or _ERRMSG.get(number, f"emulated {code}"))

    def _chaos_check(self, path: str, style: Style) -> None:
        for chaos in self._chaos:
            if chaos.remaining > 0 and (chaos.path is None or chaos.path == path):
                chaos.remaining -= 1
                self._chaos = [c for c in self._chaos if c.remaining > 0]
                raise self._chaos_refusal(chaos.failure, style, chaos.status, chaos.message)
        applies = self._fail_ratio and (self._fail_ratio_path is None or self._fail_ratio_path == path)
        if applies and self._rng.random() < self._fail_ratio:
            raise self._chaos_refusal(self._fail_ratio_failure, style, None, None)

    async def _json(self, request: web.Request, style: Style) -> dict[str, Any]:
        raw = await request.read()
        data: Any = None
        if raw:
            ctype = request.headers.get("Content-Type", "")
            if style == "oapi" and ctype.startswith("application/x-www-form-urlencoded"):
                data = dict(urllib.parse.parse_qsl(raw.decode("utf-8", "replace")))
            else:
                try:
                    data = json.loads(raw)
                except (ValueError, UnicodeDecodeError):
                    data = None
        if not isinstance(data, dict):
            if style == "api":
                raise Refusal(400, "Missingbody", "body is mandatory for this action (a JSON object).")
            raise Refusal(200, "40035", "缺少参数 json")
        return data

    # ---- tokens and metering

    def _issue(self) -> tuple[str, int]:
        now = self.clock.now()
        live = self._live
        tok = self._tokens.get(live) if live else None
        if live is None or tok is None or tok.revoked or now >= tok.expires_at:
            live = secrets.token_hex(16)
            tok = _Token(now + timedelta(seconds=TOKEN_TTL))
            self._tokens[live] = tok
            self._live = live
        return live, int((tok.expires_at - now).total_seconds())

    def _token_problem(self, token: str) -> str:
        """ "" if usable, else "missing" / "invalid" / "expired"."""
        if not token:
            return "missing"
        tok = self._tokens.get(token)
        if tok is None or tok.revoked:
            return "invalid"
        if self.clock.now() >= tok.expires_at:
            return "expired"
        return ""

    def _auth_api(self, request: web.Request) -> None:
        problem = self._token_problem(request.headers.get(TOKEN_HEADER, ""))
        if problem:
            text = {
                "missing": f"{TOKEN_HEADER} is mandatory for this action.",
                "invalid": "不合法的access_token",
                "expired": "access_token已过期",
            }[problem]
            raise Refusal(self.token_error_status, "InvalidAuthentication", text)
        if request.path in self.forbidden_paths:
            raise Refusal(
                403,
                "Forbidden.AccessDenied.AccessTokenPermissionDenied",
                f"没有调用该接口的权限，接口权限申请参考：{request.path}",
            )
        self._meter(request.path, "api", calls=1)

    def _auth_oapi(self, request: web.Request) -> None:
        problem = self._token_problem(request.query.get("access_token", ""))
        if problem == "missing":
            raise Refusal(200, "41001", _ERRMSG[41001])
        if problem == "invalid":
            raise Refusal(200, "40014", _ERRMSG[40014])
        if problem == "expired":
            raise Refusal(200, "42001", _ERRMSG[42001])
        if request.path in self.forbidden_paths:
            raise Refusal(200, "88", "没有调用该接口的权限", sub_code="60011")
        self._meter(request.path, "oapi", calls=1)

    def _quota_refusal(self, style: Style, what: str, used: int, limit: int) -> Refusal:
        text = f"您的企业本月{what}已超过限制,调用量:{used}次,额度:{limit}次,请登录开发者后台-资源管理-查看用量明细"
        if style == "api":
            return Refusal(403, "Forbidden.AccessDenied.ApiCountLimitForOrg", text)
        return Refusal(200, "90020", text)

    def _meter(self, path: str, style: Style, *, calls: int = 0, messages: int = 0) -> None:
        """Spend `calls` API calls and `messages` messages of this month, or refuse (spending nothing)."""
        usage = self.usage
        if calls and self.api_call_limit is not None and usage.api_calls + calls > self.api_call_limit:
            raise self._quota_refusal(style, "api调用量", usage.api_calls + calls, self.api_call_limit)
        if messages and self.message_limit is not None and usage.messages + messages > self.message_limit:
            raise self._quota_refusal(style, "消息发送量", usage.messages + messages, self.message_limit)
        usage.api_calls += calls
        usage.messages += messages

    def _member(self, userid: str) -> bool:
        """An active member of the corp (work notifications reach them)."""
        user = self.users.get(userid)
        return user is not None and bool(user.get("active", True))

    def _reachable(self, userid: str) -> bool:
        """Whether the robot can deliver to the user (`robot_unreachable`: users outside the
        robot's reach, e.g. who never opened its chat, but still members: work notices reach them)."""
        user = self.users.get(userid)
        return user is not None and bool(user.get("active", True)) and userid not in self.robot_unreachable

    # ---- /v1.0/oauth2/accessToken and /gettoken

    async def _access_token(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            key = ""
            try:
                data = await self._json(req, "api")
                key = _str_field(data, "appKey")
                secret = _str_field(data, "appSecret")
                if not (
                    secrets.compare_digest(key, self.app_key)
                    and secrets.compare_digest(secret, self.app_secret)
                ):
                    raise Refusal(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
            except Refusal as exc:
                self.records.token_requests.append(TokenRequest(self.clock.now(), "v1.0", key, exc.code))
                raise
            self.records.token_requests.append(TokenRequest(self.clock.now(), "v1.0", key))
            token, expires_in = self._issue()
            return {"accessToken": token, "expireIn": expires_in}

        return await self._answer(request, body)

    async def _gettoken(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            key = req.query.get("appkey", "")
            secret = req.query.get("appsecret", "")
            if not (
                key
                and secret
                and secrets.compare_digest(key, self.app_key)
                and secrets.compare_digest(secret, self.app_secret)
            ):
                self.records.token_requests.append(TokenRequest(self.clock.now(), "oapi", key, "40089"))
                raise Refusal(200, "40089", _ERRMSG[40089])
            self.records.token_requests.append(TokenRequest(self.clock.now(), "oapi", key))
            token, expires_in = self._issue()
            return {"access_token": token, "expires_in": expires_in}

        return await self._answer(request, body)

    # ---- cards

    def _spaces(self, open_space_id: str) -> list[tuple[str, str]]:
        if not open_space_id.startswith(SPACE_PREFIX):
            raise Refusal(400, "InvalidParameter.openSpaceId", f"openSpaceId must start with {SPACE_PREFIX}")
        spaces: list[tuple[str, str]] = []
        for part in open_space_id[len(SPACE_PREFIX) :].split(";"):
            found = SPACE.fullmatch(part.strip())
            if not found:
                raise Refusal(
                    400,
                    "InvalidParameter.openSpaceId",
                    "openSpaceId spaces must be IM_ROBOT.<userId> or IM_GROUP.<openConversationId>",
                )
            spaces.append((found.group(1).upper(), found.group(2)))
        return spaces

    def _deliver_model(self, data: Mapping[str, Any], name: str) -> None:
        model = data.get(name)
        if not isinstance(model, dict):
            raise Refusal(400, f"Missing{name}", f"{name} is mandatory for this space type.")
        code = _str_field(model, "robotCode", where=f"{name}.")
        if code != self.robot_code:
            raise Refusal(400, "InvalidParameter.robotCode", f"robotCode {code!r} is not this app's robot")

    async def _create_and_deliver(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            self._auth_api(req)
            data = await self._json(req, "api")
            out_track_id = _str_field(data, "outTrackId")
            template_id = _str_field(data, "cardTemplateId")
            card_data = data.get("cardData")
            if not isinstance(card_data, dict):
                raise Refusal(400, "MissingcardData", "cardData is mandatory for this action.")
            params = _param_map(card_data.get("cardParamMap"), "cardData.cardParamMap")
            private = _private_data(data.get("privateData"))
            open_space_id = _str_field(data, "openSpaceId")
            spaces = self._spaces(open_space_id)
            callback_type = str(data.get("callbackType") or "STREAM")
            route_key = data.get("callbackRouteKey") or ""
            if callback_type not in {"HTTP", "STREAM"}:
                raise Refusal(400, "InvalidParameter.callbackType", "callbackType must be HTTP or STREAM")
            if callback_type == "HTTP" and not route_key:
                raise Refusal(
                    400, "MissingcallbackRouteKey", "callbackRouteKey is mandatory for HTTP callbacks."
                )
            if not isinstance(route_key, str):
                raise Refusal(400, "InvalidParameter.callbackRouteKey", "callbackRouteKey must be a string")
            if any(t == "IM_ROBOT" for t, _ in spaces):
                self._deliver_model(data, "imRobotOpenDeliverModel")
            if any(t == "IM_GROUP" for t, _ in spaces):
                self._deliver_model(data, "imGroupOpenDeliverModel")
            if out_track_id in self._cards:
                raise Refusal(
                    400,
                    "InvalidParameter.outTrackId.duplicate",
                    f"outTrackId {out_track_id!r} already exists",
                )
            results = tuple(self._deliver(kind, space_id) for kind, space_id in spaces)
            self._meter(req.path, "api", messages=sum(1 for r in results if r.success))
            self._cards[out_track_id] = _Card(template_id, params, private, route_key)
            self._record(
                self.records.cards,
                CardCreated(
                    out_track_id,
                    template_id,
                    dict(params),
                    private,
                    open_space_id,
                    callback_type,
                    route_key,
                    results,
                    data,
                    self.clock.now(),
                ),
            )
            return {
                "success": True,
                "result": {
                    "outTrackId": out_track_id,
                    "deliverResults": [
                        {
                            "spaceType": r.space_type,
                            "spaceId": r.space_id,
                            "success": r.success,
                            **({"errorMsg": r.error_msg} if r.error_msg else {}),
                            **(
                                {"carrierId": f"carrier-{self._rng.getrandbits(40):010x}"}
                                if r.success
                                else {}
                            ),
                        }
                        for r in results
                    ],
                },
            }

        return await self._answer(request, body)

    def _deliver(self, kind: str, space_id: str) -> DeliverResult:
        if kind == "IM_ROBOT":
            if self._reachable(space_id):
                return DeliverResult(kind, space_id, True)
            return DeliverResult(kind, space_id, False, f"用户 {space_id} 不存在或不在应用可见范围")
        group = self.groups.get(space_id)
        if group is None:
            return DeliverResult(kind, space_id, False, f"群 {space_id} 不存在或机器人不在群内")
        return DeliverResult(kind, space_id, True)

    def _apply_update(self, out_track_id: str, data: Mapping[str, Any], *, source: str) -> CardUpdated:
        card = self._cards.get(out_track_id)
        if card is None:
            raise Refusal(404, "NotFound.outTrackId", f"card instance {out_track_id!r} does not exist")
        card_data = data.get("cardData")
        params = _param_map(
            card_data.get("cardParamMap") if isinstance(card_data, dict) else None, "cardData.cardParamMap"
        )
        private = _private_data(data.get("privateData"))
        options = data.get("cardUpdateOptions")
        options = options if isinstance(options, dict) else {}
        by_key = bool(options.get("updateCardDataByKey", False))
        private_by_key = bool(options.get("updatePrivateDataByKey", False))
        if isinstance(card_data, dict):
            card.params = {**card.params, **params} if by_key else dict(params)
        for user, entry in private.items():
            old = card.private.get(user, {}).get("cardParamMap", {}) if private_by_key else {}
            card.private[user] = {"cardParamMap": {**old, **entry["cardParamMap"]}}
        update = CardUpdated(
            out_track_id, params, private, by_key, private_by_key, dict(data), self.clock.now(), source
        )
        self._record(self.records.card_updates, update)
        return update

    async def _update_card(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            self._auth_api(req)
            data = await self._json(req, "api")
            out_track_id = _str_field(data, "outTrackId")
            if not isinstance(data.get("cardData"), dict) and data.get("privateData") is None:
                raise Refusal(400, "MissingcardData", "cardData or privateData is mandatory for this action.")
            self._apply_update(out_track_id, data, source="api")
            return {"success": True, "result": True}

        return await self._answer(request, body)

    async def _register_callback(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            self._auth_api(req)
            data = await self._json(req, "api")
            route_key = _str_field(data, "callbackRouteKey")
            url = _str_field(data, "callbackUrl")
            if not url.startswith(("http://", "https://")):
                raise Refusal(400, "InvalidParameter.callbackUrl", "callbackUrl must be an http(s) URL")
            api_secret = data.get("apiSecret") or secrets.token_urlsafe(24)
            if not isinstance(api_secret, str):
                raise Refusal(400, "InvalidParameter.apiSecret", "apiSecret must be a string")
            force = bool(data.get("forceUpdate", False))
            existing = self._routes.get(route_key)
            if (
                existing is not None
                and not force
                and (existing.url, existing.api_secret) != (url, api_secret)
            ):
                raise Refusal(
                    400,
                    "InvalidParameter.callbackRouteKey.exists",
                    f"callbackRouteKey {route_key!r} is registered already; set forceUpdate to change it",
                )
            reg = CallbackRegistration(route_key, url, api_secret, force, self.clock.now())
            self._routes[route_key] = reg
            self._record(self.records.callback_registrations, reg)
            return {"success": True, "result": {"callbackUrl": url, "apiSecret": api_secret}}

        return await self._answer(request, body)

    # ---- robot batch send

    async def _batch_send(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            self._auth_api(req)
            data = await self._json(req, "api")
            robot_code = _str_field(data, "robotCode")
            if robot_code != self.robot_code:
                raise Refusal(
                    400, "InvalidParameter.robotCode", f"robotCode {robot_code!r} is not this app's robot"
                )
            users = data.get("userIds")
            if users is None or users == []:
                raise Refusal(400, "MissinguserIds", "userIds is mandatory for this action.")
            if not isinstance(users, list) or not all(isinstance(u, str) and u for u in users):
                raise Refusal(400, "InvalidParameter.userIds", "userIds must be a list of userId strings")
            if len(users) > MAX_BATCH_USERS:
                raise Refusal(400, "InvalidParameter.userIds", f"at most {MAX_BATCH_USERS} userIds per call")
            msg_key = _str_field(data, "msgKey")
            if msg_key not in ROBOT_MSG_KEYS:
                raise Refusal(400, "InvalidParameter.msgKey", f"unknown msgKey {msg_key!r}")
            raw_param = _str_field(data, "msgParam")
            try:
                msg_param = json.loads(raw_param)
            except ValueError:
                msg_param = None
            if not isinstance(msg_param, dict):
                raise Refusal(
                    400, "InvalidParameter.msgParam", "msgParam must be a JSON object encoded as a string"
                )
            if msg_key == "sampleText" and not (
                isinstance(msg_param.get("content"), str) and msg_param["content"]
            ):
                raise Refusal(400, "InvalidParameter.msgParam", "sampleText needs msgParam.content")
            unique = list(dict.fromkeys(users))
            invalid = [u for u in unique if not self._member(u)]
            limited = [u for u in unique if u not in invalid and u in self.flow_controlled]
            delivered = [u for u in unique if u not in invalid and u not in limited]
            self._meter(req.path, "api", messages=len(delivered))
            key = secrets.token_urlsafe(32)
            self._record(
                self.records.robot_sends,
                RobotSend(
                    key,
                    robot_code,
                    tuple(users),
                    msg_key,
                    msg_param,
                    tuple(delivered),
                    tuple(invalid),
                    tuple(limited),
                    self.clock.now(),
                ),
            )
            return {
                "processQueryKey": key,
                "invalidStaffIdList": invalid,
                "flowControlledStaffIdList": limited,
            }

        return await self._answer(request, body)

    # ---- session webhook

    async def _session_webhook(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            token = req.query.get("session", "")
            sess = self._sessions.get(token)
            if sess is None or self.clock.now() >= sess.expires_at:
                raise Refusal(200, "300001", _ERRMSG[300001])
            data = await self._json(req, "webhook")
            msgtype = data.get("msgtype")
            if msgtype not in WEBHOOK_MSG_TYPES:
                raise Refusal(200, "40035", f"不合法的参数 msgtype: {msgtype!r}")
            part = data.get(str(msgtype))
            if not isinstance(part, dict):
                raise Refusal(200, "40035", f"缺少参数 {msgtype}")
            if msgtype == "text" and not (isinstance(part.get("content"), str) and part["content"]):
                raise Refusal(200, "40035", "缺少参数 text.content")
            at = data.get("at")
            at_ids = at.get("atUserIds") if isinstance(at, dict) else None
            at_user_ids = tuple(str(u) for u in at_ids) if isinstance(at_ids, list) else ()
            self._meter(req.path, "webhook", messages=1)
            self._record(
                self.records.webhook_posts,
                WebhookPost(token, sess.conversation_id, str(msgtype), data, at_user_ids, self.clock.now()),
            )
            return {}

        return await self._answer(request, body)

    # ---- work notifications (oapi)

    def _agent(self, data: Mapping[str, Any]) -> int:
        raw = data.get("agent_id")
        try:
            agent = int(raw) if raw is not None and not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            agent = None
        if agent is None:
            raise Refusal(200, "40035", "缺少参数 agent_id")
        if agent != self.agent_id:
            raise Refusal(200, "40035", f"不合法的参数 agent_id: {agent}")
        return agent

    async def _asyncsend(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            self._auth_oapi(req)
            data = await self._json(req, "oapi")
            agent = self._agent(data)
            raw_users = data.get("userid_list", "")
            if isinstance(raw_users, list):
                users = [str(u) for u in raw_users]
            elif isinstance(raw_users, str):
                users = [u.strip() for u in raw_users.split(",") if u.strip()]
            else:
                raise Refusal(200, "40035", "不合法的参数 userid_list")
            if not users:
                raise Refusal(200, "40035", "缺少参数 userid_list")
            if len(users) > MAX_OA_USERS:
                raise Refusal(200, "40035", f"userid_list 最多 {MAX_OA_USERS} 个")
            msg = data.get("msg")
            if isinstance(msg, str):
                try:
                    msg = json.loads(msg)
                except ValueError:
                    msg = None
            if not isinstance(msg, dict) or msg.get("msgtype") not in OA_MSG_TYPES:
                raise Refusal(200, "40035", "不合法的参数 msg")
            if msg["msgtype"] == "oa":
                oa = msg.get("oa")
                if not (
                    isinstance(oa, dict)
                    and isinstance(oa.get("head"), dict)
                    and isinstance(oa.get("body"), dict)
                ):
                    raise Refusal(200, "40035", "oa 消息需要 head 和 body")
            unique = list(dict.fromkeys(users))
            invalid = [u for u in unique if not self._member(u)]
            now = self.clock.now()
            digest = hashlib.sha256(json.dumps(msg, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
            fresh = [
                u
                for u in unique
                if u not in invalid
                and not (
                    (last := self._notified.get((u, digest))) is not None and now - last < timedelta(days=1)
                )
            ]
            self._meter(req.path, "oapi", messages=len(fresh))
            self._task_seq += 1
            task_id = 256271667000 + self._task_seq
            for u in unique:
                if u not in invalid and u not in fresh:
                    self._record(
                        self.records.drops, Drop(task_id, u, "same content to this person today", now)
                    )
            for u in fresh:
                self._notified[(u, digest)] = now
            notice = WorkNotice(task_id, agent, tuple(users), tuple(fresh), tuple(invalid), msg, now)
            self._tasks[task_id] = notice
            self._record(self.records.work_notices, notice)
            return {"task_id": task_id}

        return await self._answer(request, body)

    async def _status_bar(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            self._auth_oapi(req)
            data = await self._json(req, "oapi")
            self._agent(data)
            try:
                task_id = int(data.get("task_id", ""))
            except (TypeError, ValueError):
                raise Refusal(200, "40035", "缺少参数 task_id") from None
            notice = self._tasks.get(task_id)
            if notice is None or notice.msg.get("msgtype") != "oa":
                raise Refusal(200, "40035", f"不合法的参数 task_id: {task_id} (no oa message)")
            value = data.get("status_value")
            if not isinstance(value, str) or not value:
                raise Refusal(200, "40035", "缺少参数 status_value")
            bg = data.get("status_bg") or ""
            self._record(
                self.records.status_bar_updates, StatusBarUpdate(task_id, value, str(bg), self.clock.now())
            )
            return {}

        return await self._answer(request, body)

    # ---- contacts (oapi)

    def _dept(self, data: Mapping[str, Any]) -> dict[str, Any]:
        raw = data.get("dept_id")
        try:
            dept_id = int(raw) if raw is not None and not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            dept_id = None
        if dept_id is None:
            raise Refusal(200, "40035", "缺少参数 dept_id")
        dept = next((d for d in self.departments if int(d["dept_id"]) == dept_id), None)
        if dept is None:
            raise Refusal(200, "60003", _ERRMSG[60003])
        return dept

    async def _dept_listsub(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            self._auth_oapi(req)
            parent = int(self._dept(await self._json(req, "oapi"))["dept_id"])
            subs = [
                {"dept_id": int(d["dept_id"]), "name": d.get("name", ""), "parent_id": parent}
                for d in self.departments
                if d.get("parent_id") is not None and int(d["parent_id"]) == parent
            ]
            return {"result": subs}

        return await self._answer(request, body)

    async def _dept_get(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            self._auth_oapi(req)
            return {"result": dict(self._dept(await self._json(req, "oapi")))}

        return await self._answer(request, body)

    async def _user_list(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            self._auth_oapi(req)
            data = await self._json(req, "oapi")
            dept_id = int(self._dept(data)["dept_id"])
            try:
                cursor = int(data.get("cursor", 0) or 0)
                size = int(data.get("size", 0))
            except (TypeError, ValueError):
                raise Refusal(200, "40035", "不合法的参数 cursor / size") from None
            if not 1 <= size <= MAX_PAGE or cursor < 0:
                raise Refusal(200, "40035", f"size 取值 1..{MAX_PAGE}, cursor >= 0")
            members = [
                u for u in self.users.values() if dept_id in [int(d) for d in u.get("dept_id_list", [])]
            ]
            page = members[cursor : cursor + size]
            users = []
            for u in page:
                leader = any(
                    int(x.get("dept_id", -1)) == dept_id and bool(x.get("leader"))
                    for x in u.get("leader_in_dept", [])
                )
                users.append({"active": True, **u, "leader": leader})
            more = cursor + size < len(members)
            result: dict[str, Any] = {"has_more": more, "list": users}
            if more:
                result["next_cursor"] = cursor + size
            return {"result": result}

        return await self._answer(request, body)

    async def _user_get(self, request: web.Request) -> web.Response:
        async def body(req: web.Request) -> dict[str, Any]:
            self._auth_oapi(req)
            data = await self._json(req, "oapi")
            user = self.users.get(str(data.get("userid", "")))
            if user is None:
                raise Refusal(200, "60121", _ERRMSG[60121])
            return {"result": {"active": True, **user}}

        return await self._answer(request, body)


# ---------------------------------------------------------------- crypto and signatures


class DingTalkCipher(WeComCipher):
    """DingTalk's event crypto: WeCom's layout exactly (random16 + 4-byte big-endian length + msg +
    $key, PKCS#7 to 32-byte blocks, AES-256-CBC, IV = key[:16]); the trailing id is the owner key
    (AppKey, CorpId or suiteKey)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DingTalkCipher(<key hidden>)"


def robot_sign(timestamp_ms: str, app_secret: str) -> str:
    """The `sign` header of a robot message: base64(HMAC-SHA256(key=appSecret, msg=timestamp + "\\n" + appSecret))."""
    mac = hmac.new(app_secret.encode(), f"{timestamp_ms}\n{app_secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def card_callback_signature(timestamp_ms: str, api_secret: str) -> str:
    """The `x-ddpaas-signature` header of a card callback: base64(HMAC-SHA256(key=apiSecret, msg=timestamp))."""
    mac = hmac.new(api_secret.encode(), timestamp_ms.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def _signed_url(url: str, params: Mapping[str, str]) -> URL:
    """`url` with params appended, percent-encoded exactly (a '+' in base64 becomes %2B, never a space)."""
    query = "&".join(f"{k}={urllib.parse.quote(v, safe='')}" for k, v in params.items())
    sep = "&" if "?" in url else "?"
    return URL(url + sep + query, encoded=True)


# ---------------------------------------------------------------- event subscription (DingTalk -> the bot)


class EventResponse(NamedTuple):
    status: int
    body: str
    reply: dict[str, Any] | None  # the JSON object answered, if any
    plaintext: str | None  # the decrypted reply, when it verified and decrypted
    error: str = ""  # why plaintext is None

    @property
    def ok(self) -> bool:
        """What DingTalk counts as received: HTTP 200 and an encrypted, signed "success"."""
        return self.status == 200 and self.plaintext == "success"


@dataclass(frozen=True, slots=True)
class EventAttempt:
    status: int | None  # None: no answer within the deadline, or the connection failed
    plaintext: str | None
    error: str = ""


@dataclass(frozen=True, slots=True)
class EventDelivery:
    attempts: tuple[EventAttempt, ...]

    @property
    def delivered(self) -> bool:
        return (
            bool(self.attempts)
            and self.attempts[-1].status == 200
            and self.attempts[-1].plaintext == "success"
        )


def encrypt_event(
    event: Mapping[str, Any] | str,
    *,
    token: str,
    aes_key: str,
    owner_key: str,
    timestamp: str,
    nonce: str,
    spelling: Literal["signature", "msg_signature"] = "signature",
) -> tuple[dict[str, str], dict[str, str]]:
    """(query params, JSON body) of DingTalk's POST for this event. `spelling` "signature" gives
    `signature` + `timestamp`, "msg_signature" gives `msg_signature` + `timeStamp` (both occur)."""
    plain = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    encrypt = DingTalkCipher(aes_key).encrypt(plain, owner_key)
    sig = signature(token, timestamp, nonce, encrypt)
    if spelling == "signature":
        params = {"signature": sig, "timestamp": timestamp, "nonce": nonce}
    else:
        params = {"msg_signature": sig, "timeStamp": timestamp, "nonce": nonce}
    return params, {"encrypt": encrypt}


def open_event_reply(reply: Mapping[str, Any], *, token: str, aes_key: str, owner_key: str) -> str:
    """Check the bot's answer {"msg_signature", "timeStamp", "nonce", "encrypt"} as DingTalk does and
    return its plaintext (it should be "success"). CryptoError if it does not verify or decrypt."""
    try:
        sig, ts, nonce, encrypt = (str(reply[k]) for k in ("msg_signature", "timeStamp", "nonce", "encrypt"))
    except KeyError as exc:
        raise CryptoError(f"the reply has no {exc.args[0]}") from None
    if not signature_ok(sig, token, ts, nonce, encrypt):
        raise CryptoError("the reply's msg_signature does not match")
    plain, owner = DingTalkCipher(aes_key).decrypt(encrypt)
    if owner != owner_key:
        raise CryptoError("the reply is encrypted for another owner key")
    return plain


async def _post_event(
    session: aiohttp.ClientSession,
    url: URL,
    body: Mapping[str, str],
    deadline: float,
    keys: tuple[str, str, str],
) -> EventResponse:
    token, aes_key, owner_key = keys
    async with asyncio.timeout(deadline):
        async with session.post(url, json=dict(body)) as resp:
            status, text = resp.status, await resp.text()
    try:
        reply = json.loads(text) if text else None
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        return EventResponse(status, text, None, None, "the answer is not a JSON object")
    try:
        plain = open_event_reply(reply, token=token, aes_key=aes_key, owner_key=owner_key)
    except CryptoError as exc:
        return EventResponse(status, text, reply, None, str(exc))
    return EventResponse(status, text, reply, plain)


def _ts_nonce(timestamp: str | None, nonce: str | None) -> tuple[str, str]:
    ts = timestamp if timestamp is not None else str(int(time.time() * 1000))
    nc = nonce if nonce is not None else secrets.token_urlsafe(6)
    return ts, nc


async def send_event(
    session: aiohttp.ClientSession,
    url: str,
    event: Mapping[str, Any] | str,
    *,
    token: str,
    aes_key: str,
    owner_key: str,
    spelling: Literal["signature", "msg_signature"] = "signature",
    timestamp: str | None = None,
    nonce: str | None = None,
    deadline: float = 2.5,
) -> EventResponse:
    """POST one encrypted, signed event (a dict, JSON-encoded; or a JSON string) as DingTalk does;
    the answer with its reply checked and decrypted."""
    ts, nc = _ts_nonce(timestamp, nonce)
    params, body = encrypt_event(
        event, token=token, aes_key=aes_key, owner_key=owner_key, timestamp=ts, nonce=nc, spelling=spelling
    )
    return await _post_event(session, _signed_url(url, params), body, deadline, (token, aes_key, owner_key))


async def verify_callback_url(
    session: aiohttp.ClientSession,
    url: str,
    *,
    token: str,
    aes_key: str,
    owner_key: str,
    spelling: Literal["signature", "msg_signature"] = "signature",
    deadline: float = 1.5,
) -> EventResponse:
    """The check DingTalk makes when the callback URL is saved: {"EventType": "check_url"}, which
    must be answered with an encrypted "success" within 1500 ms."""
    return await send_event(
        session,
        url,
        {"EventType": "check_url"},
        token=token,
        aes_key=aes_key,
        owner_key=owner_key,
        spelling=spelling,
        deadline=deadline,
    )


async def retrying_send_event(
    session: aiohttp.ClientSession,
    url: str,
    event: Mapping[str, Any] | str,
    *,
    token: str,
    aes_key: str,
    owner_key: str,
    spelling: Literal["signature", "msg_signature"] = "signature",
    timestamp: str | None = None,
    nonce: str | None = None,
    attempts: int = 3,
    deadline: float = 2.5,
    delay: float = 0.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> EventDelivery:
    """DingTalk's push: the same signed POST up to `attempts` times, each with a 2.5 s `deadline`;
    anything but HTTP 200 with an encrypted "success" counts as a failure and is re-pushed after
    `sleep(delay)`. (DingTalk does not document its re-push schedule; the count is an assumption.)"""
    ts, nc = _ts_nonce(timestamp, nonce)
    params, body = encrypt_event(
        event, token=token, aes_key=aes_key, owner_key=owner_key, timestamp=ts, nonce=nc, spelling=spelling
    )
    target = _signed_url(url, params)
    done: list[EventAttempt] = []
    for i in range(attempts):
        if i:
            await sleep(delay)
        try:
            answer = await _post_event(session, target, body, deadline, (token, aes_key, owner_key))
        except TimeoutError:
            done.append(EventAttempt(None, None, f"no answer within {deadline} s"))
            continue
        except aiohttp.ClientError as exc:
            done.append(EventAttempt(None, None, f"{type(exc).__name__}: {exc}"))
            continue
        done.append(EventAttempt(answer.status, answer.plaintext, answer.error))
        if answer.ok:
            break
    return EventDelivery(tuple(done))


# ---------------------------------------------------------------- robot messages (DingTalk -> the bot)


class RobotResponse(NamedTuple):
    status: int
    body: str
    json: Any  # the parsed answer, or None


def robot_text_message(
    *,
    content: str,
    msg_id: str,
    create_at: int,
    conversation_id: str,
    sender_staff_id: str,
    sender_nick: str,
    sender_corp_id: str,
    chatbot_corp_id: str,
    chatbot_user_id: str,
    robot_code: str,
    session_webhook: str,
    session_webhook_expired_time: int,
    conversation_type: str = "1",
    is_in_at_list: bool = True,
    at_users: Iterable[Mapping[str, str]] = (),
    conversation_title: str = "",
    sender_id: str | None = None,
) -> dict[str, Any]:
    """The JSON body of a text message to an internal app robot (HTTP mode), with DingTalk's field names."""
    body: dict[str, Any] = {
        "msgtype": "text",
        "text": {"content": content},
        "msgId": msg_id,
        "createAt": create_at,
        "conversationType": conversation_type,
        "conversationId": conversation_id,
        "senderId": sender_id if sender_id is not None else f"$:LWCP_v1:${sender_staff_id}",
        "senderStaffId": sender_staff_id,
        "senderNick": sender_nick,
        "senderCorpId": sender_corp_id,
        "chatbotCorpId": chatbot_corp_id,
        "chatbotUserId": chatbot_user_id,
        "robotCode": robot_code,
        "isAdmin": False,
        "isInAtList": is_in_at_list,
        "sessionWebhook": session_webhook,
        "sessionWebhookExpiredTime": session_webhook_expired_time,
    }
    users = [dict(u) for u in at_users]
    if users:
        body["atUsers"] = users
    if conversation_title:
        body["conversationTitle"] = conversation_title
    return body


async def send_robot_message(
    session: aiohttp.ClientSession,
    url: str,
    body: Mapping[str, Any],
    *,
    app_secret: str,
    timestamp_ms: int | None = None,
    deadline: float = 5.0,
) -> RobotResponse:
    """POST a robot message to the bot as DingTalk does: headers `timestamp` (ms) and `sign`."""
    ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    headers = {"timestamp": ts, "sign": robot_sign(ts, app_secret)}
    async with asyncio.timeout(deadline):
        async with session.post(url, json=dict(body), headers=headers) as resp:
            text = await resp.text()
            status = resp.status
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    return RobotResponse(status, text, parsed)


# ---------------------------------------------------------------- card clicks (DingTalk -> the bot)


class CardCallbackResponse(NamedTuple):
    status: int
    body: str
    json: Any  # the parsed answer ({cardData, cardUpdateOptions} to update at once), or None


def card_callback_body(
    *,
    out_track_id: str,
    user_id: str,
    corp_id: str,
    action_id: str = "",
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """{"type": "actionCallback", "outTrackId", "corpId", "userId", "content": "<JSON string>"}."""
    content = {
        "cardPrivateData": {"actionIds": [action_id] if action_id else [], "params": dict(params or {})}
    }
    return {
        "type": "actionCallback",
        "outTrackId": out_track_id,
        "corpId": corp_id,
        "userId": user_id,
        "content": json.dumps(content, ensure_ascii=False, separators=(",", ":")),
    }


async def send_card_callback(
    session: aiohttp.ClientSession,
    url: str,
    *,
    out_track_id: str,
    user_id: str,
    corp_id: str,
    api_secret: str,
    action_id: str = "",
    params: Mapping[str, Any] | None = None,
    timestamp_ms: int | None = None,
    body: Mapping[str, Any] | None = None,
    deadline: float = 2.0,
) -> CardCallbackResponse:
    """POST a card click to the bot as DingTalk does, signed with the registered apiSecret
    (`body` replaces the built one, for malformed-input tests)."""
    ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    payload = (
        dict(body)
        if body is not None
        else card_callback_body(
            out_track_id=out_track_id, user_id=user_id, corp_id=corp_id, action_id=action_id, params=params
        )
    )
    headers = {
        "x-ddpaas-signature-timestamp": ts,
        "x-ddpaas-signature": card_callback_signature(ts, api_secret),
    }
    async with asyncio.timeout(deadline):
        async with session.post(url, json=payload, headers=headers) as resp:
            text = await resp.text()
            status = resp.status
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    return CardCallbackResponse(status, text, parsed)
