"""Property-based fuzzing of every platform callback endpoint, through the real app on SQLite and
PostgreSQL, with WeCom and DingTalk both enabled against their emulators (support.py). The
cases, the runner and its checks are the other modules of this package, tests/fuzz (a map in its
__init__.py).

Two tests per backend, each a series of bounded, derandomized hypothesis runs (a few explicit
cases first, then generated ones; counts in runner.EXAMPLES):

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

Properties of every case (`Fuzzer.check`, runner.py):

- never a 5xx, no traceback in the answer; an answer other than 200 is one of the endpoint's
  documented refusals (400 / 403, a plain-text reason from the adapter's list, reasons.py); a
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

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.case_counts import CaseCounts, case_counts
from tests.db_snapshot import DbWatch, prove_watch
from tests.fuzz.cut_short import ANY_DINGTALK, build_cut_short, cut_short_cases
from tests.fuzz.dingtalk_card import build_card_inner, build_card_outer, card_inner_cases, card_outer_cases
from tests.fuzz.dingtalk_events import (
    build_event_inner,
    build_event_outer,
    event_inner_cases,
    event_outer_cases,
)
from tests.fuzz.dingtalk_robot import (
    build_robot_inner,
    build_robot_outer,
    robot_inner_cases,
    robot_outer_cases,
)
from tests.fuzz.explicit import dingtalk_explicit, dingtalk_outer_explicit, wecom_explicit
from tests.fuzz.runner import CARD, EVENTS, ROBOT, WECOM, Fuzzer, fuzz
from tests.fuzz.support import make_platforms, watching_logs
from tests.fuzz.wecom_cases import build_wecom_inner, build_wecom_outer, wecom_inner_cases, wecom_outer_cases
from tests.fuzz.world import seed

# ---------------------------------------------------------------- the tests


@pytest.fixture
def counts(request: pytest.FixtureRequest) -> CaseCounts:
    return case_counts(request, "ticketbot-callback-fuzz", "callback fuzz")


@pytest.fixture
async def fuzzer(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> AsyncIterator[Fuzzer]:
    p = await make_platforms(aiohttp_server, aiohttp_client, database_url)
    world = await seed(p)
    db = await DbWatch.start(database_url)
    try:
        await prove_watch(db, p.db)  # the snapshots can fail: they see an inserted, changed, deleted row
        with watching_logs() as watch:
            yield Fuzzer(p, world, watch, db)
    finally:
        await db.dispose()


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
