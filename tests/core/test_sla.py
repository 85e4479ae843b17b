"""Routing arms a state's SLA (SlaArmed) when a ticket enters the state, with due times computed
in wall-clock or business time (the context's calendar)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from core import commands as c
from core.access import can_view
from core.calendar import BusinessCalendar
from core.decide import decide
from core.decision import Decision, Outcome
from core.errors import Reason, Rejected
from core.events import Escalated, SlaArmed, event_payload
from core.routing import MAX_REMINDS
from core.workflow import Sla, Workflow
from tests.core.builders import NOW, ORG, SUBMIT, TL, ctx, stored, workflow

H = timedelta(hours=1)


def with_sla(sla: Sla, state_id: int = TL) -> Workflow:
    wf = workflow()
    return replace(wf, states=tuple(replace(s, sla=sla) if s.id == state_id else s for s in wf.states))


def ok(outcome: Outcome) -> Decision:
    assert isinstance(outcome, Decision), outcome
    return outcome


def armed(d: Decision) -> list[SlaArmed]:
    return [e for e in d.events if isinstance(e, SlaArmed)]


def test_entering_a_state_with_an_sla_arms_it_in_wall_clock_time() -> None:
    wf = with_sla(Sla(remind_after=4 * H, urge_after=24 * H, escalate_after=48 * H))
    d = ok(decide(None, wf, c.Create("alice", 1, SUBMIT, {"days": 1}), ctx()))
    (sla,) = armed(d)
    assert sla == SlaArmed(TL, NOW, (NOW + 4 * H,), NOW + 24 * H, NOW + 48 * H)
    assert d.ticket.state_entered_at == NOW
    payload = event_payload(sla)
    assert (
        payload["reminds"] == [(NOW + 4 * H).isoformat()]
        and payload["escalate_at"] == (NOW + 48 * H).isoformat()
    )


def test_business_hours_count_only_working_time() -> None:
    # NOW is Monday 2026-01-05 17:00 at +08:00: one working hour is left that day
    wf = with_sla(Sla(remind_after=4 * H, urge_after=9 * H, business_hours=True))
    holiday = BusinessCalendar(holidays=frozenset({date(2026, 1, 6)}))
    d = ok(decide(None, wf, c.Create("alice", 1, SUBMIT, {"days": 1}), ctx(calendar=holiday)))
    (sla,) = armed(d)
    # 1h Monday, Tuesday is a holiday, 3h Wednesday: 12:00 +08:00 = 04:00 UTC
    assert sla.reminds == (datetime(2026, 1, 7, 4, 0, tzinfo=UTC),)
    # 1h Monday + 8h Wednesday = Wednesday 17:00 +08:00
    assert sla.urge_at == datetime(2026, 1, 7, 9, 0, tzinfo=UTC)
    assert sla.escalate_at is None


def test_repeated_reminders_stop_before_the_urge_and_at_the_cap() -> None:
    wf = with_sla(Sla(remind_after=H, remind_every=2 * H, urge_after=6 * H))
    (sla,) = armed(ok(decide(None, wf, c.Create("alice", 1, SUBMIT, {"days": 1}), ctx())))
    assert sla.reminds == (NOW + H, NOW + 3 * H, NOW + 5 * H)
    endless = with_sla(Sla(remind_after=H, remind_every=H))
    (sla,) = armed(ok(decide(None, endless, c.Create("alice", 1, SUBMIT, {"days": 1}), ctx())))
    assert len(sla.reminds) == MAX_REMINDS and sla.urge_at is None


def test_no_sla_event_without_an_sla_or_when_the_ticket_stays_put() -> None:
    plain = ok(decide(None, workflow(), c.Create("alice", 1, SUBMIT, {"days": 1}), ctx()))
    assert armed(plain) == []
    wf = with_sla(Sla(remind_after=H))
    t = stored(ok(decide(None, wf, c.Create("alice", 1, SUBMIT, {"days": 1}), ctx())))
    handed_over = ok(decide(t, wf, c.Deliver("bob", "carol"), ctx(now=NOW + H)))
    assert armed(handed_over) == []  # 转交 keeps the stay (and its SLA) as it was
    assert handed_over.ticket.state_entered_at == NOW


def test_coming_back_to_the_state_arms_it_again() -> None:
    wf = with_sla(Sla(urge_after=H))
    t = stored(ok(decide(None, wf, c.Create("alice", 1, SUBMIT, {"days": 1}), ctx())))
    later = NOW + 2 * H
    rejected = stored(ok(decide(t, wf, c.Handle("bob", 21), ctx(now=later))))
    again = ok(decide(rejected, wf, c.Handle("alice", SUBMIT), ctx(now=later + H)))
    (sla,) = armed(again)
    assert sla.state_entered_at == later + H and sla.urge_at == later + 2 * H


def test_escalation_adds_the_leaders_to_the_cc_only_in_the_same_stay() -> None:
    wf = with_sla(Sla(escalate_after=H))
    t = stored(ok(decide(None, wf, c.Create("alice", 1, SUBMIT, {"days": 1}), ctx())))
    d = ok(decide(t, wf, c.Escalate(NOW, ("ceo", "gone", "ceo")), ctx(now=NOW + H)))
    assert d.events == (Escalated(TL, ("ceo",)),)
    assert "ceo" in d.ticket.cc and "ceo" in d.ticket.relation and d.ticket.participants == t.participants
    assert can_view(d.ticket, wf, ORG, "ceo") and not can_view(t, wf, ORG, "ceo")
    assert not isinstance(decide(t, wf, c.Escalate(NOW - H, ("ceo",)), ctx()), Decision)  # another stay
    refused = decide(t, wf, c.Escalate(NOW, ("gone",)), ctx())
    assert isinstance(refused, Rejected) and refused.reason == Reason.INVALID
