"""Ticket life-cycle throughput over the loonflow v1.0 HTTP API, against a real server subprocess.

One cycle = ``POST /api/v1.0/tickets`` (a leave request: workflow 1, its submit transition, the
start state's required fields) by a normal user, then ``PATCH /api/v1.0/tickets/{id}`` by that
user's leader (the handler of the next state, precomputed from org.yaml) taking the approve
transition. Every request is signed the loonflow way (appname, timestamp, md5(timestamp + token)).
N clients (one aiohttp ClientSession each) run cycles back to back for --seconds (or until
--cycles in total), after --warmup seconds whose numbers are dropped. Before the warm-up each
creator runs one checked cycle: a GET verifies that the precomputed handler is the participant.

    python -m bench.api_cycle                       # SQLite, 8 clients, 20 s
    python -m bench.api_cycle --db both --repeat 3  # SQLite then PostgreSQL in one invocation

Prints one JSON object per database (one line each), then a table. Exit status: 0 done,
1 the benchmark could not run, 3 the API routes are not there yet (POST answers 404).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import platform
import pstats
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench._server import (
    CONFIG_DIR,
    REPO,
    BenchError,
    DbKind,
    Server,
    fresh_database_sync,
    median,
    percentile,
    rounded,
    running_server,
)
from config.errors import ConfigError
from config.loader import load_config
from core.org import Org, UserType
from core.workflow import Attribute, FieldAccess, ParticipantType, StateType, Variable

TARGET_CYCLES_PER_S = 150.0  # with 8 clients, on SQLite; "as much" on PostgreSQL
LEAVE_WORKFLOW_ID = 1
APP_NAME = "demo"
API = "/api/v1.0"


class RoutesMissing(BenchError):
    """POST /api/v1.0/tickets answers 404: the loonflow write routes are not implemented yet."""


# ------------------------------------------------------------------------------------------ the plan


@dataclass(frozen=True, slots=True)
class Plan:
    """What a cycle sends, derived from the config (leave.yaml, org.yaml, apps.yaml)."""

    workflow_id: int
    submit_transition_id: int
    approve_transition_id: int
    review_state_id: int  # where the submit lands (the leader approves there)
    fields: Mapping[str, Any]
    creators: tuple[tuple[str, str], ...]  # (creator, the leader who handles the review state)
    app: str
    token: str


def _field_values(required: set[str]) -> dict[str, Any]:
    start = date(2025, 6, 2)
    values: dict[str, Any] = {
        "leave_type": "annual",
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=1)).isoformat(),
        "days": 2,  # <= 3: the leader's approval goes straight to HR (no general-manager step)
        "reason": "benchmark cycle",
    }
    missing = sorted(required - values.keys())
    if missing:
        raise BenchError(f"leave.yaml's start state requires fields this benchmark does not fill: {missing}")
    return values


def _creators(org: Org) -> tuple[tuple[str, str], ...]:
    """Normal users who lead nothing and whose leader exists, with that leader."""
    leads = {name for d in org.departments.values() for name in (d.leader, *d.approvers) if name}
    found = []
    for user in sorted(org.users.values(), key=lambda u: u.username):
        if user.type != UserType.NORMAL or not user.is_active or user.username in leads:
            continue
        leader = org.leader_of(user.username)
        if leader:
            found.append((user.username, leader))
    if not found:
        raise BenchError("org.yaml has no normal user with a leader (creator_tl) to create leave requests")
    return tuple(found)


def build_plan(config_dir: Path, app_name: str = APP_NAME) -> Plan:
    try:
        cfg = load_config(config_dir)
    except ConfigError as exc:
        raise BenchError(f"the config at {config_dir} is not valid:\n{exc}") from exc
    wf = cfg.workflow(LEAVE_WORKFLOW_ID)
    if wf is None:
        raise BenchError(f"{config_dir}: no workflow {LEAVE_WORKFLOW_ID} (the leave request)")
    start = wf.start_state()
    submit = next((t for t in wf.transitions_from(start.id) if t.attribute == Attribute.AGREE), None)
    if submit is None:
        raise BenchError(f"workflow {wf.id}: no agree (submit) transition from start state {start.id}")
    review = wf.state(submit.destination_state_id)
    if review is None or review.type == StateType.END:
        raise BenchError(f"workflow {wf.id}: transition {submit.id} does not lead to a review state")
    if (review.participant.type, review.participant.value) != (ParticipantType.VARIABLE, Variable.CREATOR_TL):
        raise BenchError(
            f"workflow {wf.id}: state {review.id} is not handled by creator_tl; cannot precompute"
        )
    approve = next((t for t in wf.transitions_from(review.id) if t.attribute == Attribute.AGREE), None)
    if approve is None:
        raise BenchError(f"workflow {wf.id}: no agree transition from state {review.id}")
    app = cfg.app(app_name)
    if app is None:
        raise BenchError(f"{config_dir}/apps.yaml: no API app {app_name!r}")
    required = {key for key, access in start.fields.items() if access == FieldAccess.REQUIRED}
    return Plan(
        workflow_id=wf.id,
        submit_transition_id=submit.id,
        approve_transition_id=approve.id,
        review_state_id=review.id,
        fields=_field_values(required),
        creators=_creators(cfg.org),
        app=app.name,
        token=app.token,
    )


# ------------------------------------------------------------------------------------------ the client


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores spent busy since boot (/proc/stat: everything but idle and iowait)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    ticks = [int(x) for x in first[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def signed_headers(plan: Plan, username: str) -> dict[str, str]:
    ts = str(int(time.time()))
    return {
        "appname": plan.app,
        "timestamp": ts,
        "signature": hashlib.md5((ts + plan.token).encode()).hexdigest(),  # noqa: S324 - loonflow's scheme
        "username": username,
    }


async def call(
    session: aiohttp.ClientSession, plan: Plan, method: str, url: str, username: str, body: Any = None
) -> tuple[int, Any]:
    async with session.request(method, url, json=body, headers=signed_headers(plan, username)) as resp:
        text = await resp.text()
        try:
            data = json.loads(text) if text else None
        except json.JSONDecodeError:
            data = {"_raw": text[:200]}
        return resp.status, data


def _ok(status: int, body: Any) -> bool:
    return status == 200 and isinstance(body, dict) and body.get("code") == 0


def _describe(what: str, status: int, body: Any) -> str:
    msg = body.get("msg") if isinstance(body, dict) else body
    return f"{what}: HTTP {status} {str(msg)[:160]}"


def _is_missing_route(status: int, body: Any) -> bool:
    msg = str(body.get("msg", "")) if isinstance(body, dict) else ""
    return status == 404 or msg.strip().lower() == "not found"


@dataclass
class Stats:
    create_ms: list[float] = field(default_factory=list)
    handle_ms: list[float] = field(default_factory=list)
    done_at: list[float] = field(default_factory=list)  # monotonic completion time of each cycle
    errors: Counter[str] = field(default_factory=Counter)


class Budget:
    """When to stop starting cycles: a deadline and/or a total number of cycles."""

    def __init__(self, seconds: float | None, cycles: int | None) -> None:
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self.remaining = cycles

    def claim(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return False
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
        return True


async def one_cycle(
    session: aiohttp.ClientSession, base: str, plan: Plan, creator: str, leader: str, stats: Stats
) -> int | None:
    """Create and approve one ticket; the ticket id, or None after a recorded error."""
    payload = {
        "workflow_id": plan.workflow_id,
        "transition_id": plan.submit_transition_id,
        "suggestion": "bench",
        **plan.fields,
    }
    t0 = time.perf_counter()
    status, body = await call(session, plan, "POST", f"{base}{API}/tickets", creator, payload)
    t1 = time.perf_counter()
    if not _ok(status, body):
        if _is_missing_route(status, body):
            raise RoutesMissing(
                f"POST {API}/tickets answers {_describe('create', status, body)}: the loonflow write "
                "routes are not there yet (api/loonflow/tickets_write.py); re-run once they land"
            )
        stats.errors[_describe("create", status, body)] += 1
        return None
    stats.create_ms.append((t1 - t0) * 1000)
    ticket_id = int(body["data"]["ticket_id"])
    handle = {"transition_id": plan.approve_transition_id, "suggestion": "ok"}
    t2 = time.perf_counter()
    status, body = await call(session, plan, "PATCH", f"{base}{API}/tickets/{ticket_id}", leader, handle)
    t3 = time.perf_counter()
    if not _ok(status, body):
        stats.errors[_describe("handle", status, body)] += 1
        return None
    stats.handle_ms.append((t3 - t2) * 1000)
    stats.done_at.append(time.monotonic())
    return ticket_id


async def verify_handler(
    session: aiohttp.ClientSession, base: str, plan: Plan, creator: str, leader: str
) -> None:
    """One checked cycle: after the create, GET the ticket and check the precomputed handler."""
    payload = {"workflow_id": plan.workflow_id, "transition_id": plan.submit_transition_id, **plan.fields}
    status, body = await call(session, plan, "POST", f"{base}{API}/tickets", creator, payload)
    if not _ok(status, body):
        if _is_missing_route(status, body):
            raise RoutesMissing(
                f"POST {API}/tickets answers {_describe('create', status, body)}: the loonflow write "
                "routes are not there yet (api/loonflow/tickets_write.py); re-run once they land"
            )
        raise BenchError(f"the first create by {creator} failed: {_describe('create', status, body)}")
    ticket_id = int(body["data"]["ticket_id"])
    status, body = await call(session, plan, "GET", f"{base}{API}/tickets/{ticket_id}", creator)
    if not _ok(status, body):
        raise BenchError(f"GET {API}/tickets/{ticket_id} failed: {_describe('detail', status, body)}")
    value = body["data"].get("value", {})
    participants = [p for p in str(value.get("participant", "")).split(",") if p]
    if participants != [leader] or int(value.get("state_id", 0)) != plan.review_state_id:
        raise BenchError(
            f"ticket {ticket_id} by {creator}: expected state {plan.review_state_id} handled by {leader!r}, "
            f"got state {value.get('state_id')!r} participant {value.get('participant')!r}"
        )
    handle = {"transition_id": plan.approve_transition_id, "suggestion": "ok"}
    status, body = await call(session, plan, "PATCH", f"{base}{API}/tickets/{ticket_id}", leader, handle)
    if not _ok(status, body):
        raise BenchError(f"the first approval by {leader} failed: {_describe('handle', status, body)}")


async def client(
    session: aiohttp.ClientSession, base: str, plan: Plan, idx: int, budget: Budget, stats: Stats
) -> None:
    creator, leader = plan.creators[idx % len(plan.creators)]
    while budget.claim():
        try:
            await one_cycle(session, base, plan, creator, leader, stats)
        except (aiohttp.ClientError, TimeoutError) as exc:
            stats.errors[f"transport: {type(exc).__name__}: {str(exc)[:120]}"] += 1


@dataclass
class Phase:
    stats: Stats
    started: float
    elapsed: float
    server_cpu_s: float | None
    client_cpu_s: float
    machine_busy_cores: float | None  # all processes on the machine, averaged over the phase

    @property
    def cycles(self) -> int:
        return len(self.stats.done_at)

    @property
    def rate(self) -> float:
        return self.cycles / self.elapsed if self.elapsed > 0 else 0.0

    def per_second_rates(self) -> list[float]:
        """Completed cycles in each full second of the phase."""
        full = int(self.elapsed)
        buckets = [0] * full
        for t in self.stats.done_at:
            i = int(t - self.started)
            if 0 <= i < full:
                buckets[i] += 1
        return [float(b) for b in buckets]

    def timeline(self, step: int) -> list[float]:
        """Mean cycles/s over consecutive `step`-second windows (to spot drift within a run)."""
        rates = self.per_second_rates()
        return [sum(rates[i : i + step]) / len(rates[i : i + step]) for i in range(0, len(rates), step)]


async def run_phase(
    sessions: Sequence[aiohttp.ClientSession],
    server: Server,
    plan: Plan,
    seconds: float | None,
    cycles: int | None,
) -> Phase:
    stats = Stats()
    budget = Budget(seconds, cycles)
    cpu0, pcpu0, busy0 = server.cpu_seconds(), time.process_time(), machine_busy_seconds()
    started = time.monotonic()
    await asyncio.gather(
        *(client(s, server.base_url, plan, i, budget, stats) for i, s in enumerate(sessions))
    )
    elapsed = time.monotonic() - started
    cpu1, busy1 = server.cpu_seconds(), machine_busy_seconds()
    server_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    busy = None if busy0 is None or busy1 is None or elapsed <= 0 else (busy1 - busy0) / elapsed
    return Phase(stats, started, elapsed, server_cpu, time.process_time() - pcpu0, busy)


@dataclass
class Run:
    phases: list[Phase]
    extra_cycles: int  # checked and warm-up cycles (not measured, but the server did them)


async def drive(server: Server, plan: Plan, args: argparse.Namespace) -> Run:
    timeout = aiohttp.ClientTimeout(total=30)
    sessions = [aiohttp.ClientSession(timeout=timeout) for _ in range(args.clients)]
    try:
        used = {plan.creators[i % len(plan.creators)] for i in range(args.clients)}
        for creator, leader in sorted(used):
            await verify_handler(sessions[0], server.base_url, plan, creator, leader)
        extra = len(used)
        if args.warmup > 0:
            warm = await run_phase(sessions, server, plan, args.warmup, None)
            if warm.cycles == 0 and warm.stats.errors:
                raise BenchError(f"every warm-up cycle failed: {dict(warm.stats.errors.most_common(3))}")
            extra += warm.cycles
        seconds = None if args.cycles else args.seconds
        phases = [await run_phase(sessions, server, plan, seconds, args.cycles) for _ in range(args.repeat)]
        return Run(phases, extra)
    finally:
        await asyncio.gather(*(s.close() for s in sessions))


# ------------------------------------------------------------------------------------------ report


def summarize(kind: DbKind, args: argparse.Namespace, run: Run, server: Server) -> dict[str, Any]:
    phases = run.phases
    create = [x for p in phases for x in p.stats.create_ms]
    handle = [x for p in phases for x in p.stats.handle_ms]
    errors: Counter[str] = Counter()
    for p in phases:
        errors.update(p.stats.errors)
    cycles = sum(p.cycles for p in phases)
    rate = median([p.rate for p in phases])
    per_second = [r for p in phases for r in p.per_second_rates()]
    server_cpu = [p.server_cpu_s for p in phases if p.server_cpu_s is not None]
    server_ms = sum(server_cpu) * 1000 / cycles if cycles and server_cpu else float("nan")
    elapsed = sum(p.elapsed for p in phases)
    busy = [p.machine_busy_cores for p in phases if p.machine_busy_cores is not None]
    return {
        "bench": "api_cycle",
        "db": kind,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "clients": args.clients,
        "mode": "cycles" if args.cycles else "seconds",
        "warmup_s": args.warmup,
        "repeat": args.repeat,
        "seconds": round(sum(p.elapsed for p in phases), 2),
        "cycles": cycles,
        "cycles_per_s": round(rate, 1),
        "cycles_per_s_runs": [round(p.rate, 1) for p in phases],
        "cycles_per_s_median_1s": rounded(median(per_second), 1),
        "cycles_per_s_timeline_5s": [[round(x, 1) for x in p.timeline(5)] for p in phases],
        "target_cycles_per_s": TARGET_CYCLES_PER_S,
        "meets_target": rate >= TARGET_CYCLES_PER_S,
        "create": {
            "n": len(create),
            "p50_ms": rounded(percentile(create, 50)),
            "p99_ms": rounded(percentile(create, 99)),
        },
        "handle": {
            "n": len(handle),
            "p50_ms": rounded(percentile(handle, 50)),
            "p99_ms": rounded(percentile(handle, 99)),
        },
        "errors": sum(errors.values()),
        "error_samples": dict(errors.most_common(5)),
        "server_peak_rss_mb": rounded(server.peak_rss_mb or float("nan"), 1),
        "server_cpu_ms_per_cycle": rounded(server_ms),
        # what one server process could do with a whole core to itself (it runs one event loop)
        "server_cpu_bound_cycles_per_s": rounded(1000 / server_ms if server_ms > 0 else float("nan"), 1),
        "client_cpu_ms_per_cycle": rounded(
            sum(p.client_cpu_s for p in phases) * 1000 / cycles if cycles else float("nan")
        ),
        "server_cores_used": rounded(sum(server_cpu) / elapsed if server_cpu and elapsed else float("nan")),
        "machine_busy_cores": rounded(median(busy)),  # every process on the machine: others' load shows here
        "cycles_total": cycles + run.extra_cycles,
        "server_stderr_lines": server.stderr_lines,
    }


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


def table(results: Sequence[Mapping[str, Any]]) -> str:
    head = (
        f"{'db':<9}{'cycles':>8}{'cycles/s':>10}{'target':>14}{'create p50/p99 ms':>20}"
        f"{'handle p50/p99 ms':>20}{'errors':>8}{'srv RSS MB':>12}{'srv CPU ms/cyc':>16}"
        f"{'1-core bound':>14}{'busy cores':>12}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        target = f">={r['target_cycles_per_s']:.0f} {'ok' if r['meets_target'] else 'MISS'}"
        lines.append(
            f"{r['db']:<9}{r['cycles']:>8}{r['cycles_per_s']:>10}{target:>14}"
            f"{_fmt(r['create']['p50_ms']) + ' / ' + _fmt(r['create']['p99_ms']):>20}"
            f"{_fmt(r['handle']['p50_ms']) + ' / ' + _fmt(r['handle']['p99_ms']):>20}"
            f"{r['errors']:>8}{_fmt(r['server_peak_rss_mb']):>12}{_fmt(r['server_cpu_ms_per_cycle']):>16}"
            f"{_fmt(r['server_cpu_bound_cycles_per_s']):>14}{_fmt(r['machine_busy_cores']):>12}"
        )
    first = results[0]
    lines.append(
        f"({first['clients']} clients, {first['mode']}: {first['seconds']} s measured over {first['repeat']} run(s) "
        f"after {first['warmup_s']} s warm-up; cycles/s is the median run; {first['cores']} cores shared with the client)"
    )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ main


def _package(filename: str, func: str) -> str:
    """Where a profiled function lives: a site-package, a ticketbot package, the stdlib or a builtin."""
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    repo = str(REPO) + "/"
    if filename.startswith(repo):
        return "ticketbot " + filename[len(repo) :].split("/", 1)[0]
    if filename == "~":
        return "idle (epoll)" if "epoll" in func else "builtins"
    return "stdlib " + filename.rsplit("/", 1)[-1]


def print_profile(path: Path, kind: DbKind, cycles: int, top: int = 25) -> None:
    """The server's own time by package and its hottest functions, to stderr."""
    stats = pstats.Stats(str(path))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    by_package: dict[str, float] = {}
    statements = 0
    for (filename, _line, func), (_cc, ncalls, tottime, _ct, _callers) in raw.items():
        key = _package(filename, func)
        by_package[key] = by_package.get(key, 0.0) + tottime
        if filename.endswith("sqlalchemy/engine/default.py") and func in (
            "_init_compiled",
            "_init_statement",
        ):
            statements += ncalls
    busy = sum(v for k, v in by_package.items() if k != "idle (epoll)")
    lines = [f"--- server profile ({kind}, {path}): own time by package, busy {busy:.1f} s ---"]
    lines += [
        f"{v:8.2f} s {100 * v / busy:5.1f}%  {k}"
        for k, v in sorted(by_package.items(), key=lambda kv: -kv[1])[:16]
        if k != "idle (epoll)"
    ]
    if cycles:
        lines.append(
            f"SQL statements executed: {statements} (about {statements / cycles:.1f} per profiled cycle)"
        )
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    print("\n".join(lines) + "\n" + out.getvalue(), file=sys.stderr)


def run_one(kind: DbKind, plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    profile = None if args.profile is None else args.profile.with_suffix(f".{kind}.pstats")
    with (
        fresh_database_sync(kind) as url,
        running_server(url, config_dir=args.config, profile_to=profile) as server,
    ):
        run = asyncio.run(drive(server, plan, args))
    result = summarize(kind, args, run, server)
    if profile is not None and profile.exists():
        print_profile(profile, kind, result["cycles_total"])
    if result["errors"] and server.stderr_tail:
        result["server_stderr_tail"] = server.stderr_tail[-10:]
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.api_cycle", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run (default 20)")
    p.add_argument("--cycles", type=int, default=None, help="measure this many cycles in total instead")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds, not measured (default 3)")
    p.add_argument("--repeat", type=int, default=1, help="measured runs per database; the median is reported")
    p.add_argument("--config", type=Path, default=CONFIG_DIR, help="config directory (default: shipped)")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="FILE",
        help="run the server under cProfile, write FILE.<db>.pstats and print its hottest functions "
        "(slows the server: don't compare those numbers with unprofiled runs)",
    )
    args = p.parse_args(argv)
    if not 1 <= args.clients <= 256:
        p.error("--clients must be within 1..256")
    if not 0 < args.seconds <= 3600 or not 0 <= args.warmup <= 600 or not 1 <= args.repeat <= 20:
        p.error("--seconds within (0, 3600], --warmup within [0, 600], --repeat within 1..20")
    if args.cycles is not None and not 1 <= args.cycles <= 10_000_000:
        p.error("--cycles must be within 1..10000000")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    kinds: list[DbKind] = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    try:
        plan = build_plan(args.config)
        results = []
        for kind in kinds:
            results.append(run_one(kind, plan, args))
            print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    except RoutesMissing as exc:
        print(f"api_cycle: {exc}", file=sys.stderr)
        return 3
    except BenchError as exc:
        print(f"api_cycle: {exc}", file=sys.stderr)
        return 1
    print()
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
