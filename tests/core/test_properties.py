"""Property tests: random sequences of actions by random users keep every ticket valid.

Invariants after every step: the state exists; progress matches the state type; an unfinished
ticket always has someone (or a hook) to act; votes belong to participants; every accepted command
appends exactly one flow-log entry; a refused command changes nothing; and whatever
allowed_actions() offers, decide() accepts.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import commands as c
from core.access import ActionKind, allowed_actions
from core.decide import decide
from core.decision import Decision
from core.errors import Rejected
from core.ticket import SYSTEM_USER, ActState, Ticket
from core.workflow import Distribute, Participant, ParticipantType, RejectPolicy, StateType, Workflow
from tests.core.builders import NOW, ORG, SUBMIT, ctx, hook_workflow, workflow

USERS = ["alice", "bob", "carol", "ceo", "erin", "frank", "gina", "admin", "wfadmin", "inter", "stranger"]
WORKFLOWS = [
    workflow(),
    workflow(approve_conditions=(("{days} > 3", 9),), timer=60),
    workflow(tl=Participant(ParticipantType.PEOPLE, "bob,carol,ceo"), tl_distribute=Distribute.ALL),
    workflow(
        tl=Participant(ParticipantType.PEOPLE, "bob,carol"),
        tl_distribute=Distribute.ALL,
        tl_policy=RejectPolicy.AFTER_ALL,
    ),
    workflow(tl=Participant(ParticipantType.ROLE, "1"), tl_distribute=Distribute.RANDOM),
    workflow(ops=Participant(ParticipantType.FIELD, "handler"), ops_distribute=Distribute.DIRECT),
    hook_workflow(),
]

KINDS = [
    "handle",
    "accept",
    "deliver",
    "deliver_admin",
    "add_node",
    "add_node_end",
    "retreat",
    "close",
    "force",
    "comment",
    "update",
    "delete",
    "hook_ok",
    "hook_fail",
    "retry_hook",
    "timer",
]

step = st.tuples(
    st.sampled_from(KINDS),
    st.sampled_from([*USERS, *["<handler>"] * len(USERS)]),
    st.sampled_from(USERS),
    st.integers(min_value=0, max_value=5),
    st.integers(min_value=0, max_value=50),
)


def command(wf: Workflow, t: Ticket, kind: str, actor: str, other: str, pick: int) -> c.Command:
    here = [tr.id for tr in wf.transitions_from(t.state_id)]
    ids = here * 6 + [tr.id for tr in wf.transitions]  # mostly transitions that exist here
    states = [s.id for s in wf.states]
    match kind:
        case "act":  # what a real handler does: press one of the buttons they are offered
            offered = [
                a
                for a in allowed_actions(t, wf, ORG, actor)
                if a.kind in (ActionKind.TRANSITION, ActionKind.ACCEPT, ActionKind.ADD_NODE_END)
            ]
            if not offered:
                return c.Comment(actor, "nothing to press")
            a = offered[pick % len(offered)]
            if a.kind == ActionKind.ACCEPT:
                return c.Accept(actor)
            if a.kind == ActionKind.ADD_NODE_END:
                return c.AddNodeEnd(actor)
            return c.Handle(actor, a.transition_id, {"reason": "r"})
        case "handle":
            return c.Handle(actor, ids[pick % len(ids)], {"reason": "r"})
        case "accept":
            return c.Accept(actor)
        case "deliver":
            return c.Deliver(actor, other)
        case "deliver_admin":
            return c.Deliver(actor, other, from_admin=True)
        case "add_node":
            return c.AddNode(actor, other)
        case "add_node_end":
            return c.AddNodeEnd(actor)
        case "retreat":
            return c.Retreat(actor)
        case "close":
            return c.Close(actor)
        case "force":
            return c.ForceState(actor, states[pick % len(states)])
        case "comment":
            return c.Comment(actor, "note")
        case "update":
            return c.UpdateFields(actor, {"reason": f"r{pick}"})
        case "delete":
            return c.Delete(actor)
        case "hook_ok":
            return c.HookResult(SYSTEM_USER, True, "ok")
        case "hook_fail":
            return c.HookResult(SYSTEM_USER, False, "no")
        case "retry_hook":
            return c.RetryHook(actor)
        case _:
            tr = wf.transitions[pick % len(wf.transitions)]
            return c.FireTimer(tr.id, t.state_entered_at or NOW)


def check(t: Ticket, wf: Workflow) -> None:
    state = wf.state(t.state_id)
    assert state is not None
    if t.act_state in (ActState.FINISHED, ActState.CLOSED):
        assert state.type == StateType.END
    elif state.type == StateType.END:
        raise AssertionError(f"end state with act_state {t.act_state}")
    elif state.type == StateType.START:
        assert t.act_state in (ActState.DRAFT, ActState.REJECTED, ActState.WITHDRAWN)
    else:
        assert t.act_state == ActState.ONGOING
    if not t.is_ended:
        assert t.handlers or t.participant_type == ParticipantType.HOOK, t
        assert all(ORG.active(p) for p in t.handlers)
    assert set(t.votes) <= set(t.participants)
    assert not t.in_add_node or (t.add_node_target and t.add_node_man)
    assert t.creator in t.relation


@pytest.mark.parametrize("wf_index", range(len(WORKFLOWS)))
@settings(max_examples=150, deadline=None)
@given(
    days=st.integers(min_value=1, max_value=10),
    steps=st.lists(step, max_size=40),
)
def test_random_action_sequences_keep_tickets_valid(
    wf_index: int, days: int, steps: list[tuple[str, str, str, int, int]]
) -> None:
    wf = WORKFLOWS[wf_index]
    first = decide(None, wf, c.Create("alice", wf.id, SUBMIT, {"days": days, "handler": "carol"}), ctx())
    assert isinstance(first, Decision)
    t = replace(first.ticket, id=1, sn="loonflow_202601050001", version=1)
    history = list(first.logs)
    accepted = 1
    now = NOW
    for kind, actor, other, pick, seed in steps:
        now += timedelta(minutes=1)
        before = t
        if actor == "<handler>" or kind == "act":
            actor = t.handlers[pick % len(t.handlers)] if t.handlers else "bob"
        outcome = decide(t, wf, command(wf, t, kind, actor, other, pick), ctx(now=now, seed=seed))
        if isinstance(outcome, Rejected):
            assert t == before and outcome.message
            continue
        assert isinstance(outcome, Decision), outcome
        assert len(outcome.logs) == 1
        history.extend(outcome.logs)
        accepted += 1
        t = replace(outcome.ticket, version=t.version + 1)
        check(t, wf)
        for viewer in (actor, other):
            for action in allowed_actions(t, wf, ORG, viewer):
                if action.kind == ActionKind.TRANSITION:
                    tried = decide(
                        t, wf, c.Handle(viewer, action.transition_id, {"reason": "r"}), ctx(now=now)
                    )
                    assert isinstance(tried, Decision), (action, tried)
    assert len(history) == accepted
