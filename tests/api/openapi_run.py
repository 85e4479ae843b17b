"""The property-based run of an API dialect against the real app, shared by tests/api/test_openapi.py
(the loonflow dialect, /api/v1.0) and tests/api/test_workorder_openapi.py (the work-order open API,
/open-api), and the document plumbing both use (documented vs registered operations).

`property_run(api, dialect, examples, caplog, plan)` serves nothing itself: `api` is the real app
on aiohttp's TestServer (tests/api/conftest.py). In a worker thread, for every operation the
document lists under the dialect's prefix, `plan.prepare(method, path)` gives the document to
generate from (as served, or narrowed to a seeded world), the acting users and explicit cases that
should succeed; hypothesis (schemathesis 3, derandomized, `examples` generated cases plus the
explicit ones) draws requests, sends them over HTTP with valid loonflow signature headers, and
every answer must:

- not be a 5xx (nor the dialect's internal error answered as a refusal), carry no traceback,
  have a documented status and content type and validate against the documented response schema;
- if it is a refusal (not 2xx, or the envelope's code / errcode not 0), leave the database exactly
  as it was before the request: row counts and a digest of every table's rows
  (tests/db_snapshot.py) are compared.

For that comparison to mean something, the app's background work is under the run's control while
it lasts: the notifier, hook caller and webhook sender loops are stopped and the scheduled jobs
shut down, so only the requests move the database. Their passes are made (drained) after each
operation's run and when the plan asks for it while seeding (`Target.settle`, e.g. for a hook call
to be made), so the notices, hook calls and webhooks the requests cause are still made: a pass
that fails raises or logs an ERROR, and an ERROR logged by a ``ticketbot`` logger during the run
fails it. The loops are started again after the run.

`conclude(...)` prints the case counts in the pytest terminal summary ("openapi property run").
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import pytest
import requests
from aiohttp import web
from aiohttp.web_urldispatcher import PrefixedSubAppResource
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import utils as conjecture_utils
from requests.structures import CaseInsensitiveDict

with warnings.catch_warnings():  # schemathesis 3 still uses jsonschema's deprecated RefResolver
    warnings.simplefilter("ignore", DeprecationWarning)
    import schemathesis
    import schemathesis.specs.openapi.references
    import schemathesis.specs.openapi.schemas
    from openapi_spec_validator import validate as validate_spec
    from schemathesis.checks import not_a_server_error
    from schemathesis.internal.result import Ok
    from schemathesis.models import Case
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

from api.openapi import openapi_document
from bot.app import DUE_WORK, HOOKS, JOBS, NOTIFIER, WEBHOOKS
from tests.api.conftest import Api, loonflow_headers
from tests.db_snapshot import EXCLUDED, DatabaseSnapshots, Snapshot

# imported above under the warnings filter, for the test modules too
__all__ = ["Case", "Ok", "schemathesis", "validate_spec"]


def _many_more(self: Any) -> bool:
    """`many.more()` (removed from hypothesis's internals in recent 6.x releases) over the current
    `with many(...) as elements: for _ in elements:` protocol. hypothesis-jsonschema 0.23.1 (the
    latest release, which schemathesis 3 generates request bodies with) still calls `more()`."""
    elements = getattr(self, "_ticketbot_iter", None)
    if elements is None:
        self.__enter__()
        elements = self._ticketbot_iter = iter(self)
    try:
        next(elements)
    except StopIteration:
        self.__exit__(None, None, None)
        return False
    return True


if not hasattr(conjecture_utils.many, "more"):
    conjecture_utils.many.more = _many_more  # type: ignore[attr-defined]

EXAMPLES = 25  # generated cases per operation and run (plus explicit ones, and shrinking of a failure)
POSTGRES_EXAMPLES = 10  # per operation in the focused run on PostgreSQL (the wall time stays bounded)
Schema = dict[str, Any]
METHODS = frozenset({"get", "put", "post", "delete", "patch"})
AUTH_HEADERS = frozenset({"appname", "timestamp", "signature", "username", "nonce", "x-ticketbot-signature"})
CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance)
TRACE_MARKERS = ("Traceback (most recent call last)", 'File "/', "site-packages")
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
# the runs of each dialect: the document as served and the focused one on SQLite, the focused one
# (fewer cases) on PostgreSQL; for `@RUNS` tests taking `database_url`, `focused` and `examples`
RUNS = pytest.mark.parametrize(
    ("database_url", "focused", "examples"),
    [
        pytest.param("sqlite", False, EXAMPLES, id="documented-sqlite"),
        pytest.param("sqlite", True, EXAMPLES, id="focused-sqlite"),
        pytest.param("postgres", True, POSTGRES_EXAMPLES, id="focused-postgres", marks=pytest.mark.postgres),
    ],
    indirect=["database_url"],
)
SUMMARY_PLUGIN = "ticketbot-openapi-summary"
SETTLE_ROUNDS = 20
Seeded = TypeVar("Seeded")  # what a plan seeds: ticket ids, order numbers...


# --- the document ------------------------------------------------------------------------------------


def operations_of(doc: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation object) of every operation `doc` documents under `prefix`."""
    for path, item in doc["paths"].items():
        if path.startswith(prefix + "/"):
            for method, op in item.items():
                if method in METHODS:
                    yield path, method, op


def documented_operations(doc: Mapping[str, Any], prefix: str) -> set[tuple[str, str]]:
    """The documented (METHOD, path) pairs under `prefix` ("" for all)."""
    return {(method.upper(), path) for path, method, _ in operations_of(doc, prefix)}


def mounted_subapp(app: web.Application, prefix: str) -> web.Application:
    """The sub-application `app` mounts at `prefix`."""
    for resource in app.router.resources():
        if isinstance(resource, PrefixedSubAppResource) and resource.canonical == prefix:
            sub = resource.get_info()["app"]
            assert isinstance(sub, web.Application)
            return sub
    raise AssertionError(f"no sub-application mounted at {prefix}")


def registered_operations(sub: web.Application, prefix: str) -> set[tuple[str, str]]:
    """(METHOD, prefix + path with {name} placeholders) of every route of `sub`, HEAD left out."""
    found = set()
    for resource in sub.router.resources():
        for route in resource:
            if route.method in ("HEAD", "OPTIONS", "*"):
                continue
            path = resource.canonical  # the sub-app's resources carry the mount prefix
            found.add((route.method, path if path.startswith(prefix + "/") else prefix + path))
    return found


def assert_documented_exactly(app: web.Application, prefix: str) -> None:
    """The routes of the sub-application `app` mounts at `prefix` are exactly the operations the
    document lists under `prefix`."""
    registered = registered_operations(mounted_subapp(app, prefix), prefix)
    documented = documented_operations(openapi_document(), prefix)
    assert registered, f"the sub-application at {prefix} registers no route"
    assert sorted(registered - documented) == [], "registered but not documented"
    assert sorted(documented - registered) == [], "documented but not registered"


# --- what a run is made of ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    """What differs between the two dialects' answers."""

    prefix: str  # the documented operations under it are run
    code: str  # the envelope's result key ("code", "errcode"): 0 is a success
    check_body: Callable[[Any], None]  # asserts the body is not an internal error answered as a refusal

    def succeeded(self, response: requests.Response, body: Any) -> bool:
        return 200 <= response.status_code < 300 and isinstance(body, dict) and body.get(self.code) == 0


Explicit = list[tuple[Case, str]]  # (case, acting user)


@dataclass(frozen=True)
class Prepared:
    """What one operation's run generates from."""

    doc: dict[str, Any]  # the document (its request side possibly narrowed; the response side as served)
    users: tuple[str, ...]  # the acting users drawn from
    explicit: Callable[[Any], Explicit] = lambda _operation: []  # the operation's explicit cases


class Plan(Protocol):
    def prepare(self, method: str, path: str) -> Prepared:
        """Called (in the run's thread) before each operation's run, e.g. to seed fresh tickets."""
        ...


class SeededPlan(Generic[Seeded]):
    """The plan of both dialects' runs. Documented: the document as served and `wide_users`,
    against a world seeded once (small generated ids hit it). Focused: before each operation a
    fresh world is seeded (so that earlier operations, deleting or closing, don't starve later
    ones), the document's request side is narrowed to it (`focus`) and `explicit` makes the
    operation's explicit cases on it."""

    def __init__(
        self,
        *,
        focused: bool,
        seed: Callable[[], Seeded],
        focus: Callable[[dict[str, Any], Seeded], dict[str, Any]],
        explicit: Callable[[Any, Seeded], Explicit],
        wide_users: tuple[str, ...],
        focus_users: tuple[str, ...],
    ) -> None:
        self.focused = focused
        self.seed = seed
        self.focus = focus
        self.explicit = explicit
        self.wide_users = wide_users
        self.focus_users = focus_users
        self.seeded = False

    def prepare(self, method: str, path: str) -> Prepared:
        doc = openapi_document()
        if not self.focused:
            if not self.seeded:
                self.seed()
                self.seeded = True
            return Prepared(doc, self.wide_users)
        world = self.seed()
        return Prepared(self.focus(doc, world), self.focus_users, lambda op: self.explicit(op, world))


def explicit_case(
    operation: Any,
    *,
    path_parameters: dict[str, Any] | None = None,
    query: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
) -> Case:
    """A case of `operation` with these parameters (and a JSON body when given)."""
    kwargs: dict[str, Any] = {"path_parameters": path_parameters or None, "query": query}
    if body is not None:
        kwargs["body"] = body
        kwargs["media_type"] = "application/json"
    case = operation.make_case(**kwargs)
    assert isinstance(case, Case)
    return case


@dataclass(frozen=True)
class Target:
    """The served app as the run's thread sees it."""

    base_url: str
    session: requests.Session
    settle: Callable[[], None]  # every due background pass made (blocking)


@dataclass
class Report:
    cases: int = 0
    per_operation: dict[str, int] = field(default_factory=dict)
    successes: dict[str, int] = field(default_factory=dict)  # 2xx answers with code / errcode 0
    refusals: int = 0  # refused answers, each checked to have changed nothing
    snapshots: int = 0
    snapshot_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


class StateProbe:
    """From the run's thread: snapshots of the database around each request. `before()` snapshots
    if the last request may have changed something (else the previous snapshot is still true);
    `changes()` snapshots again and says what differs. `settle()` makes the due background passes
    (after each operation, and when the plan's seeding needs a hook call made)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        snapshots: DatabaseSnapshots,
        settle: Callable[[], Coroutine[Any, Any, None]],
        report: Report,
    ) -> None:
        self._loop = loop
        self._snapshots = snapshots
        self._settle = settle
        self._report = report
        self._last: Snapshot | None = None

    def settle(self) -> None:
        asyncio.run_coroutine_threadsafe(self._settle(), self._loop).result(timeout=120)
        self._last = None

    def _take(self) -> Snapshot:
        started = time.perf_counter()
        snapshot = asyncio.run_coroutine_threadsafe(self._snapshots.take(), self._loop).result(timeout=60)
        self._report.snapshots += 1
        self._report.snapshot_seconds += time.perf_counter() - started
        return snapshot

    def before(self) -> None:
        if self._last is None:
            self._last = self._take()

    def changed(self) -> None:
        """The last request changed (or may have changed) the database."""
        self._last = None

    def changes(self) -> list[str]:
        assert self._last is not None, "before() first"
        after = self._take()
        diff, self._last = self._last.diff(after), after
        return diff


class _Loop(Protocol):
    """A background loop of the app (the notifier, the hook caller, the webhook sender)."""

    def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def drain(self) -> int: ...


class Background:
    """The app's background work, quieted for a run and drained on demand (module docstring)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loops: tuple[_Loop, ...] = (app[NOTIFIER], app[HOOKS], app[WEBHOOKS])

    async def quiet(self) -> None:
        for loop in self.loops:
            await loop.stop()
        self.app[JOBS].shutdown()  # for good: the app's cleanup would do it at the end anyway
        await self.app[JOBS].drain()

    async def settle(self) -> None:
        due_work = self.app.get(DUE_WORK)
        for _ in range(SETTLE_ROUNDS):
            handled = 0
            for loop in self.loops:
                handled += await loop.drain()
            if due_work is not None:
                handled += await due_work.drain()
            if handled == 0:
                return
        raise AssertionError(f"background work still due after {SETTLE_ROUNDS} rounds of passes")

    def resume(self) -> None:
        for loop in self.loops:
            loop.start()


# --- one operation ------------------------------------------------------------------------------------


def _without_auth(headers: Mapping[str, Any] | None) -> CaseInsensitiveDict[Any]:
    return CaseInsensitiveDict({k: v for k, v in (headers or {}).items() if k.lower() not in AUTH_HEADERS})


def check_answer(case: Case, response: Any, dialect: Dialect) -> Any:
    """The answer's checks (module docstring) but the database's; returns the parsed body."""
    assert isinstance(response, requests.Response)
    text = response.text
    for marker in TRACE_MARKERS:
        assert marker not in text, f"the answer carries a traceback ({marker!r}): {text[:2000]}"
    case.validate_response(response, checks=CHECKS)
    body = response.json()
    dialect.check_body(body)
    return body


def _operation_test(
    operation: Any,
    prepared: Prepared,
    examples: int,
    dialect: Dialect,
    target: Target,
    probe: StateProbe,
    report: Report,
) -> Callable[[], None]:
    """The hypothesis test of one operation: generated case + acting user -> call -> checks."""
    name = operation.verbose_name
    last: list[str] = []

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        report_multiple_bugs=False,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), username=st.sampled_from(prepared.users))
    def check(case: Case, username: str) -> None:
        case.headers = _without_auth(case.headers)
        headers = loonflow_headers(username)
        report.cases += 1
        report.per_operation[name] = report.per_operation.get(name, 0) + 1
        probe.before()
        response = case.call(session=target.session, headers=headers, timeout=60)
        assert isinstance(response, requests.Response)
        try:
            body = check_answer(case, response, dialect)
            if dialect.succeeded(response, body):
                probe.changed()
                report.successes[name] = report.successes.get(name, 0) + 1
                return
            report.refusals += 1
            changes = probe.changes()
            assert not changes, f"a refused request changed the database: {'; '.join(changes)}"
        except Exception:
            probe.changed()
            last[:] = [case.as_curl_command(headers=headers), response.text[:1500]]
            raise

    test = check
    for case, username in prepared.explicit(operation):
        test = example(case=case, username=username)(test)

    def run() -> None:
        try:
            test()
        except Exception as exc:
            curl, answer = last if last else ("?", "?")
            report.failures.append(f"{name}: {exc}\n  request: {curl}\n  answer: {answer}")

    return run


# --- the run --------------------------------------------------------------------------------------------


def _run_operations(
    dialect: Dialect, examples: int, target: Target, probe: StateProbe, plan: Plan, report: Report
) -> None:
    operations = documented_operations(openapi_document(), dialect.prefix)
    for method, path in sorted(operations, key=lambda mp: (mp[1], mp[0])):
        prepared = plan.prepare(method, path)
        schema = schemathesis.from_dict(prepared.doc, base_url=target.base_url, validate_schema=False)
        operation = schema[path][method]
        _operation_test(operation, prepared, examples, dialect, target, probe, report)()
        target.settle()  # the background passes its requests made due (module docstring)


def _errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    for record in caplog.records:
        if record.levelno >= logging.ERROR and record.name.startswith("ticketbot"):
            yield f"{record.name}: {record.getMessage()} {getattr(record, 'path', '')}"


async def property_run(
    api: Api,
    dialect: Dialect,
    examples: int,
    caplog: pytest.LogCaptureFixture,
    plan: Callable[[Target], Plan],
) -> Report:
    """The run (module docstring); `plan(target)` is made in the run's thread, before any request."""
    app = api.client.app
    assert app is not None
    server = api.client.server
    loop = asyncio.get_running_loop()
    report = Report()
    background = Background(app)
    snapshots = DatabaseSnapshots(api.runtime.settings.database_url, EXCLUDED)
    probe = StateProbe(loop, snapshots, background.settle, report)

    def run() -> None:
        with requests.Session() as session:
            session.trust_env = False  # never through a proxy of the environment
            target = Target(f"http://{server.host}:{server.port}", session, probe.settle)
            _run_operations(dialect, examples, target, probe, plan(target), report)

    await background.quiet()
    try:
        with caplog.at_level(logging.ERROR):
            await asyncio.to_thread(run)
    finally:
        background.resume()
        await snapshots.dispose()
    report.failures.extend(f"logged: {line}" for line in _errors_logged(caplog))
    return report


# --- the summary ------------------------------------------------------------------------------------


class _Summary:
    """A pytest plugin registered at run time: prints the case counts in the terminal summary."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.lines:
            terminalreporter.write_sep("-", "openapi property run")
            for line in self.lines:
                terminalreporter.write_line(line)


def _summary(config: pytest.Config) -> _Summary:
    found = config.pluginmanager.get_plugin(SUMMARY_PLUGIN)
    if not isinstance(found, _Summary):
        found = _Summary()
        config.pluginmanager.register(found, SUMMARY_PLUGIN)
    return found


def conclude(report: Report, dialect: Dialect, config: pytest.Config, label: str) -> None:
    """Print the counts (terminal summary, and with -s) and fail on any failure or a missed operation."""
    operations = len(report.per_operation)
    succeeded = sum(report.successes.values())
    line = (
        f"{label}: {report.cases} cases over {operations} operations, {succeeded} answered code 0 "
        f"({len(report.successes)} operations with a success), {report.refusals} refusals changed "
        f"nothing ({report.snapshots} snapshots, {report.snapshot_seconds:.1f}s)"
    )
    _summary(config).lines.append(line)
    print(line)  # shown with -s
    assert operations == len(documented_operations(openapi_document(), dialect.prefix))
    assert report.cases > 0 and report.refusals > 0 and report.snapshots > 0
    assert not report.failures, f"{len(report.failures)} failure(s):\n\n" + "\n\n".join(report.failures)
