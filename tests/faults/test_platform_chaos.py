"""WeCom misbehaving while ~20 leave tickets are created, carded and approved through the real app
(encrypted callbacks, real HTTP to the emulator, the real database; SQLite and PostgreSQL).

Chaos: 20% of API calls answer errcode -1 (system busy; the client retries those itself), and
every notifier pass the first message/send and update_template_card calls answer HTTP 502/503/504
(the client gives those to the notifier, which backs off); a few calls stall until the client's
timeout gives up on them. The notifier runs on a fake clock that `drive()` moves past every
backoff. Afterwards everything is counted twice, from what the emulator recorded and from the
database: nothing lost, nothing doubled.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from emulator.wecom import SentMessage
from tests.faults.stack import Stack, build_stack, card_ref

SEND = "/cgi-bin/message/send"
UPDATE = "/cgi-bin/message/update_template_card"
CLIENT_TIMEOUT = 1.0  # seconds; the emulator answers in milliseconds unless a call is stalled

# requester -> the approver of their department (config/org.yaml); 4 tickets each: 20 tickets
REQUESTERS = {
    "LiuYang": "WangQiang",
    "SunHao": "ZhaoLei",
    "ZhouMin": "ZhaoLei",
    "XuLi": "WuJuan",
    "HePing": "WuJuan",
}
PER_REQUESTER = 4
HR = ("YangFan", "ChenJing")  # accept-first 人事备案 after the leader's approval


@pytest.fixture
async def stack(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Stack:
    return await build_stack(
        aiohttp_server, aiohttp_client, database_url, fake_clock=True, client_timeout=CLIENT_TIMEOUT
    )


class Chaos:
    """Arms the emulator before each notifier pass: HTTP 5xx on the first send and update of the
    pass, and a stall of one send (or update) on the passes named in `stall_sends` / `stall_updates`."""

    def __init__(self, stack: Stack, *, stall_sends: set[int], stall_updates: set[int]) -> None:
        self.emulator = stack.emulator
        self.passes = 0
        self.stall_sends = stall_sends
        self.stall_updates = stall_updates

    def arm(self) -> None:
        self.passes += 1
        if self.passes % 2:  # not every pass: the first due delivery would fail every time
            status = (502, 503, 504)[self.passes % 3]
            self.emulator.fail_next_http(1, status, path=SEND)
            self.emulator.fail_next_http(1, status, path=UPDATE)
        if self.passes in self.stall_sends:
            self.emulator.stall_next(1, path=SEND)
        if self.passes in self.stall_updates:
            self.emulator.stall_next(1, path=UPDATE)


def _approver_card(stack: Stack, approver: str, ticket_id: int) -> SentMessage:
    (card,) = [
        m
        for m in stack.cards(approver)
        if (ref := card_ref(m)) is not None
        and ref[0] == ticket_id
        and m.body["template_card"].get("button_list")
    ]
    return card


def _sent_msgids(stack: Stack) -> dict[tuple[int, int], str]:
    """(ticket, delivery id) -> the msgid WeCom gave the first (fresh 0) message of that delivery."""
    found: dict[tuple[int, int], str] = {}
    for m in stack.emulator.records.messages:
        ref = card_ref(m)
        if ref is not None and ref[2] == 0:
            found[(ref[0], ref[1])] = m.msgid
    return found


async def test_nothing_lost_nothing_doubled_when_wecom_fails_a_third_of_calls(stack: Stack) -> None:
    tickets: dict[int, tuple[str, str]] = {}
    for _ in range(PER_REQUESTER):
        for requester, approver in REQUESTERS.items():
            tickets[await stack.create_leave(requester)] = (requester, approver)
    versions = {t: (await stack.ticket(t)).version for t in tickets}
    calls_before = len(stack.emulator.records.calls)

    stack.emulator.fail_ratio(0.25, -1)
    chaos = Chaos(stack, stall_sends={2}, stall_updates=set())
    await stack.drive(before_pass=chaos.arm)
    for n, (ticket_id, (_, approver)) in enumerate(tickets.items()):
        card = _approver_card(stack, approver, ticket_id)
        assert (await stack.post(stack.click_xml(approver, card, "同意", 1700000000 + n))).status == 200
    await stack.callbacks_done()
    chaos.stall_updates = {chaos.passes + 2}
    await stack.drive(before_pass=chaos.arm)
    stack.emulator.fail_ratio(0.0)

    rec = stack.emulator.records
    # the chaos was real: about a third of the notifier's calls failed or stalled, of every kind
    calls = len(rec.calls) - calls_before
    assert (len(rec.failures) + stack.emulator.stalls.stalled) / calls >= 0.25
    assert {f.errcode for f in rec.failures} >= {-1, 502, 503, 504}
    assert stack.emulator.stalls.stalled == 2 and rec.drops == []

    # WeCom side: every card reached its recipient exactly once, and nothing else was sent
    delivered = stack.delivered_cards()
    assert sorted(n for n in delivered.values() if n != 1) == []
    assert [k for k in delivered if k[3] != 0] == []  # no fallback "fresh" result messages
    assert len([m for m in rec.messages if m.msgtype == "text"]) == len(tickets)  # the chat replies

    msgids = _sent_msgids(stack)
    planned: set[tuple[str, int, int, int]] = set()
    for ticket_id, (requester, approver) in tickets.items():
        ledger = await stack.ledger(ticket_id)
        # database side: nothing pending or dead, one delivery per (person, kind), each sent once
        assert [d.status for d in ledger] == ["sent"] * 4, [(d.id, d.status, d.last_error) for d in ledger]
        assert Counter((d.address, d.kind) for d in ledger) == Counter(
            [(approver, "pending"), (HR[0], "pending"), (HR[1], "pending"), (requester, "notice")]
        )
        for d in ledger:
            assert d.msg_id and d.msg_id == msgids[(ticket_id, d.id)]
            planned.add((d.address, ticket_id, d.id, 0))
        # the approval: one transition, one version step, the approver's card updated once
        ticket = await stack.ticket(ticket_id)
        assert ticket.state_id == 104 and ticket.version == versions[ticket_id] + 1
        logs = await stack.flow_logs(ticket_id)
        assert [(log.actor, log.transition_name) for log in logs[1:]] == [(approver.lower(), "同意")]
        card = _approver_card(stack, approver, ticket_id)
        (update,) = stack.updates_of(card)
        assert update.body["template_card"]["replace_text"].startswith("已同意 · ")
        (approver_delivery,) = [d for d in ledger if d.address == approver]
        assert approver_delivery.closed_at is not None and approver_delivery.response_code == ""
        assert all(d.closed_at is None and d.live for d in ledger if d.address in HR)  # still to decide
        # the requester was told exactly once
        (notice,) = [
            m for m in stack.cards(requester) if (r := card_ref(m)) is not None and r[0] == ticket_id
        ]
        assert notice.body["template_card"]["sub_title_text"].startswith("已同意 · ")
    assert set(delivered) == planned  # nothing lost, nothing unplanned
    assert len(set(msgids.values())) == len(msgids) == 4 * len(tickets)  # no msgid recorded twice
    assert len(rec.updates) == len(tickets)


async def test_a_card_delivered_but_its_answer_lost_is_sent_once_and_still_closed_on_click(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str
) -> None:
    """WeCom carries out a card send, but the answer never reaches ticketbot (the client's timeout
    fires first). The notifier resends the same delivery with the same task_id; WeCom refuses it
    as a used task_id (the emulator's 42035): the card is at WeCom once, and the refusal tells the
    sender the earlier attempt went through, so the delivery counts as sent (no msgid; its task_id
    recorded). The approver's click brings a fresh response code, so that card is closed with the
    decision like any other."""
    stack = await build_stack(
        aiohttp_server,
        aiohttp_client,
        database_url,
        fake_clock=True,
        client_timeout=CLIENT_TIMEOUT,
        finish_abandoned=True,
    )
    ticket_id = await stack.create_leave("LiuYang")
    stack.emulator.stall_next(1, path=SEND)
    await stack.drive()
    rec = stack.emulator.records

    (card,) = stack.cards("WangQiang")  # exactly once at WeCom: no duplicate
    assert stack.emulator.stalls.stalled == 1
    assert [(f.path, f.errcode) for f in rec.failures] == [(SEND, 42035)]
    (pending,) = await stack.ledger(ticket_id)
    task_id = card.body["template_card"]["task_id"]
    assert (pending.status, pending.msg_id, pending.task_id) == ("sent", "", task_id)

    assert (await stack.post(stack.click_xml("WangQiang", card, "同意", 1700000000))).status == 200
    await stack.callbacks_done()
    await stack.drive()
    ticket = await stack.ticket(ticket_id)
    assert ticket.state_id == 104
    assert [log.actor for log in (await stack.flow_logs(ticket_id))[1:]] == ["wangqiang"]
    (update,) = stack.updates_of(card)  # the approver's card is closed with the decision
    assert update.body["template_card"]["replace_text"].startswith("已同意 · ")
    assert (
        len(stack.cards("LiuYang")) == 1 and len(stack.cards("YangFan")) == len(stack.cards("ChenJing")) == 1
    )


async def test_an_update_done_but_its_answer_lost_gives_exactly_one_extra_result_message(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str
) -> None:
    """A card update WeCom carried out, its answer lost: the notifier retries the close with the
    same (now used) response_code, WeCom answers 60140, and the result goes out as a fresh
    message. The approver sees the card updated AND one result message: a bounded duplicate
    (exactly one per lost update answer) that the product cannot avoid without knowing the first
    update worked."""
    stack = await build_stack(
        aiohttp_server,
        aiohttp_client,
        database_url,
        fake_clock=True,
        client_timeout=CLIENT_TIMEOUT,
        finish_abandoned=True,
    )
    ticket_id = await stack.create_leave("LiuYang")
    await stack.drive()
    (card,) = stack.cards("WangQiang")
    assert (await stack.post(stack.click_xml("WangQiang", card, "同意", 1700000000))).status == 200
    await stack.callbacks_done()
    stack.emulator.stall_next(1, path=UPDATE)
    await stack.drive()
    rec = stack.emulator.records

    (update,) = stack.updates_of(card)
    assert update.body["template_card"]["replace_text"].startswith("已同意 · 王强")
    assert [(f.path, f.errcode) for f in rec.failures] == [(UPDATE, 60140)]
    first, extra = stack.cards("WangQiang")
    assert first is card and extra.body["template_card"]["card_type"] == "text_notice"
    assert extra.body["template_card"]["sub_title_text"].startswith("已同意 · 王强")
    ledger = await stack.ledger(ticket_id)
    assert [d.status for d in ledger] == ["sent"] * 4 and all(d.closed_at for d in ledger[:1])
    assert len(stack.cards("LiuYang")) == 1  # the requester is told once
