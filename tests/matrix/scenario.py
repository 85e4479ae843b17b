"""The tickets the permission matrix acts on, built through the real engine service (never by
writing rows), on the matrix's own config (tests/matrix/config: workflow 7 权限矩阵).

`matrix_runtime(database_url, env)` prepares a database (migrations, the matrix directory and
workflow) and returns the product's Runtime on it; `Scenario(runtime.service)` then builds:

- `at_b()`: the creator submitted it (copying cc_person, 抄送), handler_old approved 初审, and it
  waits in 复核 (state B) for handler_now. Most actions are tried on such a ticket;
- `ended()`: the same, then handler_now approved 复核: it has finished (reopen, evaluate);
- `waiting_for_accept()`: the creator submitted it, handler_old sent it to 受理, where handler_now
  and helper must accept it (接单) first;
- `at_a()`: the creator submitted it and it waits in 初审 for handler_old (the ticket a click's
  payload is edited to point at); `handled()` then takes a step on it as someone.

Every ticket passes 初审, so the same seven roles see each of them (view_permission_check is on):
creator, handler_now, handler_old, cc_person, wf_admin, intervener, super_admin.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.app import Runtime, build_runtime
from config.settings import load_settings
from core.commands import Command, Create, Handle
from core.service import Done, TicketService
from core.ticket import Ticket

CONFIG = Path(__file__).resolve().parent / "config"
APP, APP_TOKEN = "matrix", "matrix-test-token"  # TEST ONLY: the placeholder token of apps.yaml

WORKFLOW = 7
START, STATE_A, STATE_B, STATE_ACCEPT, END = 701, 702, 703, 704, 705
SUBMIT = 751  # 701 -> 702
A_APPROVE, A_REJECT, A_TO_ACCEPT = 752, 753, 759  # 702 -> 703 / 701 / 704
B_APPROVE, B_REJECT = 754, 755  # 703 -> 705 / 701
ACCEPT_DONE, ACCEPT_REJECT = 757, 758  # 704 -> 705 / 701

CREATOR, HANDLER_NOW, HANDLER_OLD, CC_PERSON = "creator", "handler_now", "handler_old", "cc_person"
LEADER, WF_ADMIN, INTERVENER, SUPER_ADMIN, STRANGER = (
    "leader",
    "wf_admin",
    "intervener",
    "super_admin",
    "stranger",
)
HELPER = "helper"  # no role: the second acceptor, and whom the requests hand over to, consult or copy
WECOM_USERIDS = {
    "creator": "Creator",
    "handler_now": "HandlerNow",
    "handler_old": "HandlerOld",
    "cc_person": "CcPerson",
    "leader": "Leader",
    "wf_admin": "WfAdmin",
    "intervener": "Intervener",
    "super_admin": "SuperAdmin",
    "stranger": "Stranger",
    "helper": "Helper",
}
DINGTALK_STAFF_IDS = {name: f"mx{i:04d}" for i, name in enumerate(WECOM_USERIDS, start=1)}


async def matrix_runtime(database_url: str, env: Mapping[str, str] | None = None) -> Runtime:
    """The product's runtime on `database_url` with the matrix config: the database is migrated
    and holds the matrix directory and workflow."""
    settings = load_settings(env=dict(env or {}), database_url=database_url, config_dir=CONFIG)
    return await build_runtime(settings)


@dataclass
class Scenario:
    service: TicketService
    _n: itertools.count[int]

    def __init__(self, service: TicketService) -> None:
        self.service = service
        self._n = itertools.count(1)

    async def _done(self, ticket_id: int, cmd: Command) -> Ticket:
        result = await self.service.execute(ticket_id, cmd)
        assert isinstance(result, Done), result
        return result.ticket

    async def submitted(self) -> Ticket:
        """Created by the creator with cc_person copied; waits in 初审 for handler_old."""
        result = await self.service.create(
            Create(
                actor=CREATOR,
                workflow_id=WORKFLOW,
                transition_id=SUBMIT,
                fields={"summary": f"matrix ticket {next(self._n):04d}", "note": "initial"},
                cc=(CC_PERSON,),
            )
        )
        assert isinstance(result, Done), result
        ticket = result.ticket
        assert (ticket.state_id, ticket.participants, ticket.cc) == (
            STATE_A,
            (HANDLER_OLD,),
            frozenset({CC_PERSON}),
        ), ticket
        return ticket

    async def at_a(self) -> Ticket:
        return await self.submitted()

    async def at_b(self) -> Ticket:
        ticket = await self.submitted()
        ticket = await self._done(ticket.id, Handle(HANDLER_OLD, A_APPROVE, suggestion="初审通过"))
        assert (ticket.state_id, ticket.participants) == (STATE_B, (HANDLER_NOW,)), ticket
        return ticket

    async def ended(self) -> Ticket:
        ticket = await self.at_b()
        ticket = await self._done(ticket.id, Handle(HANDLER_NOW, B_APPROVE, suggestion="复核通过"))
        assert ticket.state_id == END and ticket.is_ended, ticket
        return ticket

    async def waiting_for_accept(self) -> Ticket:
        ticket = await self.submitted()
        ticket = await self._done(ticket.id, Handle(HANDLER_OLD, A_TO_ACCEPT, suggestion="请受理"))
        assert (ticket.state_id, set(ticket.participants), ticket.accepted_by) == (
            STATE_ACCEPT,
            {HANDLER_NOW, HELPER},
            "",
        ), ticket
        return ticket

    async def handled(self, ticket: Ticket, actor: str, transition_id: int) -> Ticket:
        """`actor` takes `transition_id` on the ticket (e.g. handler_old approves 初审)."""
        return await self._done(ticket.id, Handle(actor, transition_id, suggestion="ok"))

    async def build(self, kind: str) -> Ticket:
        """A fresh ticket of `kind`: "at_b", "ended", "accept" or "at_a"."""
        builders = {
            "at_b": self.at_b,
            "ended": self.ended,
            "accept": self.waiting_for_accept,
            "at_a": self.at_a,
        }
        return await builders[kind]()
