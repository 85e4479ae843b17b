"""WeCom customer contact (客户联系) in the emulator: external contacts (客户) with the staff who
follow them, the two read APIs, and staff actions that push WeCom's `change_external_contact`
callback (encrypted and signed, as every callback) to the bot.

API (token checked like every /cgi-bin call; chaos switches apply):

    GET /cgi-bin/externalcontact/get?access_token&external_userid[&cursor]
        -> {"external_contact": {...}, "follow_user": [...], "next_cursor": ""}; follow_user in
        pages of `follow_page` (next_cursor names the next page). 41035 no external_userid,
        40096 no such contact, 84061 nobody follows the contact any more, 40058 a bad cursor.
    GET /cgi-bin/externalcontact/list?access_token&userid
        -> {"external_userid": [...]}. 41009 no userid, 60111 not a member, 84061 the member has no
        customers (WeCom answers so, rather than an empty list).
    GET /cgi-bin/externalcontact/get_follow_user_list?access_token
        -> {"follow_user": [...]}: the members with the customer contact feature (`follow_members`,
        those still in the directory; a member who adds or is loaded with a customer gets it).

Staff actions (methods, and the control surface below). Each changes the directory, then pushes
the event (when `connect` named the bot's callback) and records a `ContactChange`:

    add(userid, contact, ...)              add_external_contact (add_half_external_contact with
                                           half=True); a contact without external_userid is new
    edit(userid, external_userid, ...)     edit_external_contact (contact fields, remark, ...)
    delete(userid, external_userid)        del_external_contact: the member deleted the customer
    deleted_by_customer(userid, ext)       del_follow_user: the customer deleted the member
    announce()                             add_external_contact for every relation, sent directly
                                           (not through the redelivery chaos): a bot that starts
                                           after the directory was loaded learns it

Both kinds of deletion end the relation here (WeCom keeps a one-sided relation after
del_follow_user in some cases; a bot reads the contact again either way). `load()` fills the
directory without any callback.

Control surface (registered by emulator.control):

    GET  /_emulator/contacts    {"customers": [{...external_contact, "follow_user": [...]}], "changes": [...]}
    POST /_emulator/contacts    {"action": "add" | "edit" | "delete" | "deleted_by_customer",
                                 "userid": "<member>", "external_userid"?, "contact"? {name, avatar,
                                 corp_name, type, gender, unionid, ...}, "follow"? {remark,
                                 description, state}, "half"? true}
        -> {"ok": true, "change": {...}}; 400 malformed, 404 unknown member or contact, 409 a
        relation that already exists (add) or does not (edit, delete).

The module imports nothing of the product.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from emulator.wecom import MORE_INFO, ApiError, CallbackResponse, _cdata, send_callback

if TYPE_CHECKING:
    from emulator.wecom import WeComEmulator

FOLLOW_PAGE = 500
EVENT = "change_external_contact"
CONTACT_FIELDS = (
    "name",
    "avatar",
    "type",
    "gender",
    "unionid",
    "position",
    "corp_name",
    "corp_full_name",
)
FOLLOW_FIELDS = ("remark", "description", "state")
ERRMSG = {
    40058: "invalid parameter",
    40096: "invalid external userid",
    41009: "missing userid",
    41035: "missing external userid",
    60111: "userid not found",
    84061: "not external contact",
}

Send = Callable[[], Awaitable[CallbackResponse]]
Deliver = Callable[[Send], Awaitable[object]]  # e.g. emulator.chaos.Redelivery.deliver


def _err(errcode: int, detail: str = "") -> ApiError:
    base = ERRMSG.get(errcode, "error")
    return ApiError(errcode, f"{base}{', ' + detail if detail else ''}, {MORE_INFO}{errcode}")


class ContactError(ValueError):
    """A staff action the directory does not allow: HTTP `status` on the control surface."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class ContactChange:
    """A change event made: what, by whom, about whom, and how the bot answered its callback
    (`bot_status` None: not sent, no bot connected or the bot unreachable; then `error` says why)."""

    change_type: str
    userid: str
    external_userid: str
    create_time: int
    at: datetime
    bot_status: int | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class _Target:
    url: str
    token: str
    aes_key: str


def change_external_contact_xml(
    *,
    corp_id: str,
    change_type: str,
    userid: str,
    external_userid: str,
    create_time: int,
    state: str = "",
    source: str = "",
) -> str:
    """The decrypted XML of a change_external_contact event (FromUserName is "sys")."""
    extra = f"<State>{_cdata(state)}</State>" if state else ""
    if source:
        extra += f"<Source>{_cdata(source)}</Source>"
    return (
        f"<xml><ToUserName>{_cdata(corp_id)}</ToUserName>"
        f"<FromUserName>{_cdata('sys')}</FromUserName>"
        f"<CreateTime>{create_time}</CreateTime>"
        f"<MsgType>{_cdata('event')}</MsgType>"
        f"<Event>{_cdata(EVENT)}</Event>"
        f"<ChangeType>{_cdata(change_type)}</ChangeType>"
        f"<UserID>{_cdata(userid)}</UserID>"
        f"<ExternalUserID>{_cdata(external_userid)}</ExternalUserID>"
        f"{extra}</xml>"
    )


def _fields(given: Any, names: tuple[str, ...], what: str) -> dict[str, Any]:
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise ContactError(400, f"{what} must be an object")
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ContactError(400, f"{what} has unknown fields: {', '.join(map(str, unknown))}")
    out: dict[str, Any] = {}
    for name, value in given.items():
        if name in ("type", "gender"):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2:
                raise ContactError(400, f"{what}.{name} must be 0, 1 or 2")
        elif not isinstance(value, str) or len(value) > 256:
            raise ContactError(400, f"{what}.{name} must be a string of at most 256 characters")
        out[name] = value
    return out


class WeComContacts:
    """The external contacts of the emulator's corp (`contacts`: external_userid -> external_contact;
    `follows`: external_userid -> member userid -> follow_user entry)."""

    def __init__(self, emulator: WeComEmulator, *, follow_page: int = FOLLOW_PAGE) -> None:
        self.emulator = emulator
        self.contacts: dict[str, dict[str, Any]] = {}
        self.follows: dict[str, dict[str, dict[str, Any]]] = {}
        self.changes: list[ContactChange] = []
        self.follow_members: set[str] = set()  # members with the customer contact feature
        self.follow_page = follow_page
        self._target: _Target | None = None
        self._deliver: Deliver | None = None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/cgi-bin/externalcontact/get", self._get),
            web.get("/cgi-bin/externalcontact/list", self._list),
            web.get("/cgi-bin/externalcontact/get_follow_user_list", self._follow_user_list),
        ]

    def control_routes(self) -> list[web.RouteDef]:
        return [web.get("/_emulator/contacts", self._show), web.post("/_emulator/contacts", self._act)]

    def connect(self, callback_url: str, token: str, aes_key: str, *, deliver: Deliver | None = None) -> None:
        """Push change events to the bot's WeCom callback, through `deliver` (redelivery chaos)."""
        self._target = _Target(callback_url, token, aes_key)
        self._deliver = deliver

    # ---- the directory

    def customer(self, external_userid: str) -> dict[str, Any]:
        """What externalcontact/get shows of a contact, with all its follow users."""
        contact = self.contacts.get(external_userid)
        if contact is None:
            raise KeyError(external_userid)
        return {**contact, "follow_user": list(self.follows.get(external_userid, {}).values())}

    def load(self, customers: Iterable[Mapping[str, Any]]) -> None:
        """Fill the directory (no callbacks): each item is an external_contact with its
        "follow_user" list ({"userid", "remark", "description", "createtime", "state"})."""
        for item in customers:
            external_userid = str(item.get("external_userid") or "")
            if not external_userid:
                raise ContactError(400, "a loaded customer needs an external_userid")
            contact = _fields(
                {k: v for k, v in item.items() if k in CONTACT_FIELDS}, CONTACT_FIELDS, "customer"
            )
            self.contacts[external_userid] = {"external_userid": external_userid, **contact}
            follows = self.follows.setdefault(external_userid, {})
            for f in item.get("follow_user") or []:
                userid = str(f.get("userid") or "")
                self._member(userid)
                extra = _fields(
                    {k: v for k, v in f.items() if k in FOLLOW_FIELDS}, FOLLOW_FIELDS, "follow_user"
                )
                follows[userid] = self._follow(userid, extra, int(f.get("createtime") or self._now()))
                self.follow_members.add(userid)

    def _now(self) -> int:
        return int(self.emulator.clock.now().timestamp())

    def _member(self, userid: str) -> None:
        if not userid or userid not in self.emulator.users:
            raise ContactError(404, f"{userid!r} is not a member of the WeCom directory")

    def _contact(self, external_userid: str) -> dict[str, Any]:
        contact = self.contacts.get(external_userid)
        if contact is None:
            raise ContactError(404, f"no external contact {external_userid!r}")
        return contact

    @staticmethod
    def _follow(userid: str, extra: Mapping[str, Any], createtime: int) -> dict[str, Any]:
        return {
            "userid": userid,
            "remark": "",
            "description": "",
            "createtime": createtime,
            "tags": [],
            "remark_corp_name": "",
            "remark_mobiles": [],
            "oper_userid": userid,
            "add_way": 1,
            **extra,
        }

    # ---- staff actions

    async def add(
        self,
        userid: str,
        contact: Mapping[str, Any],
        *,
        follow: Mapping[str, Any] | None = None,
        half: bool = False,
    ) -> ContactChange:
        """`userid` adds the customer (a new contact when `contact` has no known external_userid)."""
        self._member(userid)
        given = dict(contact)
        external_userid = str(given.pop("external_userid", "") or "")
        fields = _fields(given, CONTACT_FIELDS, "contact")
        extra = _fields(follow, FOLLOW_FIELDS, "follow")
        if external_userid in self.contacts:
            if userid in self.follows.get(external_userid, {}):
                raise ContactError(409, f"{external_userid!r} is already a customer of {userid!r}")
            self.contacts[external_userid].update(fields)
        else:
            if not fields.get("name"):
                raise ContactError(400, "a new contact needs a name")
            external_userid = external_userid or "wm" + secrets.token_hex(15)
            if len(external_userid) > 64:
                raise ContactError(400, "external_userid must be at most 64 characters")
            self.contacts[external_userid] = {"external_userid": external_userid, "type": 1, **fields}
        self.follows.setdefault(external_userid, {})[userid] = self._follow(userid, extra, self._now())
        self.follow_members.add(userid)
        change_type = "add_half_external_contact" if half else "add_external_contact"
        return await self._push(change_type, userid, external_userid, state=str(extra.get("state", "")))

    async def edit(
        self,
        userid: str,
        external_userid: str,
        *,
        contact: Mapping[str, Any] | None = None,
        follow: Mapping[str, Any] | None = None,
    ) -> ContactChange:
        """`userid` edits the customer: contact fields and their own remark / description."""
        self._member(userid)
        fields = _fields(contact, CONTACT_FIELDS, "contact")
        extra = _fields(follow, FOLLOW_FIELDS, "follow")
        entry = self._relation(userid, external_userid)
        self.contacts[external_userid].update(fields)
        entry.update(extra)
        return await self._push("edit_external_contact", userid, external_userid)

    async def delete(self, userid: str, external_userid: str) -> ContactChange:
        """`userid` deletes the customer (del_external_contact)."""
        self._member(userid)
        self._relation(userid, external_userid)
        del self.follows[external_userid][userid]
        return await self._push("del_external_contact", userid, external_userid)

    async def deleted_by_customer(self, userid: str, external_userid: str) -> ContactChange:
        """The customer deletes `userid` (del_follow_user)."""
        self._member(userid)
        self._relation(userid, external_userid)
        del self.follows[external_userid][userid]
        return await self._push("del_follow_user", userid, external_userid)

    async def announce(self) -> list[ContactChange]:
        """add_external_contact for every relation, oldest first, sent directly to the bot."""
        relations = sorted(
            (
                (f["createtime"], ext, uid)
                for ext, follows in self.follows.items()
                for uid, f in follows.items()
            ),
        )
        return [await self._push("add_external_contact", uid, ext, direct=True) for _, ext, uid in relations]

    def _relation(self, userid: str, external_userid: str) -> dict[str, Any]:
        self._contact(external_userid)
        entry = self.follows.get(external_userid, {}).get(userid)
        if entry is None:
            raise ContactError(409, f"{external_userid!r} is not a customer of {userid!r}")
        return entry

    async def _push(
        self, change_type: str, userid: str, external_userid: str, *, state: str = "", direct: bool = False
    ) -> ContactChange:
        create_time = self._now()
        at = self.emulator.clock.now()
        target = self._target
        if target is None:
            change = ContactChange(
                change_type, userid, external_userid, create_time, at, error="no bot connected"
            )
            self.changes.append(change)
            return change
        xml = change_external_contact_xml(
            corp_id=self.emulator.corp_id,
            change_type=change_type,
            userid=userid,
            external_userid=external_userid,
            create_time=create_time,
            state=state,
        )
        corp_id = self.emulator.corp_id

        async def send() -> CallbackResponse:
            async with aiohttp.ClientSession() as session:
                return await send_callback(
                    session, target.url, xml, token=target.token, aes_key=target.aes_key, corp_id=corp_id
                )

        status: int | None = None
        error = ""
        try:
            answer = await (send() if direct or self._deliver is None else self._deliver(send))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"the bot at {target.url} could not be reached: {type(exc).__name__}: {exc}"
        else:
            if isinstance(answer, CallbackResponse):
                status = answer.status
                if status != 200:
                    error = f"the bot answered HTTP {status}"
        change = ContactChange(change_type, userid, external_userid, create_time, at, status, error)
        self.changes.append(change)
        return change

    # ---- the API

    async def _get(self, request: web.Request) -> web.Response:
        emu = self.emulator

        async def body(req: web.Request) -> dict[str, Any]:
            emu._agent_for(req)
            external_userid = req.query.get("external_userid", "")
            if not external_userid:
                raise _err(41035)
            contact = self.contacts.get(external_userid)
            if contact is None:
                raise _err(40096)
            follows = list(self.follows.get(external_userid, {}).values())
            if not follows:
                raise _err(84061)
            cursor = req.query.get("cursor", "")
            start = 0
            if cursor:
                if not cursor.startswith("c") or not cursor[1:].isdigit() or int(cursor[1:]) >= len(follows):
                    raise _err(40058, "invalid cursor")
                start = int(cursor[1:])
            end = start + max(1, self.follow_page)
            return {
                "external_contact": dict(contact),
                "follow_user": [dict(f) for f in follows[start:end]],
                "next_cursor": f"c{end}" if end < len(follows) else "",
            }

        return await emu._answer(request, body)

    async def _list(self, request: web.Request) -> web.Response:
        emu = self.emulator

        async def body(req: web.Request) -> dict[str, Any]:
            emu._agent_for(req)
            userid = req.query.get("userid", "")
            if not userid:
                raise _err(41009)
            if userid not in emu.users:
                raise _err(60111)
            ids = [ext for ext, follows in self.follows.items() if userid in follows]
            if not ids:
                raise _err(84061)
            return {"external_userid": ids}

        return await emu._answer(request, body)

    async def _follow_user_list(self, request: web.Request) -> web.Response:
        emu = self.emulator

        async def body(req: web.Request) -> dict[str, Any]:
            emu._agent_for(req)
            return {"follow_user": sorted(u for u in self.follow_members if u in emu.users)}

        return await emu._answer(request, body)

    # ---- the control surface

    async def _show(self, _request: web.Request) -> web.Response:
        data = {
            "customers": [self.customer(ext) for ext in self.contacts],
            "changes": [{**asdict(c), "at": c.at.isoformat()} for c in self.changes],
        }
        return web.json_response(data, dumps=lambda v: json.dumps(v, ensure_ascii=False))

    async def _act(self, request: web.Request) -> web.Response:
        try:
            data = json.loads(await request.text())
        except (ValueError, UnicodeDecodeError, LookupError, RecursionError, web.HTTPException):
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        if not isinstance(data, dict):
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        try:
            change = await self._action(data)
        except ContactError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        body = {"ok": True, "change": {**asdict(change), "at": change.at.isoformat()}}
        return web.json_response(body, dumps=lambda v: json.dumps(v, ensure_ascii=False))

    async def _action(self, data: Mapping[str, Any]) -> ContactChange:
        action = data.get("action")
        userid = data.get("userid")
        if not isinstance(userid, str) or not userid:
            raise ContactError(400, "userid is required (a member of the directory)")
        external_userid = data.get("external_userid")
        if external_userid is not None and (not isinstance(external_userid, str) or not external_userid):
            raise ContactError(400, "external_userid must be a non-empty string")
        half = data.get("half", False)
        if not isinstance(half, bool):
            raise ContactError(400, "half must be true or false")
        if action == "add":
            contact = data.get("contact") or {}
            if not isinstance(contact, Mapping):
                raise ContactError(400, "contact must be an object")
            if external_userid:
                contact = {**contact, "external_userid": external_userid}
            return await self.add(userid, contact, follow=data.get("follow"), half=half)
        if not external_userid:
            raise ContactError(400, f"{action!r} needs external_userid")
        if action == "edit":
            return await self.edit(
                userid, external_userid, contact=data.get("contact"), follow=data.get("follow")
            )
        if action == "delete":
            return await self.delete(userid, external_userid)
        if action == "deleted_by_customer":
            return await self.deleted_by_customer(userid, external_userid)
        raise ContactError(400, f"unknown action {action!r} (add, edit, delete, deleted_by_customer)")
