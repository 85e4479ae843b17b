"""Ticket-list query latency at scale: store.queries.list_tickets on a large, freshly filled database.

Fills a fresh database (PostgreSQL schema ``bench_<random>`` by default, or a SQLite file),
migrated with the real migrations (store.migrate.upgrade_async), in bulk:

- ``--tickets`` tickets (default 1,000,000 on PostgreSQL, 100,000 on SQLite) over the 3 shipped
  workflows (50 % / 30 % / 20 %), created evenly over the last 365 days (ids follow time), SNs
  ``loonflow_YYYYMMDDNNNN``, titles as the workflows' templates make them (0.5 % marked 【加急】);
- ``--users`` users (default 50, ``user00``...): creators uniform; current handlers and approvers
  skewed (user k gets sqrt((k+1)/U) - sqrt(k/U) of them: user00 about 14 %, user49 about 0.5 %);
- states: tickets of the last 30 days are 60 % ongoing, older ones 2 %; the rest finished (90 %),
  rejected back to the creator (7 %) or closed (3 %); 0.3 % deleted;
- ticket_user rows as the store keeps them: the creator (worked), the current handler (duty) and
  the approver (worked); flow_log rows: the submit, and the approval when there is one.

PostgreSQL is filled with generate_series in SQL, then VACUUM ANALYZE (what autovacuum would
reach); SQLite with executemany in chunks (no ANALYZE unless --sqlite-analyze: the app never runs
it). Then each query case runs once to warm up and --repeat times (default 15) through the real
`list_tickets` (a read transaction on the store's engine, count + page); median and p95 in ms.
Every case's plan is checked (EXPLAIN / EXPLAIN QUERY PLAN of the statements list_tickets sends)
and a full scan of `ticket` is flagged; on PostgreSQL the duty query's EXPLAIN ANALYZE is printed.

    python -m bench.list_queries                      # PostgreSQL, 1M tickets
    python -m bench.list_queries --db sqlite          # SQLite, 100k tickets

Prints one JSON object (one line), then the plans and a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine import Connection

from bench._server import (
    CONFIG_DIR,
    BenchError,
    DbKind,
    fresh_database_sync,
    median,
    percentile,
    rounded,
)
from config.errors import ConfigError
from config.loader import load_config
from core.ticket import ActState
from core.workflow import Attribute, StateType
from store.db import Database
from store.migrate import upgrade_async
from store.queries import list_tickets

DEFAULT_TICKETS: dict[str, int] = {"postgres": 1_000_000, "sqlite": 100_000}
SPAN = timedelta(days=365)
RECENT = timedelta(days=30)
P_ONGOING_RECENT, P_ONGOING_OLD = 0.6, 0.02
P_FINISHED, P_REJECTED = 0.90, 0.07  # of the tickets that are not ongoing; the rest are closed
P_DELETED, P_URGENT, P_LATER_STATE = 0.003, 0.005, 0.5
WORKFLOW_SHARE = (0.5, 0.3, 0.2)
SYSTEMS = ("GitLab", "Jenkins", "Kubernetes 集群", "VPN")
TOPICS = ("退款", "发票", "物流查询", "账号问题", "投诉")
SQLITE_CHUNK = 20_000


# ------------------------------------------------------------------------------------------ data shape


@dataclass(frozen=True, slots=True)
class Shape:
    """One workflow as the fill needs it (from the shipped YAML)."""

    id: int
    version: str
    start: int
    normal: tuple[int, ...]
    end: int
    submit: int  # transition start -> first review state
    approve: int  # an agree transition out of the first review state
    review: int


def workflow_shapes(config_dir: Path) -> list[Shape]:
    try:
        cfg = load_config(config_dir)
    except ConfigError as exc:
        raise BenchError(f"the config at {config_dir} is not valid:\n{exc}") from exc
    shapes: list[Shape] = []
    for wf in sorted(cfg.workflows, key=lambda w: w.id)[: len(WORKFLOW_SHARE)]:
        start = wf.start_state()
        end = next(s.id for s in wf.states if s.type == StateType.END)
        normal = tuple(s.id for s in wf.states if s.type == StateType.NORMAL)
        submit = next(t for t in wf.transitions_from(start.id) if t.attribute == Attribute.AGREE)
        review = submit.destination_state_id
        approve = next(
            (t.id for t in wf.transitions_from(review) if t.attribute == Attribute.AGREE), submit.id
        )
        shapes.append(Shape(wf.id, wf.version, start.id, normal, end, submit.id, approve, review))
    if len(shapes) < len(WORKFLOW_SHARE):
        raise BenchError(f"{config_dir} has {len(shapes)} workflows; the fill spreads tickets over 3")
    return shapes


def user_width(users: int) -> int:
    return len(str(users - 1))


def username(k: int, users: int) -> str:
    return f"user{k:0{user_width(users)}d}"


def skewed(r: float, users: int) -> int:
    """A user index with P(k) = sqrt((k+1)/U) - sqrt(k/U): user 0 the busiest."""
    return min(users - 1, int(users * r * r))


# ------------------------------------------------------------------------------------------ PostgreSQL fill


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _arr(values: Sequence[int | str]) -> str:
    return "(ARRAY[" + ", ".join(str(v) if isinstance(v, int) else _lit(v) for v in values) + "])"


def pg_fill_statements(
    shapes: Sequence[Shape], tickets: int, users: int, now: datetime, seed: float
) -> list[str]:
    t0 = (now - SPAN).isoformat()
    step = SPAN.total_seconds() / tickets
    width = user_width(users)
    user = f"'user' || lpad((({{}})::int)::text, {width}, '0')"
    c1, c2 = WORKFLOW_SHARE[0], WORKFLOW_SHARE[0] + WORKFLOW_SHARE[1]
    normal = [f"{_arr(s.normal)}[1 + floor(r_pick * {len(s.normal)})::int]" for s in shapes]
    gen = f"""
CREATE UNLOGGED TABLE bench_gen AS
WITH base AS (
    SELECT i,
           timestamptz {_lit(t0)} + ((i - 1) * {step!r}) * interval '1 second' AS created_at,
           floor(random() * {users})::int AS c,
           random() AS r_wf, random() AS r_st, random() AS r_pick, random() AS r_h,
           random() AS r_w, random() AS r_hw, random() AS r_del, random() AS r_t, random() AS r_u
    FROM generate_series(1, {tickets}) AS i
), shaped AS (
    SELECT *,
           CASE WHEN r_wf < {c1} THEN 0 WHEN r_wf < {c2} THEN 1 ELSE 2 END AS wk,
           CASE WHEN timestamptz {_lit(now.isoformat())} - created_at < interval '{RECENT.days} days'
                THEN {P_ONGOING_RECENT} ELSE {P_ONGOING_OLD} END AS p_on
    FROM base
), states AS (
    SELECT *,
           CASE WHEN r_st < p_on THEN {ActState.ONGOING:d}
                WHEN (r_st - p_on) / (1 - p_on) < {P_FINISHED} THEN {ActState.FINISHED:d}
                WHEN (r_st - p_on) / (1 - p_on) < {P_FINISHED + P_REJECTED} THEN {ActState.REJECTED:d}
                ELSE {ActState.CLOSED:d} END AS act_state
    FROM shaped
)
SELECT i, created_at, wk, act_state, r_t, r_u, r_del,
       {_arr([s.id for s in shapes])}[wk + 1] AS workflow_id,
       {_arr([s.version for s in shapes])}[wk + 1] AS workflow_version,
       {user.format("c")} AS creator,
       CASE WHEN act_state = {ActState.ONGOING:d} THEN {user.format(f"least({users - 1}, floor({users} * r_h * r_h))")} END AS handler,
       CASE WHEN act_state <> {ActState.ONGOING:d} OR r_hw < {P_LATER_STATE}
            THEN {user.format(f"least({users - 1}, floor({users} * r_w * r_w))")} END AS worker,
       CASE WHEN act_state = {ActState.ONGOING:d} THEN CASE wk {" ".join(f"WHEN {i} THEN {n}" for i, n in enumerate(normal))} END
            WHEN act_state = {ActState.REJECTED:d} THEN {_arr([s.start for s in shapes])}[wk + 1]
            ELSE {_arr([s.end for s in shapes])}[wk + 1] END AS state_id,
       row_number() OVER (PARTITION BY date_trunc('day', created_at AT TIME ZONE 'UTC') ORDER BY i) AS day_n
FROM states
"""  # noqa: S608 - our own constants and numbers
    title = (
        f"CASE WHEN r_u < {P_URGENT} THEN '【加急】' ELSE '' END || "
        f"CASE wk WHEN 0 THEN creator || ' 请假 ' || (1 + floor(r_t * 5))::int || ' 天' "
        f"WHEN 1 THEN creator || ' 申请 ' || {_arr(list(SYSTEMS))}[1 + floor(r_t * {len(SYSTEMS)})::int] || ' 权限' "
        f"ELSE '客户工单 ' || {_arr(list(TOPICS))}[1 + floor(r_t * {len(TOPICS)})::int] END"
    )
    fields = (
        "CASE wk WHEN 0 THEN jsonb_build_object('leave_type', 'annual', 'days', (1 + floor(r_t * 5))::int) "
        f"WHEN 1 THEN jsonb_build_object('system', {_arr(list(SYSTEMS))}[1 + floor(r_t * {len(SYSTEMS)})::int]) "
        f"ELSE jsonb_build_object('topic', {_arr(list(TOPICS))}[1 + floor(r_t * {len(TOPICS)})::int]) END"
    )
    current = f"CASE WHEN act_state = {ActState.ONGOING:d} THEN handler WHEN act_state = {ActState.REJECTED:d} THEN creator END"
    ticket = f"""
INSERT INTO ticket (id, sn, title, workflow_id, workflow_version, state_id, act_state, creator,
    participant_type, participants, accepted_by, in_add_node, add_node_man, add_node_target, votes,
    relation, cc, fields, parent_ticket_id, parent_ticket_state_id, script_run_last_result,
    state_entered_at, last_handlers, is_deleted, version, created_at, updated_at)
SELECT i,
       'loonflow_' || to_char(created_at AT TIME ZONE 'UTC', 'YYYYMMDD')
           || CASE WHEN day_n < 10000 THEN lpad(day_n::text, 4, '0') ELSE day_n::text END,
       {title}, workflow_id, workflow_version, state_id, act_state, creator,
       CASE WHEN {current} IS NULL THEN 0 ELSE 1 END,
       CASE WHEN {current} IS NULL THEN '[]'::jsonb ELSE jsonb_build_array({current}) END,
       '', false, '', '', '{{}}'::jsonb,
       (SELECT jsonb_agg(DISTINCT u ORDER BY u) FROM unnest(ARRAY[creator, handler, worker]) AS u WHERE u IS NOT NULL),
       '[]'::jsonb, {fields}, 0, 0, true,
       created_at + interval '1 hour',
       CASE WHEN worker IS NULL THEN '{{}}'::jsonb
            ELSE jsonb_build_object(({_arr([s.review for s in shapes])}[wk + 1])::text, worker) END,
       r_del < {P_DELETED}, CASE WHEN worker IS NULL THEN 1 ELSE 2 END,
       created_at, created_at + interval '1 hour'
FROM bench_gen ORDER BY i
"""  # noqa: S608 - our own constants and numbers
    users_sql = f"""
INSERT INTO ticket_user (ticket_id, username, is_current, worked)
SELECT ticket_id, username, bool_or(is_current), bool_or(worked) FROM (
    SELECT i AS ticket_id, creator AS username, act_state = {ActState.REJECTED:d} AS is_current, true AS worked FROM bench_gen
    UNION ALL SELECT i, handler, true, false FROM bench_gen WHERE handler IS NOT NULL
    UNION ALL SELECT i, worker, false, true FROM bench_gen WHERE worker IS NOT NULL
) AS x GROUP BY ticket_id, username
"""  # noqa: S608 - our own constants and numbers
    logs = f"""
INSERT INTO flow_log (ticket_id, state_id, actor, actor_type, intervene_type, transition_id,
    transition_name, attribute, suggestion, fields, created_at)
SELECT i, start_id, creator, 5, 0, submit_id, '提交', 1, '', '{{}}'::jsonb, created_at FROM (
    SELECT i, creator, created_at,
           {_arr([s.start for s in shapes])}[wk + 1] AS start_id, {_arr([s.submit for s in shapes])}[wk + 1] AS submit_id
    FROM bench_gen) AS a
UNION ALL
SELECT i, {_arr([s.review for s in shapes])}[wk + 1], worker, 1, 0, {_arr([s.approve for s in shapes])}[wk + 1],
       '同意', 1, 'ok', '{{}}'::jsonb, created_at + interval '1 hour'
FROM bench_gen WHERE worker IS NOT NULL
ORDER BY 1
"""  # noqa: S608 - our own constants and numbers
    return [
        f"SELECT setseed({seed})",
        gen,
        ticket,
        users_sql,
        logs,
        "SELECT setval(pg_get_serial_sequence('ticket', 'id'), (SELECT max(id) FROM ticket))",
        "SELECT setval(pg_get_serial_sequence('flow_log', 'id'), (SELECT max(id) FROM flow_log))",
        "DROP TABLE bench_gen",
    ]


async def fill_postgres(
    url: str, shapes: Sequence[Shape], tickets: int, users: int, now: datetime, seed: int
) -> None:
    db = Database(url)
    try:
        async with db.write() as conn:
            for sql in pg_fill_statements(shapes, tickets, users, now, (seed % 1000) / 1000):
                await conn.exec_driver_sql(sql)
        async with db.write_engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in ("ticket", "ticket_user", "flow_log"):
                await conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
    finally:
        await db.dispose()


# ------------------------------------------------------------------------------------------ SQLite fill


def _ts(value: datetime) -> str:
    """How the store writes a datetime on SQLite: naive UTC text with microseconds."""
    return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass
class Rows:
    tickets: list[tuple[Any, ...]] = field(default_factory=list)
    users: list[tuple[Any, ...]] = field(default_factory=list)
    logs: list[tuple[Any, ...]] = field(default_factory=list)


def generate_rows(
    shapes: Sequence[Shape], tickets: int, users: int, now: datetime, seed: int, chunk: int = SQLITE_CHUNK
) -> Iterator[Rows]:
    """The same distribution as the PostgreSQL fill, in Python, `chunk` tickets at a time."""
    rng = random.Random(seed)
    t0 = now - SPAN
    step = SPAN / tickets
    cum = [sum(WORKFLOW_SHARE[: k + 1]) for k in range(len(WORKFLOW_SHARE))]
    day, day_n = "", 0
    rows = Rows()
    for i in range(1, tickets + 1):
        created = t0 + step * (i - 1)
        r_wf, r_st, r_pick = rng.random(), rng.random(), rng.random()
        wk = next(k for k, edge in enumerate(cum) if r_wf < edge or k == len(cum) - 1)
        s = shapes[wk]
        creator = username(rng.randrange(users), users)
        p_on = P_ONGOING_RECENT if now - created < RECENT else P_ONGOING_OLD
        if r_st < p_on:
            act = ActState.ONGOING
        else:
            u = (r_st - p_on) / (1 - p_on)
            act = (
                ActState.FINISHED
                if u < P_FINISHED
                else ActState.REJECTED
                if u < P_FINISHED + P_REJECTED
                else ActState.CLOSED
            )
        handler = username(skewed(rng.random(), users), users) if act == ActState.ONGOING else None
        r_w, r_hw = rng.random(), rng.random()
        worker = (
            username(skewed(r_w, users), users) if act != ActState.ONGOING or r_hw < P_LATER_STATE else None
        )
        state = (
            s.normal[int(r_pick * len(s.normal))]
            if act == ActState.ONGOING
            else s.start
            if act == ActState.REJECTED
            else s.end
        )
        current = handler if act == ActState.ONGOING else creator if act == ActState.REJECTED else None
        r_t, r_u = rng.random(), rng.random()
        urgent = "【加急】" if r_u < P_URGENT else ""
        if wk == 0:
            days = 1 + int(r_t * 5)
            title, fields = f"{creator} 请假 {days} 天", {"leave_type": "annual", "days": days}
        elif wk == 1:
            system = SYSTEMS[int(r_t * len(SYSTEMS))]
            title, fields = f"{creator} 申请 {system} 权限", {"system": system}
        else:
            topic = TOPICS[int(r_t * len(TOPICS))]
            title, fields = f"客户工单 {topic}", {"topic": topic}
        d = created.strftime("%Y%m%d")
        day_n = day_n + 1 if d == day else 1
        day = d
        relation = sorted({x for x in (creator, handler, worker) if x})
        updated = created + timedelta(hours=1)
        rows.tickets.append(
            (
                i,
                f"loonflow_{d}{day_n:04d}",
                urgent + title,
                s.id,
                s.version,
                state,
                int(act),
                creator,
                0 if current is None else 1,
                _dumps([] if current is None else [current]),
                "",
                0,
                "",
                "",
                "{}",
                _dumps(relation),
                "[]",
                _dumps(fields),
                0,
                0,
                1,
                _ts(updated),
                "{}" if worker is None else _dumps({str(s.review): worker}),
                int(rng.random() < P_DELETED),
                1 if worker is None else 2,
                _ts(created),
                _ts(updated),
            )
        )
        involved: dict[str, list[bool]] = {creator: [act == ActState.REJECTED, True]}
        if handler:
            involved.setdefault(handler, [False, False])[0] = True
        if worker:
            involved.setdefault(worker, [False, False])[1] = True
        rows.users.extend((i, name, int(cur), int(wkd)) for name, (cur, wkd) in sorted(involved.items()))
        rows.logs.append((i, s.start, creator, 5, 0, s.submit, "提交", 1, "", "{}", _ts(created)))
        if worker:
            rows.logs.append((i, s.review, worker, 1, 0, s.approve, "同意", 1, "ok", "{}", _ts(updated)))
        if i % chunk == 0 or i == tickets:
            yield rows
            rows = Rows()


TICKET_COLUMNS = (
    "id, sn, title, workflow_id, workflow_version, state_id, act_state, creator, participant_type, "
    "participants, accepted_by, in_add_node, add_node_man, add_node_target, votes, relation, cc, fields, "
    "parent_ticket_id, parent_ticket_state_id, script_run_last_result, state_entered_at, last_handlers, "
    "is_deleted, version, created_at, updated_at"
)
LOG_COLUMNS = (
    "ticket_id, state_id, actor, actor_type, intervene_type, transition_id, transition_name, attribute, "
    "suggestion, fields, created_at"
)

TICKET_INSERT = f"INSERT INTO ticket ({TICKET_COLUMNS}) VALUES ({', '.join('?' * 27)})"  # noqa: S608 - constants
LOG_INSERT = f"INSERT INTO flow_log ({LOG_COLUMNS}) VALUES ({', '.join('?' * 11)})"  # noqa: S608 - constants


def fill_sqlite(
    url: str, shapes: Sequence[Shape], tickets: int, users: int, now: datetime, seed: int, analyze: bool
) -> None:
    path = make_url(url).database or ""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        for rows in generate_rows(shapes, tickets, users, now, seed):
            conn.execute("BEGIN")
            conn.executemany(TICKET_INSERT, rows.tickets)
            conn.executemany(
                "INSERT INTO ticket_user (ticket_id, username, is_current, worked) VALUES (?, ?, ?, ?)",
                rows.users,
            )
            conn.executemany(LOG_INSERT, rows.logs)
            conn.execute("COMMIT")
        if analyze:
            conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------ queries


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    kwargs: dict[str, Any]
    analyze: bool = False  # print its EXPLAIN ANALYZE (PostgreSQL)


def query_cases(shapes: Sequence[Shape], users: int, now: datetime) -> list[Case]:
    heavy, mid, light = username(0, users), username(min(7, users - 1), users), username(users - 1, users)
    all_wf = [s.id for s in shapes]
    api = {"workflow_ids": all_wf, "create_start": now - SPAN}  # what GET /api/v1.0/tickets adds by default
    day = (now - timedelta(days=100)).strftime("%Y%m%d")
    mid_year = now - timedelta(days=180)
    cases = [
        Case("all p1", {"username": heavy, "category": "all"}),
        Case("all p1000 (offset 9990)", {"username": heavy, "category": "all", "page": 1000}),
        Case("all p1 +api filters", {"username": heavy, "category": "all", **api}),
        Case(f"owner {heavy}", {"username": heavy, "category": "owner"}),
        Case(f"owner {light} +api filters", {"username": light, "category": "owner", **api}),
    ]
    for who in (heavy, mid, light):
        cases.append(Case(f"duty {who}", {"username": who, "category": "duty"}, analyze=True))
    cases += [
        Case(f"duty {heavy} +api filters", {"username": heavy, "category": "duty", **api}),
        Case(f"duty {light} +api filters", {"username": light, "category": "duty", **api}),
        Case(f"duty {heavy} p100", {"username": heavy, "category": "duty", "page": 100}),
    ]
    for who in (heavy, light):
        cases.append(Case(f"relation {who}", {"username": who, "category": "relation"}))
    cases += [
        Case(f"relation {light} +api filters", {"username": light, "category": "relation", **api}),
        Case(f"relation {heavy} p500", {"username": heavy, "category": "relation", "page": 500}),
    ]
    for who in (heavy, light):
        cases.append(Case(f"worked {who}", {"username": who, "category": "worked"}))
    cases += [
        Case(f"sn prefix day {day}", {"username": heavy, "category": "all", "sn_prefix": f"loonflow_{day}"}),
        Case(
            f"sn prefix day +relation {heavy}",
            {"username": heavy, "category": "relation", "sn_prefix": f"loonflow_{day}"},
        ),
        Case("title ~ 'jenkins' (7 %)", {"username": heavy, "category": "all", "title": "jenkins"}),
        Case("title ~ '加急' (0.5 %)", {"username": heavy, "category": "all", "title": "加急"}),
        Case(
            f"title ~ '加急' relation {light}", {"username": light, "category": "relation", "title": "加急"}
        ),
        Case(
            f"workflow_ids [{shapes[2].id}]",
            {"username": heavy, "category": "all", "workflow_ids": [shapes[2].id]},
        ),
        Case(
            f"state_ids {list(shapes[0].normal)}",
            {"username": heavy, "category": "all", "state_ids": list(shapes[0].normal)},
        ),
        Case(
            "create window last 7 d",
            {"username": heavy, "category": "all", "create_start": now - timedelta(days=7)},
        ),
        Case(
            "create window 7 d, 6 months ago",
            {
                "username": heavy,
                "category": "all",
                "create_start": mid_year,
                "create_end": mid_year + timedelta(days=7),
            },
        ),
        Case(
            f"create window 7 d ago6m duty {heavy}",
            {
                "username": heavy,
                "category": "duty",
                "create_start": mid_year,
                "create_end": mid_year + timedelta(days=7),
            },
        ),
    ]
    return cases


class Capture:
    """Collects the statements list_tickets sends (to EXPLAIN exactly those)."""

    def __init__(self, db: Database) -> None:
        self.on = False
        self.seen: list[tuple[str, Any]] = []
        event.listen(db.read_engine.sync_engine, "before_cursor_execute", self._hook)

    def _hook(
        self, _conn: Connection, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        if self.on and statement.lstrip().upper().startswith("SELECT"):
            self.seen.append((statement, parameters))

    @asynccontextmanager
    async def capturing(self) -> AsyncIterator[list[tuple[str, Any]]]:
        self.seen = []
        self.on = True
        try:
            yield self.seen
        finally:
            self.on = False


SEQ_TICKET = re.compile(r"Seq Scan on ticket\b")
SQLITE_FULL_SCAN = re.compile(r"\bSCAN ticket\b(?! USING)")
PG_SCAN_NODE = re.compile(
    r"((?:Parallel )?(?:Seq Scan|Index Only Scan|Index Scan|Bitmap Index Scan|Bitmap Heap Scan)"
    r"(?: Backward)?(?: using \w+)? on \w+)"
)


async def explain(db: Database, statements: Sequence[tuple[str, Any]], analyze: bool = False) -> list[str]:
    """The plan of each captured statement (PostgreSQL EXPLAIN, SQLite EXPLAIN QUERY PLAN)."""
    plans: list[str] = []
    async with db.read() as conn:
        for sql, params in statements:
            if db.dialect == "postgresql":
                prefix = "EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN "
                result = await conn.exec_driver_sql(prefix + sql, params)
                plans.append("\n".join(str(r[0]) for r in result))
            else:
                result = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
                plans.append("\n".join(str(r[-1]) for r in result))
    return plans


def scan_summary(plans: Sequence[str], dialect: str) -> tuple[str, bool]:
    """The access paths of the plans, compactly, and whether `ticket` is read in full."""
    joined = "\n".join(plans)
    if dialect == "postgresql":
        nodes = PG_SCAN_NODE.findall(joined)
        return "; ".join(dict.fromkeys(nodes)), bool(SEQ_TICKET.search(joined))
    details = [line.strip() for line in joined.splitlines() if re.search(r"\b(SCAN|SEARCH)\b", line)]
    return "; ".join(dict.fromkeys(details)), bool(SQLITE_FULL_SCAN.search(joined))


@dataclass
class Measured:
    case: Case
    times_ms: list[float]
    total: int
    rows: int
    plan: str
    full_scan: bool


async def measure(url: str, cases: Sequence[Case], repeat: int) -> tuple[list[Measured], dict[str, str]]:
    db = Database(url)
    capture = Capture(db)
    results: list[Measured] = []
    analyzed: dict[str, str] = {}
    try:
        for case in cases:
            async with capture.capturing() as seen:
                items, total = await list_tickets(db, **case.kwargs)  # warm-up, and the statements
            statements = list(seen)
            times: list[float] = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                await list_tickets(db, **case.kwargs)
                times.append((time.perf_counter() - t0) * 1000)
            plan, full = scan_summary(await explain(db, statements), db.dialect)
            results.append(Measured(case, times, total, len(items), plan, full))
            if db.dialect == "postgresql" and case.analyze:
                analyzed[case.name] = "\n\n".join(await explain(db, statements, analyze=True))
            print(f"  {case.name:<44} median {median(times):9.2f} ms", file=sys.stderr, flush=True)
    finally:
        await db.dispose()
    return results, analyzed


# ------------------------------------------------------------------------------------------ report


def table(kind: str, results: Sequence[Measured], repeat: int) -> str:
    head = f"{'query (' + kind + ')':<46}{'median ms':>11}{'p95 ms':>10}{'total':>10}{'rows':>6}  plan"
    lines = [head, "-" * 110]
    for m in results:
        flag = "SEQ SCAN ticket! " if m.full_scan else ""
        lines.append(
            f"{m.case.name:<46}{median(m.times_ms):>11.2f}{percentile(m.times_ms, 95):>10.2f}"
            f"{m.total:>10}{m.rows:>6}  {flag}{m.plan[:160]}"
        )
    lines.append(f"(each query: 1 warm-up + {repeat} timed runs of store.queries.list_tickets, count + page)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    kind: DbKind = args.db
    tickets = args.tickets or DEFAULT_TICKETS[kind]
    shapes = workflow_shapes(args.config)
    now = datetime.now(UTC).replace(microsecond=0)
    with fresh_database_sync(kind) as url:
        asyncio.run(upgrade_async(url))
        t0 = time.perf_counter()
        print(f"list_queries: filling {tickets} tickets on {kind}...", file=sys.stderr, flush=True)
        if kind == "postgres":
            asyncio.run(fill_postgres(url, shapes, tickets, args.users, now, args.seed))
        else:
            fill_sqlite(url, shapes, tickets, args.users, now, args.seed, args.sqlite_analyze)
        fill_s = time.perf_counter() - t0
        print(f"list_queries: filled in {fill_s:.1f} s; timing...", file=sys.stderr, flush=True)
        sizes = asyncio.run(table_sizes(url))
        cases = query_cases(shapes, args.users, now)
        if args.only:
            cases = [c for c in cases if any(o in c.name for o in args.only)]
        results, analyzed = asyncio.run(measure(url, cases, args.repeat))
    flagged = [m.case.name for m in results if m.full_scan]
    report = {
        "bench": "list_queries",
        "db": kind,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tickets": tickets,
        "users": args.users,
        "rows": sizes,
        "fill_s": round(fill_s, 1),
        "repeat": args.repeat,
        "sqlite_analyze": bool(args.sqlite_analyze) if kind == "sqlite" else None,
        "queries": [
            {
                "name": m.case.name,
                "median_ms": rounded(median(m.times_ms)),
                "p95_ms": rounded(percentile(m.times_ms, 95)),
                "total": m.total,
                "rows": m.rows,
                "full_scan_of_ticket": m.full_scan,
                "plan": m.plan,
            }
            for m in results
        ],
        "full_scans_of_ticket": flagged,
    }
    print(json.dumps(report, ensure_ascii=False), flush=True)
    for name, plan in analyzed.items():
        print(f"\n--- EXPLAIN (ANALYZE, BUFFERS) {name}: count, then page ---\n{plan}")
        if SEQ_TICKET.search(plan):
            print(f"!!! Seq Scan on ticket in the duty query ({name})")
    print()
    print(table(kind, results, args.repeat))
    if flagged:
        print(f"\nfull scans of ticket: {', '.join(flagged)}")
    return 0


async def table_sizes(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        async with db.read() as conn:
            out: dict[str, int] = {}
            for name in ("ticket", "ticket_user", "flow_log"):
                out[name] = int((await conn.exec_driver_sql(f"SELECT count(*) FROM {name}")).scalar_one())  # noqa: S608
            return out
    finally:
        await db.dispose()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.list_queries", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    p.add_argument(
        "--tickets", type=int, default=None, help="default 1,000,000 on postgres, 100,000 on sqlite"
    )
    p.add_argument("--users", type=int, default=50, help="distinct users (default 50)")
    p.add_argument("--repeat", type=int, default=15, help="timed runs per query (default 15)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--sqlite-analyze", action="store_true", help="run ANALYZE on SQLite after the fill")
    p.add_argument(
        "--only", nargs="*", default=None, help="only the query cases whose name contains one of these"
    )
    p.add_argument("--config", type=Path, default=CONFIG_DIR, help="config directory (default: shipped)")
    args = p.parse_args(argv)
    if args.tickets is not None and not 1000 <= args.tickets <= 20_000_000:
        p.error("--tickets must be within 1000..20000000")
    if not 2 <= args.users <= 10_000 or not 1 <= args.repeat <= 1000:
        p.error("--users within 2..10000, --repeat within 1..1000")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except BenchError as exc:
        print(f"list_queries: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
