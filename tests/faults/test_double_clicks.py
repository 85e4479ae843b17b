"""One approver hammering one card: 100 concurrent clicks (同意, and some 驳回), each a separate
encrypted template_card_event through the real app's /wecom/callback, with the notifier running
as deployed (system clock, background loop). SQLite and PostgreSQL.

Exactly one decision is taken; every other click is stale and changes nothing but its card.

FINDING (documented, not fixed): each stale click re-renders the clicked card with the click's own
fresh response_code ("a stale or repeated click ... shows who decided"), and re-renders that land
before the notifier's next pass coalesce. So the card gets between 1 and 1 + (stale clicks)
update_template_card calls, all with the same result (18..31 for 99 stale clicks in our runs):
redundant API calls (WeCom allows 10,000/min per API), never a second message to anyone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.faults.stack import WAIT, Stack, build_stack, card_ref

CLICKS = 100
REJECTS = 10  # of the 100, spread among the 同意 clicks
REDELIVERED = 10  # clicks WeCom sends a second time (same event: same dedupe key)


@pytest.fixture
async def stack(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Stack:
    return await build_stack(aiohttp_server, aiohttp_client, database_url, fake_clock=False)


async def test_a_hundred_concurrent_clicks_on_one_card_decide_once(stack: Stack) -> None:
    ticket_id = await stack.create_leave("LiuYang")
    await stack.settle()
    (card,) = stack.cards("WangQiang")
    before = await stack.ticket(ticket_id)
    texts_before = len([m for m in stack.emulator.records.messages if m.msgtype == "text"])

    buttons = ["驳回" if i % (CLICKS // REJECTS) == 3 else "同意" for i in range(CLICKS)]
    xmls = [stack.click_xml("WangQiang", card, b, 1700000000 + i) for i, b in enumerate(buttons)]
    xmls += xmls[:REDELIVERED]  # WeCom delivering some clicks twice: the inbox drops those
    async with asyncio.timeout(WAIT):
        answers = await asyncio.gather(*(stack.post(x) for x in xmls))
    assert [a.status for a in answers] == [200] * len(xmls)  # each within WeCom's 5 s deadline
    await stack.settle()

    ticket = await stack.ticket(ticket_id)
    decisions = (await stack.flow_logs(ticket_id))[1:]
    assert len(decisions) == 1 and decisions[0].actor == "wangqiang"
    assert decisions[0].transition_name in ("同意", "驳回")
    assert ticket.version == before.version + 1
    approved = decisions[0].transition_name == "同意"
    assert ticket.state_id == (104 if approved else ticket.state_id)

    rec = stack.emulator.records
    verb = "已同意" if approved else "已驳回"
    updates = stack.updates_of(card)
    assert 1 <= len(updates) <= CLICKS  # 1 + at most one re-render per stale click (FINDING 1)
    assert all(u.body["template_card"]["replace_text"].startswith(f"{verb} · 王强") for u in updates)
    assert len({u.response_code for u in updates}) == len(updates)  # each with a code of its own
    notices = [m for m in stack.cards("LiuYang") if (r := card_ref(m)) is not None and r[0] == ticket_id]
    assert len(notices) == 1 and notices[0].body["template_card"]["sub_title_text"] == f"{verb} · 王强"
    if approved:  # the next step's cards, once each
        assert len(stack.cards("YangFan")) == len(stack.cards("ChenJing")) == 1
    assert len([m for m in rec.messages if m.msgtype == "text"]) == texts_before  # no text to the clicker
    assert rec.drops == []

    # FINDING 2: besides its updates, the clicker may get extra result messages (fresh task ids of
    # the same delivery), and a second one with a reused task id is refused by WeCom (42035)
    ledger = await stack.ledger(ticket_id)
    (approver_delivery,) = [d for d in ledger if d.address == "WangQiang"]
    first, *extra = stack.cards("WangQiang")
    assert first is card
    seen = [(card_ref(m), m.body["template_card"].get("sub_title_text")) for m in extra]
    for m in extra:
        ref = card_ref(m)
        assert ref is not None and ref[:2] == (ticket_id, approver_delivery.id) and ref[2] >= 1, seen
        assert m.body["template_card"]["card_type"] == "text_notice", seen
        assert m.body["template_card"]["sub_title_text"].startswith(f"{verb} · 王强"), seen
    assert len({card_ref(m) for m in extra}) == len(extra)  # a reused task id is refused (42035)
    failures = {(f.path, f.errcode) for f in rec.failures}
    assert failures <= {("/cgi-bin/message/send", 42035), ("/cgi-bin/message/update_template_card", 60140)}
    others = len(rec.messages) - texts_before - 1 - len(extra)
    assert others == 1 + (2 if approved else 0)  # the requester's notice and the next step's cards
    assert all(d.status == "sent" for d in ledger) and len({d.msg_id for d in ledger}) == len(ledger)
