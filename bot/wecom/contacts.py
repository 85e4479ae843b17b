"""WeCom customer contact (客户联系) reads: who an external contact (客户) is, and whose customers a
staff member has. Built on `WeComClient` (its token cache, one refresh on 40014 / 42001, retries of
busy codes, typed errors); the secret must be one that may call 客户联系 (the 客户联系 secret, or
a self-built app listed under 客户联系 -> API -> 可调用应用).

    GET /cgi-bin/externalcontact/get?external_userid=&cursor=   -> external_contact, follow_user,
        next_cursor (follow_user comes in pages when a contact has very many followers; every page
        is read, at most MAX_FOLLOW_PAGES)
    GET /cgi-bin/externalcontact/list?userid=                   -> external_userid [...]
    GET /cgi-bin/externalcontact/get_follow_user_list           -> follow_user [...]: the members
        with the customer contact feature (配置了客户联系功能的成员), the only ones who may have customers

Errors, besides the client's own:

- 84061 `NotExternalContact`: no member of the app's range has a relation with the contact any
  more (for `list`: the member has no customers, which is answered as []);
- 40096 `InvalidExternalUserId` (a `NotExternalContact`): WeCom knows no such external_userid;
- 84074 and 48002 `NoCustomerPermission` (a `NoPermission`): the app may not use 客户联系;
- 60111 `UnknownMember`: `list` for a userid that is not a member.
An empty id is refused here (errcode LOCAL_REFUSAL) without asking WeCom.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.wecom.client import LOCAL_REFUSAL, NoPermission, WeComClient, WeComError
from core.workorder import Customer

GET_PATH = "/cgi-bin/externalcontact/get"
LIST_PATH = "/cgi-bin/externalcontact/list"
FOLLOW_USERS_PATH = "/cgi-bin/externalcontact/get_follow_user_list"
NO_RELATION = 84061
INVALID_EXTERNAL_USERID = 40096
NO_CONTACT_PERMISSION = 84074
API_FORBIDDEN = 48002
UNKNOWN_MEMBER = 60111
MAX_FOLLOW_PAGES = 50  # 50 pages of follow_user (WeCom pages them by a few hundred) is plenty
MAX_ID_CHARS = 128
PERMISSION_HINT = (
    "the app may not use customer contact (客户联系): in the WeCom admin console add it under "
    "客户联系 -> 客户 -> API -> 可调用应用, or use the 客户联系 Secret, and make sure the member has the "
    "客户联系 feature"
)


class NotExternalContact(WeComError):
    """84061: no member within the app's range has (any longer) a relation with this contact."""


class InvalidExternalUserId(NotExternalContact):
    """40096: WeCom knows no external contact with this external_userid."""


class NoCustomerPermission(NoPermission):
    """84074 / 48002 on a 客户联系 API: the app (or the member) may not use customer contact."""


class UnknownMember(WeComError):
    """60111: the userid is not a member of the corp."""


def _mapped(exc: WeComError, what: str) -> WeComError:
    """The contacts-specific error for `exc`, or `exc` itself."""
    if exc.errcode == NO_RELATION:
        return NotExternalContact(
            exc.errcode, exc.errmsg, f"{what}: no member of the app's range has this customer any more"
        )
    if exc.errcode == INVALID_EXTERNAL_USERID:
        return InvalidExternalUserId(exc.errcode, exc.errmsg, f"{what}: WeCom knows no such external_userid")
    if exc.errcode in (NO_CONTACT_PERMISSION, API_FORBIDDEN):
        return NoCustomerPermission(exc.errcode, exc.errmsg, PERMISSION_HINT)
    if exc.errcode == UNKNOWN_MEMBER:
        return UnknownMember(exc.errcode, exc.errmsg, f"{what}: not a member of the corp")
    return exc


def _checked_id(value: str, name: str) -> str:
    if not value or len(value) > MAX_ID_CHARS:
        raise WeComError(LOCAL_REFUSAL, f"{name} must be 1 to {MAX_ID_CHARS} characters", "nothing was asked")
    return value


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def customer_of(external_contact: Mapping[str, Any], follow_users: list[Mapping[str, Any]]) -> Customer:
    """WeCom's `external_contact` and `follow_user` -> Customer. A contact nobody follows is
    `deleted` (kept: work orders still name them)."""
    return Customer(
        external_userid=_str(external_contact.get("external_userid")),
        name=_str(external_contact.get("name")),
        avatar=_str(external_contact.get("avatar")),
        corp_name=_str(external_contact.get("corp_name")),
        type=_int(external_contact.get("type")),
        gender=_int(external_contact.get("gender")),
        unionid=_str(external_contact.get("unionid")),
        follow_users=tuple(dict(f) for f in follow_users),
        deleted=not follow_users,
    )


class ExternalContacts:
    """The 客户联系 reads of one app, through its client."""

    def __init__(self, client: WeComClient) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"ExternalContacts({self._client!r})"

    async def get(self, external_userid: str) -> Customer:
        """The contact as WeCom has it now, with every follow user (all pages)."""
        _checked_id(external_userid, "external_userid")
        contact: Mapping[str, Any] = {}
        follows: list[Mapping[str, Any]] = []
        cursor = ""
        for _ in range(MAX_FOLLOW_PAGES):
            params = {"external_userid": external_userid}
            if cursor:
                params["cursor"] = cursor
            try:
                body = await self._client.api_get(GET_PATH, params)
            except WeComError as exc:
                raise _mapped(exc, "externalcontact/get") from None
            page = body.get("external_contact")
            if isinstance(page, Mapping) and not contact:
                contact = page
            follows += [f for f in body.get("follow_user") or [] if isinstance(f, Mapping)]
            cursor = _str(body.get("next_cursor"))
            if not cursor:
                break
        if _str(contact.get("external_userid")) != external_userid:
            raise WeComError(
                LOCAL_REFUSAL, "externalcontact/get answered another contact or none", "retry later"
            )
        return customer_of(contact, follows)

    async def ids_of(self, userid: str) -> list[str]:
        """The external_userids of a staff member's customers ([] when they have none)."""
        _checked_id(userid, "userid")
        try:
            body = await self._client.api_get(LIST_PATH, {"userid": userid})
        except WeComError as exc:
            mapped = _mapped(exc, "externalcontact/list")
            if type(mapped) is NotExternalContact:  # WeCom's answer for a member without customers
                return []
            raise mapped from None
        ids = body.get("external_userid") or []
        return [i for i in ids if isinstance(i, str) and i] if isinstance(ids, list) else []

    async def follow_user_ids(self) -> list[str]:
        """The userids of the members with the customer contact feature, each once."""
        try:
            body = await self._client.api_get(FOLLOW_USERS_PATH)
        except WeComError as exc:
            raise _mapped(exc, "externalcontact/get_follow_user_list") from None
        ids = body.get("follow_user") or []
        if not isinstance(ids, list):
            return []
        return list(dict.fromkeys(i for i in ids if isinstance(i, str) and i))


__all__ = [
    "ExternalContacts",
    "InvalidExternalUserId",
    "NoCustomerPermission",
    "NotExternalContact",
    "UnknownMember",
    "customer_of",
]
