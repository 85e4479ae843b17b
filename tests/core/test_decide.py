"""Table-driven tests of decide(): every state type x action, participants, distribution, policies."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from core import commands as c
from core.access import ActionKind, allowed_actions
from core.decide import decide
from core.decision import Decision, NeedsLookup
from core.errors import Reason, Rejected
from core.events import (
    CcNotified,
    HookFailed,
    HookRequested,
    StateEntered,
    TicketEnded,
    TimerArmed,
    VoteRecorded,
)
from core.ticket import SYSTEM_USER, ActState, InterveneType, Ticket
from core.workflow import Distribute, Participant, ParticipantType, RejectPolicy, Workflow
from tests.core.builders import (
    APPROVE,
    DONE,
    END,
    NOW,
    OPS,
    OPS_REJECT,
    ORG,
    REJECT,
    SAVE,
    START,
    SUBMIT,
    TL,
    ctx,
    hook_workflow,
    stored,
    workflow,
)


def ok(outcome: Any) -> Decision:
    assert isinstance(outcome, Decision), outcome
    return outcome


def refused(outcome: Any, reason: Reason) -> Rejected:
    assert isinstance(outcome, Rejected), outcome
    assert outcome.reason == reason, outcome
    assert outcome.message
    return outcome


def create(wf: Workflow, actor: str = "alice", **fields: Any) -> Ticket:
    fields.setdefault("days", 2)
    return stored(ok(decide(None, wf, c.Create(actor, wf.id, SUBMIT, fields), ctx())))


def run(t: Ticket, wf: Workflow, cmd: c.Command, **kw: Any) -> Ticket:
    return stored(ok(decide(t, wf, cmd, ctx(**kw))))


# --- create -------------------------------------------------------------------------------------


def test_create_enters_first_state_with_creator_leader() -> None:
    wf = workflow()
    d = ok(decide(None, wf, c.Create("alice", 1, SUBMIT, {"days": "3"}, suggestion="请批"), ctx()))
    t = d.ticket
    assert (t.state_id, t.act_state, t.participants, t.creator) == (TL, ActState.ONGOING, ("bob",), "alice")
    assert t.fields["days"] == 3  # coerced from "3"
    assert t.title == "请假 - 爱丽丝"
    assert [log.intervene_type for log in d.logs] == [InterveneType.TRANSITION]
    assert d.logs[0].state_id == START and d.logs[0].suggestion == "请批"
    assert [type(e).__name__ for e in d.events] == ["TicketCreated", "TicketTransitioned", "StateEntered"]
    assert t.relation == {"alice", "bob"}


@pytest.mark.parametrize(
    ("cmd", "reason"),
    [
        (c.Create("alice", 1, APPROVE, {"days": 1}), Reason.BAD_TRANSITION),
        (c.Create("alice", 1, 999, {"days": 1}), Reason.BAD_TRANSITION),
        (c.Create("alice", 1, SUBMIT, {}), Reason.MISSING_FIELD),
        (c.Create("alice", 1, SUBMIT, {"days": "many"}), Reason.BAD_FIELD),
        (c.Create("alice", 1, SUBMIT, {"days": 1, "nope": 1}), Reason.BAD_FIELD),
        (c.Create("alice", 1, SUBMIT, {"days": 1, "kind": "party"}), Reason.BAD_FIELD),
        (c.Create("nobody", 1, SUBMIT, {"days": 1}), Reason.UNKNOWN_USER),
        (c.Create("gone", 1, SUBMIT, {"days": 1}), Reason.UNKNOWN_USER),
        (c.Create("alice", 1, SUBMIT, {"days": 1}, parent_ticket_id=3), Reason.INVALID),
    ],
)
def test_create_refusals(cmd: c.Create, reason: Reason) -> None:
    refused(decide(None, workflow(), cmd, ctx()), reason)


def test_create_as_draft_skips_required_check() -> None:
    t = stored(ok(decide(None, workflow(), c.Create("alice", 1, SAVE, {}), ctx())))
    assert (t.state_id, t.act_state, t.participants) == (START, ActState.DRAFT, ("alice",))


# --- handle: agree / reject / conditions --------------------------------------------------------


def test_full_happy_path_to_end() -> None:
    wf = workflow()
    t = create(wf)
    t = run(t, wf, c.Handle("bob", APPROVE))
    assert (t.state_id, t.participants) == (OPS, ("erin", "frank", "gina"))
    t = run(t, wf, c.Accept("frank"))
    assert (t.participants, t.accepted_by) == (("frank",), "frank")
    d = ok(decide(t, wf, c.Handle("frank", DONE, {"reason": "ok"}), ctx()))
    assert (d.ticket.state_id, d.ticket.act_state, d.ticket.handlers) == (END, ActState.FINISHED, ())
    assert any(isinstance(e, TicketEnded) for e in d.events)


def test_reject_returns_to_start_as_rejected_and_creator_can_resubmit() -> None:
    wf = workflow()
    t = run(create(wf), wf, c.Handle("bob", REJECT, suggestion="no"))
    assert (t.state_id, t.act_state, t.participants) == (START, ActState.REJECTED, ("alice",))
    t = run(t, wf, c.Handle("alice", SUBMIT))
    assert (t.state_id, t.act_state) == (TL, ActState.ONGOING)


@pytest.mark.parametrize(("days", "expected"), [(1, OPS), (3, OPS), (4, END), (30, END)])
def test_condition_expression_picks_target(days: int, expected: int) -> None:
    wf = workflow(approve_conditions=(("{days} > 3", END),))
    t = run(create(wf, days=days), wf, c.Handle("bob", APPROVE))
    assert t.state_id == expected


@pytest.mark.parametrize(
    ("actor", "cmd", "reason"),
    [
        ("carol", c.Handle("carol", APPROVE), Reason.NOT_PARTICIPANT),
        ("alice", c.Handle("alice", APPROVE), Reason.NOT_PARTICIPANT),
        ("bob", c.Handle("bob", DONE), Reason.BAD_TRANSITION),
        ("bob", c.Handle("bob", 12345), Reason.BAD_TRANSITION),
        ("bob", c.Handle("bob", APPROVE, {"days": 9}), Reason.READ_ONLY_FIELD),
        ("bob", c.Handle("bob", APPROVE, expected_state_id=OPS), Reason.STALE),
        ("ghost", c.Handle("ghost", APPROVE), Reason.UNKNOWN_USER),
        ("admin", c.Handle("admin", APPROVE), Reason.NOT_PARTICIPANT),
    ],
)
def test_handle_refusals(actor: str, cmd: c.Handle, reason: Reason) -> None:
    wf = workflow()
    t = create(wf)
    refused(decide(t, wf, cmd, ctx()), reason)


def test_read_only_field_echoed_unchanged_is_accepted() -> None:
    wf = workflow()
    t = run(create(wf, days=2), wf, c.Handle("bob", APPROVE, {"days": "2"}))
    assert t.state_id == OPS


def test_required_field_in_state_is_enforced() -> None:
    wf = workflow()
    t = run(run(create(wf), wf, c.Handle("bob", APPROVE)), wf, c.Accept("erin"))
    refused(decide(t, wf, c.Handle("erin", DONE), ctx()), Reason.MISSING_FIELD)
    assert run(t, wf, c.Handle("erin", DONE, {"reason": "done"})).state_id == END


def test_refusal_leaves_ticket_untouched() -> None:
    wf = workflow()
    t = create(wf)
    before = replace(t)
    decide(t, wf, c.Handle("carol", APPROVE), ctx())
    assert t == before


# --- participants -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("participant", "expected"),
    [
        (Participant(ParticipantType.PERSON, "carol"), ("carol",)),
        (Participant(ParticipantType.PEOPLE, "carol, ceo,carol"), ("carol", "ceo")),
        (Participant(ParticipantType.DEPARTMENT, "3"), ("erin", "frank", "gina")),
        (Participant(ParticipantType.ROLE, "1"), ("erin", "frank", "gina")),
        (Participant(ParticipantType.VARIABLE, "creator"), ("alice",)),
        (Participant(ParticipantType.VARIABLE, "creator_tl"), ("bob",)),
        (Participant(ParticipantType.FIELD, "handler"), ("carol",)),
        (Participant(ParticipantType.PARENT_FIELD, "owner"), ("ceo",)),
        (Participant(ParticipantType.PEOPLE, "gone,carol"), ("carol",)),  # inactive users dropped
        (Participant(ParticipantType.PERSON, "gone"), ("wfadmin",)),  # nobody left: workflow admins
    ],
)
def test_participant_types_resolve(participant: Participant, expected: tuple[str, ...]) -> None:
    wf = workflow(tl=participant)
    d = decide(
        None,
        wf,
        c.Create("alice", 1, SUBMIT, {"days": 1, "handler": "carol"}),
        ctx(parent_fields={"owner": "ceo"}),
    )
    assert ok(d).ticket.participants == expected


def test_creator_tl_of_a_leader_is_the_parent_department_leader() -> None:
    wf = workflow()
    t = create(wf, actor="bob")
    assert t.participants == ("ceo",)


def test_external_lookup_asks_then_uses_answer() -> None:
    wf = workflow(tl=Participant(ParticipantType.EXTERNAL, "http://127.0.0.1:9/who"))
    cmd = c.Create("alice", 1, SUBMIT, {"days": 1})
    asked = decide(None, wf, cmd, ctx())
    assert asked == NeedsLookup(TL, "http://127.0.0.1:9/who")
    d = ok(decide(None, wf, cmd, ctx(external={TL: ("carol", "ghost")})))
    assert d.ticket.participants == ("carol",)


def test_no_participant_and_no_admin_falls_back_to_super_admins() -> None:
    wf = workflow(tl=Participant(ParticipantType.PERSON, "ghost"))
    wf = replace(wf, permissions=replace(wf.permissions, admins=frozenset()))
    assert create(wf).participants == ("admin",)


# --- distribution -------------------------------------------------------------------------------


def test_random_distribution_picks_one_person_by_seed() -> None:
    wf = workflow(tl=Participant(ParticipantType.ROLE, "1"), tl_distribute=Distribute.RANDOM)
    picks = {
        ok(decide(None, wf, c.Create("alice", 1, SUBMIT, {"days": 1}), ctx(seed=s))).ticket.participants
        for s in range(6)
    }
    assert picks == {("erin",), ("frank",), ("gina",)}


def test_accept_first_offers_only_accept_until_accepted() -> None:
    wf = workflow()
    t = run(create(wf), wf, c.Handle("bob", APPROVE))
    kinds = [a.kind for a in allowed_actions(t, wf, ORG, "erin")]
    assert kinds[0] == ActionKind.ACCEPT and ActionKind.TRANSITION not in kinds
    refused(decide(t, wf, c.Handle("erin", DONE, {"reason": "x"}), ctx()), Reason.MUST_ACCEPT)
    t = run(t, wf, c.Accept("erin"))
    refused(decide(t, wf, c.Accept("frank"), ctx()), Reason.STALE)
    assert [
        a.transition_id for a in allowed_actions(t, wf, ORG, "erin") if a.kind == ActionKind.TRANSITION
    ] == [
        DONE,
        OPS_REJECT,
    ]
    # frank was offered the ticket, so he may still see and comment on it, but nothing more
    assert [a.kind for a in allowed_actions(t, wf, ORG, "frank")] == [ActionKind.COMMENT]


def test_accept_first_with_a_single_person_needs_no_accept() -> None:
    wf = workflow(ops=Participant(ParticipantType.PERSON, "erin"))
    t = run(create(wf), wf, c.Handle("bob", APPROVE))
    refused(decide(t, wf, c.Accept("erin"), ctx()), Reason.INVALID)
    assert run(t, wf, c.Handle("erin", DONE, {"reason": "x"})).state_id == END


def all_wf(policy: RejectPolicy) -> Workflow:
    return workflow(
        tl=Participant(ParticipantType.PEOPLE, "bob,carol,ceo"),
        tl_distribute=Distribute.ALL,
        tl_policy=policy,
    )


def test_all_must_process_moves_when_everyone_agreed() -> None:
    wf = all_wf(RejectPolicy.FIRST_REJECT)
    t = create(wf)
    d = ok(decide(t, wf, c.Handle("bob", APPROVE), ctx()))
    assert isinstance(d.events[0], VoteRecorded) and d.ticket.handlers == ("carol", "ceo")
    t = stored(d)
    refused(decide(t, wf, c.Handle("bob", APPROVE), ctx()), Reason.ALREADY_VOTED)
    t = run(t, wf, c.Handle("carol", APPROVE))
    assert t.state_id == TL
    t = run(t, wf, c.Handle("ceo", APPROVE))
    assert t.state_id == OPS


def test_all_must_process_first_reject_decides_at_once() -> None:
    wf = all_wf(RejectPolicy.FIRST_REJECT)
    t = run(run(create(wf), wf, c.Handle("bob", APPROVE)), wf, c.Handle("carol", REJECT))
    assert (t.state_id, t.act_state) == (START, ActState.REJECTED)


def test_all_must_process_after_all_waits_then_reject_wins_disagreement() -> None:
    wf = all_wf(RejectPolicy.AFTER_ALL)
    t = run(run(create(wf), wf, c.Handle("bob", APPROVE)), wf, c.Handle("carol", REJECT))
    assert t.state_id == TL and t.handlers == ("ceo",)
    t = run(t, wf, c.Handle("ceo", APPROVE))
    assert (t.state_id, t.act_state) == (START, ActState.REJECTED)


# --- deliver / add node / accept ----------------------------------------------------------------


def test_deliver_by_handler_and_forced_by_admin() -> None:
    wf = workflow()
    t = create(wf)
    t2 = run(t, wf, c.Deliver("bob", "carol", "you do it"))
    assert t2.participants == ("carol",) and "carol" in t2.relation
    refused(decide(t2, wf, c.Handle("bob", APPROVE), ctx()), Reason.NOT_PARTICIPANT)
    refused(decide(t, wf, c.Deliver("carol", "ceo"), ctx()), Reason.NOT_PARTICIPANT)
    refused(decide(t, wf, c.Deliver("carol", "ceo", from_admin=True), ctx()), Reason.NO_PERMISSION)
    refused(decide(t, wf, c.Deliver("bob", "ghost"), ctx()), Reason.UNKNOWN_USER)
    for who in ("admin", "wfadmin", "inter"):
        assert run(t, wf, c.Deliver(who, "ceo", from_admin=True)).participants == ("ceo",)
        # without from_admin they are told they could force it; a plain stranger is not
        hinted = decide(t, wf, c.Deliver(who, "ceo"), ctx())
        assert isinstance(hinted, Rejected) and hinted.reason == Reason.NOT_PARTICIPANT
        assert hinted.message.endswith("you may force the hand-over (强制转交, from_admin)")
    plain = decide(t, wf, c.Deliver("carol", "ceo"), ctx())
    assert isinstance(plain, Rejected) and "force" not in plain.message


def test_deliver_in_all_state_replaces_only_the_actor() -> None:
    wf = all_wf(RejectPolicy.FIRST_REJECT)
    t = run(create(wf), wf, c.Deliver("carol", "gina"))
    assert t.participants == ("bob", "gina", "ceo")


def test_add_node_and_back() -> None:
    wf = workflow()
    t = run(create(wf), wf, c.AddNode("bob", "carol", "please check"))
    assert t.in_add_node and t.handlers == ("carol",)
    assert next(a.kind for a in allowed_actions(t, wf, ORG, "carol")) == ActionKind.ADD_NODE_END
    refused(decide(t, wf, c.Handle("bob", APPROVE), ctx()), Reason.IN_ADD_NODE)
    refused(decide(t, wf, c.AddNodeEnd("bob"), ctx()), Reason.NOT_PARTICIPANT)
    refused(decide(t, wf, c.AddNode("carol", "ceo"), ctx()), Reason.IN_ADD_NODE)
    t = run(t, wf, c.AddNodeEnd("carol", "looks fine"))
    assert not t.in_add_node and t.handlers == ("bob",)
    refused(decide(t, wf, c.AddNodeEnd("carol"), ctx()), Reason.INVALID)
    refused(decide(t, wf, c.AddNode("bob", "bob"), ctx()), Reason.INVALID)


# --- retreat / close / force / comment / update / delete ----------------------------------------


def test_retreat_by_creator_where_allowed() -> None:
    wf = workflow()
    t = create(wf)
    refused(decide(t, wf, c.Retreat("bob"), ctx()), Reason.NO_PERMISSION)
    t2 = run(t, wf, c.Retreat("alice", "oops"))
    assert (t2.state_id, t2.act_state, t2.participants) == (START, ActState.WITHDRAWN, ("alice",))
    refused(decide(t2, wf, c.Retreat("alice"), ctx()), Reason.BAD_STATE)  # at start: nothing to withdraw
    wf_no = workflow(tl_retreat=False)
    refused(decide(create(wf_no), wf_no, c.Retreat("alice"), ctx()), Reason.BAD_STATE)


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        ("admin", True),
        ("wfadmin", True),
        ("inter", True),
        ("alice", False),
        ("bob", False),
        ("stranger", False),
    ],
)
def test_close_mid_flow_needs_admin_or_intervene(who: str, allowed: bool) -> None:
    wf = workflow()
    out = decide(create(wf), wf, c.Close(who), ctx())
    if allowed:
        t = stored(ok(out))
        assert (t.act_state, t.state_id, t.handlers) == (ActState.CLOSED, END, ())
    else:
        refused(out, Reason.NO_PERMISSION)


def test_creator_may_close_at_start_state() -> None:
    wf = workflow()
    t = run(create(wf), wf, c.Handle("bob", REJECT))
    assert run(t, wf, c.Close("alice")).act_state == ActState.CLOSED


def test_ended_ticket_refuses_everything_but_comments() -> None:
    wf = workflow()
    t = run(create(wf), wf, c.Close("admin"))
    for cmd in (
        c.Handle("bob", APPROVE),
        c.Close("admin"),
        c.Deliver("admin", "bob", from_admin=True),
        c.ForceState("admin", TL),
        c.Retreat("alice"),
    ):
        refused(decide(t, wf, cmd, ctx()), Reason.TICKET_ENDED)
    assert (
        ok(decide(t, wf, c.Comment("alice", "thanks"), ctx())).logs[0].intervene_type == InterveneType.COMMENT
    )


def test_force_state() -> None:
    wf = workflow()
    t = create(wf)
    refused(decide(t, wf, c.ForceState("bob", OPS), ctx()), Reason.NO_PERMISSION)
    refused(decide(t, wf, c.ForceState("admin", 777), ctx()), Reason.BAD_STATE)
    t2 = run(t, wf, c.ForceState("inter", OPS))
    assert (t2.state_id, t2.participants) == (OPS, ("erin", "frank", "gina"))
    t3 = run(t, wf, c.ForceState("admin", END))
    assert t3.act_state == ActState.FINISHED


def test_comment_permissions() -> None:
    wf = workflow()
    t = create(wf)
    for who in ("alice", "bob", "viewer", "admin"):
        ok(decide(t, wf, c.Comment(who, "hi"), ctx()))
    refused(decide(t, wf, c.Comment("stranger", "hi"), ctx()), Reason.NO_PERMISSION)
    refused(decide(t, wf, c.Comment("alice", "  "), ctx()), Reason.INVALID)


def test_update_fields() -> None:
    wf = workflow()
    t = create(wf)
    assert run(t, wf, c.UpdateFields("bob", {"reason": "more"})).fields["reason"] == "more"
    refused(decide(t, wf, c.UpdateFields("bob", {"days": 9}), ctx()), Reason.READ_ONLY_FIELD)
    refused(decide(t, wf, c.UpdateFields("carol", {"reason": "x"}), ctx()), Reason.NO_PERMISSION)
    assert run(t, wf, c.UpdateFields("inter", {"days": 9})).fields["days"] == 9


def test_delete_admin_only_and_deleted_ticket_is_gone() -> None:
    wf = workflow()
    t = create(wf)
    refused(decide(t, wf, c.Delete("alice"), ctx()), Reason.NO_PERMISSION)
    t2 = run(t, wf, c.Delete("wfadmin"))
    assert t2.is_deleted and t2.handlers == ()
    refused(decide(t2, wf, c.Handle("bob", APPROVE), ctx()), Reason.NOT_FOUND)
    refused(decide(t2, wf, c.Delete("admin"), ctx()), Reason.NOT_FOUND)


# --- hooks, timers, sub-tickets, CC -------------------------------------------------------------


def test_hook_state_requests_hook_and_waits_for_result() -> None:
    wf = hook_workflow()
    d = ok(decide(create(wf), wf, c.Handle("bob", APPROVE), ctx()))
    assert any(isinstance(e, HookRequested) and e.hook.url.endswith("/hook") for e in d.events)
    t = stored(d)
    assert t.participant_type == ParticipantType.HOOK and t.handlers == ()
    refused(decide(t, wf, c.Deliver("bob", "carol"), ctx()), Reason.BAD_STATE)
    failed = stored(ok(decide(t, wf, c.HookResult(SYSTEM_USER, False, "boom"), ctx())))
    assert failed.script_run_last_result is False
    retried = ok(decide(failed, wf, c.RetryHook("alice"), ctx()))
    assert isinstance(retried.events[0], HookRequested) and retried.ticket.script_run_last_result
    refused(decide(failed, wf, c.RetryHook("stranger"), ctx()), Reason.NO_PERMISSION)
    done = run(t, wf, c.HookResult(SYSTEM_USER, True, "granted", {"reason": "auto"}))
    assert done.state_id == END and done.fields["reason"] == "auto"
    assert any(
        isinstance(e, HookFailed) for e in ok(decide(t, wf, c.HookResult(SYSTEM_USER, False), ctx())).events
    )


def test_hook_result_outside_hook_state_is_refused() -> None:
    wf = workflow()
    refused(decide(create(wf), wf, c.HookResult(SYSTEM_USER, True), ctx()), Reason.BAD_STATE)


def test_timer_is_armed_and_fires_only_if_ticket_did_not_move() -> None:
    wf = workflow(timer=3600)
    d = ok(decide(None, wf, c.Create("alice", 1, SUBMIT, {"days": 1}), ctx()))
    armed = [e for e in d.events if isinstance(e, TimerArmed)]
    assert armed and armed[0].due_at == NOW + timedelta(hours=1)
    t = stored(d)
    later = NOW + timedelta(hours=1)
    fired = stored(ok(decide(t, wf, c.FireTimer(APPROVE, armed[0].state_entered_at), ctx(now=later))))
    assert fired.state_id == OPS
    moved = run(t, wf, c.Deliver("bob", "carol"))
    assert run(moved, wf, c.FireTimer(APPROVE, NOW), now=later).state_id == OPS  # same stay: fires
    refused(decide(fired, wf, c.FireTimer(APPROVE, NOW), ctx(now=later)), Reason.STALE)
    other_stay = replace(t, state_entered_at=NOW + timedelta(minutes=5))
    refused(decide(other_stay, wf, c.FireTimer(APPROVE, NOW), ctx(now=later)), Reason.STALE)


def test_parent_advances_only_when_children_ended() -> None:
    wf = workflow()
    parent = run(create(wf), wf, c.Handle("bob", APPROVE))
    parent = run(parent, wf, c.Accept("erin"))
    refused(decide(parent, wf, c.AdvanceParent(8), ctx(children_ended=False)), Reason.STALE)
    advanced = run(parent, wf, c.AdvanceParent(8), children_ended=True)
    assert advanced.state_id == END
    child = ok(
        decide(
            None,
            wf,
            c.Create("alice", 1, SUBMIT, {"days": 1}, parent_ticket_id=7, parent_ticket_state_id=OPS),
            ctx(),
        )
    ).ticket
    assert (child.parent_ticket_id, child.parent_ticket_state_id) == (7, OPS)
    ended = ok(
        decide(
            stored(
                ok(
                    decide(
                        None,
                        wf,
                        c.Create(
                            "alice", 1, SUBMIT, {"days": 1}, parent_ticket_id=7, parent_ticket_state_id=OPS
                        ),
                        ctx(),
                    )
                )
            ),
            wf,
            c.Close("admin"),
            ctx(),
        )
    )
    assert next(e for e in ended.events if isinstance(e, TicketEnded)).parent_ticket_id == 7


def test_cc_on_state_and_transition_are_notified_and_related() -> None:
    wf = workflow()
    cc = (Participant(ParticipantType.PERSON, "viewer"),)
    wf = replace(
        wf,
        states=tuple(replace(s, cc=cc) if s.id == TL else s for s in wf.states),
        transitions=tuple(
            replace(t, cc=(Participant(ParticipantType.PERSON, "ceo"),)) if t.id == SUBMIT else t
            for t in wf.transitions
        ),
    )
    d = ok(decide(None, wf, c.Create("alice", 1, SUBMIT, {"days": 1}), ctx()))
    notes = [e for e in d.events if isinstance(e, CcNotified)]
    assert notes and set(notes[0].recipients) == {"viewer", "ceo"}
    assert {"viewer", "ceo"} <= d.ticket.cc


def test_state_entered_event_names_the_new_handlers() -> None:
    wf = workflow()
    d = ok(decide(create(wf), wf, c.Handle("bob", APPROVE), ctx()))
    entered = [e for e in d.events if isinstance(e, StateEntered)]
    assert entered == [StateEntered(OPS, ("erin", "frank", "gina"), must_accept=True)]


def test_remember_last_man_sends_the_ticket_back_to_the_same_person() -> None:
    wf = workflow(ops_distribute=Distribute.DIRECT)
    wf = replace(
        wf, states=tuple(replace(s, remember_last_man=True) if s.id == OPS else s for s in wf.states)
    )
    t = run(run(create(wf), wf, c.Handle("bob", APPROVE)), wf, c.Handle("gina", OPS_REJECT))
    t = run(run(t, wf, c.Handle("alice", SUBMIT)), wf, c.Handle("bob", APPROVE))
    assert t.participants == ("gina",)


# --- allowed_actions is the source of truth -----------------------------------------------------


@pytest.mark.parametrize(
    "viewer", ["alice", "bob", "carol", "admin", "wfadmin", "inter", "viewer", "stranger"]
)
def test_every_offered_transition_is_accepted_by_decide(viewer: str) -> None:
    wf = workflow()
    t = create(wf)
    for action in allowed_actions(t, wf, ORG, viewer):
        if action.kind == ActionKind.TRANSITION:
            ok(decide(t, wf, c.Handle(viewer, action.transition_id, {"reason": "r"}), ctx()))
    offered = {
        a.transition_id for a in allowed_actions(t, wf, ORG, viewer) if a.kind == ActionKind.TRANSITION
    }
    for tr in wf.transitions:
        if tr.id not in offered:
            assert not isinstance(decide(t, wf, c.Handle(viewer, tr.id, {"reason": "r"}), ctx()), Decision)


def test_stranger_sees_nothing() -> None:
    wf = workflow()
    assert allowed_actions(create(wf), wf, ORG, "stranger") == ()


def test_a_department_leader_is_approved_by_the_parent_not_their_own_approver() -> None:
    from core.org import Department, Org, User

    org = Org.build(
        users=[User("lead"), User("deputy"), User("boss"), User("dev")],
        departments=[
            Department(1, "HQ", leader="boss"),
            Department(2, "Tech", parent_id=1, leader="lead", approvers=("deputy",)),
        ],
    )
    org = Org.build(
        users=[
            replace(u, dept_ids=(2,)) if u.username != "boss" else replace(u, dept_ids=(1,))
            for u in org.users.values()
        ],
        departments=org.departments.values(),
    )
    assert org.leader_of("lead") == "boss"
    assert org.leader_of("dev") == "deputy"
    assert org.leader_of("boss") == ""


def test_hook_token_never_shows_in_repr() -> None:
    assert "t0k" not in repr(hook_workflow())


# --- review findings: each a rule that must hold ------------------------------------------------


def test_parent_state_without_wait_subtickets_never_advances_by_itself() -> None:
    wf = workflow()
    tl_parent = create(wf)  # in TL, which does not wait for sub-tickets
    refused(decide(tl_parent, wf, c.AdvanceParent(8), ctx(children_ended=True)), Reason.BAD_STATE)


def test_deliver_in_all_state_to_someone_who_must_already_vote_is_refused() -> None:
    wf = all_wf(RejectPolicy.FIRST_REJECT)
    t = run(create(wf), wf, c.Handle("bob", APPROVE))  # bob voted
    refused(decide(t, wf, c.Deliver("carol", "bob"), ctx()), Reason.INVALID)
    refused(decide(t, wf, c.Deliver("carol", "ceo"), ctx()), Reason.INVALID)
    assert run(t, wf, c.Deliver("carol", "gina")).handlers == ("gina", "ceo")


def test_deliver_to_the_only_current_handler_is_refused_but_admin_may_pick_one_of_a_group() -> None:
    wf = workflow()
    refused(decide(create(wf), wf, c.Deliver("admin", "bob", from_admin=True), ctx()), Reason.INVALID)
    t = run(create(wf), wf, c.Handle("bob", APPROVE))  # accept-first group erin, frank, gina
    assert run(t, wf, c.Deliver("admin", "erin", from_admin=True)).handlers == ("erin",)


def test_forced_deliver_during_a_consultation_ends_it() -> None:
    wf = workflow()
    t = run(create(wf), wf, c.AddNode("bob", "carol"))
    moved = run(t, wf, c.Deliver("wfadmin", "erin", from_admin=True))
    assert (moved.in_add_node, moved.handlers) == (False, ("erin",))
    assert run(moved, wf, c.Handle("erin", APPROVE)).state_id == OPS
