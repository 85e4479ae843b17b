"""抄送 after creation (core.copies): AddCc on its own, and the `cc` of a step; who may, and that a
refusal changes nothing."""

from __future__ import annotations

import pytest

from core import commands as c
from core.decide import decide
from core.errors import Reason
from core.events import CcNotified
from core.ticket import InterveneType
from tests.core.builders import APPROVE, OPS, TL, ctx, stored, workflow
from tests.core.test_decide import create, ok, refused, run


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        ("alice", True),
        ("bob", True),
        ("inter", True),
        ("admin", True),
        ("stranger", False),
        ("viewer", False),
    ],
)
def test_the_creator_a_handler_or_an_intervener_copies_people(who: str, allowed: bool) -> None:
    wf = workflow()
    t = create(wf)  # waits for bob (alice's leader)
    out = decide(t, wf, c.AddCc(who, ("erin", "frank"), "请知悉", extra={"is_show": 0}), ctx())
    if not allowed:
        refused(out, Reason.NO_PERMISSION)
        return
    d = ok(out)
    new = stored(d)
    assert {"erin", "frank"} <= new.cc and {"erin", "frank"} <= new.relation
    (log,) = d.logs
    assert (log.intervene_type, log.actor, log.suggestion, log.state_id) == (
        InterveneType.CC,
        who,
        "请知悉",
        TL,
    )
    assert log.extra == {"is_show": 0, "cc": ["erin", "frank"]}
    assert d.events == (CcNotified(("erin", "frank"), TL),)


def test_a_copied_person_cannot_copy_more_but_may_be_copied_once_only() -> None:
    wf = workflow()
    t = run(create(wf), wf, c.AddCc("alice", ("erin",)))
    refused(decide(t, wf, c.AddCc("erin", ("frank",)), ctx()), Reason.NO_PERMISSION)
    refused(decide(t, wf, c.AddCc("alice", ("erin", "alice")), ctx()), Reason.INVALID)
    refused(decide(t, wf, c.AddCc("alice", ()), ctx()), Reason.INVALID)


def test_unknown_or_inactive_people_refuse_the_whole_command() -> None:
    wf = workflow()
    t = create(wf)
    refused(decide(t, wf, c.AddCc("alice", ("erin", "nobody")), ctx()), Reason.UNKNOWN_USER)
    refused(decide(t, wf, c.AddCc("alice", ("gone",)), ctx()), Reason.UNKNOWN_USER)
    refused(decide(t, wf, c.Handle("bob", APPROVE, cc=("nobody",)), ctx()), Reason.UNKNOWN_USER)


def test_a_step_copies_people_into_its_own_log_and_the_new_state() -> None:
    wf = workflow()
    d = ok(decide(create(wf), wf, c.Handle("bob", APPROVE, suggestion="ok", cc=("ceo", "bob", "ceo")), ctx()))
    t = stored(d)
    assert t.state_id == OPS and "ceo" in t.cc and "bob" not in t.cc
    assert d.logs[0].extra == {"cc": ["ceo"]}
    assert d.events[-1] == CcNotified(("ceo",), OPS)


def test_deliver_close_and_reopen_copy_people_and_keep_their_extra() -> None:
    wf = workflow()
    d = ok(decide(create(wf), wf, c.Deliver("bob", "carol", extra={"pic": ["u"]}, cc=("erin",)), ctx()))
    assert d.logs[0].extra == {"pic": ["u"], "cc": ["erin"]}
    closed = run(stored(d), wf, c.Close("admin", cc=("frank",)))
    assert "frank" in closed.cc
    reopened = ok(decide(closed, wf, c.Reopen("alice", cc=("gina",)), ctx()))
    assert "gina" in stored(reopened).cc


def test_create_keeps_the_extra_of_its_step() -> None:
    wf = workflow()
    d = ok(decide(None, wf, c.Create("alice", wf.id, 10, {"days": 1}, extra={"pic": ["p"]}), ctx()))
    assert d.logs[0].extra == {"pic": ["p"]}
