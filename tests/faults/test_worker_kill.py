"""SIGKILL one worker of `ticketbot serve --workers 2` in the middle of chat commands; count what
reached WeCom (the emulator's record) and what the database holds.

The kill is placed, not hoped for: every `message/send` at the emulator is held (a stall released
by the test), so each worker is stuck in the middle of its first commands: the inbox row claimed
(`processing`), the ticket committed, the chat reply (and the notifier's first card) waiting at
WeCom. The test knows which worker took each callback (the server side of its TCP connection, from
/proc), kills the worker that took the most, and lets WeCom go on answering.

The killed worker's claims are then taken over the way the product does it: after their lease
(inbox rows: bot.inbox.LEASE_SECONDS = 300 s; sends: bot.notify.notifier.CLAIM_LEASE = 5 min). The
test does not wait five minutes for that: it moves the dead worker's claims back in time in the
database (the lease has passed, as a fake clock would have it), and the live workers' own
once-a-minute recovery takes them over.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from bench._server import running_server_async
from emulator.wecom import SentMessage, template_card_event_xml
from store.db import Database
from tests.faults.procs import (
    AGENT,
    CALLBACK_PATH,
    CORP,
    HR,
    Requester,
    WeCom,
    alive,
    children,
    create_xml,
    deliver,
    execute,
    pg_schema,
    returning,
    rows,
    wait_serving,
    wait_until,
    wecom,
    write_config,
)

pytestmark = pytest.mark.postgres

M = 24  # requesters, one leave request each
MSG_BASE = 7_000_000
PER_WORKER = 4  # bot.inbox.MAX_CONCURRENT: callbacks a worker runs at once
SEND = "/cgi-bin/message/send"
APPROVE = "同意"


def _buttons(card: SentMessage) -> dict[str, str]:
    return {b["text"]: b["key"] for b in card.body.get("template_card", {}).get("button_list", [])}


async def test_sigkill_of_a_worker_loses_nothing(tmp_path: Path) -> None:
    config_dir, people = write_config(tmp_path, M)
    by_userid = {p.userid: p for p in people}
    started = time.monotonic()
    async with (
        wecom(config_dir) as we,
        pg_schema() as url,
        running_server_async(url, config_dir=config_dir, extra_env=we.env, workers=2) as server,
    ):
        db = Database(url)
        try:
            await _run(server.pid, server.base_url + CALLBACK_PATH, we, db, by_userid, started)
        finally:
            we.emulator.stalls.release()  # a failed test must not leave the workers stuck at WeCom
            await db.dispose()
    assert server.returncode == 0, server.stderr_tail


async def _run(
    supervisor: int,
    callback_url: str,
    we: WeCom,
    db: Database,
    by_userid: dict[str, Requester],
    started: float,
) -> None:
    emulator = we.emulator
    workers = children(supervisor)
    assert len(workers) == 2, f"serve --workers 2 runs {workers}"
    # both serve (a worker still starting would drain the other's callbacks at its start-up)
    await wait_serving(callback_url.removesuffix(CALLBACK_PATH), workers, within=30)

    # ---- 1. M create commands; every send to WeCom is held, so each worker stops mid-command
    emulator.stall_next(100_000, path=SEND)
    userids = sorted(by_userid)
    deliveries = await asyncio.gather(
        *(
            deliver(
                we,
                callback_url,
                create_xml(uid, MSG_BASE + i),
                attempts=5,
                retry_delay=0.5,
                owners=lambda: workers,
            )
            for i, uid in enumerate(userids)
        )
    )
    assert all(d.ok for d in deliveries), [d.statuses for d in deliveries]
    taken_by = {MSG_BASE + i: d.answered_by[-1] for i, d in enumerate(deliveries)}
    assert None not in taken_by.values(), f"could not tell which worker took each callback: {taken_by}"
    per_worker = Counter(taken_by.values())
    victim = per_worker.most_common(1)[0][0]
    assert victim is not None
    survivor = next(w for w in workers if w != victim)
    in_flight = sum(min(PER_WORKER, n) for n in per_worker.values())

    seen: list[object] = []

    async def stuck() -> bool:
        inbox = await rows(db, "SELECT status, count(*) AS n FROM inbox GROUP BY status ORDER BY status")
        (tickets,) = await rows(db, "SELECT count(*) FROM ticket")
        seen[:] = [per_worker, dict((r.status, r.n) for r in inbox), tickets[0], emulator.stalls.waiting]
        processing = dict((r.status, r.n) for r in inbox).get("processing", 0)
        return bool(processing == tickets[0] == in_flight)

    await wait_until(
        stuck,
        within=30,
        what=lambda: f"{in_flight} commands claimed, committed and held at WeCom (seen {seen})",
    )
    victim_keys = [f"msg:{m}" for m, pid in taken_by.items() if pid == victim]
    held = {
        r.dedupe_key
        for r in await rows(
            db,
            "SELECT dedupe_key FROM inbox WHERE status = 'processing' AND dedupe_key = ANY(:keys)",
            keys=victim_keys,
        )
    }
    assert len(held) == min(PER_WORKER, per_worker[victim]), (held, per_worker)
    # the first minute: no worker's periodic inbox drain has run yet, so only the worker that took
    # a callback has claimed it (the dead worker's rows are exactly `held`)
    assert time.monotonic() - started < 55, "the set-up took too long for the placed kill"

    # ---- 2. SIGKILL the worker that holds `held`; the supervisor starts a new one
    os.kill(victim, signal.SIGKILL)

    async def restarted() -> list[int] | None:
        now = children(supervisor)
        return now if len(now) == 2 and victim not in now and all(alive(p) for p in now) else None

    new_workers = await wait_until(restarted, within=30, what="the supervisor to start a new worker")
    assert survivor in new_workers
    emulator.stalls.release()  # WeCom answers again (the dead worker's held calls too)

    # ---- 3. the dead worker's claims outlive their lease (moved back in time: see the docstring)
    expired_inbox = await execute(
        db,
        "UPDATE inbox SET claimed_at = claimed_at - interval '1 hour' "
        "WHERE status = 'processing' AND dedupe_key = ANY(:keys)",
        keys=sorted(held),
    )
    ghosts = {  # sends the dead worker had claimed: the held call reached WeCom, its mark_sent never ran
        r.id
        for r in await returning(
            db,
            "UPDATE delivery SET claimed_until = now() - interval '1 second' "
            "WHERE claimed_by LIKE :dead AND claimed_until > now() AND status = 'pending' RETURNING id",
            dead=f"%:{victim}:%",
        )
    }
    assert expired_inbox == len(held)

    async def inbox_settled() -> bool:
        got = await rows(db, "SELECT status, count(*) AS n FROM inbox GROUP BY status")
        seen[:] = [tuple(r) for r in got]
        return [(r.status, r.n) for r in got] == [("done", M)]

    # the live workers recover expired claims once a minute (bot.app: the "wecom-inbox" job)
    await wait_until(
        inbox_settled, within=150, what=lambda: f"all {M} inbox rows done (seen {seen})", interval=0.5
    )

    # ---- 4. each ticket's leader card reaches WeCom; the leader approves it
    def leader_card(ticket_id: int, address: str) -> SentMessage | None:
        return next(
            (
                m
                for m in emulator.records.messages
                if m.msgtype == "template_card"
                and m.body["template_card"]["task_id"].startswith(f"tb_{ticket_id}_")
                and address in m.recipients
                and APPROVE in _buttons(m)
            ),
            None,
        )

    async def cards_at_wecom() -> list[tuple[object, SentMessage]] | None:
        tickets = await rows(db, "SELECT id, creator FROM ticket ORDER BY id")
        found = [(t, leader_card(t.id, _leader(by_userid, t.creator))) for t in tickets]
        seen[:] = [len(tickets), [t.id for t, c in found if c is None]]
        return [(t, c) for t, c in found if c is not None] if all(c for _, c in found) else None

    leader_cards = await wait_until(
        cards_at_wecom, within=120, what=lambda: f"every ticket's leader card at WeCom (seen {seen})"
    )
    clicks = []
    for t, message in leader_cards:
        xml = template_card_event_xml(
            corp_id=CORP,
            from_user=_leader(by_userid, t.creator),
            create_time=int(time.time()),
            event_key=_buttons(message)[APPROVE],
            task_id=message.body["template_card"]["task_id"],
            response_code=emulator.issue_click_response_code(message.msgid),
            agent_id=AGENT,
        )
        clicks.append(deliver(we, callback_url, xml, attempts=5, retry_delay=0.5))
    assert all(d.ok for d in await asyncio.gather(*clicks))

    async def approved() -> bool:
        (open_,) = await rows(
            db,
            "SELECT count(*) FROM delivery WHERE status = 'pending' "
            "OR (close_due_at IS NOT NULL AND closed_at IS NULL)",
        )
        (moved,) = await rows(db, "SELECT count(*) FROM ticket WHERE state_id <> 104")
        (inbox_open,) = await rows(db, "SELECT count(*) FROM inbox WHERE status <> 'done'")
        seen[:] = [open_[0], moved[0], inbox_open[0]]
        return bool(open_[0] == 0 and moved[0] == 0 and inbox_open[0] == 0)

    await wait_until(
        approved,
        within=120,
        what=lambda: f"every ticket approved, every card closed (open, unmoved, inbox: {seen})",
        interval=0.5,
    )

    # ---- 5. count: the database and what reached WeCom
    tickets = await rows(db, "SELECT id, creator FROM ticket ORDER BY id")
    per_creator = Counter(t.creator for t in tickets)
    held_users = {f"req{int(k.split(':')[1]) - MSG_BASE:03d}" for k in held}
    deliveries_db = await rows(
        db, "SELECT id, ticket_id, address, kind, status, msg_id, last_error FROM delivery ORDER BY id"
    )
    report = (
        f"killed worker {victim} held {sorted(held)} (users {sorted(held_users)}) and sends {sorted(ghosts)}; "
        f"tickets per creator: {dict(per_creator)}; "
        f"ghost deliveries: {[(d.id, d.status, d.last_error[:80]) for d in deliveries_db if d.id in ghosts]}; "
        f"WeCom refusals: {[(f.path, f.errcode) for f in emulator.records.failures]}"
    )
    records = emulator.records
    assert not records.drops, f"WeCom dropped messages (rate limit): {records.drops}"
    cards = [m for m in records.messages if m.msgtype == "template_card"]
    task_ids = Counter(m.body["template_card"]["task_id"] for m in cards)
    assert all(n == 1 for n in task_ids.values()), f"a card reached WeCom twice: {task_ids}"
    by_msgid = Counter(m.msgid for m in cards)
    for d in deliveries_db:
        assert d.status == "sent", f"delivery {tuple(d)} not sent; {report}"
        if d.id not in ghosts or d.msg_id:
            assert by_msgid[d.msg_id] == 1, (
                f"delivery {d.id} ({d.kind} to {d.address}) is not one WeCom message"
            )
    assert len(cards) == len(deliveries_db), (len(cards), len(deliveries_db), report)
    per_ticket = Counter((d.ticket_id, d.kind, d.address) for d in deliveries_db)
    for t in tickets:
        assert per_ticket[(t.id, "pending", _leader(by_userid, t.creator))] == 1, (t, report)
        for hr in HR:
            assert per_ticket[(t.id, "pending", hr)] == 1, (t, hr, report)
        assert per_ticket[(t.id, "notice", f"Req{t.creator[3:]}")] == 1, (t, report)
    assert len(deliveries_db) == len(tickets) * 4, report
    updates = Counter(u.msgid for u in records.updates)
    for _, message in leader_cards:  # the ghosts' too: the click brings the code that closes them
        assert updates[message.msgid] == 1, f"leader card {message.msgid} not updated exactly once: {report}"
    replies = Counter(r for m in records.messages if m.msgtype == "text" for r in m.delivered_to)
    assert set(replies) == set(by_userid), replies

    # ---- 6. nothing lost, nothing doubled: one ticket per create command, the dead worker's
    # too. Its creates had committed but were not marked done; run again after the lease, each
    # finds the ticket its message made (ticket_request) and answers with it. So its requesters
    # may read the answer twice (the held one, released at WeCom after the kill, and the re-run's),
    # both naming the one ticket; everyone else reads it once.
    assert set(per_creator) == {p.username for p in by_userid.values()}, report
    for username, n in per_creator.items():
        assert n == 1, f"{username} has {n} tickets; {report}"
        answers = replies[f"Req{username[3:]}"]
        assert answers == 1 or (username in held_users and answers == 2), (username, replies, report)
    sn_of = {t.creator: t.sn for t in await rows(db, "SELECT creator, sn FROM ticket")}
    for m in records.messages:
        who = by_userid.get(m.recipients[0]) if m.msgtype == "text" else None
        if who is not None and "已发起工单" in str(m.body):
            assert sn_of[who.username] in str(m.body), (m.body, report)

    # ---- 7. the dead worker's claimed sends: another worker sends them after the lease. One whose
    # call was in flight when the worker died may have reached WeCom without its mark_sent: the
    # resend reuses the task_id, WeCom refuses a task_id it has seen (the emulator answers 42035),
    # and the sender reads that as "sent by the earlier attempt" (no msgid recorded). Either way the
    # card is at WeCom once, the delivery is "sent", and its leader card was closed on the click.
    for d in deliveries_db:
        if d.id in ghosts:
            assert sum(1 for k in task_ids if k.split("_")[2] == str(d.id * 100)) == 1, (tuple(d), report)
    print(report)  # the findings, for -s


def _leader(by_userid: dict[str, Requester], creator: str) -> str:
    return by_userid[f"Req{creator[3:]}"].leader
