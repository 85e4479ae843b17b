"""The emulator's web chat page: employees of the demo org chat with the bot on WeCom or DingTalk
from a browser, and click the buttons of the cards it sends. Everything the page does reaches the
bot as the platform's real callback (WeCom: encrypted, signed XML; DingTalk: signed robot message
and card callback); everything it shows is what the bot sent to the emulators' APIs.

    GET  /                      the page (static HTML; the person and platform come from the URL:
                                /?platform=wecom&userid=LiNa, else it shows a picker)
    GET  /_chat/people          {"wecom": [{"userid", "name", "department"}], "dingtalk": [...]}
                                (only the platforms served here)
    GET  /_chat/timeline?platform=&userid=    {"platform", "userid", "entries": [...]}
    GET  /_chat/events?platform=&userid=      Server-Sent Events: "snapshot" {"entries": [...]},
                                then "entry" (an entry, new or changed) for each change; a comment
                                line every `heartbeat` seconds
    POST /_chat/send  {platform, userid, text}             the person sends a text message
    POST /_chat/click {platform, userid, card_id, key}     the person clicks a card button
    GET  /_chat/static/...      chat.css, chat.js

Bad input is a 4xx {"error": "..."}: 400 malformed, 403 a card that was not delivered to that
person, 404 an unknown person or card, 409 a button the card does not have (any longer) or a
platform state that does not allow the call. A bot that cannot be reached or answers the callback
with anything but HTTP 200 gives 502 {"error", "bot_status", "entry"}, and the sent message is
marked failed.

The page imports nothing of the product: it drives the emulators and posts to the bot's URLs.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
from aiohttp import web

from emulator.chat.timeline import PLATFORMS, DingTalkFeed, Entry, Subscription, Timeline, WeComFeed
from emulator.chat.views import JSON, dingtalk_slot, dingtalk_webhook_message, text_view
from emulator.dingtalk import DingTalkEmulator, send_robot_message
from emulator.wecom import WeComEmulator, send_callback, template_card_event_xml, text_message_xml

STATIC = Path(__file__).resolve().parent / "static"
MAX_TEXT = 2048  # characters of one message (WeCom's own limit for a text is 2048 bytes)
HEARTBEAT = 15.0
POLL = 1.0  # how often an idle event stream checks that its client is still there
_SURROGATE = re.compile("[\ud800-\udfff]")

# Sends one callback to the bot; e.g. emulator.chaos.Redelivery.deliver (duplicates, replays)
Send = Callable[[], Awaitable[Any]]
Deliver = Callable[[Send], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class WeComBot:
    """Where the bot's WeCom callback is and its keys (corp id and agent id are the emulator's)."""

    callback_url: str  # the bot's /wecom/callback
    token: str
    aes_key: str
    agent_id: int | None = None  # default: the emulator's first app


@dataclass(frozen=True, slots=True)
class DingTalkBot:
    """Where the bot's robot receives messages (the app secret that signs them is the emulator's;
    card clicks go to the URL the bot registered for its cards)."""

    robot_url: str  # the bot's /dingtalk/robot


class ChatError(Exception):
    """An answer other than 200: HTTP `status` with {"error": message, **extra}."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def response(self) -> web.Response:
        return _json({"error": self.message, **self.extra}, status=self.status)


def _json(data: Any, *, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False), headers=NO_STORE
    )


NO_STORE = {"Cache-Control": "no-store"}


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _guarded(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ChatError as exc:
            return exc.response()

    return guarded


class ChatPage:
    """The web chat page for the emulators given (a platform is served when both its emulator and
    its bot are given). It chains its own hook after any `on_record` hook already set."""

    def __init__(
        self,
        *,
        wecom: WeComEmulator | None = None,
        wecom_bot: WeComBot | None = None,
        dingtalk: DingTalkEmulator | None = None,
        dingtalk_bot: DingTalkBot | None = None,
        deliver: Mapping[str, Deliver] | None = None,
        heartbeat: float = HEARTBEAT,
        poll: float = POLL,
    ) -> None:
        if (wecom is None) != (wecom_bot is None):
            raise ValueError("give both wecom and wecom_bot, or neither")
        if (dingtalk is None) != (dingtalk_bot is None):
            raise ValueError("give both dingtalk and dingtalk_bot, or neither")
        if wecom is None and dingtalk is None:
            raise ValueError("give at least one platform")
        if wecom is not None and wecom_bot is not None and wecom_bot.agent_id is None and not wecom.apps:
            raise ValueError("the WeCom emulator has no app (agent id)")
        if heartbeat <= 0 or poll <= 0:
            raise ValueError("heartbeat and poll must be positive")
        self.wecom = wecom
        self.wecom_bot = wecom_bot
        self.dingtalk = dingtalk
        self.dingtalk_bot = dingtalk_bot
        self.deliver = dict(deliver or {})
        self.heartbeat = heartbeat
        self.poll = poll
        self.timeline = Timeline()
        self.wecom_feed = WeComFeed.attach(self.timeline, wecom) if wecom is not None else None
        self.dingtalk_feed = DingTalkFeed.attach(self.timeline, dingtalk) if dingtalk is not None else None
        self._session: aiohttp.ClientSession | None = None

    @property
    def platforms(self) -> list[str]:
        return [p for p, e in zip(PLATFORMS, (self.wecom, self.dingtalk), strict=True) if e is not None]

    def add_routes(self, app: web.Application) -> None:
        """GET / and the /_chat endpoints on `app`, with the session's start and the streams' end."""
        app.router.add_get("/", _guarded(self.page))
        app.router.add_get("/_chat/people", _guarded(self.people))
        app.router.add_get("/_chat/timeline", _guarded(self.snapshot))
        app.router.add_get("/_chat/events", _guarded(self.events))
        app.router.add_post("/_chat/send", _guarded(self.send))
        app.router.add_post("/_chat/click", _guarded(self.click))
        app.router.add_static("/_chat/static", STATIC)
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._shutdown)
        app.on_cleanup.append(self._cleanup)

    async def _start(self, _app: web.Application) -> None:
        self._session = aiohttp.ClientSession()

    async def _shutdown(self, _app: web.Application) -> None:
        self.timeline.close()  # open event streams end now, so the server stops at once

    async def _cleanup(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise ChatError(503, "the chat page is not started (its app is not running)")
        return self._session

    # ---- input

    def _person(self, platform: object, userid: object) -> tuple[str, str]:
        if platform not in self.platforms:
            served = ", ".join(self.platforms)
            raise ChatError(400, f"unknown platform {platform!r} (served here: {served})")
        if not isinstance(userid, str) or not userid:
            raise ChatError(400, "userid is required")
        emulator = self.wecom if platform == "wecom" else self.dingtalk
        if emulator is None or userid not in emulator.users:
            raise ChatError(404, f"{userid!r} is not a member of the {platform} directory")
        return str(platform), userid

    @staticmethod
    async def _body(request: web.Request) -> Mapping[str, Any]:
        try:
            data = json.loads(await request.text())
        except web.HTTPRequestEntityTooLarge:
            raise ChatError(413, f"the body is over {request.client_max_size} bytes") from None
        except (ValueError, UnicodeDecodeError, LookupError, RecursionError, web.RequestPayloadError):
            # LookupError: an unknown charset; RecursionError: JSON nested too deep;
            # RequestPayloadError: a body that cannot be read (e.g. a broken Content-Encoding)
            raise ChatError(400, "the body must be a JSON object") from None
        if not isinstance(data, dict):
            raise ChatError(400, "the body must be a JSON object")
        return data

    @staticmethod
    def _text(data: Mapping[str, Any], name: str, *, limit: int | None = None) -> str:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ChatError(400, f"{name} is required (a non-empty string)")
        if limit is not None and len(value) > limit:
            raise ChatError(400, f"{name} is over {limit} characters")
        if _SURROGATE.search(value):  # JSON's "\ud800": no platform can carry it (not UTF-8)
            raise ChatError(400, f"{name} has a lone surrogate (\\ud800-\\udfff), which is not text")
        return value

    async def _call(self, platform: str, send: Send) -> Any:
        deliver = self.deliver.get(platform)
        return await (deliver(send) if deliver is not None else send())

    # ---- GET

    async def page(self, _request: web.Request) -> web.StreamResponse:
        """The chat page itself (plain HTML; chat.js does the rest)."""
        return web.FileResponse(STATIC / "index.html", headers=NO_STORE)

    async def people(self, _request: web.Request) -> web.StreamResponse:
        """Who can chat: each served platform's directory, in its order."""
        out: dict[str, list[JSON]] = {}
        if self.wecom is not None:
            names = {int(d["id"]): str(d.get("name", "")) for d in self.wecom.departments}
            out["wecom"] = [
                {
                    "userid": uid,
                    "name": str(u.get("name", uid)),
                    "department": "、".join(names.get(int(d), str(d)) for d in u.get("department", [])),
                }
                for uid, u in self.wecom.users.items()
            ]
        if self.dingtalk is not None:
            names = {int(d["dept_id"]): str(d.get("name", "")) for d in self.dingtalk.departments}
            out["dingtalk"] = [
                {
                    "userid": uid,
                    "name": str(u.get("name", uid)),
                    "department": "、".join(names.get(int(d), str(d)) for d in u.get("dept_id_list", [])),
                }
                for uid, u in self.dingtalk.users.items()
                if u.get("active", True)
            ]
        return _json(out)

    async def snapshot(self, request: web.Request) -> web.StreamResponse:
        """A person's timeline as JSON, oldest first."""
        platform, userid = self._person(request.query.get("platform"), request.query.get("userid"))
        entries = [e.to_json() for e in self.timeline.entries(platform, userid)]
        return _json({"platform": platform, "userid": userid, "entries": entries})

    async def events(self, request: web.Request) -> web.StreamResponse:
        """A person's timeline live (Server-Sent Events): a snapshot, then each new or changed entry.
        Ends when the client goes away (noticed within `poll` seconds) or the app shuts down."""
        platform, userid = self._person(request.query.get("platform"), request.query.get("userid"))
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        with self.timeline.subscription(platform, userid) as sub:
            entries = [e.to_json() for e in self.timeline.entries(platform, userid)]
            try:
                await response.prepare(request)
                await response.write(b"retry: 2000\n\n" + _sse("snapshot", {"entries": entries}))
                await self._stream(request, response, sub)
            except ConnectionError:
                pass  # the client went away while we wrote
        return response

    async def _stream(self, request: web.Request, response: web.StreamResponse, sub: Subscription) -> None:
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + self.heartbeat
        while True:
            wait = max(0.0, min(self.poll, next_beat - loop.time()))
            try:
                async with asyncio.timeout(wait):
                    entry = await sub.get()
            except TimeoutError:
                if _gone(request):
                    return
                if loop.time() >= next_beat:
                    await response.write(b": heartbeat\n\n")
                    next_beat = loop.time() + self.heartbeat
                continue
            if entry is None:
                return
            await response.write(_sse("entry", entry.to_json()))

    # ---- POST /_chat/send

    async def send(self, request: web.Request) -> web.StreamResponse:
        """The person sends `text` to the bot: their bubble is recorded, then the platform's real
        callback goes to the bot (WeCom: encrypted text message; DingTalk: signed robot message in
        their 1:1 chat). 200 {"entry", "bot_status"}; 502 if the bot did not take it."""
        data = await self._body(request)
        platform, userid = self._person(data.get("platform"), data.get("userid"))
        text = self._text(data, "text", limit=MAX_TEXT)
        if platform == "wecom":
            send, url = self._wecom_text(userid, text), self._wecom_bot().callback_url
        else:
            send, url = self._dingtalk_text(userid, text), self._dingtalk_bot().robot_url
        entry = self.timeline.add(
            platform, userid, direction="out", kind="text", text=text_view(text), status="sending"
        )
        status, answer = await self._post(platform, send, url, entry)
        entry = self.timeline.replace(entry.id, status="sent")
        if platform == "dingtalk" and isinstance(answer, dict) and answer.get("msgtype"):
            self._inline_reply(userid, answer)  # a reply in the HTTP answer, as DingTalk allows
        return _json({"entry": entry.to_json(), "bot_status": status})

    def _wecom_bot(self) -> WeComBot:
        assert self.wecom_bot is not None
        return self.wecom_bot

    def _dingtalk_bot(self) -> DingTalkBot:
        assert self.dingtalk_bot is not None
        return self.dingtalk_bot

    def _agent_id(self) -> int:
        assert self.wecom is not None
        return self._wecom_bot().agent_id or next(iter(self.wecom.apps))

    def _wecom_text(self, userid: str, text: str) -> Send:
        assert self.wecom is not None
        bot, corp_id = self._wecom_bot(), self.wecom.corp_id
        now = int(time.time())
        xml = text_message_xml(
            corp_id=corp_id,
            from_user=userid,
            content=text,
            msg_id=secrets.randbelow(2**62) + 1,
            agent_id=self._agent_id(),
            create_time=now,
        )
        nonce = str(secrets.randbelow(10**10))

        async def post() -> tuple[int, Any]:
            answer = await send_callback(
                self.session,
                bot.callback_url,
                xml,
                token=bot.token,
                aes_key=bot.aes_key,
                corp_id=corp_id,
                timestamp=str(now),
                nonce=nonce,
            )
            return answer.status, answer.body

        return post

    def _dingtalk_text(self, userid: str, text: str) -> Send:
        assert self.dingtalk is not None and self.dingtalk_feed is not None
        emulator, bot = self.dingtalk, self._dingtalk_bot()
        try:
            body = emulator.robot_text_message(text, sender=userid)
        except ValueError as exc:  # no base_url: it cannot hand out session webhooks
            raise ChatError(409, f"the DingTalk emulator cannot take messages: {exc}") from None
        self.dingtalk_feed.note_conversation(str(body["conversationId"]), userid)
        timestamp_ms = int(time.time() * 1000)

        async def post() -> tuple[int, Any]:
            answer = await send_robot_message(
                self.session, bot.robot_url, body, app_secret=emulator.app_secret, timestamp_ms=timestamp_ms
            )
            return answer.status, answer.json

        return post

    def _inline_reply(self, userid: str, answer: Mapping[str, Any]) -> None:
        kind, content = dingtalk_webhook_message(answer)
        if kind == "card":
            self.timeline.add("dingtalk", userid, direction="in", kind="card", card=content)
        else:
            self.timeline.add("dingtalk", userid, direction="in", kind="text", text=content)

    async def _post(self, platform: str, send: Send, url: str, entry: Entry) -> tuple[int, Any]:
        """Send the callback; (status, answer) when the bot answered 200, else ChatError 502 (and
        `entry`, the person's message, is marked failed)."""
        try:
            status, answer = await self._call(platform, send)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = str(exc) or "no answer in time"
            self._fail(entry, f"the bot at {url} could not be reached: {type(exc).__name__}: {reason}")
        if status != 200:
            self._fail(entry, f"the bot at {url} answered HTTP {status}", bot_status=status)
        return status, answer

    def _fail(self, entry: Entry, error: str, *, bot_status: int | None = None) -> NoReturn:
        if entry.direction == "out":
            entry = self.timeline.replace(entry.id, status="failed", error=error)
        raise ChatError(502, error, bot_status=bot_status, entry=entry.to_json())

    # ---- POST /_chat/click

    async def click(self, request: web.Request) -> web.StreamResponse:
        """The person clicks the button `key` of card `card_id` (a card delivered to them that still
        shows that button): WeCom posts the encrypted template_card_event (with a fresh
        response_code), DingTalk the signed card callback (an update in its answer is applied at
        once). 200 {"entry": the card as it is now, "bot_status"}."""
        data = await self._body(request)
        platform, userid = self._person(data.get("platform"), data.get("userid"))
        card_id = self._text(data, "card_id")
        key = self._text(data, "key")
        entry = self.timeline.card(platform, userid, card_id)
        if entry is None:
            if self.timeline.knows_card(platform, card_id):
                raise ChatError(403, f"card {card_id!r} was not delivered to {userid!r}")
            raise ChatError(404, f"no card {card_id!r} on {platform}")
        buttons = (entry.card or {}).get("buttons") or []
        if not any(b.get("key") == key and not b.get("url") for b in buttons):
            raise ChatError(
                409, f"card {card_id!r} has no button {key!r} (any longer)", entry=entry.to_json()
            )
        if platform == "wecom":
            send, url = self._wecom_click(userid, entry, key), self._wecom_bot().callback_url
        else:
            send, url = self._dingtalk_click(userid, entry, key), "the DingTalk card callback"
        status, _ = await self._post(platform, send, url, entry)
        now = self.timeline.entry(entry.id) or entry
        return _json({"entry": now.to_json(), "bot_status": status})

    def _wecom_click(self, userid: str, entry: Entry, key: str) -> Send:
        assert self.wecom is not None
        bot, corp_id = self._wecom_bot(), self.wecom.corp_id
        tc = (entry.raw or {}).get("template_card") or {}
        try:
            code = self.wecom.issue_click_response_code(entry.card_id)
        except KeyError:
            raise ChatError(404, f"the WeCom emulator sent no message {entry.card_id!r}") from None
        now = int(time.time())
        xml = template_card_event_xml(
            corp_id=corp_id,
            from_user=userid,
            create_time=now,
            event_key=key,
            task_id=str(tc.get("task_id", "")),
            response_code=code,
            agent_id=self._agent_id(),
            card_type=str(tc.get("card_type", "button_interaction")),
        )
        nonce = str(secrets.randbelow(10**10))

        async def post() -> tuple[int, Any]:
            answer = await send_callback(
                self.session,
                bot.callback_url,
                xml,
                token=bot.token,
                aes_key=bot.aes_key,
                corp_id=corp_id,
                timestamp=str(now),
                nonce=nonce,
            )
            return answer.status, answer.body

        return post

    def _dingtalk_click(self, userid: str, entry: Entry, key: str) -> Send:
        assert self.dingtalk is not None
        emulator = self.dingtalk
        params = (entry.raw or {}).get("params") or {}
        slot = dingtalk_slot(params, key)
        if slot is None:
            raise ChatError(409, f"card {entry.card_id!r} has no button {key!r} (any longer)")

        async def post() -> tuple[int, Any]:
            try:
                answer = await emulator.click_card(
                    self.session, entry.card_id, userid, action_id=f"btn{slot}", params={"action": key}
                )
            except KeyError as exc:
                raise ChatError(409, f"the bot registered no card callback: {exc}") from None
            return answer.status, answer.json

        return post
