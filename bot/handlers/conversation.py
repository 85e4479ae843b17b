"""One chat message from a known person -> one reply. Platform-neutral: core + bot.handlers only.

`Conversation.reply_to(username, text, platform)` parses the message (bot.handlers.commands), runs
it on the engine (TicketService / TicketQueries) as that person, and answers in the person's
language (Chinese if the message has any CJK character). It never raises: an unexpected error is
logged and answered with a short apology.

With a `DraftStore`, a create that lacks required fields becomes a step-by-step dialogue
(bot.handlers.dialogue), one draft per (platform, person). While a draft is open:

- 取消 / cancel drops it; 帮助 / help shows the help and the pending question, keeping it;
- the reply to a question (or 跳过 / skip, or KEY=VALUE pairs) goes to the draft; so does text that
  only looks like a command when a free-text field is asked (``通过考试后休假``), and a quoted reply;
- any other recognised command runs as usual (the reply reminds of the open draft); a create that
  names a workflow replaces the draft.

With an `Urger`, 催办 / urge sends the urge and answers from its outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.clock import SystemClock
from bot.handlers import commands as cmds
from bot.handlers.dialogue import Dialogue, Draft, DraftStore, Ready
from bot.handlers.form import is_cc_key, people, people_problem
from bot.handlers.help import Lang, help_text, reply_language, unknown_reply
from bot.handlers.linking import Linking
from bot.handlers.replies import action_words, display, people_list, sample, tr, urged
from core import commands as core
from core.access import ActionKind, allowed_actions, can_view
from core.decision import Decision
from core.errors import Reason, Rejected
from core.org import Org
from core.ports import Clock, Directory, TicketQueries, Urger, WorkflowCatalog
from core.service import AlreadyHandled, Done, Result, TicketService
from core.ticket import Ticket
from core.workflow import CHOICE_TYPES, Attribute, FieldAccess, Transition, Workflow

log = logging.getLogger("ticketbot.chat")

LIST_SIZE = 10


class Conversation:
    def __init__(
        self,
        service: TicketService,
        queries: TicketQueries,
        catalog: WorkflowCatalog,
        directory: Directory,
        public_url: str,
        *,
        drafts: DraftStore | None = None,
        urger: Urger | None = None,
        clock: Clock | None = None,
        link_for: Callable[[int, str], str] | None = None,
        linking: Linking | None = None,
    ) -> None:
        """`link_for(ticket_id, username)`: the ticket page's link for that person (a signed one,
        bot.page.links); by default the plain `{public_url}/tickets/{id}`."""
        self._service = service
        self._queries = queries
        self._catalog = catalog
        self._directory = directory
        self._public_url = public_url.rstrip("/")
        self._clock = clock or SystemClock()
        self._dialogue = Dialogue(drafts, self._clock) if drafts is not None else None
        self._urger = urger
        self._link_for = link_for
        self._linking = linking  # 关联 <order_no>: chat records linked to a work order

    def link(self, ticket_id: int, username: str) -> str:
        """The ticket page's link for `username` (signed for them when links are signed)."""
        if self._link_for is not None:
            return self._link_for(ticket_id, username)
        return f"{self._public_url}/tickets/{ticket_id}"

    async def reply_to(
        self, username: str, text: str, platform: str = "chat", *, request_key: str = ""
    ) -> str:
        """The reply to one chat message from `username` (a directory username) on `platform`
        (drafts are kept per platform). Never raises.

        `request_key` names the message (platform and MsgId). A message that already created a
        ticket (it is processed again because its worker died before marking it done) creates
        nothing more: it is answered with that ticket, and the draft it completed is dropped."""
        lang = reply_language(text)
        try:
            if request_key and (made := await self._queries.ticket_for_request(request_key)) is not None:
                return await self._created_before(made, username, platform, lang)
            if (
                self._linking is not None
                and (linked := await self._linking.reply(username, text, platform, request_key)) is not None
            ):
                return linked
            intent = cmds.parse(text)
            if self._dialogue is not None:
                return await self._with_drafts(
                    self._dialogue, username, platform, text, intent, lang, request_key
                )
            return await self._reply(username, platform, intent, lang, request_key)
        except Exception:
            log.exception("chat message failed", extra={"username": username, "platform": platform})
            return tr(
                lang,
                "抱歉，处理这条消息时出错了，请稍后再试。",
                "Sorry, something went wrong; please try again later.",
            )

    async def _created_before(self, ticket: Ticket, user: str, platform: str, lang: Lang) -> str:
        log.info(
            "chat message already created a ticket; answering with it",
            extra={"username": user, "platform": platform, "ticket_id": ticket.id, "sn": ticket.sn},
        )
        if self._dialogue is not None:
            draft = await self._dialogue.current(platform, user)
            if draft is not None and draft.updated_at <= ticket.created_at:  # the draft it completed
                await self._dialogue.drop(platform, user)
        wf = self._catalog.get(ticket.workflow_id)
        if wf is None:
            return tr(
                lang, f"已发起工单 {ticket.sn}：{ticket.title}", f"Ticket {ticket.sn} created: {ticket.title}"
            )
        org = await self._directory.org()
        return self._created(Done(ticket, Decision(ticket)), wf, org, lang)

    # ---------------------------------------------------------------- drafts

    async def _with_drafts(
        self,
        dialogue: Dialogue,
        user: str,
        platform: str,
        text: str,
        intent: cmds.Intent,
        lang: Lang,
        key: str,
    ) -> str:
        draft = await dialogue.current(platform, user)
        opened = self._draft_workflow(draft) if draft is not None else None
        if draft is not None and opened is None:  # its workflow is gone or cannot start any more
            await dialogue.drop(platform, user)
            draft = None
        if draft is None or opened is None:
            if cmds.is_skip(text):
                return tr(
                    lang,
                    "现在没有正在填写的工单，无需跳过。",
                    "Nothing to skip: no ticket is being filled in.",
                )
            return await self._reply(user, platform, intent, lang, key)
        wf, t = opened
        if isinstance(intent, cmds.Cancel):
            await dialogue.drop(platform, user)
            return tr(lang, f"好的，已放弃填写“{wf.name}”。", f"OK, the '{wf.name}' draft was dropped.")
        if isinstance(intent, cmds.Help):
            return (
                help_text(lang, self._startable(), dialogue=self._dialogue is not None)
                + "\n\n"
                + dialogue.current_question(draft, wf, t, lang)
            )
        if self._is_answer(draft, wf, t, text, intent):
            org = await self._directory.org()
            step = await dialogue.answer(draft, wf, t, text, org)
            return await self._submit(user, platform, step, org, key) if isinstance(step, Ready) else step
        if isinstance(intent, cmds.Create) and isinstance(self._resolve(intent.workflow_query), Workflow):
            return await self._reply(user, platform, intent, lang, key)  # a new create replaces the draft
        reply = await self._reply(user, platform, intent, lang, key)
        return reply + "\n\n" + dialogue.reminder(draft, wf, t, lang)

    def _draft_workflow(self, draft: Draft) -> tuple[Workflow, Transition] | None:
        wf = self._catalog.get(draft.workflow_id)
        t = self._start_transition(wf) if wf is not None else None
        return (wf, t) if wf is not None and t is not None else None

    def _is_answer(self, draft: Draft, wf: Workflow, t: Transition, text: str, intent: cmds.Intent) -> bool:
        """Is this message the reply to the draft's question rather than a command?"""
        if cmds.is_skip(text):
            return True
        free_text = Dialogue.asks_free_text(draft, wf, t)
        if isinstance(intent, cmds.Unknown):
            if intent.reason == "too long":
                return False
            return intent.reason == "unknown command" or (free_text and intent.suggestion != "create")
        if isinstance(intent, cmds.Create) and free_text and not intent.fields:
            return self._resolve(intent.workflow_query) == []  # 申请年假回老家: not a workflow
        return False

    async def _submit(self, user: str, platform: str, ready: Ready, org: Org, key: str) -> str:
        """Create the ticket a dialogue (or a complete create line) has filled in; the draft ends."""
        result = await self._service.create(
            core.Create(
                actor=user,
                workflow_id=ready.wf.id,
                transition_id=ready.transition.id,
                fields=dict(ready.fields),
                cc=ready.cc,
                request_key=key,
            )
        )
        if self._dialogue is not None:
            await self._dialogue.drop(platform, user)
        return self._created(result, ready.wf, org, ready.lang)

    # ---------------------------------------------------------------- dispatch

    async def _reply(self, user: str, platform: str, intent: cmds.Intent, lang: Lang, key: str) -> str:
        if isinstance(intent, cmds.Help):
            return help_text(lang, self._startable(), dialogue=self._dialogue is not None)
        if isinstance(intent, cmds.ListWorkflows):
            return self._workflows(lang)
        if isinstance(intent, cmds.Create):
            return await self._create(user, platform, intent, lang, key)
        if isinstance(intent, cmds.ListPending):
            return await self._list(user, "duty", intent.page, lang)
        if isinstance(intent, cmds.ListMine):
            return await self._list(user, "owner", intent.page, lang)
        if isinstance(intent, cmds.Cancel):
            return tr(lang, "好的，已取消。", "OK, cancelled.")
        if isinstance(intent, cmds.Unknown):
            return unknown_reply(intent, lang)
        # the rest act on one ticket
        org = await self._directory.org()
        found = await self._find(user, intent.ref, org)
        if found is None:
            return tr(
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
            result = await self._service.execute(ticket.id, core.Comment(user, intent.text), request_key=key)
            return self._outcome(result, lang, tr(lang, "评论已添加。", "Comment added."), org)
        if isinstance(intent, cmds.Withdraw):
            result = await self._service.execute(ticket.id, core.Retreat(user, intent.reason))
            return self._outcome(result, lang, tr(lang, "工单已撤回。", "The ticket was withdrawn."), org)
        if isinstance(intent, cmds.Urge):
            return await self._urge(ticket, org, user, intent.note, lang)
        return unknown_reply(cmds.Unknown(""), lang)  # pragma: no cover - every intent is handled above

    # ---------------------------------------------------------------- workflows

    def _startable(self) -> list[tuple[int, str]]:
        return [(wf.id, wf.name) for wf in sorted(self._catalog.all(), key=lambda w: w.id)]

    def _workflows(self, lang: Lang) -> str:
        flows = self._startable()
        if not flows:
            return tr(lang, "暂时没有可发起的流程。", "There are no workflows you can start.")
        lines = [tr(lang, "可发起的流程：", "Workflows you can start:")]
        lines += [f"  {wid}. {name}" for wid, name in flows]
        lines.append(
            tr(
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

    async def _create(self, user: str, platform: str, intent: cmds.Create, lang: Lang, key: str) -> str:
        found = self._resolve(intent.workflow_query)
        if isinstance(found, list):
            if not found:
                head = tr(
                    lang,
                    f"没有找到流程“{intent.workflow_query}”。",
                    f"No workflow matches '{intent.workflow_query}'.",
                )
                return head + "\n" + self._workflows(lang)
            lines = [
                tr(lang, "请指明要发起哪个流程：", "Which workflow? Candidates:")
                if intent.workflow_query
                else tr(lang, "请写上流程编号或名称：", "Name the workflow (id or name):")
            ]
            lines += [f"  {wf.id}. {wf.name}" for wf in found]
            return "\n".join(lines)
        wf = found
        t = self._start_transition(wf)
        if t is None:
            return tr(
                lang, f"流程“{wf.name}”无法从聊天发起。", f"Workflow '{wf.name}' cannot be started from chat."
            )
        org = await self._directory.org()
        if self._dialogue is not None:
            step = await self._dialogue.start(platform, user, wf, t, intent.fields, org, lang)
            return await self._submit(user, platform, step, org, key) if isinstance(step, Ready) else step
        fields = {k: v for k, v in intent.fields.items() if not is_cc_key(wf, k)}
        named = ",".join(v for k, v in intent.fields.items() if is_cc_key(wf, k))
        got = people(named, org)
        problem = people_problem("cc", got, lang)
        if problem is not None:
            return tr(lang, f"抄送人有误：{problem.text}。", f"CC: {problem.text}.")
        result = await self._service.create(
            core.Create(
                actor=user,
                workflow_id=wf.id,
                transition_id=t.id,
                fields=fields,
                cc=got.usernames,
                request_key=key,
            )
        )
        return self._created(result, wf, org, lang)

    def _created(self, result: Result, wf: Workflow, org: Org, lang: Lang) -> str:
        """The reply to a create: the new ticket's SN, title, state, handlers and link, or the refusal."""
        if isinstance(result, Rejected) and result.reason in (Reason.MISSING_FIELD, Reason.BAD_FIELD):
            return result.message + "\n" + self._form(wf, lang)
        if isinstance(result, Done):
            ticket = result.ticket
            lines = [
                tr(
                    lang,
                    f"已发起工单 {ticket.sn}：{ticket.title}",
                    f"Ticket {ticket.sn} created: {ticket.title}",
                ),
                *self._status_lines(ticket, wf, org, lang),
            ]
            if ticket.cc:
                lines.append(tr(lang, "抄送：", "CC: ") + people_list(sorted(ticket.cc), org))
            lines.append(self.link(ticket.id, ticket.creator))
            return "\n".join(lines)
        return self._outcome(result, lang, "", org)

    def _form(self, wf: Workflow, lang: Lang) -> str:
        """The start state's fields (required first) and a one-line example command."""
        start = wf.start_state()
        required = [k for k, a in start.fields.items() if a == FieldAccess.REQUIRED]
        optional = [k for k, a in start.fields.items() if a == FieldAccess.OPTIONAL]
        lines = [tr(lang, f"“{wf.name}”需要填写：", f"'{wf.name}' needs these fields:")]
        example: list[str] = []
        for key in required + optional:
            fdef = wf.field_def(key)
            name = fdef.name if fdef else key
            kind = fdef.type.name.lower() if fdef else "string"
            choices = ""
            if fdef is not None and fdef.type in CHOICE_TYPES and fdef.choices:
                choices = " " + "/".join(f"{v}({label})" for v, label in fdef.choices.items())
            mark = tr(lang, "必填", "required") if key in required else tr(lang, "选填", "optional")
            lines.append(f"  • {key} — {name} [{kind}, {mark}]{choices}")
            if key in required:
                example.append(f"{key}={sample(fdef)}")
        command = tr(lang, "发起", "create")
        lines.append(tr(lang, "示例：", "Example: ") + f"{command} {wf.id} " + " ".join(example))
        return "\n".join(lines)

    # ---------------------------------------------------------------- lists

    async def _list(self, user: str, category: str, page: int, lang: Lang) -> str:
        tickets, total = await self._queries.list_tickets(
            username=user, category=category, page=page, per_page=LIST_SIZE
        )
        if not tickets:
            if category == "duty":
                return tr(lang, "没有待你处理的工单。", "Nothing is waiting for you.")
            return tr(lang, "你还没有发起过工单。", "You have not started any tickets.")
        head = (
            tr(lang, f"待你处理（共 {total} 个）：", f"Waiting for you ({total}):")
            if category == "duty"
            else tr(lang, f"你发起的工单（共 {total} 个）：", f"Tickets you started ({total}):")
        )
        lines = [head]
        for ticket in tickets:
            lines.append(f"  {ticket.sn} {ticket.title} {self._state_name(ticket)}")
        if page * LIST_SIZE < total:
            word = tr(
                lang, "待办" if category == "duty" else "我的工单", "todo" if category == "duty" else "mine"
            )
            lines.append(tr(lang, f"下一页：{word} {page + 1}", f"Next page: {word} {page + 1}"))
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
        lines = [tr(lang, "当前状态：", "State: ") + (state.name if state else str(ticket.state_id))]
        if not ticket.is_ended:
            who = people_list(ticket.handlers, org)
            lines.append(tr(lang, "处理人：", "Handlers: ") + (who or tr(lang, "（无）", "(none)")))
        return lines

    def _show(self, ticket: Ticket, wf: Workflow, org: Org, user: str, lang: Lang) -> str:
        lines = [f"{ticket.sn} {ticket.title}", f"{tr(lang, '流程：', 'Workflow: ')}{wf.name}"]
        for key, value in ticket.fields.items():
            if value is None or value == "":
                continue
            fdef = wf.field_def(key)
            lines.append(f"  {fdef.name if fdef else key}: {display(value, fdef.choices if fdef else {})}")
        lines += self._status_lines(ticket, wf, org, lang)
        actions = allowed_actions(ticket, wf, org, user)
        verbs = action_words(actions, ticket, lang)
        if verbs:
            lines.append(tr(lang, "你可以：", "You can: ") + tr(lang, "；", "; ").join(verbs))
        lines.append(self.link(ticket.id, user))
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
            verb = tr(lang, "同意", "approve") if want == Attribute.AGREE else tr(lang, "拒绝", "reject")
            return tr(
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
        done = tr(lang, f"已{action.name}工单 {ticket.sn}。", f"Ticket {ticket.sn}: {action.name} done.")
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

    async def _urge(self, ticket: Ticket, org: Org, user: str, note: str, lang: Lang) -> str:
        if self._urger is None:
            if ticket.is_ended:
                return tr(
                    lang,
                    f"工单 {ticket.sn} 已结束，无需催办。",
                    f"Ticket {ticket.sn} has ended; nothing to urge.",
                )
            who = people_list(ticket.handlers, org) or tr(lang, "（无）", "(none)")
            return tr(
                lang,
                f"工单 {ticket.sn} 当前由 {who} 处理。聊天催办提醒暂未开通，请直接联系处理人。",
                f"Ticket {ticket.sn} is with {who}. Chat reminders are not available yet; "
                "please contact them directly.",
            )
        outcome = await self._urger.urge(ticket.id, user, note)
        return urged(outcome, ticket, org, lang)

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
            return tr(lang, "已经有人处理过了：", "Already handled: ") + result.message
        return tr(lang, "未执行：", "Not done: ") + result.message
