"""Reply texts of the chat conversation: people, values, examples, urge outcomes (zh / en)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bot.handlers.help import Lang
from core.access import ActionKind
from core.org import Org
from core.ports import UrgeOutcome
from core.ticket import Ticket
from core.workflow import Attribute, FieldType


def tr(lang: Lang, zh: str, en: str) -> str:
    return zh if lang == "zh" else en


def urged(outcome: UrgeOutcome, ticket: Ticket, org: Org, lang: Lang) -> str:
    """The reply to an urge, from the Urger's outcome."""
    sn = ticket.sn
    if outcome.ok:
        if lang == "zh":
            return f"已催办 {people_list(outcome.reached, org, '、')}（工单 {sn}）。"
        return f"Urged {people_list(outcome.reached, org)} (ticket {sn})."
    minutes = max(1, math.ceil(outcome.retry_after / 60)) if outcome.retry_after > 0 else 1
    reason = outcome.reason
    if reason == "too_soon":
        return tr(
            lang,
            f"工单 {sn} 刚刚催办过，请 {minutes} 分钟后再催。",
            f"Ticket {sn} was urged a moment ago; you may urge it again in {minutes} min.",
        )
    if reason == "too_many":
        return tr(
            lang,
            f"你这一小时催办的次数已用完，请 {minutes} 分钟后再催。",
            f"You have urged too often this hour; you may urge again in {minutes} min.",
        )
    if reason == "ended":
        return tr(lang, f"工单 {sn} 已结束，无需催办。", f"Ticket {sn} has ended; nothing to urge.")
    if reason == "no_handlers":
        return tr(
            lang,
            f"工单 {sn} 当前没有处理人，无法催办。",
            f"Ticket {sn} has no handler right now; there is nobody to urge.",
        )
    if reason == "unreachable":
        who = people_list(ticket.handlers, org, tr(lang, "、", ", ")) or tr(lang, "处理人", "the handlers")
        return tr(
            lang,
            f"工单 {sn} 的处理人 {who} 暂时无法通过聊天联系到，请直接联系。",
            f"Ticket {sn}: {who} cannot be reached in chat right now; please contact them directly.",
        )
    if reason == "not_found":
        return tr(
            lang, f"找不到工单 {sn}，或你无权查看。", f"Ticket {sn} was not found or you may not see it."
        )
    detail = outcome.message or reason
    return tr(lang, f"未能催办：{detail}", f"Could not urge: {detail}")


def people_list(usernames: Sequence[str], org: Org, sep: str = ", ") -> str:
    out = []
    for name in usernames:
        u = org.user(name)
        out.append(f"{u.alias}({name})" if u is not None and u.alias else name)
    return sep.join(out)


def display(value: Any, choices: Mapping[str, str]) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(display(v, choices) for v in value)
    text = str(value)
    return choices.get(text, text)


def sample(fdef: Any) -> str:
    """An example value for a field definition (None: a string)."""
    if fdef is None:
        return "..."
    if fdef.choices:
        return str(next(iter(fdef.choices)))
    samples = {
        FieldType.INT: "1",
        FieldType.FLOAT: "1.5",
        FieldType.BOOL: "true",
        FieldType.DATE: "2024-05-01",
        FieldType.DATETIME: '"2024-05-01 09:00:00"',
        FieldType.USER: "username",
        FieldType.MULTI_USER: "user1,user2",
    }
    if fdef.placeholder and " " not in fdef.placeholder and fdef.type not in (FieldType.TEXTAREA,):
        return str(fdef.placeholder)
    return samples.get(fdef.type, "...")


def action_words(actions: Sequence[Any], ticket: Ticket, lang: Lang) -> list[str]:
    """The chat commands behind the actions one may take (others are named only)."""
    out: list[str] = []
    for a in actions:
        if a.kind == ActionKind.TRANSITION and a.attribute == int(Attribute.AGREE):
            out.append(
                f"{a.name}（{tr(lang, '同意', 'approve')} {ticket.id}）"
                if lang == "zh"
                else f"{a.name} (approve {ticket.id})"
            )
        elif a.kind == ActionKind.TRANSITION and a.attribute == int(Attribute.REJECT):
            out.append(f"{a.name}（拒绝 {ticket.id}）" if lang == "zh" else f"{a.name} (reject {ticket.id})")
        elif a.kind == ActionKind.RETREAT:
            out.append(
                f"{a.name}（撤回 {ticket.id}）" if lang == "zh" else f"withdraw (withdraw {ticket.id})"
            )
        elif a.kind == ActionKind.COMMENT:
            out.append(
                f"{a.name}（评论 {ticket.id} 内容）"
                if lang == "zh"
                else f"comment (comment {ticket.id} text)"
            )
        else:
            out.append(a.name)
    return out
