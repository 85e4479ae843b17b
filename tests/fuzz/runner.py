"""The callback fuzz's runner: a case made concrete (`Sent`; `Built`, what the properties expect of
it), the app's `Answer`, the endpoints (`Endpoint`: their inbox platform and documented refusals),
`Fuzzer` (sends a case and checks the properties: `Fuzzer.check`) and `fuzz` (one endpoint and
layer: a bounded, derandomized hypothesis run of `EXAMPLES[label]` cases, tallied in `Tally`)."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar
from unittest import mock

import pytest
from aiohttp import StreamReader, web
from aiohttp.test_utils import make_mocked_request
from hypothesis import strategies as st
from multidict import CIMultiDict
from yarl import URL

from bot.app import NOTIFIER
from bot.handlers import commands
from bot.http import error_middleware
from tests.case_counts import CaseCounts
from tests.db_snapshot import DbWatch, TableDiff, describe_diff, row_value, rows_diff
from tests.fuzz.reasons import CARD_REASONS, EVENT_REASONS, ROBOT_REASONS, WECOM_REASONS
from tests.fuzz.support import (
    WAIT,
    LogWatch,
    Loop,
    Platforms,
    drain,
    held,
    run_cases,
)
from tests.fuzz.world import World

C = TypeVar("C")
# Generated cases per endpoint and layer, per backend (the explicit ones come on top). The whole
# fuzz (test_callback_fuzz.py), both backends, runs in about a minute on a slow shared 2-core machine.
EXAMPLES = {
    "wecom outer": 70,
    "wecom inner": 50,
    "wecom cut short": 8,
    "dingtalk events outer": 40,
    "dingtalk events inner": 40,
    "dingtalk robot outer": 40,
    "dingtalk robot inner": 40,
    "dingtalk card outer": 35,
    "dingtalk card inner": 50,
    "dingtalk cut short": 12,
}
TRACE_MARKERS = ("Traceback", 'File "', '.py", line')


# ERROR records that are a handled outcome, not a bug: a reply the platform refused to take
# (a fuzzed sender unknown to it, a session webhook that is not DingTalk's)
HANDLED_ERRORS = ("wecom reply not sent", "dingtalk reply not sent")
TICKET_TABLES = frozenset(
    {
        "ticket",
        "ticket_user",
        "flow_log",
        "sn_counter",
        "outbox",
        "ticket_request",
        "due_work",
        "hook_call",
        "webhook_call",
        "delivery",
        "chat_draft",
        "work_order",
    }
)


# ---------------------------------------------------------------- requests, answers, the checks


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    query: str  # exactly as on the wire
    headers: tuple[tuple[str, str], ...]
    body: bytes
    cut: int | None = None  # the sender goes away after this many bytes of the body


@dataclass(frozen=True)
class Answer:
    status: int
    text: str
    content_type: str


@dataclass(frozen=True)
class Built:
    """A case made concrete, and what the properties expect of it."""

    sent: Sent
    valid: bool | None  # True: must be acknowledged; False: must be refused; None: either
    payload: str | None = None  # the inbox payload an acknowledgement stores (None: none)
    check_ack: Callable[[Answer], None] = lambda _: None
    may_change: frozenset[str] = frozenset()  # tables processing may change, besides the inbox
    may_create: bool = False  # tickets may be created (a chat create command)


@dataclass(frozen=True)
class Endpoint:
    platform: str  # of its inbox rows
    reasons: tuple[re.Pattern[str], ...]
    live: bool = False  # processed inside the request (card clicks)


WECOM = Endpoint("wecom", WECOM_REASONS)
EVENTS = Endpoint("dingtalk", EVENT_REASONS)
ROBOT = Endpoint("dingtalk", ROBOT_REASONS)
CARD = Endpoint("dingtalk", CARD_REASONS, live=True)


@dataclass
class Tally:
    cases: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def line(self, label: str, seconds: float) -> str:
        parts = ", ".join(f"{n} {k}" for k, n in sorted(self.outcomes.items()))
        return f"{label}: {self.cases} cases in {seconds:.1f} s ({parts})"


class Fuzzer:
    """Sends built cases to the app and checks the properties; every method runs on the loop."""

    def __init__(self, p: Platforms, world: World, watch: LogWatch, db: DbWatch) -> None:
        self.p = p
        self.world = world
        self.watch = watch
        self.db = db  # the database as the last case left it
        self.backend = "postgres" if p.db.dialect == "postgresql" else "sqlite"
        self.ids = itertools.count(1)

    def uid(self) -> str:
        return f"fz{next(self.ids):06d}"

    async def send(self, sent: Sent) -> Answer:
        if sent.cut is not None:
            return await self.send_cut_short(sent)
        base = str(self.p.client.make_url(sent.path))
        url = URL(base + ("?" + sent.query if sent.query else ""), encoded=True)
        async with self.p.client.session.request(
            sent.method, url, data=sent.body, headers=list(sent.headers), skip_auto_headers={"Content-Type"}
        ) as resp:
            return Answer(resp.status, (await resp.read()).decode("utf-8", "replace"), resp.content_type)

    async def send_cut_short(self, sent: Sent) -> Answer:
        """`sent` as aiohttp hands it to the app, as deployed, when its sender goes away after
        `sent.cut` bytes of the body: the handler runs on (run_app's handler_cancellation is off)
        and its body read raises ConnectionResetError. The test server would cancel the handler
        instead, so the request goes to the app's router and error middleware directly."""
        payload = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
        if sent.cut:
            payload.feed_data(sent.body[: sent.cut])
        payload.set_exception(ConnectionResetError("Connection lost"))
        path = sent.path + ("?" + sent.query if sent.query else "")
        headers = CIMultiDict(sent.headers)
        headers["Content-Length"] = str(len(sent.body))
        probe = make_mocked_request(sent.method, path, headers=headers, app=self.p.app)
        match = await self.p.app.router.resolve(probe)
        request = make_mocked_request(
            sent.method, path, headers=headers, payload=payload, app=self.p.app, match_info=match
        )
        answer = await error_middleware(request, match.handler)
        assert isinstance(answer, web.Response), answer
        return Answer(answer.status, answer.text or "", answer.content_type)

    def bad_logs(self) -> list[str]:
        return [line for line in self.watch.take() if not any(h in line for h in HANDLED_ERRORS)]

    async def check(self, endpoint: Endpoint, built: Built, tally: Tally) -> None:
        async with asyncio.timeout(WAIT):
            answer = await self.send(built.sent)
            sent = built.sent
            where = f"{sent.method} {sent.path}?{sent.query[:300]} {sent.body[:300]!r} -> {answer.status} {answer.text[:300]!r}"
            assert answer.status < 500, f"a server error: {where}"
            for marker in TRACE_MARKERS:
                assert marker not in answer.text, f"a traceback in the answer: {where}"
            if answer.status == 200:
                assert built.valid is not False, f"an invalid request was acknowledged: {where}"
                built.check_ack(answer)
                tally.outcomes[await self.acknowledged(endpoint, built, where)] += 1
            else:
                assert built.valid is not True, f"a valid request was refused: {where}"
                assert answer.status in (400, 403), f"not a documented refusal status: {where}"
                assert answer.content_type == "text/plain", f"a refusal that is not plain text: {where}"
                assert any(p.fullmatch(answer.text) for p in endpoint.reasons), (
                    f"an undocumented refusal: {where}"
                )
                diff = await self.db.changes()
                assert not diff, f"a refused request changed the database: {describe_diff(diff)}; {where}"
                tally.outcomes[f"refused {answer.status}"] += 1
            bad = self.bad_logs()
            assert not bad, f"logged: {bad}; {where}"

    async def acknowledged(self, endpoint: Endpoint, built: Built, where: str) -> str:
        """The ack stored its own inbox row and nothing else; processing it ends it done and
        changes nothing it may not."""
        if endpoint.live:  # processed inside the request; the card updates it caused are awaited
            await self.p.settle()
        last = self.db.state
        stored = await self.db.read()
        diff = rows_diff(last, stored)
        inbox = diff.pop("inbox", TableDiff((), ()))
        assert not inbox.removed and len(inbox.added) <= 1, f"inbox rows changed: {inbox}; {where}"
        if built.payload is None or not inbox.added:
            assert not diff and not inbox.added, f"stored: {describe_diff(rows_diff(last, stored))}; {where}"
            self.db.accept(stored)
            return "acknowledged, not stored" if built.payload is None else "acknowledged duplicates"
        (row,) = inbox.added
        assert row_value(row, "platform") == repr(endpoint.platform), where
        assert row_value(row, "payload") == repr(built.payload), (
            f"stored {row_value(row, 'payload')[:300]}; {where}"
        )
        if endpoint.live:
            before, final, changes = last, stored, diff
        else:
            assert not diff, (
                f"an acknowledged request changed more than the inbox: {describe_diff(diff)}; {where}"
            )
            assert row_value(row, "status") == repr("pending"), where
            worker = self.p.wecom_worker if endpoint.platform == "wecom" else self.p.ding_worker
            processed = await drain(worker)
            assert processed == 1, f"the drain processed {processed} rows; {where}"
            before = stored
            final = await self.db.read()
            if set(rows_diff(stored, final)) - {"inbox"}:  # the notifier may have been kicked
                async with asyncio.timeout(WAIT):
                    await self.p.app[NOTIFIER].drain()
                final = await self.db.read()
            changes = rows_diff(stored, final)
            rows = changes.pop("inbox", TableDiff((), ()))
            ids = {row_value(r, "id") for r in rows.removed + rows.added}
            assert ids <= {row_value(row, "id")}, f"processing changed other inbox rows: {rows}; {where}"
        (done,) = [r for r in final.rows["inbox"] if row_value(r, "id") == row_value(row, "id")]
        outcome = (row_value(done, "status"), row_value(done, "attempts"), row_value(done, "last_error"))
        assert outcome == (repr("done"), "0", repr("")), (
            f"processing did not end the row done: {outcome}; {where}"
        )
        allowed = built.may_change | (TICKET_TABLES if built.may_create else frozenset())
        assert set(changes) <= allowed, (
            f"processing changed {sorted(set(changes) - allowed)}: {describe_diff(rows_diff(before, final))}; {where}"
        )
        if "ticket" in changes:
            assert not changes["ticket"].removed, f"processing changed a ticket: {changes['ticket']}; {where}"
        self.db.accept(final)
        return "acknowledged and processed" + (", a ticket created" if "ticket" in changes else "")


async def fuzz(
    fuzzer: Fuzzer,
    counts: CaseCounts,
    endpoint: Endpoint,
    label: str,
    strategy: st.SearchStrategy[C],
    build: Callable[[Fuzzer, C], Built],
    *,
    explicit: Sequence[C] = (),
    both_ways: bool = True,
) -> Tally:
    """The `explicit` cases, then `EXAMPLES[label]` cases of `strategy`, each built on the loop and
    checked; the count is reported. The hypothesis run is blocking: it runs in a thread while the
    loop serves the app. `both_ways`: some cases must have been acknowledged and some refused."""
    loop = Loop()
    tally = Tally()
    first: list[str] = []  # the first failure (hypothesis replays a failing case: its 2nd run differs)

    async def one(case: C) -> None:
        await fuzzer.check(endpoint, build(fuzzer, case), tally)

    def check(case: C) -> None:
        tally.cases += 1
        try:
            loop.run(one(case))
        except AssertionError as exc:
            if not first:
                first.append(f"{exc}\n\nthe case: {case!r}")
            raise

    hold = held() if endpoint.live else held(fuzzer.p.wecom_worker, fuzzer.p.ding_worker)
    started = time.perf_counter()
    try:
        with hold:
            ran = await asyncio.to_thread(run_cases, strategy, check, EXAMPLES[label], explicit)
    except Exception:
        if first:
            pytest.fail(f"{label}: {first[0]}", pytrace=False)
        raise
    finally:
        counts.lines.append(tally.line(f"{label} [{fuzzer.backend}]", time.perf_counter() - started))
    assert ran == tally.cases == EXAMPLES[label] + len(explicit)
    refused = sum(n for k, n in tally.outcomes.items() if k.startswith("refused"))
    assert refused > 0, f"{label}: no case was refused: {tally.outcomes}"
    if both_ways:
        assert refused < tally.cases, f"{label}: no case was acknowledged: {tally.outcomes}"
    return tally


def may_create(fuzzer: Fuzzer, platform: str, username: str, text: str) -> bool:
    """A create command, or any message while the person has a create draft open."""
    if not username:
        return False
    drafts = fuzzer.db.state.rows.get("chat_draft", ())
    open_draft = any(
        row_value(r, "platform") == repr(platform) and row_value(r, "username") == repr(username)
        for r in drafts
    )
    return open_draft or isinstance(commands.parse(text), commands.Create)
