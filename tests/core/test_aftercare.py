"""Reopen and Evaluate (core.aftercare): who may, when, and where a reopened ticket goes."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import pytest

from core import commands as c
from core.aftercare import reopen_target
from core.decide import decide
from core.errors import Reason
from core.events import StateEntered, TicketEvaluated, TicketReopened
from core.ticket import ActState, InterveneType, Ticket
from core.workflow import Workflow
from tests.core.builders import APPROVE, DONE, END, OPS, TL, ctx, stored, workflow
from tests.core.test_decide import create, ok, refused, run


def finished(wf: Workflow) -> Ticket:
    t = run(create(wf), wf, c.Handle("bob", APPROVE))
    t = run(t, wf, c.Accept("erin"))
    t = run(t, wf, c.Handle("erin", DONE, {"reason": "修好了"}))
    assert (t.act_state, t.state_id) == (ActState.FINISHED, END)
    return t


@pytest.mark.parametrize(
    ("who", "allowed"), [("alice", True), ("admin", True), ("bob", False), ("stranger", False)]
)
def test_the_creator_or_an_admin_reopens_an_ended_ticket(who: str, allowed: bool) -> None:
    wf = workflow()
    out = decide(finished(wf), wf, c.Reopen(who, "还没好", extra={"pic": ["http://x/1.png"]}), ctx())
    if not allowed:
        refused(out, Reason.NO_PERMISSION)
        return
    d = ok(out)
    t = stored(d)
    assert (t.act_state, t.state_id, t.handlers) == (ActState.ONGOING, TL, ("bob",))
    (log,) = d.logs
    assert (log.intervene_type, log.actor, log.suggestion, log.state_id) == (
        InterveneType.REOPEN,
        who,
        "还没好",
        END,
    )
    assert log.extra == {"pic": ["http://x/1.png"]}
    assert d.events[0] == TicketReopened(who, TL)
    assert any(isinstance(e, StateEntered) and e.state_id == TL for e in d.events)


def test_a_closed_ticket_reopens_too_and_an_open_one_does_not() -> None:
    wf = workflow()
    closed = run(create(wf), wf, c.Close("admin"))
    assert stored(ok(decide(closed, wf, c.Reopen("alice"), ctx()))).act_state == ActState.ONGOING
    refused(decide(create(wf), wf, c.Reopen("alice"), ctx()), Reason.BAD_STATE)


def test_the_reopen_state_label_chooses_where_it_goes() -> None:
    wf = replace(workflow(), label=MappingProxyType({"reopen_state": OPS}))
    assert reopen_target(wf) is not None and reopen_target(wf).id == OPS  # type: ignore[union-attr]
    assert stored(ok(decide(finished(wf), wf, c.Reopen("alice"), ctx()))).state_id == OPS
    bad = replace(workflow(), label=MappingProxyType({"reopen_state": END}))
    refused(decide(finished(bad), bad, c.Reopen("alice"), ctx()), Reason.BAD_STATE)


@pytest.mark.parametrize("point", [1, 5])
def test_the_creator_rates_an_ended_ticket(point: int) -> None:
    wf = workflow()
    t = finished(wf)
    d = ok(decide(t, wf, c.Evaluate("alice", point, "很快"), ctx()))
    (log,) = d.logs
    assert (log.intervene_type, log.suggestion, log.extra) == (
        InterveneType.EVALUATE,
        "很快",
        {"point": point},
    )
    assert d.events == (TicketEvaluated("alice", point),)
    assert stored(d).act_state == ActState.FINISHED  # still ended


@pytest.mark.parametrize("point", [0, 6, -1, True])
def test_a_rating_is_one_to_five(point: int) -> None:
    wf = workflow()
    refused(decide(finished(wf), wf, c.Evaluate("alice", point), ctx()), Reason.INVALID)


def test_only_the_creator_rates_and_only_once_ended() -> None:
    wf = workflow()
    refused(decide(finished(wf), wf, c.Evaluate("bob", 5), ctx()), Reason.NO_PERMISSION)
    refused(decide(create(wf), wf, c.Evaluate("alice", 5), ctx()), Reason.BAD_STATE)
