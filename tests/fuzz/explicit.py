"""The callback fuzz's explicit cases: run first, whatever is generated."""

from __future__ import annotations

from typing import Literal

from tests.bot import test_wecom_chat as wc
from tests.fuzz.dingtalk_card import CardInner, CardOuter
from tests.fuzz.dingtalk_events import EventOuter
from tests.fuzz.dingtalk_robot import RobotInner, RobotOuter
from tests.fuzz.strategies import Edit, Param, SignedHeaders
from tests.fuzz.wecom_cases import WeComInner, WeComOuter, XmlField
from tests.fuzz.world import World


def _stale(key: str, world: World) -> str:
    """`key` made for a state the ticket is not in."""
    pieces = key.split(":")
    pieces[3] = str(world.state_id + 1)
    return ":".join(pieces)


METHODS: tuple[Literal["GET", "POST"], ...] = ("GET", "POST")
GENUINE_CREATE = "发起 请假申请 start_date=2024-05-06 end_date=2024-05-07 days=2 reason=家里有事"


def wecom_explicit(world: World) -> tuple[list[WeComOuter], list[WeComInner]]:
    """Cases run first, whatever is generated: the valid GET and POST, and each with a wrong
    signature; a create by chat (a draft opens), the card's own handler clicking a stale button (the
    card is shown the ticket's state), a customer change."""
    good, wrong = Param("good"), Param("junk", "0" * 40)
    outer = [
        WeComOuter(method, signature, good, False, good, good, "good", b"", 0, "text/xml", "")
        for method in METHODS
        for signature in (good, wrong)
    ]

    def message(*fields: tuple[str, str]) -> WeComInner:
        head = (("ToUserName", wc.CORP), ("CreateTime", "{ID}"), ("AgentID", str(wc.AGENT)))
        good_fields = tuple(XmlField(n, v) for n, v in head + fields)
        return WeComInner(good_fields, (), "none", 0, "", "normal")

    inner = [
        message(
            ("FromUserName", "SunHao"), ("MsgType", "text"), ("Content", "发起 请假申请"), ("MsgId", "{ID}")
        ),
        message(
            ("FromUserName", "WangQiang"),
            ("MsgType", "event"),
            ("Event", "template_card_event"),
            ("EventKey", _stale(world.wecom_keys[0], world)),
            ("TaskId", world.wecom_task_id),
            ("ResponseCode", "rc-1"),
        ),
        message(
            ("FromUserName", "sys"),
            ("MsgType", "event"),
            ("Event", "change_external_contact"),
            ("ChangeType", "add_external_contact"),
            ("UserID", "SunHao"),
            ("ExternalUserID", "wmXXXX"),
        ),
    ]
    return outer, inner


def dingtalk_outer_explicit() -> tuple[list[EventOuter], list[RobotOuter], list[CardOuter]]:
    """Cases run first: each endpoint's valid request, and the same wrongly signed."""
    good, wrong = Param("good"), Param("junk", "0" * 40)
    events = [
        EventOuter(False, sig, good, good, "good", b"", 0, "application/json", "") for sig in (good, wrong)
    ]
    signs = (SignedHeaders("good", "good", ""), SignedHeaders("good", "other-secret", ""))
    robot = [RobotOuter(h, "good", b"", 0, "application/json") for h in signs]
    card = [CardOuter(h, "good", b"", 0, "application/json") for h in signs]
    return events, robot, card


def dingtalk_explicit(world: World) -> tuple[list[RobotInner], list[CardInner]]:
    """Cases run first: a reply to a session webhook that is not a URL; a create by chat that opens
    a draft, and one that creates a ticket; an outsider clicking the real card; its own handler
    clicking a stale button."""
    robot = [
        RobotInner("帮助", "outsider01", (Edit("sessionWebhook", "http://[::1"),)),
        RobotInner("发起 请假申请", "staff0009", ()),
        RobotInner(GENUINE_CREATE, "staff0013", ()),  # heping: a ticket for wujuan, no one generated
    ]
    action = world.ding_actions[0]
    card = [
        CardInner(world.ding_track, "outsider01", action, ["btn1"], "normal", None, ()),
        CardInner(world.ding_track, "staff0004", _stale(action, world), ["btn1"], "normal", None, ()),
    ]
    return robot, card
