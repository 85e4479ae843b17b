"""WeCom callbacks against a real `ticketbot serve`: the ack latency of encrypted callbacks under an
open-loop load, and the time from a card click to the updated card at WeCom.

Each measured database gets two fresh set-ups (database, `ticketbot serve` subprocess with WeCom
enabled, and an in-process WeCom emulator on 127.0.0.1 that the server's API base points at), one
per phase, so neither phase inherits the other's backlog or the per-member send quotas:

1. ack: encrypted, signed text callbacks ("帮助" / "待办", round-robin over the demo directory's
   WeCom members, each with a unique MsgId) POSTed to /wecom/callback on a fixed schedule
   (`--rate` per second for `--seconds`, after `--warmup` seconds at the same rate that are not
   measured). Open loop: each POST leaves at its scheduled time whether or not earlier ones have
   been answered (at most `--concurrency` in flight), and latency counts from the scheduled time,
   so a slow server cannot hide its queueing by slowing the client down. p50 / p99 / max, and how
   many answers were not an empty 200 within WeCom's 5 s deadline. The server answers each
   message in the background; its WeCom client sends a member at most 30 messages a minute, so
   only the first ~30 replies per member (~420 for the demo's 14) go out and the rest are logged
   and skipped. The warm-up has each member say each text once and otherwise comes from a corp
   member outside ticketbot's directory, so every database's measured window starts with the
   members' quotas (almost) whole and does the same work.
2. clicks: `--clicks` leave requests created in chat by LiuYang; once WangQiang's card for each
   has reached the emulator (bounded wait), each card's "同意" is clicked (a template_card_event
   with a response code the emulator issues for that card), one at a time, and the time from
   sending the click to the emulator recording the `update_template_card` of that card is
   measured (the emulator's `on_record` hook stamps arrivals with time.perf_counter).

With `--workers 1,2` (the default) PostgreSQL is measured with one `serve` process and with
`serve --workers 2` (SQLite is single-process: one only).

Run: .venv/bin/python -m bench.callbacks [--db sqlite|postgres|both] [--workers 1,2] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import secrets
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from sqlalchemy import func, select
from yarl import URL

from bench._server import (
    CONFIG_DIR,
    BenchError,
    DbKind,
    Server,
    fresh_database,
    percentile,
    rounded,
    running_server_async,
)
from bench.api_cycle import machine_busy_seconds, print_profile
from emulator.wecom import (
    CardUpdate,
    DroppedMessage,
    Failure,
    SentMessage,
    SystemClock,
    WeComEmulator,
    encrypt_callback,
    template_card_event_xml,
    text_message_xml,
)

CORP = "wwbenchcorp0000001"
AGENT = 1000002
REQUESTER = "LiuYang"
APPROVER = "WangQiang"
CREATE = "发起 请假申请 start_date=2024-05-06 end_date=2024-05-07 days=2 reason=bench"
APPROVE = "同意"
CHAT_TEXTS = ("帮助", "待办")
# a WeCom member of the emulated corp who is not in ticketbot's directory: most of the warm-up comes
# from them, so the members' 30-replies-a-minute quotas are still (almost) whole when measuring
OUTSIDER = "BenchOutsider"
CALLBACK_PATH = "/wecom/callback"
WECOM_DEADLINE_S = 5.0  # WeCom waits this long for the answer, then retries
NOTIFIER_POLL_S = 2.0  # bot.notify.notifier.Notifier's poll_seconds (it also runs at once when kicked)
ACK_P99_TARGET_MS = 50.0
CLICK_P95_TARGET_MS = 300.0
XML = {"Content-Type": "text/xml"}


def _aes_key() -> str:
    """A fresh 43-character EncodingAESKey (base64 of 32 bytes without the '=')."""
    return base64.b64encode(secrets.token_bytes(32)).decode()[:43]


def wecom_members(config_dir: Path) -> list[tuple[str, str]]:
    """(WeCom userid, alias) of every directory user with a WeCom userid, in org.yaml's order."""
    org = yaml.safe_load((config_dir / "org.yaml").read_text(encoding="utf-8"))
    return [
        (str(u["wecom_userid"]), str(u.get("alias", u["username"])))
        for u in org["users"]
        if u.get("wecom_userid")
    ]


# ------------------------------------------------------------------------------------------ the set-up


@dataclass
class Stack:
    """One database, one server, one emulator."""

    kind: DbKind
    database_url: str
    server: Server
    emulator: WeComEmulator
    token: str
    aes_key: str
    session: aiohttp.ClientSession

    @property
    def callback_url(self) -> str:
        return self.server.base_url + CALLBACK_PATH

    def signed(self, plaintext_xml: str) -> tuple[URL, bytes]:
        """The URL (msg_signature, timestamp, nonce) and body of the POST WeCom makes for this XML."""
        params, body = encrypt_callback(
            plaintext_xml,
            token=self.token,
            aes_key=self.aes_key,
            corp_id=CORP,
            timestamp=str(int(time.time())),
            nonce=str(secrets.randbelow(10**10)),
        )
        query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        return URL(f"{self.callback_url}?{query}", encoded=True), body.encode()


@asynccontextmanager
async def stack(
    kind: DbKind,
    args: argparse.Namespace,
    members: Sequence[tuple[str, str]],
    *,
    profile_to: Path | None = None,
    workers: int = 1,
) -> AsyncIterator[Stack]:
    """A fresh database and `ticketbot serve` with WeCom on, pointed at an emulator served here."""
    org: dict[str, list[dict[str, Any]]] = {
        "departments": [{"id": 1, "name": "总部", "parentid": 0}],
        "users": [
            *({"userid": uid, "name": name, "department": [1]} for uid, name in members),
            {"userid": OUTSIDER, "name": "bench outsider", "department": [1]},
        ],
    }
    secret, token, aes_key = (
        secrets.token_urlsafe(24),
        secrets.token_urlsafe(16),
        _aes_key(),
    )  # fresh per set-up
    emulator = WeComEmulator(corp_id=CORP, apps={AGENT: secret}, clock=SystemClock(), org=org)
    runner = web.AppRunner(emulator.app(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = int(runner.addresses[0][1])
        env = {
            "TICKETBOT_WECOM_CORP_ID": CORP,
            "TICKETBOT_WECOM_AGENT_ID": str(AGENT),
            "TICKETBOT_WECOM_SECRET": secret,
            "TICKETBOT_WECOM_TOKEN": token,
            "TICKETBOT_WECOM_AES_KEY": aes_key,
            "TICKETBOT_WECOM_API_BASE": f"http://127.0.0.1:{port}",
            "TICKETBOT_WECOM_ORG_SYNC_MINUTES": "0",
            "TICKETBOT_PUBLIC_URL": "https://bot.example.com",
        }
        async with (
            fresh_database(kind) as url,
            running_server_async(
                url, config_dir=args.config, extra_env=env, profile_to=profile_to, workers=workers
            ) as server,
        ):
            connector = aiohttp.TCPConnector(limit=args.concurrency)
            async with aiohttp.ClientSession(connector=connector) as session:
                yield Stack(kind, url, server, emulator, token, aes_key, session)
    finally:
        await runner.cleanup()


async def post(session: aiohttp.ClientSession, url: URL, body: bytes) -> tuple[int | None, str]:
    """(status, body) of one callback POST; (None, why) when there is no answer within WeCom's deadline."""
    try:
        async with asyncio.timeout(WECOM_DEADLINE_S):
            async with session.post(url, data=body, headers=XML) as resp:
                return resp.status, await resp.text()
    except TimeoutError:
        return None, f"no answer within {WECOM_DEADLINE_S:.0f} s"
    except aiohttp.ClientError as exc:
        return None, f"{type(exc).__name__}: {str(exc)[:120]}"


async def inbox_counts(database_url: str) -> dict[str, int]:
    """Rows of the server's inbox by status (read-only, through the store's own URL handling)."""
    from store.db import Database
    from store.tables import inbox

    db = Database(database_url)
    try:
        async with db.read() as conn:
            rows = (await conn.execute(select(inbox.c.status, func.count()).group_by(inbox.c.status))).all()
    finally:
        await db.dispose()
    return {str(status): int(n) for status, n in rows}


# ------------------------------------------------------------------------------------------ 1. ack


@dataclass
class Ack:
    due: float  # scheduled send time (perf_counter)
    sent: float  # when the request really started (after waiting for a concurrency slot)
    done: float
    status: int | None
    body: str


async def ack_phase(
    st: Stack, args: argparse.Namespace, members: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    warm = round(args.rate * args.warmup)
    total = round(args.rate * args.seconds)
    requests: list[tuple[URL, bytes]] = []
    m = len(members)
    for i in range(warm + total):
        j = i - warm  # measured: every member in turn, alternating the texts
        if i >= warm:
            userid, content = members[j % m][0], CHAT_TEXTS[(j // m) % len(CHAT_TEXTS)]
        elif i < 2 * m:  # warm-up: each member says each text once, the rest is the outsider
            userid, content = members[i % m][0], CHAT_TEXTS[i // m]
        else:
            userid, content = OUTSIDER, CHAT_TEXTS[0]
        xml = text_message_xml(
            corp_id=CORP,
            from_user=userid,
            content=content,
            msg_id=1_000_000 + i,  # unique: every callback is a new message
            agent_id=AGENT,
            create_time=int(time.time()),
        )
        requests.append(st.signed(xml))

    replies = Counter[str]()  # text replies the server sent to the emulator (not held back by its limiter)
    measuring = False

    def on_record(item: SentMessage | CardUpdate | DroppedMessage | Failure) -> None:
        if isinstance(item, SentMessage) and item.msgtype == "text":
            replies["measured" if measuring else "warm-up"] += 1

    st.emulator.on_record = on_record
    slots = asyncio.Semaphore(args.concurrency)
    results: list[Ack | None] = [None] * len(requests)

    async def one(i: int, due: float) -> None:
        async with slots:
            sent = time.perf_counter()
            status, body = await post(st.session, *requests[i])
            results[i] = Ack(due, sent, time.perf_counter(), status, body)

    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter() + 0.05
    cpu_all0 = st.server.cpu_seconds()
    cpu0 = busy0 = pcpu0 = None
    measured_start = start
    for i in range(len(requests)):
        due = start + i / args.rate
        if i == warm:
            measuring = True
            cpu0, busy0, pcpu0 = st.server.cpu_seconds(), machine_busy_seconds(), time.process_time()
            measured_start = due
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)  # bounded: each POST gives up after WeCom's deadline
    last_answer = time.perf_counter()
    elapsed = last_answer - measured_start
    cpu1, busy1, pcpu1 = st.server.cpu_seconds(), machine_busy_seconds(), time.process_time()
    measuring = False

    # has processing kept up? wait (bounded) until the inbox has nothing pending or in progress
    drained_after: float | None = None
    counts: dict[str, int] = {}
    drain_deadline = time.perf_counter() + args.drain_wait
    while True:
        counts = await inbox_counts(st.database_url)
        if not counts.get("pending", 0) and not counts.get("processing", 0):
            drained_after = time.perf_counter() - last_answer
            break
        if time.perf_counter() > drain_deadline:
            break
        await asyncio.sleep(0.25)
    cpu_all1 = st.server.cpu_seconds()
    st.emulator.on_record = None

    acks = [a for a in results[warm:] if a is not None]
    from_due = [(a.done - a.due) * 1000 for a in acks]
    from_sent = [(a.done - a.sent) * 1000 for a in acks]
    lag = [(a.sent - a.due) * 1000 for a in acks]
    not_200 = [a for a in acks if a.status != 200]
    errors = Counter(f"{a.status}: {a.body[:80]}" for a in not_200)
    server_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    # everything the server did for the phase's callbacks: acks and processing, until the inbox drained
    cpu_all = None if cpu_all0 is None or cpu_all1 is None else cpu_all1 - cpu_all0
    p99 = percentile(from_due, 99)
    return {
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "warmup_s": args.warmup,
        "concurrency": args.concurrency,
        "sent": len(acks),
        # the rate the POSTs really left at (the client keeping to the schedule)
        "achieved_rate_per_s": rounded(
            (len(acks) - 1) / (acks[-1].sent - acks[0].sent) if len(acks) > 1 else float("nan"), 1
        ),
        "not_200": len(not_200),
        "non_empty_200": sum(1 for a in acks if a.status == 200 and a.body),
        # answered, but over WeCom's 5 s after the scheduled time: WeCom would have sent it again
        "over_deadline_from_schedule": sum(1 for x in from_due if x > WECOM_DEADLINE_S * 1000),
        "error_samples": dict(errors.most_common(5)),
        # from the scheduled send time (includes waiting for a concurrency slot: no coordinated omission)
        "p50_ms": rounded(percentile(from_due, 50)),
        "p99_ms": rounded(p99),
        "max_ms": rounded(max(from_due, default=float("nan"))),
        "from_send": {
            "p50_ms": rounded(percentile(from_sent, 50)),
            "p99_ms": rounded(percentile(from_sent, 99)),
            "max_ms": rounded(max(from_sent, default=float("nan"))),
        },
        "send_lag_ms": {"p99": rounded(percentile(lag, 99)), "max": rounded(max(lag, default=float("nan")))},
        "target_p99_ms": ACK_P99_TARGET_MS,
        "meets_target": p99 < ACK_P99_TARGET_MS and not not_200,
        "replies_sent_measured": replies["measured"],
        "replies_sent_warmup": replies["warm-up"],
        "inbox": counts,
        "inbox_drained_after_s": rounded(drained_after) if drained_after is not None else None,
        "server_cpu_ms_per_callback": rounded(
            cpu_all * 1000 / len(requests)
            if cpu_all is not None and drained_after is not None
            else float("nan")
        ),
        "server_cores_used": rounded(
            server_cpu / elapsed if server_cpu is not None and elapsed else float("nan")
        ),
        "client_cores_used": rounded(
            (pcpu1 - pcpu0) / elapsed if pcpu0 is not None and elapsed else float("nan")
        ),
        "machine_busy_cores": rounded(
            (busy1 - busy0) / elapsed if busy0 is not None and busy1 is not None and elapsed else float("nan")
        ),
    }


# ------------------------------------------------------------------------------------------ 2. clicks


def _buttons(card: SentMessage) -> dict[str, str]:
    """text -> key of the card's buttons."""
    return {b["text"]: b["key"] for b in card.body.get("template_card", {}).get("button_list", [])}


async def click_phase(st: Stack, args: argparse.Namespace) -> dict[str, Any]:
    n = args.clicks
    cards: list[SentMessage] = []  # the approver's cards with an approve button, in arrival order
    card_at: list[float] = []  # their arrival times (perf_counter)
    updates: dict[str, tuple[float, CardUpdate]] = {}  # msgid -> first update (perf_counter, record)
    waiting: dict[str, asyncio.Event] = {}
    all_cards = asyncio.Event()

    def on_record(item: SentMessage | CardUpdate | DroppedMessage | Failure) -> None:
        now = time.perf_counter()
        if isinstance(item, SentMessage):
            if item.msgtype == "template_card" and APPROVER in item.recipients and APPROVE in _buttons(item):
                cards.append(item)
                card_at.append(now)
                if len(cards) >= n:
                    all_cards.set()
        elif isinstance(item, CardUpdate) and item.msgid not in updates:
            updates[item.msgid] = (now, item)
            if (event := waiting.get(item.msgid)) is not None:
                event.set()

    st.emulator.on_record = on_record
    create_errors: Counter[str] = Counter()
    t_create = time.perf_counter()
    for i in range(n):
        xml = text_message_xml(
            corp_id=CORP,
            from_user=REQUESTER,
            content=CREATE,
            msg_id=2_000_000 + i,
            agent_id=AGENT,
            create_time=int(time.time()),
        )
        status, body = await post(st.session, *st.signed(xml))
        if status != 200:
            create_errors[f"{status}: {body[:80]}"] += 1

    # WeCom allows 30 messages a minute per member: past 30 cards the server's client holds the rest
    # back and the notifier retries them when the minute allows (so > 30 clicks take a minute more)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(args.card_wait):
            await all_cards.wait()
    # time from the first create to the k-th card: the 30/min limit shows as a jump after card 30
    arrivals = [round(t - t_create, 2) for t in card_at]

    click_ms: list[float] = []
    ack_ms: list[float] = []
    missing = 0
    wrong: list[str] = []
    click_errors: Counter[str] = Counter()
    for card in cards[:n]:
        tc = card.body["template_card"]
        xml = template_card_event_xml(
            corp_id=CORP,
            from_user=APPROVER,
            create_time=int(time.time()),
            event_key=_buttons(card)[APPROVE],
            task_id=tc["task_id"],
            response_code=st.emulator.issue_click_response_code(card.msgid),
            agent_id=AGENT,
        )
        url, signed_body = st.signed(xml)
        event = waiting[card.msgid] = asyncio.Event()
        t0 = time.perf_counter()
        status, answer = await post(st.session, url, signed_body)
        t_ack = time.perf_counter()
        if status != 200:
            click_errors[f"{status}: {answer[:80]}"] += 1
            continue
        ack_ms.append((t_ack - t0) * 1000)
        try:
            async with asyncio.timeout(args.update_wait):
                await event.wait()
        except TimeoutError:
            missing += 1
            continue
        at, update = updates[card.msgid]
        click_ms.append((at - t0) * 1000)
        replace_text = str(update.body.get("template_card", {}).get("replace_text", ""))
        if not replace_text.startswith("已同意"):
            wrong.append(replace_text[:60])
        await asyncio.sleep(args.click_gap)  # let the pass that sent it finish before the next click
    st.emulator.on_record = None

    p95 = percentile(click_ms, 95)
    p50 = percentile(click_ms, 50)
    return {
        "clicks": n,
        "cards": len(cards),
        "cards_wait_s": arrivals[-1] if arrivals else None,  # first create -> last card
        "card_30_s": arrivals[min(n, 30) - 1] if len(arrivals) >= min(n, 30) else None,
        "create_errors": dict(create_errors.most_common(5)),
        "measured": len(click_ms),
        "missing_updates": missing,
        "click_errors": dict(click_errors.most_common(5)),
        "wrong_updates": len(wrong),
        "wrong_update_samples": wrong[:3],
        "click_gap_s": args.click_gap,
        "p50_ms": rounded(p50),
        "p95_ms": rounded(p95),
        "max_ms": rounded(max(click_ms, default=float("nan"))),
        "min_ms": rounded(min(click_ms, default=float("nan"))),
        "ack_p50_ms": rounded(percentile(ack_ms, 50)),
        "samples_ms": [round(x, 1) for x in click_ms],  # in click order
        "over_1s": sum(1 for x in click_ms if x > 1000),
        "notifier_poll_s": NOTIFIER_POLL_S,
        # a kicked pass answers in tens of ms; half the poll interval or more means the poll did it
        "poll_dominated": bool(click_ms) and p50 >= NOTIFIER_POLL_S * 1000 / 2,
        "target_p95_ms": CLICK_P95_TARGET_MS,
        "meets_target": bool(click_ms) and p95 < CLICK_P95_TARGET_MS and not missing,
    }


# ------------------------------------------------------------------------------------------ report


def _server_info(server: Server) -> dict[str, Any]:
    info: dict[str, Any] = {
        "peak_rss_mb": rounded(server.peak_rss_mb or float("nan"), 1),
        "stderr_lines": server.stderr_lines,
    }
    errors = [line for line in server.stderr_tail if '"ERROR"' in line or "Traceback" in line]
    if errors:
        info["stderr_errors_tail"] = errors[-5:]
    return info


async def run_one(
    kind: DbKind, args: argparse.Namespace, members: Sequence[tuple[str, str]], workers: int = 1
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "bench": "callbacks",
        "db": kind,
        "workers": workers,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "members": len(members),
    }
    for phase, wanted in (("clicks", args.clicks), ("ack", args.seconds)):
        if not wanted:
            continue
        profile = None if args.profile is None else args.profile.with_suffix(f".{kind}.{phase}.pstats")
        async with stack(kind, args, members, profile_to=profile, workers=workers) as st:
            if phase == "clicks":
                result[phase] = await click_phase(st, args)
            else:
                result[phase] = await ack_phase(st, args, members)
            server = st.server
        result[phase]["server"] = _server_info(server)
        if profile is not None and profile.exists():
            count = result[phase]["measured"] if phase == "clicks" else result[phase]["sent"]
            print(f"--- {phase} phase ---", file=sys.stderr)
            print_profile(profile, kind, count)
    return result


def _f(value: Any) -> str:
    return "-" if value is None else str(value)


def _label(result: dict[str, Any]) -> str:
    workers = int(result.get("workers", 1))
    return result["db"] if workers == 1 else f"{result['db']} x{workers}"


def table(results: Sequence[dict[str, Any]]) -> str:
    lines: list[str] = []
    acks = [r for r in results if "ack" in r]
    if acks:
        a0 = acks[0]["ack"]
        head = (
            f"{'db':<9}{'callbacks':>10}{'sent/s':>8}{'ack p50 / p99 / max ms':>30}{'not 200':>9}{'> 5 s':>7}"
            f"{'p99 < 50 ms':>13}{'srv CPU ms/cb':>15}{'inbox drained':>15}{'busy cores':>12}"
        )
        lines += [
            f"ack latency: {a0['rate_per_s']:g}/s open loop for {a0['seconds']:g} s",
            head,
            "-" * len(head),
        ]
        for r in acks:
            a = r["ack"]
            lat = f"{_f(a['p50_ms'])} / {_f(a['p99_ms'])} / {_f(a['max_ms'])}"
            drained = "-" if a["inbox_drained_after_s"] is None else f"+{a['inbox_drained_after_s']} s"
            lines.append(
                f"{_label(r):<9}{a['sent']:>10}{_f(a['achieved_rate_per_s']):>8}{lat:>30}{a['not_200']:>9}"
                f"{a['over_deadline_from_schedule']:>7}"
                f"{'ok' if a['meets_target'] else 'MISS':>13}{_f(a['server_cpu_ms_per_callback']):>15}"
                f"{drained:>15}{_f(a['machine_busy_cores']):>12}"
            )
        lines.append(
            f"(latency from each POST's scheduled time; > 5 s: answered after WeCom's deadline, it would "
            f"retry; sent/s under the rate: {a0['concurrency']} in flight, the client had to wait; "
            "srv CPU: server process, acks + processing until the inbox drained)"
        )
    clicks = [r for r in results if "clicks" in r]
    if clicks:
        head = (
            f"{'db':<9}{'clicks':>8}{'updated':>9}{'click -> updated card p50 / p95 / max ms':>43}"
            f"{'p95 < 300 ms':>14}{'click ack p50':>15}{'> 1 s':>7}{'cards after':>13}"
        )
        if lines:
            lines.append("")
        lines += ["click -> card update (one click at a time)", head, "-" * len(head)]
        for r in clicks:
            c = r["clicks"]
            lat = f"{_f(c['p50_ms'])} / {_f(c['p95_ms'])} / {_f(c['max_ms'])}"
            lines.append(
                f"{_label(r):<9}{c['clicks']:>8}{c['measured']:>9}{lat:>43}"
                f"{'ok' if c['meets_target'] else 'MISS':>14}{_f(c['ack_p50_ms']):>15}{c['over_1s']:>7}"
                f"{str(c['cards_wait_s']) + ' s':>13}"
            )
            if c["poll_dominated"]:
                lines.append(
                    f"  {_label(r)}: the median is over half the notifier's {c['notifier_poll_s']:g} s poll: "
                    "updates wait for the poll, not the kick"
                )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ main


def _workers(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of worker counts: {text!r} (e.g. 1,2)") from None
    if not counts or any(not 1 <= n <= 8 for n in counts):
        raise argparse.ArgumentTypeError(f"worker counts must be within 1..8: {text!r}")
    return counts


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.callbacks", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument(
        "--workers",
        type=_workers,
        default=[1, 2],
        metavar="N[,N...]",
        help="`serve --workers N` for each N (PostgreSQL; SQLite runs 1 only); default 1,2",
    )
    p.add_argument("--rate", type=float, default=200.0, help="callbacks per second (default 200)")
    p.add_argument(
        "--seconds", type=float, default=10.0, help="measured seconds of callbacks (default 10; 0: skip)"
    )
    p.add_argument("--warmup", type=float, default=2.0, help="seconds at --rate before measuring (default 2)")
    p.add_argument("--concurrency", type=int, default=256, help="callbacks in flight at most (default 256)")
    p.add_argument(
        "--clicks", type=int, default=50, help="tickets created, cards clicked (default 50; 0: skip)"
    )
    p.add_argument(
        "--card-wait", type=float, default=150.0, help="max seconds to wait for the cards (default 150)"
    )
    p.add_argument(
        "--update-wait", type=float, default=10.0, help="max seconds per click for its update (default 10)"
    )
    p.add_argument("--click-gap", type=float, default=0.1, help="pause between clicks (default 0.1 s)")
    p.add_argument(
        "--drain-wait", type=float, default=60.0, help="max seconds to wait for the inbox (default 60)"
    )
    p.add_argument("--config", type=Path, default=CONFIG_DIR, help="config directory (default: shipped)")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="FILE",
        help="run the servers under cProfile, write FILE.<db>.<phase>.pstats and print their hottest "
        "functions (slows the server: don't compare those numbers with unprofiled runs)",
    )
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results there")
    args = p.parse_args(argv)
    if not 1 <= args.rate <= 2000 or not 0 <= args.seconds <= 120 or not 0 <= args.warmup <= 60:
        p.error("--rate within 1..2000, --seconds within 0..120, --warmup within 0..60")
    if not 1 <= args.concurrency <= 1024 or not 0 <= args.clicks <= 200:
        p.error("--concurrency within 1..1024, --clicks within 0..200")
    if not 0 < args.card_wait <= 900 or not 0 < args.update_wait <= 60 or not 0 < args.drain_wait <= 600:
        p.error("--card-wait within (0, 900], --update-wait within (0, 60], --drain-wait within (0, 600]")
    if not 0 <= args.click_gap <= 10:
        p.error("--click-gap within 0..10")
    if args.seconds and args.rate * args.seconds < 2:
        p.error("--rate x --seconds must be at least 2 callbacks")
    if not args.seconds and not args.clicks:
        p.error("nothing to do: --seconds 0 and --clicks 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    kinds: list[DbKind] = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    members = wecom_members(args.config)
    if not any(uid == APPROVER for uid, _ in members) or not any(uid == REQUESTER for uid, _ in members):
        print(
            f"callbacks: {args.config / 'org.yaml'} has no {REQUESTER} / {APPROVER} WeCom member",
            file=sys.stderr,
        )
        return 1
    results: list[dict[str, Any]] = []
    try:
        for kind in kinds:
            for workers in args.workers:
                if workers > 1 and kind == "sqlite":
                    print(f"callbacks: skipping sqlite with {workers} workers (SQLite is single-process)")
                    continue
                results.append(asyncio.run(run_one(kind, args, members, workers)))
                print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    except BenchError as exc:
        print(f"callbacks: {exc}", file=sys.stderr)
        return 1
    if args.json is not None:
        args.json.write_text(
            json.dumps({"bench": "callbacks", "results": results}, ensure_ascii=False, indent=2)
        )
    print()
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
