"""One chat message from a known person -> one reply. Platform-neutral: core + bot.handlers only.

`Conversation.reply_to(username, text)` parses the message (bot.handlers.commands), runs it on the
engine (TicketService / TicketQueries) as that person, and answers in the person's language
(Chinese if the message has any CJK character). It never raises: an unexpected error is logged
and answered with a short apology.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from bot.handlers import commands as cmds
from bot.handlers.help import Lang, help_text, reply_language, unknown_reply
from core import commands as core
from core.access import ActionKind, allowed_actions, can_view
from core.errors import Reason, Rejected
from core.org import Org
from core.ports import Directory, TicketQueries, WorkflowCatalog
from core.service import AlreadyHandled, Done, Result, TicketService
from core.ticket import Ticket
from core.workflow import CHOICE_TYPES, Attribute, FieldAccess, Transition, Workflow

log = logging.getLogger("ticketbot.chat")

LIST_SIZE = 10


def _t(lang: Lang, zh: str, en: str) -> str:
    return zh if lang == "zh" else en


class Conversation:
    def __init__(
        self,
        service: TicketService,
        queries: TicketQueries,
        catalog: WorkflowCatalog,
        directory: Directory,
        public_url: str,
    ) -> None:
        self._service = service
        self._queries = queries
        self._catalog = catalog
        self._directory = directory
        self._public_url = public_url.rstrip("/")

    async def reply_to(self, username: str, text: str) -> str:
        """The reply to one chat message from `username` (a directory username). Never raises."""
        lang = reply_language(text)
        try:
            return await self._reply(username, cmds.parse(text), lang)
        except Exception:
            log.exception("chat message failed", extra={"username": username})
            return _t(
                lang,
                "抱歉，处理这条消息时出错了，请稍后再试。",
                "Sorry, something went wrong; please try again later.",
            )

    # ---------------------------------------------------------------- dispatch

    async def _reply(self, user: str, intent: cmds.Intent, lang: Lang) -> str:
        if isinstance(intent, cmds.Help):
            return help_text(lang, self._startable())
        if isinstance(intent, cmds.ListWorkflows):
            return self._workflows(lang)
        if isinstance(intent, cmds.Create):
            return await self._create(user, intent, lang)
        if isinstance(intent, cmds.ListPending):
            return await self._list(user, "duty", intent.page, lang)
        if isinstance(intent, cmds.ListMine):
            return await self._list(user, "owner", intent.page, lang)
        if isinstance(intent, cmds.Cancel):
            return _t(lang, "好的，已取消。", "OK, cancelled.")
        if isinstance(intent, cmds.Unknown):
            return unknown_reply(intent, lang)
        # the rest act on one ticket
        org = await self._directory.org()
        found = await self._find(user, intent.ref, org)
        if found is None:
            return _t(
                lang,
                f"找不到工单 {intent.ref}，或你无权查看。",
                f"Ticket {intent.ref} was not found or you may not see it.",
            )
        ticket, wf = found
        if isinstance(intent, cmds.Show):
            return self._show(ticket, wf, org, user, lang)
        if isinstance(intent, cmds.Decide):
            return await self._decide(ticket, wf, org, user, intent, lang)
        if isinstance(intent, cmds.Comment):
            result = await self._service.execute(ticket.id, core.Comment(user, intent.text))
            return self._outcome(result, lang, _t(lang, "评论已添加。", "Comment added."), org)
        if isinstance(intent, cmds.Withdraw):
            result = await self._service.execute(ticket.id, core.Retreat(user, intent.reason))
            return self._outcome(result, lang, _t(lang, "工单已撤回。", "The ticket was withdrawn."), org)
        if isinstance(intent, cmds.Urge):
            return self._urge(ticket, wf, org, lang)
        return unknown_reply(cmds.Unknown(""), lang)  # pragma: no cover - every intent is handled above

    # ---------------------------------------------------------------- workflows

    def _startable(self) -> list[tuple[int, str]]:
        return [(wf.id, wf.name) for wf in sorted(self._catalog.all(), key=lambda w: w.id)]

    def _workflows(self, lang: Lang) -> str:
        flows = self._startable()
        if not flows:
            return _t(lang, "暂时没有可发起的流程。", "There are no workflows you can start.")
        lines = [_t(lang, "可发起的流程：", "Workflows you can start:")]
        lines += [f"  {wid}. {name}" for wid, name in flows]
        lines.append(
            _t(
                lang,
                "发起示例：发起 <编号或名称> 字段=值 ...",
                "Start one: create <id or name> key=value ...",
            )
        )
        return "\n".join(lines)

    def _resolve(self, query: str) -> Workflow | list[Workflow]:
        """The workflow `query` names (id, exact name, unique substring), else the candidates."""
        flows = sorted(self._catalog.all(), key=lambda w: w.id)
        q = query.strip()
        if not q:
            return flows
        if q.isdigit():
            wf = self._catalog.get(int(q))
            return wf if wf is not None else []
        exact = [wf for wf in flows if wf.name.casefold() == q.casefold()]
        if len(exact) == 1:
            return exact[0]
        partial = [wf for wf in flows if q.casefold() in wf.name.casefold()]
        return partial[0] if len(partial) == 1 else partial

    @staticmethod
    def _start_transition(wf: Workflow) -> Transition | None:
        start = wf.start_state()
        for t in wf.transitions_from(start.id):
            if t.destination_state_id != start.id:
                return t
        return None

    async def _create(self, user: str, intent: cmds.Create, lang: Lang) -> str:
        found = self._resolve(intent.workflow_query)
        if isinstance(found, list):
            if not found:
                head = _t(
                    lang,
                    f"没有找到流程“{intent.workflow_query}”。",
                    f"No workflow matches '{intent.workflow_query}'.",
                )
                return head + "\n" + self._workflows(lang)
            lines = [
                _t(lang, "请指明要发起哪个流程：", "Which workflow? Candidates:")
                if intent.workflow_query
                else _t(lang, "请写上流程编号或名称：", "Name the workflow (id or name):")
            ]
            lines += [f"  {wf.id}. {wf.name}" for wf in found]
            return "\n".join(lines)
        wf = found
        t = self._start_transition(wf)
        if t is None:
            return _t(
                lang, f"流程“{wf.name}”无法从聊天发起。", f"Workflow '{wf.name}' cannot be started from chat."
            )
        result = await self._service.create(
            core.Create(actor=user, workflow_id=wf.id, transition_id=t.id, fields=dict(intent.fields))
        )
        if isinstance(result, Rejected) and result.reason in (Reason.MISSING_FIELD, Reason.BAD_FIELD):
            return result.message + "\n" + self._form(wf, lang)
        org = await self._directory.org()
        if isinstance(result, Done):
            ticket = result.ticket
            lines = [
                _t(
                    lang,
                    f"已发起工单 {ticket.sn}：{ticket.title}",
                    f"Ticket {ticket.sn} created: {ticket.title}",
                ),
                *self._status_lines(ticket, wf, org, lang),
                f"{self._public_url}/tickets/{ticket.id}",
            ]
            return "\n".join(lines)
        return self._outcome(result, lang, "", org)

    def _form(self, wf: Workflow, lang: Lang) -> str:
        """The start state's fields (required first) and a one-line example command."""
        start = wf.start_state()
        required = [k for k, a in start.fields.items() if a == FieldAccess.REQUIRED]
        optional = [k for k, a in start.fields.items() if a == FieldAccess.OPTIONAL]
        lines = [_t(lang, f"“{wf.name}”需要填写：", f"'{wf.name}' needs these fields:")]
        example: list[str] = []
        for key in required + optional:
            fdef = wf.field_def(key)
            name = fdef.name if fdef else key
            kind = fdef.type.name.lower() if fdef else "string"
            choices = ""
            if fdef is not None and fdef.type in CHOICE_TYPES and fdef.choices:
                choices = " " + "/".join(f"{v}({label})" for v, label in fdef.choices.items())
            mark = _t(lang, "必填", "required") if key in required else _t(lang, "选填", "optional")
            lines.append(f"  • {key} — {name} [{kind}, {mark}]{choices}")
            if key in required:
                example.append(f"{key}={_sample(fdef)}")
        command = _t(lang, "发起", "create")
        lines.append(_t(lang, "示例：", "Example: ") + f"{command} {wf.id} " + " ".join(example))
        return "\n".join(lines)

    # ---------------------------------------------------------------- lists

    async def _list(self, user: str, category: str, page: int, lang: Lang) -> str:
        tickets, total = await self._queries.list_tickets(
            username=user, category=category, page=page, per_page=LIST_SIZE
        )
        if not tickets:
            if category == "duty":
                return _t(lang, "没有待你处理的工单。", "Nothing is waiting for you.")
            return _t(lang, "你还没有发起过工单。", "You have not started any tickets.")
        head = (
            _t(lang, f"待你处理（共 {total} 个）：", f"Waiting for you ({total}):")
            if category == "duty"
            else _t(lang, f"你发起的工单（共 {total} 个）：", f"Tickets you started ({total}):")
        )
        lines = [head]
        for ticket in tickets:
            lines.append(f"  {ticket.sn} {ticket.title} {self._state_name(ticket)}")
        if page * LIST_SIZE < total:
            word = _t(
                lang, "待办" if category == "duty" else "我的工单", "todo" if category == "duty" else "mine"
            )
            lines.append(_t(lang, f"下一页：{word} {page + 1}", f"Next page: {word} {page + 1}"))
        return "\n".join(lines)

    # ---------------------------------------------------------------- one ticket

    async def _find(self, user: str, ref: cmds.Ref, org: Org) -> tuple[Ticket, Workflow] | None:
        ticket: Ticket | None
        if isinstance(ref, int):
            ticket = await self._queries.get_ticket(ref)
        else:
            rows, _ = await self._queries.list_tickets(username=user, sn_prefix=ref, per_page=10)
            ticket = next((t for t in rows if t.sn == ref), None)
        if ticket is None or ticket.is_deleted:
            return None
        wf = self._catalog.get(ticket.workflow_id, ticket.workflow_version) or self._catalog.get(
            ticket.workflow_id
        )
        if wf is None or not can_view(ticket, wf, org, user):
            return None
        return ticket, wf

    def _state_name(self, ticket: Ticket) -> str:
        wf = self._catalog.get(ticket.workflow_id, ticket.workflow_version) or self._catalog.get(
            ticket.workflow_id
        )
        state = wf.state(ticket.state_id) if wf is not None else None
        return state.name if state is not None else str(ticket.state_id)

    def _status_lines(self, ticket: Ticket, wf: Workflow, org: Org, lang: Lang) -> list[str]:
        state = wf.state(ticket.state_id)
        lines = [_t(lang, "当前状态：", "State: ") + (state.name if state else str(ticket.state_id))]
        if not ticket.is_ended:
            who = _people(ticket.handlers, org)
            lines.append(_t(lang, "处理人：", "Handlers: ") + (who or _t(lang, "（无）", "(none)")))
        return lines

    def _show(self, ticket: Ticket, wf: Workflow, org: Org, user: str, lang: Lang) -> str:
        lines = [f"{ticket.sn} {ticket.title}", f"{_t(lang, '流程：', 'Workflow: ')}{wf.name}"]
        for key, value in ticket.fields.items():
            if value is None or value == "":
                continue
            fdef = wf.field_def(key)
            lines.append(f"  {fdef.name if fdef else key}: {_display(value, fdef.choices if fdef else {})}")
        lines += self._status_lines(ticket, wf, org, lang)
        actions = allowed_actions(ticket, wf, org, user)
        verbs = _action_words(actions, ticket, lang)
        if verbs:
            lines.append(_t(lang, "你可以：", "You can: ") + _t(lang, "；", "; ").join(verbs))
        lines.append(f"{self._public_url}/tickets/{ticket.id}")
        return "\n".join(lines)

    async def _decide(
        self, ticket: Ticket, wf: Workflow, org: Org, user: str, intent: cmds.Decide, lang: Lang
    ) -> str:
        want = Attribute.AGREE if intent.verdict == "agree" else Attribute.REJECT
        choices = [
            a
            for a in allowed_actions(ticket, wf, org, user)
            if a.kind == ActionKind.TRANSITION and a.attribute == int(want)
        ]
        if not choices:
            late = await self._late_decision(ticket, wf, user, want, intent.suggestion)
            if late is not None:
                return self._outcome(late, lang, "", org)
            verb = _t(lang, "同意", "approve") if want == Attribute.AGREE else _t(lang, "拒绝", "reject")
            return _t(
                lang,
                f"你现在不能{verb}工单 {ticket.sn}。\n"
                + "\n".join(self._status_lines(ticket, wf, org, lang)),
                f"You cannot {verb} ticket {ticket.sn} now.\n"
                + "\n".join(self._status_lines(ticket, wf, org, lang)),
            )
        action = choices[0]
        result = await self._service.execute(
            ticket.id,
            core.Handle(
                user, action.transition_id, suggestion=intent.suggestion, expected_state_id=ticket.state_id
            ),
        )
        done = _t(lang, f"已{action.name}工单 {ticket.sn}。", f"Ticket {ticket.sn}: {action.name} done.")
        return self._outcome(result, lang, done, org)

    async def _late_decision(
        self, ticket: Ticket, wf: Workflow, user: str, want: Attribute, suggestion: str
    ) -> AlreadyHandled | None:
        """A decision on a ticket that has left a state `user` handled: the engine says who got there first."""
        start = wf.start_state().id
        for state_id, handler in ticket.last_handlers.items():
            if handler != user or state_id in (ticket.state_id, start):  # submitting is not deciding
                continue
            t = next((t for t in wf.transitions_from(state_id) if t.attribute == want), None)
            if t is None:
                continue
            result = await self._service.execute(
                ticket.id, core.Handle(user, t.id, suggestion=suggestion, expected_state_id=state_id)
            )
            if isinstance(result, AlreadyHandled):
                return result
        return None

    def _urge(self, ticket: Ticket, wf: Workflow, org: Org, lang: Lang) -> str:
        if ticket.is_ended:
            return _t(
                lang,
                f"工单 {ticket.sn} 已结束，无需催办。",
                f"Ticket {ticket.sn} has ended; nothing to urge.",
            )
        who = _people(ticket.handlers, org) or _t(lang, "（无）", "(none)")
        return _t(
            lang,
            f"工单 {ticket.sn} 当前由 {who} 处理。聊天催办提醒暂未开通，请直接联系处理人。",
            f"Ticket {ticket.sn} is with {who}. Chat reminders are not available yet; "
            "please contact them directly.",
        )

    def _outcome(self, result: Result, lang: Lang, done: str, org: Org) -> str:
        if isinstance(result, Done):
            ticket = result.ticket
            wf = self._catalog.get(ticket.workflow_id, ticket.workflow_version) or self._catalog.get(
                ticket.workflow_id
            )
            lines = [done] if done else []
            if wf is not None:
                lines += self._status_lines(ticket, wf, org, lang)
            return "\n".join(lines)
        if isinstance(result, AlreadyHandled):
            return _t(lang, "已经有人处理过了：", "Already handled: ") + result.message
        return _t(lang, "未执行：", "Not done: ") + result.message


# ---------------------------------------------------------------- helpers


def _people(usernames: Sequence[str], org: Org) -> str:
    out = []
    for name in usernames:
        u = org.user(name)
        out.append(f"{u.alias}({name})" if u is not None and u.alias else name)
    return ", ".join(out)


def _display(value: Any, choices: Mapping[str, str]) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_display(v, choices) for v in value)
    text = str(value)
    return choices.get(text, text)


def _sample(fdef: Any) -> str:
    """An example value for a field definition (None: a string)."""
    if fdef is None:
        return "..."
    if fdef.choices:
        return str(next(iter(fdef.choices)))
    from core.workflow import FieldType

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


def _action_words(actions: Sequence[Any], ticket: Ticket, lang: Lang) -> list[str]:
    """The chat commands behind the actions one may take (others are named only)."""
    out: list[str] = []
    for a in actions:
        if a.kind == ActionKind.TRANSITION and a.attribute == int(Attribute.AGREE):
            out.append(
                f"{a.name}（{_t(lang, '同意', 'approve')} {ticket.id}）"
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
