"""Property-based runs over the two web surfaces people use in a browser (SQLite and PostgreSQL).

- The ticket page's form (POST /tickets/{id}/act): generated forms, each carrying the signed link
  of one of four viewers (the handler, the creator, a workflow viewer, someone who may not view the
  ticket), a state that is right, wrong or junk, an action that is real or junk, and field inputs
  (``f.<key>``, ``target``, ``suggestion``) with hostile text.
- The work-order sidebar's JSON API (POST /sidebar/api/workorders and /sidebar/api/links) with a
  signed-in session and its CSRF token: generated JSON of every type, known keys with wrong values
  and unknown keys.

Every answer must be below 500, carry no traceback, be the surface's own kind (an HTML page; a
JSON object with "error" when refused), and a refusal (4xx) must change nothing: the ticket's
version and log for the page; tickets, relations and linked messages for the sidebar. Cases are
drawn by hypothesis (derandomized, bounded) and then sent; the numbers run are printed in the
terminal summary.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bot.app import RUNTIME
from tests.bot.test_sidebar import ALICE, BOB, CAROL, Env, env  # noqa: F401  (the fixture)
from tests.bot.test_ticket_page import APPROVE, REJECT, Page, page  # noqa: F401  (the fixture)
from tests.case_counts import CaseCounts, case_counts

PAGE_CASES = 120
SIDEBAR_CASES = 120
TRACEBACK = ("Traceback (most recent call last)", 'File "', '.py", line')
HOSTILE = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=300),
    st.sampled_from(["", " ", "\x00", "'; DROP TABLE ticket; --", "<script>alert(1)</script>", "x" * 5000]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)


def drawn(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """`count` values of `strategy`, the same ones on every run (derandomized, generate phase only)."""
    out: list[Any] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(strategy)
    def collect(value: Any) -> None:
        out.append(value)

    collect()
    return out


def _page_forms() -> st.SearchStrategy[tuple[str, dict[str, str]]]:
    viewer = st.sampled_from(["wangqiang", "liuyang", "yangfan", "zhoumin"])
    action = st.one_of(
        st.sampled_from(
            [
                f"transition:{APPROVE}",
                f"transition:{REJECT}",
                "transition:1",
                "transition:99999999999999999999",
                "accept",
                "add_node_end",
                "comment",
                "deliver",
                "add_node",
                "retreat",
                "close",
                "nope",
            ]
        ),
        HOSTILE,
    )
    state = st.one_of(st.sampled_from(["102", "101", "104", "0", "-1", "", "1e3"]), HOSTILE)
    keys = st.sampled_from(
        [
            "f.reason",
            "f.days",
            "f.leave_type",
            "f.start_date",
            "f.proxy",
            "f.nope",
            "target",
            "suggestion",
            "x",
        ]
    )
    extra = st.dictionaries(keys, HOSTILE, max_size=5)
    return st.tuples(viewer, action, state, extra).map(
        lambda t: (t[0], {"action": t[1], "state": t[2], **t[3]})
    )


def _page_ok(status: int, content_type: str, text: str) -> bool:
    if status == 303:  # done: back to the page, with a flash message
        return text == ""
    return status < 500 and content_type == "text/html" and not any(t in text for t in TRACEBACK)


@pytest.fixture
def counts(request: pytest.FixtureRequest) -> CaseCounts:
    return case_counts(request, "ticketbot-web-fuzz", "web surfaces property run")


async def test_generated_ticket_page_forms(page: Page, counts: CaseCounts) -> None:  # noqa: F811
    cases = drawn(_page_forms(), PAGE_CASES)
    statuses: dict[int, int] = {}
    for viewer, fields in cases:
        before = await page.ticket()
        logs = await page.logs()
        resp = await page.post({**page.auth(viewer), **fields})
        text = await resp.text()
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        assert _page_ok(resp.status, resp.content_type, text), (viewer, fields, resp.status, text[-400:])
        if resp.status >= 400:
            after = await page.ticket()
            assert (after.version, after.state_id) == (before.version, before.state_id), (viewer, fields)
            assert await page.logs() == logs, (viewer, fields)
    backend = "postgres" if page.app[RUNTIME].db.dialect == "postgresql" else "sqlite"
    counts.lines.append(
        f"ticket page forms [{backend}]: {len(cases)} cases, statuses {dict(sorted(statuses.items()))}"
    )
    assert len(cases) == PAGE_CASES
    assert any(s >= 400 for s in statuses) and any(s < 400 for s in statuses)  # both kinds reached


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | HOSTILE,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _sidebar_bodies() -> st.SearchStrategy[tuple[str, Any]]:
    path = st.sampled_from(["/sidebar/api/workorders", "/sidebar/api/links"])
    known = st.fixed_dictionaries(
        {},
        optional={
            "external_userid": st.one_of(st.sampled_from([ALICE, BOB, CAROL, "", "bad id"]), _JSON),
            "request_id": st.one_of(st.sampled_from(["req-0001-abcdef", "short"]), _JSON),
            "template_id": st.one_of(st.sampled_from([3, 1, 0, -1, 2**64]), _JSON),
            "order_no": st.one_of(st.sampled_from(["1470000000000000001", "1", ""]), _JSON),
            "msg_ids": st.one_of(st.lists(HOSTILE, max_size=3), _JSON),
            "customer_name": _JSON,
            "category": st.one_of(st.sampled_from(["fault", "consult", "x" * 300]), _JSON),
            "priority": _JSON,
            "description": _JSON,
        },
    )
    valid_create: dict[str, Any] = {
        "external_userid": ALICE,
        "template_id": 3,
        "customer_name": "Alice",
        "category": "fault",
        "priority": "high",
        "description": "路由器连不上网",
        "msg_ids": [],
        "request_id": "req-fuzz-0001-abcdef",
    }
    valid_link: dict[str, Any] = {
        "external_userid": ALICE,
        "order_no": "1470000000000000001",
        "msg_ids": ["m-1"],
    }
    bases: list[tuple[str, dict[str, Any]]] = [
        ("/sidebar/api/workorders", valid_create),
        ("/sidebar/api/links", valid_link),
    ]
    near_valid = st.tuples(
        st.sampled_from(bases),
        st.sampled_from([*valid_create, *valid_link]),
        st.one_of(st.none(), _JSON),
    ).map(lambda t: (t[0][0], _mutated(t[0][1], t[1], t[2])))
    body = st.one_of(known, _JSON, st.binary(max_size=64), st.text(max_size=64))
    return st.one_of(st.tuples(path, body), near_valid)


def _mutated(body: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """`body` with `key` dropped (value None) or set to `value`."""
    out = dict(body)
    if value is None:
        out.pop(key, None)
    else:
        out[key] = value
    return out


async def test_generated_sidebar_api_bodies(env: Env, counts: CaseCounts) -> None:  # noqa: F811
    token = await env.login()
    cases = drawn(_sidebar_bodies(), SIDEBAR_CASES)
    statuses: dict[int, int] = {}
    for path, body in cases:
        before = await env.counts()
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        resp = await env.post(path, data, token)
        text = await resp.text()
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        assert resp.status < 500 and not any(t in text for t in TRACEBACK), (path, body, resp.status, text)
        assert resp.content_type == "application/json", (path, body, resp.status)
        if resp.status >= 400:
            assert isinstance(json.loads(text).get("error"), str), (path, body, text)
            assert await env.counts() == before, (path, body)
    backend = "postgres" if env.db.dialect == "postgresql" else "sqlite"
    counts.lines.append(
        f"sidebar api [{backend}]: {len(cases)} cases, statuses {dict(sorted(statuses.items()))}"
    )
    assert len(cases) == SIDEBAR_CASES
    assert len(statuses) >= 3, statuses  # the run got past the body checks, not only 400s
