"""Restart PostgreSQL under `ticketbot serve` while WeCom keeps delivering callbacks.

A private cluster (initdb into a temporary directory, a free port, trust auth) serves this test
only; the shared server at 5432 is never touched. `ticketbot serve` (one worker, WeCom on, against
the in-process emulator) gets one chat message a member at a steady rate, each delivered the way
WeCom does it (sent again while the answer is not a 200), and in the middle the cluster is
restarted with `pg_ctl restart -m fast -w`. While the database is down the server must refuse to
acknowledge (so WeCom sends it again), and once it is back the server must carry on by itself.

Counted afterwards: every MsgId is one inbox row, `done`; every member got exactly one chat
answer at WeCom (nothing lost, nothing answered twice).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

from bench._server import running_server_async
from store.db import Database
from tests.faults.procs import (
    CALLBACK_PATH,
    create_xml,
    deliver,
    private_cluster,
    rows,
    wait_until,
    wecom,
    write_config,
)

MEMBERS = 40
RATE = 8.0  # callbacks a second
RESTART_AT = 12  # the restart starts once this many callbacks have been acknowledged
MSG_BASE = 8_000_000
TEXT = "帮助"  # answered from the chat handlers; stored and processed from the inbox like any message


async def test_postgres_restart_under_load_loses_and_doubles_nothing(tmp_path: Path) -> None:
    config_dir, people = write_config(tmp_path, MEMBERS)
    userids = [p.userid for p in people]
    with private_cluster() as cluster:
        async with (
            wecom(config_dir) as we,
            running_server_async(cluster.url, config_dir=config_dir, extra_env=we.env) as server,
        ):
            callback_url = server.base_url + CALLBACK_PATH
            acked = asyncio.Event()
            acks = 0
            answers: Counter[str] = Counter()
            all_answered = asyncio.Event()

            def on_record(item: object) -> None:
                to = getattr(item, "delivered_to", ())
                if getattr(item, "msgtype", "") == "text":
                    answers.update(to)
                    if all(answers[u] >= 1 for u in userids):
                        all_answered.set()

            we.emulator.on_record = on_record

            async def one(i: int, userid: str):  # type: ignore[no-untyped-def]
                nonlocal acks
                await asyncio.sleep(i / RATE)  # the schedule: a steady rate, open loop
                # WeCom's retry: again after a pause while there is no 200 (a restart takes seconds)
                result = await deliver(
                    we, callback_url, create_xml(userid, MSG_BASE + i, TEXT), attempts=60, retry_delay=0.5
                )
                if result.ok:
                    acks += 1
                    if acks >= RESTART_AT:
                        acked.set()
                return result

            senders = [asyncio.create_task(one(i, uid)) for i, uid in enumerate(userids)]
            try:
                await asyncio.wait_for(acked.wait(), timeout=60)
                t0 = time.monotonic()
                await asyncio.to_thread(cluster.pg_ctl, "restart", "-m", "fast", "-w")
                restart_s = time.monotonic() - t0
                results = await asyncio.gather(*senders)
            finally:
                for task in senders:
                    task.cancel()
            refused = [r for r in results if any(s != 200 for s in r.statuses)]
            assert all(r.ok for r in results), [r.statuses for r in results]
            # the restart was felt: some callbacks were refused (not acknowledged) and delivered again
            assert refused, f"no callback was refused during the {restart_s:.1f} s restart"
            assert all(s in (None, 503) for r in refused for s in r.statuses[:-1]), [
                r.statuses for r in refused
            ]

            await asyncio.wait_for(all_answered.wait(), timeout=90)
            db = Database(cluster.url)
            try:
                seen: list[object] = []

                async def settled() -> bool:
                    got = await rows(
                        db,
                        "SELECT status, attempts, left(last_error, 160) AS err, count(*) AS n FROM inbox "
                        "GROUP BY 1, 2, 3",
                    )
                    seen[:] = [tuple(r) for r in got]
                    return [(r.status, r.n) for r in got] == [("done", MEMBERS)]

                await wait_until(
                    settled,
                    within=90,
                    what=lambda: f"all {MEMBERS} inbox rows done (seen {seen})",
                    interval=0.5,
                )
                keys = [r.dedupe_key for r in await rows(db, "SELECT dedupe_key FROM inbox ORDER BY id")]
            finally:
                await db.dispose()
            assert sorted(keys) == sorted(f"msg:{MSG_BASE + i}" for i in range(MEMBERS))
            assert all(answers[u] == 1 for u in userids), f"answers per member: {answers}"
            assert set(answers) == set(userids), answers
            assert not we.emulator.records.drops
        assert server.returncode == 0, server.stderr_tail
