"""Property-based fuzzing of every platform callback endpoint, through the real app on SQLite and
PostgreSQL, with WeCom and DingTalk both enabled against their emulators (tests/bot/fuzz_support.py).

Two tests per backend, each a series of bounded, derandomized hypothesis runs (a few explicit
cases first, then generated ones; counts in EXAMPLES):

- `test_wecom_callback`, ``/wecom/callback``. Outer: GET URL verification and POST, with query
  parameters missing, empty, junk, raw, huge, repeated, not UTF-8 or stale, bodies truncated,
  oversized, not XML, XML of the wrong shape, a junk, nested or foreign ``Encrypt``, a foreign
  ToUserName, a DTD, UTF-16, odd content types. Inner: correctly signed and encrypted envelopes
  whose plaintext is fuzzed (malformed or truncated XML, elements nested or repeated where text
  belongs, junk values, odd MsgType / Event values, huge Content, a GBK declaration or body, a
  foreign ToUserName or receive id, bad padding and length fields, non-UTF-8, button keys edited
  to other tickets, states, transitions and kinds).
- `test_dingtalk_callbacks`: ``/dingtalk/events`` (signature + AES, ``{"encrypt"}``), the robot
  (``/dingtalk/robot``, timestamp + sign headers) and card clicks (``/dingtalk/card``, the
  x-ddpaas signature). Outer: wrong, missing, stale or non-ASCII signatures, garbage, truncated,
  oversized, non-UTF-8, non-object, too deep bodies, odd content types. Inner: validly signed
  requests with fuzzed JSON (wrong types, missing keys, huge strings, nested junk, unknown event
  types, foreign owner / robot / corp ids, junk session webhooks, card contents and actions edited
  to other cards, tickets and transitions, or to junk).
- Both: "cut short", a valid request whose sender goes away mid-body (see `Fuzzer.send_cut_short`).

Properties of every case (`Fuzzer.check`):

- never a 5xx, no traceback in the answer; an answer other than 200 is one of the endpoint's
  documented refusals (400 / 403, a plain-text reason from the adapter's list, REASONS below); a
  request the case built to be valid is acknowledged (with the endpoint's acknowledgement: the
  echo, an empty body, the encrypted "success", ``{}``), one built to be invalid is refused;
- a refused request changes nothing: every table's rows are what they were (`DbWatch`);
- an acknowledged request stores its own inbox row (pending) and nothing else; processing it
  through the product's entry point (`InboxWorker.drain`) ends the row ``done``, with no stack
  and no ERROR logged, and changes no other table than its kind may (a chat draft, the clicked
  card's delivery, a customer); tickets only for a chat message that is a create command or
  answers an open create draft. Card clicks are processed inside the request, by design: for
  them the app is awaited and the same is checked of the click's row and changes.

Genuine actions (the seeded ticket's handler clicking one of its buttons or saying 同意) are
left out of the generated cases, and the chat senders are people with no part in, or view of, the
seeded tickets: such actions would legitimately change the tickets the other cases aim at. One
explicit case is a genuine create (a ticket for someone no case acts as).

The cases run per endpoint and layer are printed in the terminal summary ("callback fuzz").
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import itertools
import json
import re
import time
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from unittest import mock

import pytest
import yaml
from aiohttp import StreamReader, web
from aiohttp.test_utils import make_mocked_request
from hypothesis import strategies as st
from multidict import CIMultiDict
from yarl import URL

from bot.app import NOTIFIER
from bot.cards.model import decode_action
from bot.handlers import commands
from bot.http import error_middleware
from emulator.dingtalk import card_callback_body, open_event_reply
from emulator.wecom import text_message_xml
from emulator.wecom_crypto import WeComCipher, signature
from store.queries import SqlTicketQueries
from tests.bot import test_dingtalk_cards as dt
from tests.bot import test_wecom_chat as wc
from tests.bot.fuzz_support import (
    DING_AES,
    DING_OWNER,
    DING_TOKEN,
    REPLAY_WINDOW,
    WAIT,
    CaseCounts,
    DbWatch,
    LogWatch,
    Loop,
    Platforms,
    TableDiff,
    case_counts,
    craft_ciphertext,
    describe_diff,
    drain,
    held,
    layout,
    make_platforms,
    prove_watch,
    row_value,
    run_cases,
    snapshot_diff,
    watching_logs,
)

C = TypeVar("C")
# Generated cases per endpoint and layer, per backend (the explicit ones come on top). The whole
# module, both backends, runs in about a minute on a slow shared 2-core machine.
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
MAX_BODY = 64 * 1024
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

# ---------------------------------------------------------------- documented refusals (REASONS)
# Every reason the adapters answer (bot/wecom/callback.py and crypto.py, bot/dingtalk/events.py,
# robot.py, card_callback.py, crypto.py and the routes), as patterns.

TRUNCATED = r"the body ended before its declared length"  # the sender went away mid-body
# aiohttp's own refusal of a request line over its limit (8190 bytes), before the app sees it
LINE_TOO_LONG = r"Got more than \d+ bytes when reading: .*"
_SIZE = (
    r"(the body|the decrypted message|the decrypted event|the card callback content) is larger than \d+ bytes"
)
WECOM_REASONS = tuple(
    re.compile(p)
    for p in (
        TRUNCATED,
        LINE_TOO_LONG,
        r"the query string is not percent-encoded UTF-8",
        r"query parameter missing: [a-z_, ]+",
        r"timestamp is not an integer",
        rf"timestamp is more than {REPLAY_WINDOW} s away from our clock",
        _SIZE,
        r"(the body|the decrypted message) is not UTF-8",
        r"(the body|the decrypted message) carries a DOCTYPE or ENTITY declaration",
        r"(the body|the decrypted message) is not well-formed XML",
        r"Encrypt is missing",
        r"ToUserName is not our CorpID",
        r"the message's ToUserName is not our CorpID",
        r"MsgType is missing",
        r"event without [A-Za-z, ]+",
        r"message without MsgId",
        r"CreateTime is not an integer",
        r"msg_signature does not match",
        r"Encrypt is not base64",
        r"Encrypt is not a whole number of 32-byte AES blocks",
        r"the message is for another receive id \(CorpID\)",
        r"Encrypt does not decrypt to a WeCom message",
    )
)
_JSON = r"(the body|the decrypted event|the card callback content)"
DINGTALK_JSON_REASONS = (
    TRUNCATED,
    rf"{_JSON} is not UTF-8",
    rf"{_JSON} is not valid JSON",
    rf"{_JSON} is nested too deeply",
    rf"{_JSON} is not a JSON object",
    rf"{_JSON} carries an invalid \\u escape \(a lone surrogate\)",
    _SIZE,
)
EVENT_REASONS = tuple(
    re.compile(p)
    for p in (
        *DINGTALK_JSON_REASONS,
        LINE_TOO_LONG,
        r"the query string is not percent-encoded UTF-8",
        r"query parameter missing: [a-z_, ]+",
        r"encrypt is missing",
        r"signature does not match",
        r"encrypt is not base64",
        r"encrypt is not a whole number of 32-byte blocks",
        r"encrypt has bad padding",
        r"encrypt is too short",
        r"encrypt has a bad length",
        r"the event is for another app \(owner key\)",
        r"the event is not UTF-8",
        r"the decrypted event has no EventType",
        r"the event's [A-Za-z]+ is not a string",
        r"the event is for another corp \(CorpId\)",
    )
)
ROBOT_REASONS = tuple(
    re.compile(p)
    for p in (
        *DINGTALK_JSON_REASONS,
        r"header missing: [a-z, ]+",
        r"the timestamp header is not an integer \(ms\)",
        r"sign does not match",
        r"timestamp is more than \d+ s away from our clock",
        r"the message is for another robot \(robotCode\)",
        r"the message is for a robot of another corp \(chatbotCorpId\)",
        r"the sender is from another corp \(senderCorpId\)",
        r"message without msgId",
        r"message without msgtype",
        r"(content\.)?[A-Za-z]+ is not a string",
        r"atUsers\[\]\.[A-Za-z]+ is not a string",
        r"[A-Za-z]+ is not a time in ms",
        r"[A-Za-z]+ is not a boolean",
        r"atUsers is not a list",
        r"atUsers holds something that is not an object",
    )
)
CARD_REASONS = tuple(
    re.compile(p)
    for p in (
        *DINGTALK_JSON_REASONS,
        r"header missing: [a-z, -]+",
        r"x-ddpaas-signature-timestamp is not an integer \(ms\)",
        r"card callback signature does not match",
        r"x-ddpaas-signature-timestamp is more than \d+ s away from our clock",
        r"type is not actionCallback",
        r"[A-Za-z]+ is not a string",
        r"card callback without [A-Za-z, ]+",
        r"the click is from another corp \(corpId\)",
        r"the card callback content has no cardPrivateData",
        r"cardPrivateData\.actionIds is not a list of strings",
        r"cardPrivateData\.params is not an object",
        r"the click carries no action \(params\.action or actionIds\)",
    )
)

# ---------------------------------------------------------------- the seeded world


def _org_usernames() -> dict[str, str]:
    """Platform id (WeCom userid casefolded, DingTalk staff id) -> username, from the shipped directory."""
    org = yaml.safe_load((wc.CONFIG / "org.yaml").read_text(encoding="utf-8"))
    out: dict[str, str] = {}
    for u in org["users"]:
        if u.get("wecom_userid"):
            out[str(u["wecom_userid"]).casefold()] = u["username"]
        if u.get("dingtalk_staff_id"):
            out[str(u["dingtalk_staff_id"])] = u["username"]
    return out


USERNAMES = _org_usernames()
# chat senders: people in the directory with no part in, and no view of, a seeded ticket (the
# ticket's department leader and the workflow admins left out too), and people unknown
WECOM_SENDERS = ("SunHao", "ZhouMin", "XuLi", "Stranger", "nobody", "")
DING_SENDERS = ("staff0009", "staff0010", "staff0012", "outsider01", "nobody", "")
# clickers: the handler of the seeded ticket too (its genuine clicks are left out, see `genuine`)
WECOM_CLICKERS = ("WangQiang", "wangqiang", "LiuYang", "SunHao", "Stranger", "nobody")
DING_CLICKERS = ("staff0004", "staff0005", "staff0009", "outsider01", "nobody")


@dataclass(frozen=True)
class World:
    """What the seed made: one leave request waiting for wangqiang, his cards on both platforms."""

    ticket_id: int
    state_id: int
    handler: str  # username
    wecom_task_id: str
    wecom_keys: tuple[str, ...]  # the button keys of wangqiang's WeCom card
    ding_track: str
    ding_actions: tuple[str, ...]  # the button actions of wangqiang's DingTalk card

    def genuine(self, clicker_username: str, key: str) -> bool:
        """Whether a click on `key` by that person may legitimately change the seeded ticket."""
        action = decode_action(key)
        return (
            clicker_username == self.handler
            and action is not None
            and (action.ticket_id, action.state_id) == (self.ticket_id, self.state_id)
        )


async def seed(p: Platforms) -> World:
    reply = await p.dingtalk.say("liuyang", dt.LEAVE)
    assert reply.startswith("已发起工单"), reply
    ticket_id = int(reply.rsplit("/tickets/", 1)[1].split("?")[0])
    await p.settle()
    ticket = await SqlTicketQueries(p.db).get_ticket(ticket_id)
    assert ticket is not None and ticket.handlers == ("wangqiang",)
    (wecom_card,) = [
        m for m in p.wecom.records.messages if m.msgtype == "template_card" and "WangQiang" in m.recipients
    ]
    tc = wecom_card.body["template_card"]
    (track,) = p.dingtalk.cards("wangqiang")
    params = p.dingtalk.params(track)
    return World(
        ticket_id=ticket_id,
        state_id=ticket.state_id,
        handler="wangqiang",
        wecom_task_id=tc["task_id"],
        wecom_keys=tuple(b["key"] for b in tc["button_list"]),
        ding_track=track,
        ding_actions=tuple(params[f"btn{n}_action"] for n in range(1, 7) if params.get(f"btn{n}_action")),
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
        self.backend = "postgres" if db.db.dialect == "postgresql" else "sqlite"
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
        last = self.db.rows
        stored, stored_prints = await self.db.read()
        diff = snapshot_diff(last, stored)
        inbox = diff.pop("inbox", TableDiff((), ()))
        assert not inbox.removed and len(inbox.added) <= 1, f"inbox rows changed: {inbox}; {where}"
        if built.payload is None or not inbox.added:
            assert not diff and not inbox.added, (
                f"stored: {describe_diff(snapshot_diff(last, stored))}; {where}"
            )
            self.db.accept(stored, stored_prints)
            return "acknowledged, not stored" if built.payload is None else "acknowledged duplicates"
        (row,) = inbox.added
        assert row_value(row, "platform") == repr(endpoint.platform), where
        assert row_value(row, "payload") == repr(built.payload), (
            f"stored {row_value(row, 'payload')[:300]}; {where}"
        )
        if endpoint.live:
            before, final, final_prints, changes = last, stored, stored_prints, diff
        else:
            assert not diff, (
                f"an acknowledged request changed more than the inbox: {describe_diff(diff)}; {where}"
            )
            assert row_value(row, "status") == repr("pending"), where
            worker = self.p.wecom_worker if endpoint.platform == "wecom" else self.p.ding_worker
            processed = await drain(worker)
            assert processed == 1, f"the drain processed {processed} rows; {where}"
            before = stored
            final, final_prints = await self.db.read()
            if set(snapshot_diff(stored, final)) - {"inbox"}:  # the notifier may have been kicked
                async with asyncio.timeout(WAIT):
                    await self.p.app[NOTIFIER].drain()
                final, final_prints = await self.db.read()
            changes = snapshot_diff(stored, final)
            rows = changes.pop("inbox", TableDiff((), ()))
            ids = {row_value(r, "id") for r in rows.removed + rows.added}
            assert ids <= {row_value(row, "id")}, f"processing changed other inbox rows: {rows}; {where}"
        (done,) = [r for r in final["inbox"].rows if row_value(r, "id") == row_value(row, "id")]
        outcome = (row_value(done, "status"), row_value(done, "attempts"), row_value(done, "last_error"))
        assert outcome == (repr("done"), "0", repr("")), (
            f"processing did not end the row done: {outcome}; {where}"
        )
        allowed = built.may_change | (TICKET_TABLES if built.may_create else frozenset())
        assert set(changes) <= allowed, (
            f"processing changed {sorted(set(changes) - allowed)}: {describe_diff(snapshot_diff(before, final))}; {where}"
        )
        if "ticket" in changes:
            assert not changes["ticket"].removed, f"processing changed a ticket: {changes['ticket']}; {where}"
        self.db.accept(final, final_prints)
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


# ---------------------------------------------------------------- strategies: shared pieces

NASTY = (
    "",
    " ",
    "\x00",
    "\t\n",
    "]]>",
    "<![CDATA[",
    "&amp;",
    "&lol;",
    "<x/>",
    "%FF",
    "%",
    "+",
    "=",
    "&",
    "#",
    "😀",
    "中文",
    "\u202e",
    "\ufeff",
    "\u0663\u0661",  # Arabic-Indic digits: isdigit() but not ASCII
    "null",
    "[]",
    "{}",
    "NaN",
    "1e400",
    "-1",
    "0",
    "18446744073709551616",
    "9" * 40,
    "true",
    "a" * 600,
    "http://[::1",
)
JUNK_TEXT = st.one_of(st.text(max_size=40), st.sampled_from(NASTY))
SAFE_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=40)  # fits in XML
HUGE_TEXT = st.sampled_from([2_000, 20_000, 40_000]).map(lambda n: "长" * (n // 3))
VERBS = (
    "发起",
    "新建",
    "create",
    "同意",
    "approve",
    "驳回",
    "撤回",
    "评论",
    "催办",
    "查看",
    "待办",
    "帮助",
    "取消",
    "#",
)
COMMANDISH = st.tuples(st.sampled_from(VERBS), st.one_of(st.integers(-2, 5).map(str), SAFE_TEXT)).map(
    " ".join
)
CHAT_TEXT = st.one_of(
    SAFE_TEXT, COMMANDISH, HUGE_TEXT, st.sampled_from(["发起 请假申请", "帮助", "]]>", "&lol;"])
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` three times in four, else `bad`."""
    return st.one_of(good, good, good, bad)


JSON_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), JUNK_TEXT
)
JSON_JUNK = st.recursive(
    JSON_SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
CONTENT_TYPES = (
    None,
    "application/json",
    "text/xml",
    "text/plain; charset=gbk",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
)

BAD_EXTRA = "x=%E4%B8"  # an extra pair that is not percent-encoded UTF-8: the whole query is refused
ParamKind = Literal[
    "good", "absent", "empty", "junk", "raw", "huge", "not-utf8", "twice-good-first", "twice-junk-first"
]
PARAM_KINDS: tuple[ParamKind, ...] = (
    "absent",
    "empty",
    "junk",
    "raw",
    "huge",
    "not-utf8",
    "twice-good-first",
    "twice-junk-first",
)


@dataclass(frozen=True)
class Param:
    kind: ParamKind
    junk: str = ""

    @property
    def good(self) -> bool:
        return self.kind in ("good", "twice-good-first")

    def values(self, good: str) -> list[str]:
        """The encoded value(s) on the wire for a parameter whose right value is `good`."""
        quote = urllib.parse.quote
        junk = quote(self.junk, safe="") if self.junk != good else quote(self.junk + "x", safe="")
        return {
            "good": [quote(good, safe="")],
            "absent": [],
            "empty": [""],
            "junk": [junk],
            "raw": [re.sub(r"[^!-~]|[&#]", "", self.junk) or "%"],  # e.g. a '%' or '+' sent as is
            "huge": [quote("Z" * 4000, safe="")],
            "not-utf8": ["%FF%FE" + junk],
            "twice-good-first": [quote(good, safe=""), junk],
            "twice-junk-first": [junk, quote(good, safe="")],
        }[self.kind]


WRONG_PARAM = st.builds(Param, st.sampled_from(PARAM_KINDS), JUNK_TEXT)
PARAM = st.one_of(st.just(Param("good")), st.just(Param("good")), st.just(Param("good")), WRONG_PARAM)
"""A query parameter: mostly right, else any of the wrong kinds."""


def raw_query(pairs: list[tuple[str, Param, str]], extra: str = "") -> str:
    """`name=value` pairs (each Param's values for its right value), then `extra` junk."""
    parts = [f"{name}={value}" for name, param, good in pairs for value in param.values(good)]
    if extra:
        parts.append(extra)
    return "&".join(parts)


def headers(content_type: str | None, *more: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return ((("Content-Type", content_type),) if content_type else ()) + tuple(more)


def _ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------- WeCom

WeComBody = Literal[
    "good",
    "garbage",
    "not-xml",
    "truncated",
    "oversized",
    "wrong-shape",
    "encrypt-nested",
    "encrypt-junk",
    "encrypt-other-corp",
    "to-user-other",
    "dtd",
    "utf16",
    "empty",
]


@dataclass(frozen=True)
class WeComOuter:
    method: Literal["GET", "POST"]
    signature: Param
    timestamp: Param
    stale: bool  # a right-looking timestamp outside the replay window
    nonce: Param
    echostr: Param
    body: WeComBody
    junk: bytes
    cut: int
    content_type: str | None
    extra: str


def wecom_outer_cases() -> st.SearchStrategy[WeComOuter]:
    return st.builds(
        WeComOuter,
        method=st.sampled_from(["GET", "POST", "POST"]),
        signature=PARAM,
        timestamp=PARAM,
        stale=st.sampled_from([False, False, False, True]),
        nonce=PARAM,
        echostr=PARAM,
        body=st.sampled_from(["good", "good", *WeComBody.__args__]),  # type: ignore[attr-defined]
        junk=st.binary(max_size=80),
        cut=st.integers(0, 400),
        content_type=st.sampled_from(["text/xml", *CONTENT_TYPES]),
        extra=st.sampled_from(["", "", "a=1", "msg_signature", "=", "&&", "%", BAD_EXTRA]),
    )


def _envelope(encrypt: str, to_user: str = wc.CORP) -> str:
    return f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName><AgentID>1000002</AgentID><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"


def _wecom_text(fuzzer: Fuzzer, content: str = "帮助", sender: str = "Stranger") -> str:
    return text_message_xml(
        corp_id=wc.CORP,
        from_user=sender,
        content=content,
        msg_id=fuzzer.uid()[2:],
        agent_id=wc.AGENT,
        create_time=1,
    )


def build_wecom_outer(fuzzer: Fuzzer, case: WeComOuter) -> Built:
    cipher = WeComCipher(wc.AES_KEY)
    now = int(time.time())
    ts = str(now - 10_000 if case.stale else now)
    nonce = "n" + fuzzer.uid()
    message = _wecom_text(fuzzer)
    echo = "echo-" + fuzzer.uid()
    if case.method == "GET":
        encrypt = cipher.encrypt(echo, wc.CORP)
        body = b""
        body_ok = True
    else:
        encrypt = cipher.encrypt(message, wc.CORP)
        env = _envelope(encrypt).encode()
        body, body_ok = {
            "good": (env, True),
            "garbage": (case.junk, False),
            "not-xml": (b"Encrypt=" + encrypt.encode(), False),
            "truncated": (env[: min(case.cut, len(env) - 1)], False),
            "oversized": (env[:-6] + b" " * MAX_BODY + b"</xml>", False),
            "wrong-shape": (f"<Encrypt><xml>{encrypt}</xml></Encrypt>".encode(), False),
            "encrypt-nested": (f"<xml><Encrypt><v>{encrypt}</v></Encrypt></xml>".encode(), False),
            "encrypt-junk": (_envelope(case.junk.hex() + "!").encode(), False),
            "encrypt-other-corp": (_envelope(cipher.encrypt(message, "wwother")).encode(), False),
            "to-user-other": (_envelope(encrypt, "wwother").encode(), False),
            "dtd": (b'<!DOCTYPE xml [<!ENTITY e "x">]>' + env, False),
            "utf16": (env.decode().encode("utf-16"), False),
            "empty": (b"", False),
        }[case.body]
        if case.body == "encrypt-junk":
            encrypt = case.junk.hex() + "!"
        elif case.body == "encrypt-other-corp":
            found = re.search(rb"CDATA\[([^\]]+)\]\]></Encrypt>", body)
            assert found is not None
            encrypt = found.group(1).decode()
    sig = signature(wc.TOKEN, ts, nonce, encrypt)
    pairs = [
        ("msg_signature", case.signature, sig),
        ("timestamp", case.timestamp, ts),
        ("nonce", case.nonce, nonce),
    ]
    if case.method == "GET":
        pairs.append(("echostr", case.echostr, encrypt))
    # the first of repeated names wins: a wrong value after the right one is ignored
    valid = all(p.good for _, p, _ in pairs) and body_ok and not case.stale and case.extra != BAD_EXTRA
    query = raw_query(pairs, case.extra)

    def check_ack(answer: Answer) -> None:
        expected = echo if case.method == "GET" else ""
        assert answer.text == expected, f"acknowledged with {answer.text[:200]!r}, not {expected!r}"

    return Built(
        Sent(case.method, "/wecom/callback", query, headers(case.content_type), body),
        valid,
        payload=message if case.method == "POST" else None,
        check_ack=check_ack,
    )


@dataclass(frozen=True)
class XmlField:
    name: str
    value: str
    form: Literal["cdata", "escaped", "raw", "nested", "twice", "absent"] = "cdata"


@dataclass(frozen=True)
class WeComInner:
    good: tuple[XmlField, ...]  # a plausible message or event, every element as CDATA
    damage: tuple[XmlField, ...]  # elements replaced (or added): junk values, other forms
    mutation: Literal["none", "truncate", "junk", "root", "declaration", "dtd", "not-xml", "bom"]
    cut: int
    junk: str
    block: Literal[
        "normal", "other-corp", "bad-pad", "zero-pad", "long-length", "short-length", "not-utf8", "gbk"
    ]

    @property
    def fields(self) -> tuple[XmlField, ...]:
        out = list(self.good)
        for d in self.damage:
            at = next((i for i, f in enumerate(out) if f.name == d.name), None)
            if at is None:
                out.append(d)
            else:
                out[at] = d
        return tuple(out)


XML_NAMES = (
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "Content",
    "MsgId",
    "AgentID",
    "Event",
    "EventKey",
    "TaskId",
    "ResponseCode",
    "ChangeType",
    "UserID",
    "ExternalUserID",
    "xml",
)
XML_DAMAGE = st.builds(
    XmlField,
    st.sampled_from(XML_NAMES),
    st.one_of(
        JUNK_TEXT,
        st.sampled_from(["", "wwother", "abc", "-1", "1e3", "9" * 30, "image", "TEXT", "event\n", "voice"]),
    ),
    st.sampled_from(["cdata", "cdata", "escaped", "raw", "nested", "twice", "absent"]),
)


def wecom_inner_cases(world: World) -> st.SearchStrategy[WeComInner]:
    def element(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[XmlField]:
        return st.builds(XmlField, st.just(name), values)

    head = (
        element("ToUserName", st.sampled_from([wc.CORP, wc.CORP, wc.CORP, ""])),
        element("FromUserName", st.sampled_from(WECOM_SENDERS + WECOM_CLICKERS)),
        element("CreateTime", st.just("{ID}")),
        element("AgentID", st.just(str(wc.AGENT))),
    )
    text = st.tuples(
        *head,
        element("MsgType", st.just("text")),
        element("Content", CHAT_TEXT),
        element("MsgId", st.just("{ID}")),
    )
    click = st.tuples(
        *head,
        element("MsgType", st.just("event")),
        element("Event", st.just("template_card_event")),
        element("EventKey", _edited_keys(world.wecom_keys, world.ticket_id, world.state_id)),
        element("TaskId", st.sampled_from([world.wecom_task_id, "tb_1_1_uX"])),
        element("ResponseCode", st.just("rc-1")),
    )
    contact = st.tuples(
        *head,
        element("MsgType", st.just("event")),
        element("Event", st.just("change_external_contact")),
        element(
            "ChangeType",
            st.sampled_from(["add_external_contact", "del_follow_user", "edit_external_contact"]),
        ),
        element("UserID", st.sampled_from(WECOM_SENDERS)),
        element("ExternalUserID", st.sampled_from(["wmXXXX", "wo" + "x" * 200])),
    )
    other = st.tuples(
        *head,
        element("MsgType", st.sampled_from(["event", "image", "voice", "location"])),
        element(
            "Event",
            st.sampled_from(["enter_agent", "click", "view", "subscribe", "template_card_menu_event"]),
        ),
        element("EventKey", SAFE_TEXT),
        element("MsgId", st.just("{ID}")),
    )
    return st.builds(
        WeComInner,
        good=st.one_of(text, text, click, click, contact, other),
        damage=st.one_of(st.just(()), st.lists(XML_DAMAGE, min_size=1, max_size=3).map(tuple)),
        mutation=st.sampled_from(
            ["none"] * 12 + ["truncate", "junk", "root", "declaration", "dtd", "not-xml", "bom"]
        ),
        cut=st.integers(0, 300),
        junk=JUNK_TEXT,
        block=st.sampled_from(
            ["normal"] * 16
            + ["other-corp", "bad-pad", "zero-pad", "long-length", "short-length", "not-utf8", "gbk"]
        ),
    ).filter(lambda c: not _wecom_genuine(world, c))


def _edited_keys(keys: tuple[str, ...], ticket_id: int, state_id: int) -> st.SearchStrategy[str]:
    """The real button keys, and keys edited to other tickets, states, transitions and kinds."""
    real = st.sampled_from(keys)

    def edit(key: str, part: int, value: str) -> str:
        pieces = key.split(":")  # t:<ticket>:s:<state>:a:<kind>:x:<transition>:n:<nonce>
        pieces[part] = value
        return ":".join(pieces)

    return st.one_of(
        real,
        st.builds(edit, real, st.sampled_from([1, 3, 7]), st.integers(0, 2**40).map(str)),
        st.builds(edit, real, st.just(1), st.sampled_from([ticket_id + 1, ticket_id + 1000, 0, -1]).map(str)),
        st.builds(edit, real, st.just(3), st.sampled_from([state_id + 1, 1, 999]).map(str)),
        st.builds(
            edit, real, st.just(5), st.sampled_from(["accept", "add_node_end", "close", "comment", "x"])
        ),
        st.builds(edit, real, st.sampled_from([0, 9]), JUNK_TEXT),
    )


def _value(fields: tuple[XmlField, ...], name: str) -> str | None:
    found = [f for f in fields if f.name == name and f.form in ("cdata", "escaped", "raw", "twice")]
    return found[0].value if found else None


def _wecom_genuine(world: World, case: WeComInner) -> bool:
    sender = _value(case.fields, "FromUserName") or ""
    key = _value(case.fields, "EventKey") or ""
    content = _value(case.fields, "Content") or ""
    username = USERNAMES.get(sender.strip().casefold(), "")
    return world.genuine(username, key.strip()) or (
        username == world.handler and isinstance(commands.parse(content), commands.Decide)
    )


def _xml_field(f: XmlField, ids: Callable[[], str]) -> str:
    value = f.value.replace("{ID}", ids()[2:])
    if f.form == "absent":
        return ""
    if f.form == "cdata":
        inner = "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"
    elif f.form == "escaped":
        inner = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    elif f.form == "raw":
        inner = value
    else:
        inner = f"<v>{value}</v>"
    element = f"<{f.name}>{inner}</{f.name}>"
    return element * 2 if f.form == "twice" else element


def build_wecom_inner(fuzzer: Fuzzer, case: WeComInner) -> Built:
    xml = "<xml>" + "".join(_xml_field(f, fuzzer.uid) for f in case.fields) + "</xml>"
    xml = {
        "none": xml,
        "truncate": xml[: min(case.cut, len(xml) - 1)],
        "junk": xml[: case.cut] + case.junk + xml[case.cut :],
        "root": xml.replace("<xml>", "<message>", 1).replace("</xml>", "</message>"),
        "declaration": '<?xml version="1.0" encoding="GBK"?>' + xml,
        "dtd": '<!DOCTYPE xml SYSTEM "file:///etc/hostname">' + xml,
        "not-xml": case.junk,
        "bom": "\ufeff" + xml,
    }[case.mutation]
    msg = xml.encode("utf-8", "surrogatepass")
    receive = wc.CORP.encode()
    if case.block == "normal":
        encrypt = craft_ciphertext(wc.AES_KEY, layout(msg, receive))
    elif case.block == "other-corp":
        encrypt = craft_ciphertext(wc.AES_KEY, layout(msg, b"wwother"))
    elif case.block == "bad-pad":
        encrypt = craft_ciphertext(wc.AES_KEY, layout(msg, receive), pad=bytes([200]) * 7)
    elif case.block == "zero-pad":
        encrypt = craft_ciphertext(wc.AES_KEY, layout(msg, receive), pad=b"\0" * 5)
    elif case.block == "long-length":
        encrypt = craft_ciphertext(wc.AES_KEY, layout(msg, receive, length=len(msg) + 1000))
    elif case.block == "short-length":
        encrypt = craft_ciphertext(wc.AES_KEY, layout(msg, receive, length=max(0, len(msg) - 3)))
    elif case.block == "not-utf8":
        encrypt = craft_ciphertext(wc.AES_KEY, layout(msg + b"\xff\xfe", receive))
    else:
        gbk = xml.encode("gbk", "replace")
        encrypt = craft_ciphertext(wc.AES_KEY, layout(gbk, receive))
        xml = gbk.decode("utf-8", "replace")  # what is stored, if it decodes (else it is refused)
    ts, nonce = str(int(time.time())), "n" + fuzzer.uid()
    query = "&".join(
        f"{k}={urllib.parse.quote(v, safe='')}"
        for k, v in (
            ("msg_signature", signature(wc.TOKEN, ts, nonce, encrypt)),
            ("timestamp", ts),
            ("nonce", nonce),
        )
    )
    sender = (_value(case.fields, "FromUserName") or "").strip()
    content = _value(case.fields, "Content") or ""
    return Built(
        Sent("POST", "/wecom/callback", query, headers("text/xml"), _envelope(encrypt).encode()),
        None,
        payload=xml,
        may_change=frozenset({"chat_draft", "delivery", "customer"}),
        may_create=_may_create(fuzzer, "wecom", USERNAMES.get(sender.casefold(), ""), content),
    )


def _may_create(fuzzer: Fuzzer, platform: str, username: str, text: str) -> bool:
    """A create command, or any message while the person has a create draft open."""
    if not username:
        return False
    drafts = fuzzer.db.rows.get("chat_draft")
    open_draft = drafts is not None and any(
        row_value(r, "platform") == repr(platform) and row_value(r, "username") == repr(username)
        for r in drafts.rows
    )
    return open_draft or isinstance(commands.parse(text), commands.Create)


# ---------------------------------------------------------------- DingTalk event subscription

EventBody = Literal[
    "good",
    "check-url",
    "garbage",
    "not-utf8",
    "not-object",
    "encrypt-number",
    "encrypt-missing",
    "encrypt-junk",
    "truncated",
    "oversized",
    "deep",
    "nan",
    "surrogate",
    "other-owner",
]


@dataclass(frozen=True)
class EventOuter:
    camel: bool  # msg_signature + timeStamp instead of signature + timestamp
    signature: Param
    timestamp: Param
    nonce: Param
    body: EventBody
    junk: bytes
    cut: int
    content_type: str | None
    extra: str


def event_outer_cases() -> st.SearchStrategy[EventOuter]:
    return st.builds(
        EventOuter,
        camel=st.booleans(),
        signature=PARAM,
        timestamp=PARAM,
        nonce=PARAM,
        body=st.sampled_from(["good", "good", "check-url", *EventBody.__args__]),  # type: ignore[attr-defined]
        junk=st.binary(max_size=80),
        cut=st.integers(0, 200),
        content_type=st.sampled_from(["application/json", *CONTENT_TYPES]),
        extra=st.sampled_from(["", "", "signature=0", "timeStamp=", "=", "&&", "%", BAD_EXTRA]),
    )


def _event_reply_check(answer: Answer) -> None:
    reply = json.loads(answer.text)
    plain = open_event_reply(reply, token=DING_TOKEN, aes_key=DING_AES, owner_key=DING_OWNER)
    assert plain == "success", plain


def _event_query(
    camel: bool, sig: tuple[Param, str], ts: tuple[Param, str], nonce: tuple[Param, str], extra: str
) -> str:
    names = ("msg_signature", "timeStamp") if camel else ("signature", "timestamp")
    return raw_query([(names[0], *sig), (names[1], *ts), ("nonce", *nonce)], extra)


def build_event_outer(fuzzer: Fuzzer, case: EventOuter) -> Built:
    cipher_key = DING_AES
    event = {
        "EventType": "user_modify_org",
        "EventId": fuzzer.uid(),
        "CorpId": dt.CORP,
        "UserId": ["staff0003"],
    }
    if case.body == "check-url":
        event = {"EventType": "check_url"}
    plain = json.dumps(event, separators=(",", ":"))
    encrypt = craft_ciphertext(cipher_key, layout(plain.encode(), DING_OWNER.encode()))
    good = json.dumps({"encrypt": encrypt}).encode()
    body, body_ok = {
        "good": (good, True),
        "check-url": (good, True),
        "garbage": (case.junk, False),
        "not-utf8": (good.decode().encode("utf-16"), False),
        "not-object": (json.dumps([encrypt]).encode(), False),
        "encrypt-number": (b'{"encrypt": 12345}', False),
        "encrypt-missing": (b'{"Encrypt": "' + encrypt.encode() + b'"}', False),
        "encrypt-junk": (json.dumps({"encrypt": case.junk.hex() + "=="}).encode(), False),
        "truncated": (good[: min(case.cut, len(good) - 1)], False),
        "oversized": (json.dumps({"encrypt": encrypt, "pad": "x" * MAX_BODY}).encode(), False),
        "deep": (b'{"encrypt": ' + b"[" * 5000 + b"]" * 5000 + b"}", False),
        "nan": (b'{"encrypt": NaN}', False),
        "surrogate": (b'{"encrypt": "\\udc00"}', False),
        "other-owner": (
            json.dumps(
                {"encrypt": craft_ciphertext(cipher_key, layout(plain.encode(), b"dingother"))}
            ).encode(),
            False,
        ),
    }[case.body]
    sign_over = json.loads(body)["encrypt"] if case.body in ("encrypt-junk", "other-owner") else encrypt
    ts, nonce = str(_ms()), "n" + fuzzer.uid()
    sig = signature(DING_TOKEN, ts, nonce, sign_over)
    query = _event_query(
        case.camel, (case.signature, sig), (case.timestamp, ts), (case.nonce, nonce), case.extra
    )
    shadowed_ = case.extra == BAD_EXTRA
    # with both spellings, `signature` is read before `msg_signature`
    shadowed = case.extra.startswith("signature=") and case.camel
    valid = case.signature.good and case.timestamp.good and case.nonce.good and body_ok
    valid = valid and not shadowed and not shadowed_
    return Built(
        Sent("POST", "/dingtalk/events", query, headers(case.content_type), body),
        valid,
        payload=None if case.body == "check-url" else json.dumps({"kind": "event", "body": plain}),
        check_ack=_event_reply_check,
    )


@dataclass(frozen=True)
class EventInner:
    event: Mapping[str, Any] | None  # a plausible decrypted JSON object (None: `text` instead)
    damage: tuple[Edit, ...]  # keys replaced, added or dropped
    text: str
    block: Literal["normal", "other-owner", "bad-pad", "short", "long-length", "not-utf8", "no-owner"]


EVENT_KEYS = (
    "EventType",
    "eventType",
    "EventId",
    "eventId",
    "CorpId",
    "corpId",
    "TimeStamp",
    "UserId",
    "junk",
)


def event_inner_cases() -> st.SearchStrategy[EventInner]:
    types = st.sampled_from(
        ["user_modify_org", "check_url", "bpms_task_change", "chat_update_title", "x", "", "CHECK_URL"]
    )
    event = st.fixed_dictionaries(
        {"EventType": types, "EventId": st.just("{ID}"), "CorpId": st.sampled_from([dt.CORP, dt.CORP, ""])},
        optional={
            "TimeStamp": st.just("{ID}"),
            "UserId": st.lists(st.sampled_from(DING_SENDERS), max_size=3),
        },
    )
    damage = st.builds(
        Edit,
        st.sampled_from(EVENT_KEYS),
        st.one_of(JSON_JUNK, JUNK_TEXT, HUGE_TEXT, st.sampled_from([DROP, DROP, "dingother", "check_url"])),
    )
    return st.builds(
        EventInner,
        event=st.one_of(event, event, event, event, st.none()),
        damage=st.one_of(st.just(()), st.lists(damage, min_size=1, max_size=3).map(tuple)),
        text=st.one_of(
            JUNK_TEXT,
            st.just('{"EventType": "x"'),
            st.just("[1, 2]"),
            st.just('{"EventType": "x", "a": ' + "[" * 3000 + "]" * 3000 + "}"),
        ),
        block=st.sampled_from(
            ["normal"] * 16 + ["other-owner", "bad-pad", "short", "long-length", "not-utf8", "no-owner"]
        ),
    )


def _fill_ids(value: Any, ids: Callable[[], str]) -> Any:
    if value == "{ID}":
        return ids()
    if isinstance(value, dict):
        return {k: _fill_ids(v, ids) for k, v in value.items()}
    return value


def build_event_inner(fuzzer: Fuzzer, case: EventInner) -> Built:
    plain = (
        json.dumps(_fill_ids(_apply(dict(case.event), case.damage), fuzzer.uid), ensure_ascii=False)
        if case.event is not None
        else case.text
    )
    msg = plain.encode("utf-8", "surrogatepass")
    owner = DING_OWNER.encode()
    block = {
        "normal": lambda: layout(msg, owner),
        "other-owner": lambda: layout(msg, b"dingother"),
        "bad-pad": lambda: layout(msg, owner),
        "short": lambda: b"r" * 17,
        "long-length": lambda: layout(msg, owner, length=len(msg) + 64),
        "not-utf8": lambda: layout(b"\xc3\x28" + msg, owner),
        "no-owner": lambda: layout(msg, b""),
    }[case.block]()
    encrypt = craft_ciphertext(DING_AES, block, pad=bytes([33]) * 33 if case.block == "bad-pad" else None)
    ts, nonce = str(_ms()), "n" + fuzzer.uid()
    sig = signature(DING_TOKEN, ts, nonce, encrypt)
    good = Param("good")
    query = _event_query(False, (good, sig), (good, ts), (good, nonce), "")
    return Built(
        Sent(
            "POST",
            "/dingtalk/events",
            query,
            headers("application/json"),
            json.dumps({"encrypt": encrypt}).encode(),
        ),
        None,
        payload=json.dumps({"kind": "event", "body": plain}, ensure_ascii=False),
        check_ack=_event_reply_check,
    )


# ---------------------------------------------------------------- DingTalk robot messages

HeaderKind = Literal["good", "absent", "empty", "junk", "non-ascii-digits", "stale", "future", "padded"]
HEADER_KINDS: tuple[HeaderKind, ...] = (
    "absent",
    "empty",
    "junk",
    "non-ascii-digits",
    "stale",
    "future",
    "padded",
)


@dataclass(frozen=True)
class SignedHeaders:
    timestamp: HeaderKind
    sign: Literal["good", "absent", "empty", "junk", "not-base64", "other-secret", "lower"]
    junk: str


def signed_headers() -> st.SearchStrategy[SignedHeaders]:
    return st.builds(
        SignedHeaders,
        timestamp=st.sampled_from(["good"] * 5 + list(HEADER_KINDS)),
        sign=st.sampled_from(
            ["good"] * 5 + ["absent", "empty", "junk", "not-base64", "other-secret", "lower"]
        ),
        junk=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    )


def _header_pairs(
    h: SignedHeaders, names: tuple[str, str], mac: Callable[[str, str], str], secret: str
) -> tuple[tuple[tuple[str, str], ...], bool]:
    """The two signature headers (timestamp, sign) for `h`, and whether they are right."""
    now = _ms()
    ts = {
        "good": str(now),
        "absent": "",
        "empty": "",
        "junk": h.junk or "x",
        "non-ascii-digits": "\u0661\u0662\u0663",
        "stale": str(now - 2 * 3_600_000),
        "future": str(now + 2 * 3_600_000),
        "padded": f" {now} ",
    }[h.timestamp]
    good_sign = mac(ts if ts.strip().isascii() else "0", secret)
    sign = {
        "good": good_sign,
        "absent": "",
        "empty": "",
        "junk": h.junk or "x",
        "not-base64": "!!" + good_sign,
        "other-secret": mac(ts, secret + "x"),
        "lower": good_sign.lower(),
    }[h.sign]
    out = []
    if h.timestamp != "absent":
        out.append((names[0], ts))
    if h.sign != "absent":
        out.append((names[1], sign))
    ok = h.timestamp in ("good", "padded") and (h.sign == "good" or (h.sign == "lower" and sign == good_sign))
    # non-ASCII header values go out as UTF-8 bytes
    return tuple(out), ok


def _robot_mac(ts: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), f"{ts.strip()}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def _card_mac(ts: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), ts.strip().encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


JsonBody = Literal[
    "good", "garbage", "not-utf8", "truncated", "oversized", "array", "empty", "deep", "surrogate"
]


@dataclass(frozen=True)
class RobotOuter:
    headers: SignedHeaders
    body: JsonBody
    junk: bytes
    cut: int
    content_type: str | None


def robot_outer_cases() -> st.SearchStrategy[RobotOuter]:
    return st.builds(
        RobotOuter,
        headers=signed_headers(),
        body=st.sampled_from(["good"] * 4 + list(JsonBody.__args__)),  # type: ignore[attr-defined]
        junk=st.binary(max_size=80),
        cut=st.integers(0, 300),
        content_type=st.sampled_from(["application/json", *CONTENT_TYPES]),
    )


def _json_body(kind: JsonBody, good: bytes, junk: bytes, cut: int) -> tuple[bytes, bool]:
    return {
        "good": (good, True),
        "garbage": (junk, False),
        "not-utf8": (good.decode().encode("utf-16"), False),
        "truncated": (good[: min(cut, len(good) - 1)], False),
        "oversized": (good[:-1] + b', "pad": "' + b"x" * MAX_BODY + b'"}', False),
        "array": (b"[" + good + b"]", False),
        "empty": (b"", False),
        "deep": (b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", False),
        "surrogate": (good[:-1] + b', "msgId": "\\ud800"}', False),
    }[kind]


def _robot_message(fuzzer: Fuzzer, text: str, sender: str) -> dict[str, Any]:
    body = fuzzer.p.dingtalk.emulator.robot_text_message(text, sender=sender, msg_id=fuzzer.uid())
    return body


def build_robot_outer(fuzzer: Fuzzer, case: RobotOuter) -> Built:
    message = json.dumps(_robot_message(fuzzer, "帮助", "outsider01"), ensure_ascii=False).encode()
    body, body_ok = _json_body(case.body, message, case.junk, case.cut)
    sign, sign_ok = _header_pairs(case.headers, ("timestamp", "sign"), _robot_mac, dt.APP_SECRET)
    return Built(
        Sent("POST", "/dingtalk/robot", "", headers(case.content_type, *sign), body),
        sign_ok and body_ok,
        payload=json.dumps({"kind": "robot", "body": message.decode()}, ensure_ascii=False),
        check_ack=_empty_json,
    )


def _empty_json(answer: Answer) -> None:
    assert answer.content_type == "application/json" and json.loads(answer.text) == {}, answer


@dataclass(frozen=True)
class Edit:
    key: str
    value: Any  # DROP removes the key
    nested: str = ""  # set inside this object instead of the top level


DROP = "<drop>"
ROBOT_KEYS = (
    "msgtype",
    "text",
    "content",
    "msgId",
    "createAt",
    "conversationType",
    "conversationId",
    "conversationTitle",
    "senderId",
    "senderStaffId",
    "senderNick",
    "senderCorpId",
    "chatbotCorpId",
    "chatbotUserId",
    "robotCode",
    "isInAtList",
    "atUsers",
    "sessionWebhook",
    "sessionWebhookExpiredTime",
)


@dataclass(frozen=True)
class RobotInner:
    text: str
    sender: str
    edits: tuple[Edit, ...]


def robot_inner_cases(world: World) -> st.SearchStrategy[RobotInner]:
    special = {
        "msgtype": st.sampled_from(["text", "richText", "picture", "file", "audio", "markdown", "", "TEXT"]),
        "conversationType": st.sampled_from(["1", "2", "3", ""]),
        "robotCode": st.sampled_from([dt.ROBOT, "dingother", ""]),
        "chatbotCorpId": st.sampled_from([dt.CORP, "dingother", ""]),
        "senderCorpId": st.sampled_from([dt.CORP, "dingother", ""]),
        "sessionWebhook": st.sampled_from(
            [
                "http://[::1",
                "http://127.0.0.1:1/x",
                "https://oapi.dingtalk.com/robot/sendBySession?session=x",
                "",
                "javascript:x",
            ]
        ),
        "sessionWebhookExpiredTime": st.sampled_from([0, -1, 2**63, "9" * 30, 4_102_444_800_000]),
        "createAt": st.sampled_from([0, -1, 2**64, "abc", "1" * 25]),
        "isInAtList": st.sampled_from([True, False, "true", "yes", 1]),
        "atUsers": st.sampled_from(
            [
                [],
                [{"dingtalkId": "x"}],
                [{"staffId": 3}],
                ["x"],
                {"a": 1},
                [{"dingtalkId": "$:LWCP_v1:$robot-dingrobot0001"}],
            ]
        ),
        "content": st.sampled_from(
            [
                {"richText": [{"text": "帮助"}, {"type": "picture"}, {"text": 3}]},
                {"downloadCode": 5},
                {"fileName": "a"},
                "帮助",
            ]
        ),
        "text": st.one_of(st.fixed_dictionaries({"content": JSON_JUNK}), JSON_JUNK),
    }

    def edit_for(key: str) -> st.SearchStrategy[Edit]:
        good = special.get(key, JUNK_TEXT)
        values = st.one_of(good, good, good, JUNK_TEXT, JSON_JUNK, HUGE_TEXT, st.just(DROP))
        return st.builds(Edit, st.just(key), values)

    keys = st.sampled_from([*special, *special, *ROBOT_KEYS, "junk"])
    edits = st.lists(keys.flatmap(edit_for), max_size=3)
    return st.builds(
        RobotInner, text=CHAT_TEXT, sender=st.sampled_from(DING_SENDERS), edits=edits.map(tuple)
    ).filter(lambda c: not _robot_genuine(world, c))


def _robot_genuine(world: World, case: RobotInner) -> bool:
    """The seeded ticket's handler saying 同意 / 驳回 (the message after its edits)."""
    final = _apply({"senderStaffId": case.sender, "text": {"content": case.text}}, case.edits)
    staff = final.get("senderStaffId")
    return (
        isinstance(staff, str)
        and USERNAMES.get(staff, "") == world.handler
        and isinstance(commands.parse(commands_text(final)), commands.Decide)
    )


def _apply(body: dict[str, Any], edits: tuple[Edit, ...]) -> dict[str, Any]:
    out = dict(body)
    for e in edits:
        target = out
        if e.nested:
            inner = out.get(e.nested)
            target = dict(inner) if isinstance(inner, dict) else {}
            out[e.nested] = target
        if e.value == DROP:
            target.pop(e.key, None)
        else:
            target[e.key] = e.value
    return out


def build_robot_inner(fuzzer: Fuzzer, case: RobotInner) -> Built:
    body = _apply(_robot_message(fuzzer, case.text, case.sender), case.edits)
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    sign, _ = _header_pairs(
        SignedHeaders("good", "good", ""), ("timestamp", "sign"), _robot_mac, dt.APP_SECRET
    )
    staff = body.get("senderStaffId")
    text = commands_text(body)
    return Built(
        Sent("POST", "/dingtalk/robot", "", headers("application/json", *sign), raw),
        None,
        payload=json.dumps(
            {"kind": "robot", "body": raw.decode("utf-8", "surrogatepass")}, ensure_ascii=False
        ),
        check_ack=_empty_json,
        may_change=frozenset({"chat_draft"}),
        may_create=isinstance(staff, str) and _may_create(fuzzer, "dingtalk", USERNAMES.get(staff, ""), text),
    )


def commands_text(body: Mapping[str, Any]) -> str:
    """The text a robot message may carry (text.content or a top-level content), for the create check."""
    text = body.get("text")
    if isinstance(text, dict) and isinstance(text.get("content"), str):
        return str(text["content"])
    content = body.get("content")
    return content if isinstance(content, str) else ""


# ---------------------------------------------------------------- DingTalk card clicks


@dataclass(frozen=True)
class CardOuter:
    headers: SignedHeaders
    body: JsonBody
    junk: bytes
    cut: int
    content_type: str | None


def card_outer_cases() -> st.SearchStrategy[CardOuter]:
    return st.builds(
        CardOuter,
        headers=signed_headers(),
        body=st.sampled_from(["good"] * 4 + list(JsonBody.__args__)),  # type: ignore[attr-defined]
        junk=st.binary(max_size=80),
        cut=st.integers(0, 300),
        content_type=st.sampled_from(["application/json", *CONTENT_TYPES]),
    )


def _click_body(fuzzer: Fuzzer, track: str, user: str, action: str) -> dict[str, Any]:
    return card_callback_body(
        out_track_id=track,
        user_id=user,
        corp_id=dt.CORP,
        action_id="btn1",
        params={"action": action, "n": fuzzer.uid()},
    )


def build_card_outer(fuzzer: Fuzzer, case: CardOuter) -> Built:
    click = json.dumps(
        _click_body(fuzzer, "track-" + fuzzer.uid(), "outsider01", "t:1:s:1:a:x:x:1:n:1")
    ).encode()
    body, body_ok = _json_body(case.body, click, case.junk, case.cut)
    names = ("x-ddpaas-signature-timestamp", "x-ddpaas-signature")
    sign, sign_ok = _header_pairs(case.headers, names, _card_mac, dt.APP_SECRET)
    return Built(
        Sent("POST", "/dingtalk/card", "", headers(case.content_type, *sign), body),
        sign_ok and body_ok,
        payload=json.dumps({"kind": "click", "body": click.decode()}),
        check_ack=_card_answer,
        may_change=frozenset({"delivery"}),
    )


def _card_answer(answer: Answer) -> None:
    got = json.loads(answer.text)
    assert answer.content_type == "application/json" and isinstance(got, dict), answer
    assert set(got) <= {"cardData", "cardUpdateOptions"}, got


@dataclass(frozen=True)
class CardInner:
    track: str
    user: str
    action: str
    action_ids: Any
    content: Literal["normal", "junk", "not-json", "not-object", "no-private", "missing", "number", "huge"]
    junk: Any
    edits: tuple[Edit, ...]


def card_inner_cases(world: World) -> st.SearchStrategy[CardInner]:
    action = mostly(_edited_keys(world.ding_actions, world.ticket_id, world.state_id), JUNK_TEXT)
    top = st.sampled_from(("type", "outTrackId", "userId", "corpId", "content", "junk"))
    edit = st.builds(
        Edit,
        top,
        st.one_of(st.sampled_from(["actionCallback", "dingother", dt.CORP, DROP]), JSON_JUNK, HUGE_TEXT),
    )
    return st.builds(
        CardInner,
        track=mostly(
            st.sampled_from([world.ding_track, "track-x"]), st.sampled_from(["", "a:b%c"]) | JUNK_TEXT
        ),
        user=mostly(st.sampled_from(DING_CLICKERS), JUNK_TEXT),
        action=action,
        action_ids=mostly(
            st.sampled_from([["btn1"], [], None]), st.sampled_from(["btn1", [1], [""]]) | JSON_JUNK
        ),
        content=st.sampled_from(
            ["normal"] * 14 + ["junk", "not-json", "not-object", "no-private", "missing", "number", "huge"]
        ),
        junk=JSON_JUNK,
        edits=st.one_of(st.just(()), st.just(()), st.lists(edit, min_size=1, max_size=2).map(tuple)),
    ).filter(lambda c: not _card_genuine(world, c))


def _card_genuine(world: World, case: CardInner) -> bool:
    """The seeded ticket's handler clicking one of its buttons (the clicker after the edits)."""
    user = _apply({"userId": case.user}, case.edits).get("userId")
    return isinstance(user, str) and world.genuine(USERNAMES.get(user, ""), case.action)


def build_card_inner(fuzzer: Fuzzer, case: CardInner) -> Built:
    private: dict[str, Any] = {
        "actionIds": case.action_ids,
        "params": {"action": case.action, "n": fuzzer.uid()},
    }
    content: Any = {
        "normal": json.dumps({"cardPrivateData": private}, ensure_ascii=False),
        "junk": json.dumps({"cardPrivateData": case.junk}),
        "not-json": "{cardPrivateData: 1",
        "not-object": json.dumps([private]),
        "no-private": json.dumps({"cardPublicData": private}),
        "missing": DROP,
        "number": 42,
        "huge": json.dumps({"cardPrivateData": {**private, "pad": "长" * 22_000}}, ensure_ascii=False),
    }[case.content]
    body = {
        "type": "actionCallback",
        "outTrackId": case.track,
        "corpId": dt.CORP,
        "userId": case.user,
        "content": content,
    }
    body = _apply(body, (Edit("content", content), *case.edits))
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    names = ("x-ddpaas-signature-timestamp", "x-ddpaas-signature")
    sign, _ = _header_pairs(SignedHeaders("good", "good", ""), names, _card_mac, dt.APP_SECRET)
    return Built(
        Sent("POST", "/dingtalk/card", "", headers("application/json", *sign), raw),
        None,
        payload=json.dumps(
            {"kind": "click", "body": raw.decode("utf-8", "surrogatepass")}, ensure_ascii=False
        ),
        check_ack=_card_answer,
        may_change=frozenset({"delivery"}),
    )


# ---------------------------------------------------------------- bodies cut short by the sender

CutRoute = Literal["wecom", "events", "robot", "card"]


@dataclass(frozen=True)
class CutShort:
    route: CutRoute
    share: float  # of the body delivered before the sender goes away


def cut_short_cases(routes: list[CutRoute]) -> st.SearchStrategy[CutShort]:
    return st.builds(CutShort, st.sampled_from(routes), st.floats(0.0, 0.999))


def build_cut_short(fuzzer: Fuzzer, case: CutShort) -> Built:
    """A valid request of `case.route` whose sender goes away mid-body: refused, nothing stored."""
    good = Param("good")
    headers = SignedHeaders("good", "good", "")
    if case.route == "wecom":
        wecom = WeComOuter("POST", good, good, False, good, good, "good", b"", 0, "text/xml", "")
        built = build_wecom_outer(fuzzer, wecom)
    elif case.route == "events":
        built = build_event_outer(
            fuzzer, EventOuter(False, good, good, good, "good", b"", 0, "application/json", "")
        )
    elif case.route == "robot":
        built = build_robot_outer(fuzzer, RobotOuter(headers, "good", b"", 0, "application/json"))
    else:
        built = build_card_outer(fuzzer, CardOuter(headers, "good", b"", 0, "application/json"))
    cut = int(case.share * len(built.sent.body))
    return Built(dataclasses.replace(built.sent, cut=cut), False)


ANY_DINGTALK = Endpoint("dingtalk", EVENT_REASONS + ROBOT_REASONS + CARD_REASONS)


# ---------------------------------------------------------------- the tests


@pytest.fixture
def counts(request: pytest.FixtureRequest) -> CaseCounts:
    return case_counts(request, "ticketbot-callback-fuzz", "callback fuzz")


@pytest.fixture
async def fuzzer(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> AsyncIterator[Fuzzer]:
    p = await make_platforms(aiohttp_server, aiohttp_client, database_url)
    world = await seed(p)
    db = await DbWatch.start(p.db)
    await prove_watch(db)  # the snapshots can fail: they see an inserted, changed, deleted row
    with watching_logs() as watch:
        yield Fuzzer(p, world, watch, db)


def _stale(key: str, world: World) -> str:
    """`key` made for a state the ticket is not in."""
    pieces = key.split(":")
    pieces[3] = str(world.state_id + 1)
    return ":".join(pieces)


METHODS: tuple[Literal["GET", "POST"], ...] = ("GET", "POST")
GENUINE_CREATE = "发起 请假申请 start_date=2024-05-06 end_date=2024-05-07 days=2 reason=家里有事"


def wecom_explicit(world: World) -> tuple[list[WeComOuter], list[WeComInner]]:
    """Cases run first, whatever is generated: the valid GET and POST, and each with a wrong
    signature; a create by chat (a draft opens), the card's own handler clicking a stale button (the
    card is shown the ticket's state), a customer change."""
    good, wrong = Param("good"), Param("junk", "0" * 40)
    outer = [
        WeComOuter(method, signature, good, False, good, good, "good", b"", 0, "text/xml", "")
        for method in METHODS
        for signature in (good, wrong)
    ]

    def message(*fields: tuple[str, str]) -> WeComInner:
        head = (("ToUserName", wc.CORP), ("CreateTime", "{ID}"), ("AgentID", str(wc.AGENT)))
        good_fields = tuple(XmlField(n, v) for n, v in head + fields)
        return WeComInner(good_fields, (), "none", 0, "", "normal")

    inner = [
        message(
            ("FromUserName", "SunHao"), ("MsgType", "text"), ("Content", "发起 请假申请"), ("MsgId", "{ID}")
        ),
        message(
            ("FromUserName", "WangQiang"),
            ("MsgType", "event"),
            ("Event", "template_card_event"),
            ("EventKey", _stale(world.wecom_keys[0], world)),
            ("TaskId", world.wecom_task_id),
            ("ResponseCode", "rc-1"),
        ),
        message(
            ("FromUserName", "sys"),
            ("MsgType", "event"),
            ("Event", "change_external_contact"),
            ("ChangeType", "add_external_contact"),
            ("UserID", "SunHao"),
            ("ExternalUserID", "wmXXXX"),
        ),
    ]
    return outer, inner


def dingtalk_outer_explicit() -> tuple[list[EventOuter], list[RobotOuter], list[CardOuter]]:
    """Cases run first: each endpoint's valid request, and the same wrongly signed."""
    good, wrong = Param("good"), Param("junk", "0" * 40)
    events = [
        EventOuter(False, sig, good, good, "good", b"", 0, "application/json", "") for sig in (good, wrong)
    ]
    signs = (SignedHeaders("good", "good", ""), SignedHeaders("good", "other-secret", ""))
    robot = [RobotOuter(h, "good", b"", 0, "application/json") for h in signs]
    card = [CardOuter(h, "good", b"", 0, "application/json") for h in signs]
    return events, robot, card


def dingtalk_explicit(world: World) -> tuple[list[RobotInner], list[CardInner]]:
    """Cases run first: a reply to a session webhook that is not a URL; a create by chat that opens
    a draft, and one that creates a ticket; an outsider clicking the real card; its own handler
    clicking a stale button."""
    robot = [
        RobotInner("帮助", "outsider01", (Edit("sessionWebhook", "http://[::1"),)),
        RobotInner("发起 请假申请", "staff0009", ()),
        RobotInner(GENUINE_CREATE, "staff0013", ()),  # heping: a ticket for wujuan, no one generated
    ]
    action = world.ding_actions[0]
    card = [
        CardInner(world.ding_track, "outsider01", action, ["btn1"], "normal", None, ()),
        CardInner(world.ding_track, "staff0004", _stale(action, world), ["btn1"], "normal", None, ()),
    ]
    return robot, card


async def test_wecom_callback(fuzzer: Fuzzer, counts: CaseCounts) -> None:
    outer, inner = wecom_explicit(fuzzer.world)
    await fuzz(fuzzer, counts, WECOM, "wecom outer", wecom_outer_cases(), build_wecom_outer, explicit=outer)
    inner_cases = wecom_inner_cases(fuzzer.world)
    await fuzz(fuzzer, counts, WECOM, "wecom inner", inner_cases, build_wecom_inner, explicit=inner)
    cut = cut_short_cases(["wecom"])
    await fuzz(fuzzer, counts, WECOM, "wecom cut short", cut, build_cut_short, both_ways=False)


async def test_dingtalk_callbacks(fuzzer: Fuzzer, counts: CaseCounts) -> None:
    world = fuzzer.world
    events, robot, card = dingtalk_outer_explicit()
    chat, clicks = dingtalk_explicit(world)
    label = "dingtalk events outer"
    await fuzz(fuzzer, counts, EVENTS, label, event_outer_cases(), build_event_outer, explicit=events)
    label = "dingtalk events inner"
    await fuzz(fuzzer, counts, EVENTS, label, event_inner_cases(), build_event_inner)
    label = "dingtalk robot outer"
    await fuzz(fuzzer, counts, ROBOT, label, robot_outer_cases(), build_robot_outer, explicit=robot)
    label = "dingtalk robot inner"
    said = await fuzz(
        fuzzer, counts, ROBOT, label, robot_inner_cases(world), build_robot_inner, explicit=chat
    )
    assert said.outcomes["acknowledged and processed, a ticket created"] == 1, said.outcomes  # heping's
    label = "dingtalk card outer"
    await fuzz(fuzzer, counts, CARD, label, card_outer_cases(), build_card_outer, explicit=card)
    label = "dingtalk card inner"
    await fuzz(fuzzer, counts, CARD, label, card_inner_cases(world), build_card_inner, explicit=clicks)
    cut = cut_short_cases(["events", "robot", "card"])
    await fuzz(fuzzer, counts, ANY_DINGTALK, "dingtalk cut short", cut, build_cut_short, both_ways=False)
