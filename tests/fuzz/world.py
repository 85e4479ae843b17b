"""The callback fuzz's seeded world: `seed` starts one leave request waiting for wangqiang, whose
cards go out on both platforms (`World`); the directory's usernames by platform id, and the chat
senders and card clickers the cases use."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from bot.cards.model import decode_action
from store.queries import SqlTicketQueries
from tests.bot import test_dingtalk_cards as dt
from tests.bot import test_wecom_chat as wc
from tests.fuzz.support import Platforms

# ---------------------------------------------------------------- the seeded world


def _org_usernames() -> dict[str, str]:
    """Platform id (WeCom userid casefolded, DingTalk staff id) -> username, from the shipped directory."""
    org = yaml.safe_load((wc.CONFIG / "org.yaml").read_text(encoding="utf-8"))
    out: dict[str, str] = {}
    for u in org["users"]:
        if u.get("wecom_userid"):
            out[str(u["wecom_userid"]).casefold()] = u["username"]
        if u.get("dingtalk_staff_id"):
            out[str(u["dingtalk_staff_id"])] = u["username"]
    return out


USERNAMES = _org_usernames()
# chat senders: people in the directory with no part in, and no view of, a seeded ticket (the
# ticket's department leader and the workflow admins left out too), and people unknown
WECOM_SENDERS = ("SunHao", "ZhouMin", "XuLi", "Stranger", "nobody", "")
DING_SENDERS = ("staff0009", "staff0010", "staff0012", "outsider01", "nobody", "")
# clickers: the handler of the seeded ticket too (its genuine clicks are left out, see `genuine`)
WECOM_CLICKERS = ("WangQiang", "wangqiang", "LiuYang", "SunHao", "Stranger", "nobody")
DING_CLICKERS = ("staff0004", "staff0005", "staff0009", "outsider01", "nobody")


@dataclass(frozen=True)
class World:
    """What the seed made: one leave request waiting for wangqiang, his cards on both platforms."""

    ticket_id: int
    state_id: int
    handler: str  # username
    wecom_task_id: str
    wecom_keys: tuple[str, ...]  # the button keys of wangqiang's WeCom card
    ding_track: str
    ding_actions: tuple[str, ...]  # the button actions of wangqiang's DingTalk card

    def genuine(self, clicker_username: str, key: str) -> bool:
        """Whether a click on `key` by that person may legitimately change the seeded ticket."""
        action = decode_action(key)
        return (
            clicker_username == self.handler
            and action is not None
            and (action.ticket_id, action.state_id) == (self.ticket_id, self.state_id)
        )


async def seed(p: Platforms) -> World:
    reply = await p.dingtalk.say("liuyang", dt.LEAVE)
    assert reply.startswith("已发起工单"), reply
    ticket_id = int(reply.rsplit("/tickets/", 1)[1].split("?")[0])
    await p.settle()
    ticket = await SqlTicketQueries(p.db).get_ticket(ticket_id)
    assert ticket is not None and ticket.handlers == ("wangqiang",)
    (wecom_card,) = [
        m for m in p.wecom.records.messages if m.msgtype == "template_card" and "WangQiang" in m.recipients
    ]
    tc = wecom_card.body["template_card"]
    (track,) = p.dingtalk.cards("wangqiang")
    params = p.dingtalk.params(track)
    return World(
        ticket_id=ticket_id,
        state_id=ticket.state_id,
        handler="wangqiang",
        wecom_task_id=tc["task_id"],
        wecom_keys=tuple(b["key"] for b in tc["button_list"]),
        ding_track=track,
        ding_actions=tuple(params[f"btn{n}_action"] for n in range(1, 7) if params.get(f"btn{n}_action")),
    )
