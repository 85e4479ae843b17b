"""Pure tests of the notification planner (bot.notify.plan): which cards to send, close, cancel."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.notify.plan import plan, signature, wanted_cards
from bot.notify.ports import CC, NOTICE, PENDING, Delivery, OutboxEvent
from core.access import allowed_actions
from core.org import User
from core.ticket import ActState, Ticket
from core.workflow import ParticipantType
from tests.core.builders import NOW, OPS, ORG, TL, workflow

WF = workflow()
PLATFORMS = {"wecom": lambda u: f"W-{u.username}" if u.username != "carol" else ""}


def ticket(**kw: Any) -> Ticket:
    base: dict[str, Any] = {
        "id": 7,
        "sn": "loonflow_202601050001",
        "title": "年假",
        "workflow_id": 1,
        "workflow_version": "v1",
        "state_id": TL,
        "act_state": ActState.ONGOING,
        "creator": "alice",
        "participant_type": ParticipantType.PERSON,
        "participants": ("bob",),
        "created_at": NOW,
        "updated_at": NOW,
        "fields": {"days": 3},
        "relation": frozenset({"alice", "bob", "carol", "erin", "frank", "gone"}),
        "state_entered_at": NOW,
        "version": 2,
    }
    base.update(kw)
    return Ticket(**base)


def delivery(id: int, recipient: str, **kw: Any) -> Delivery:
    base: dict[str, Any] = {
        "id": id,
        "platform": "wecom",
        "ticket_id": 7,
        "recipient": recipient,
        "address": f"W-{recipient}",
        "kind": PENDING,
        "actor": "",
        "note": "",
        "dedupe_key": f"k{id}",
        "status": "sent",
        "attempts": 0,
        "due_at": NOW,
        "last_error": "",
        "task_id": f"tb_7_{id}",
        "msg_id": f"m{id}",
        "state_id": TL,
        "version": 2,
        "actions": "",
        "live": True,
        "response_code": "rc",
        "code_expires_at": NOW + timedelta(hours=24),
        "close_due_at": None,
        "close_note": "",
        "closed_at": None,
        "created_at": NOW,
        "sent_at": NOW,
    }
    base.update(kw)
    return Delivery(**base)


def event(id: int, name: str, **payload: Any) -> OutboxEvent:
    return OutboxEvent(id, 7, name, payload, NOW)


def sig(t: Ticket, who: str) -> str:
    return signature(allowed_actions(t, WF, ORG, who))


def test_a_handler_without_a_card_gets_one_per_platform() -> None:
    t = ticket()
    p = plan(t, WF, ORG, [], [], PLATFORMS)
    assert [(d.recipient, d.kind, d.address, d.state_id) for d in p.new] == [("bob", PENDING, "W-bob", TL)]
    assert p.new[0].dedupe_key == "pending:wecom:7:2:bob"
    assert not p.closes and not p.cancels


def test_a_valid_live_card_is_left_alone_and_planning_twice_adds_nothing() -> None:
    t = ticket()
    live = delivery(1, "bob", actions=sig(t, "bob"))
    assert plan(t, WF, ORG, [], [live], PLATFORMS).empty


def test_a_card_the_ticket_left_is_closed_and_the_new_handlers_get_cards() -> None:
    old = ticket()
    moved = ticket(
        state_id=OPS, participant_type=ParticipantType.ROLE, participants=("erin", "frank"), version=3
    )
    live = delivery(1, "bob", actions=sig(old, "bob"))
    p = plan(moved, WF, ORG, [], [live], PLATFORMS)
    assert [c.delivery_id for c in p.closes] == [1]
    assert sorted(d.recipient for d in p.new) == ["erin", "frank"]


def test_changed_buttons_close_the_card_and_send_a_fresh_one() -> None:
    """Accept-first: the acceptor's 接单 card is replaced by one with the decisions."""
    before = ticket(state_id=OPS, participant_type=ParticipantType.ROLE, participants=("erin", "frank"))
    accepted = replace(
        before, participant_type=ParticipantType.PERSON, participants=("erin",), accepted_by="erin", version=3
    )
    cards = [
        delivery(1, "erin", state_id=OPS, actions=sig(before, "erin")),
        delivery(2, "frank", state_id=OPS, actions=sig(before, "frank")),
    ]
    assert sig(before, "erin") != sig(accepted, "erin")
    p = plan(accepted, WF, ORG, [], cards, PLATFORMS)
    assert sorted(c.delivery_id for c in p.closes) == [1, 2]
    assert [d.recipient for d in p.new] == ["erin"]


def test_a_planned_card_that_is_moot_is_cancelled_not_closed() -> None:
    moved = ticket(state_id=OPS, participants=("erin",), version=3)
    planned = delivery(1, "bob", status="pending", live=False, task_id=None)
    p = plan(moved, WF, ORG, [], [planned], PLATFORMS)
    assert p.cancels == (1,) and not p.closes


def test_an_ended_ticket_wants_no_cards_and_closes_all() -> None:
    ended = ticket(act_state=ActState.FINISHED, state_id=9, participants=(), version=5)
    assert wanted_cards(ended, WF, ORG) == {}
    p = plan(ended, WF, ORG, [], [delivery(1, "bob", actions="x")], PLATFORMS)
    assert [c.delivery_id for c in p.closes] == [1] and not p.new


def test_people_without_a_platform_address_or_inactive_get_nothing() -> None:
    t = ticket(participants=("carol", "gone"))
    assert plan(t, WF, ORG, [], [], PLATFORMS).new == ()


def test_cc_event_sends_read_only_notices_deduped_by_event() -> None:
    t = ticket()
    p = plan(t, WF, ORG, [event(40, "CcNotified", recipients=["erin", "carol"], state_id=TL)], [], PLATFORMS)
    cc = [d for d in p.new if d.kind == CC]
    assert [(d.recipient, d.dedupe_key) for d in cc] == [("erin", "cc:wecom:40:erin")]


def test_the_requester_is_told_of_someone_elses_decision_only() -> None:
    t = ticket(state_id=OPS, participants=("erin",))
    mine = event(
        41,
        "TicketTransitioned",
        actor="alice",
        from_state_id=1,
        to_state_id=TL,
        transition_id=10,
        attribute=1,
    )
    theirs = event(
        42,
        "TicketTransitioned",
        actor="bob",
        from_state_id=TL,
        to_state_id=OPS,
        transition_id=20,
        attribute=1,
    )
    p = plan(t, WF, ORG, [mine, theirs], [], PLATFORMS)
    notices = [d for d in p.new if d.kind == NOTICE]
    assert [(d.recipient, d.note, d.dedupe_key) for d in notices] == [
        ("alice", "已同意 · 鲍勃", "notice:wecom:42:alice")
    ]


def test_other_events_that_concern_the_requester() -> None:
    t = ticket(act_state=ActState.CLOSED, state_id=9, participants=())
    closed = event(43, "TicketClosed", actor="admin")
    delivered = event(44, "TicketDelivered", actor="bob", target="carol")
    p = plan(t, WF, ORG, [closed, delivered], [], PLATFORMS)
    assert [d.note for d in p.new] == ["已关闭 · 管理员", "已转交给卡罗尔 · 鲍勃"]


def test_a_platform_not_enabled_leaves_its_cards_alone() -> None:
    moved = ticket(state_id=OPS, participants=("erin",), version=3)
    other = delivery(1, "bob", platform="dingtalk", actions="x")
    p = plan(moved, WF, ORG, [], [other], PLATFORMS)
    assert not p.closes and [d.recipient for d in p.new] == ["erin"]


def test_user_addresses_come_from_the_platform_function() -> None:
    seen: list[str] = []

    def address(u: User) -> str:
        seen.append(u.username)
        return "X"

    plan(ticket(), WF, ORG, [], [], {"p": address})
    assert seen == ["bob"]
