"""Shared benchmark harness: fresh databases and a real `ticketbot serve` subprocess on 127.0.0.1.

- `fresh_database(kind)` / `fresh_database_sync(kind)`: the URL of an empty database: SQLite, a
  new file in a temporary directory (removed afterwards); PostgreSQL, a new schema
  ``bench_<random>`` on `PG_URL`, named in the URL with ``?schema=`` and dropped afterwards.
- `running_server(url)`: starts ``python -m bot serve --host 127.0.0.1 --port <free port>
  --database-url <url>`` (TICKETBOT_LOG_LEVEL=WARNING), waits (bounded) for ``GET /healthz`` 200
  and yields a `Server` (base URL, pid). On the way out it reads the server's peak RSS (VmHWM)
  and stops it: SIGINT, then SIGTERM, then SIGKILL, each after a timeout, to that pid only.
- `running_server_async(url)`: the same for code inside an event loop: the blocking start and stop
  run in a worker thread, so the loop keeps serving meanwhile (e.g. an in-process WeCom emulator).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "config"
PG_URL = os.environ.get("TICKETBOT_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

DbKind = Literal["sqlite", "postgres"]
DB_KINDS: tuple[str, ...] = get_args(DbKind)


class BenchError(RuntimeError):
    """A benchmark cannot run (server does not start, database unreachable...): the message says why."""


# ------------------------------------------------------------------------------------------ statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rounded(value: float, digits: int = 2) -> float | None:
    """JSON-friendly: NaN becomes null."""
    return None if value != value else round(value, digits)


# ------------------------------------------------------------------------------------------ databases


def _check_local(url: str) -> None:
    host = make_url(url).host or ""
    if host not in LOCAL_HOSTS:
        raise BenchError(f"benchmarks only load 127.0.0.1; refusing database host {host!r}")


def pg_schema_url(schema: str, base: str = PG_URL) -> str:
    return make_url(base).update_query_dict({"schema": schema}).render_as_string(hide_password=False)


async def _pg_exec(*statements: str, base: str = PG_URL) -> None:
    _check_local(base)
    engine = create_async_engine(base, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for sql in statements:
                await conn.exec_driver_sql(sql)
    except OSError as exc:
        raise BenchError(f"PostgreSQL at {make_url(base).render_as_string()} is unreachable: {exc}") from exc
    finally:
        await engine.dispose()


async def create_schema(schema: str) -> None:
    await _pg_exec(f'CREATE SCHEMA "{schema}"')


async def drop_schema(schema: str) -> None:
    await _pg_exec("SET LOCAL lock_timeout = '30s'", f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def new_schema_name() -> str:
    return f"bench_{secrets.token_hex(6)}"


@asynccontextmanager
async def fresh_database(kind: DbKind) -> AsyncIterator[str]:
    """The URL of a new, empty database of `kind`, removed afterwards (not migrated yet)."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="ticketbot-bench-") as tmp:
            yield f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        return
    schema = new_schema_name()
    await create_schema(schema)
    try:
        yield pg_schema_url(schema)
    finally:
        await drop_schema(schema)


@contextmanager
def fresh_database_sync(kind: DbKind) -> Iterator[str]:
    """`fresh_database` for code that runs outside an event loop."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="ticketbot-bench-") as tmp:
            yield f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        return
    schema = new_schema_name()
    asyncio.run(create_schema(schema))
    try:
        yield pg_schema_url(schema)
    finally:
        asyncio.run(drop_schema(schema))


# ------------------------------------------------------------------------------------------ the server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_status_kb(pid: int, key: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def children(pid: int) -> list[int]:
    """The child processes of `pid` (the workers of `serve --workers N`)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process (from /proc/<pid>/stat)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15 of stat)


@dataclass
class Server:
    base_url: str
    pid: int
    database_url: str
    stderr_path: Path
    peak_rss_mb: float | None = None  # VmHWM, read just before the stop signal
    returncode: int | None = None
    stderr_tail: list[str] = field(default_factory=list)  # last lines of the server's stderr
    stderr_lines: int = 0

    def alive(self) -> bool:
        return Path(f"/proc/{self.pid}").exists()

    def cpu_seconds(self) -> float | None:
        """CPU seconds of the server and its worker processes (`serve --workers N`)."""
        parts = [process_cpu_seconds(pid) for pid in (self.pid, *children(self.pid))]
        known = [p for p in parts if p is not None]
        return sum(known) if known else None

    def rss_mb(self) -> float | None:
        kbs = [_proc_status_kb(pid, "VmRSS") for pid in (self.pid, *children(self.pid))]
        known = [kb for kb in kbs if kb is not None]
        return sum(known) / 1024 if known else None


def _tail(path: Path, lines: int = 40) -> tuple[list[str], int]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return [], 0
    all_lines = text.splitlines()
    return all_lines[-lines:], len(all_lines)


def _stop(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGINT (graceful), then SIGTERM, then SIGKILL: only to the process we started."""
    if proc.poll() is not None:
        return proc.returncode
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 5.0)):
        proc.send_signal(sig)
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    proc.kill()
    return proc.wait(timeout=10.0)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as resp:  # noqa: S310 - our own http://127.0.0.1 URL
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def running_server(
    database_url: str,
    *,
    config_dir: Path = CONFIG_DIR,
    startup_timeout: float = 90.0,
    stop_timeout: float = 15.0,
    extra_env: dict[str, str] | None = None,
    profile_to: Path | None = None,
    workers: int = 1,
) -> Iterator[Server]:
    """Run `ticketbot serve` on a free 127.0.0.1 port against `database_url` for the block.

    With `profile_to` the server runs under cProfile (CPU-time clock, bench/_profiled_serve.py) and
    writes its pstats there when it stops.
    """
    if not database_url.startswith("sqlite"):
        _check_local(database_url)
    port = free_port()
    fd, name = tempfile.mkstemp(prefix="ticketbot-bench-server-", suffix=".stderr")
    stderr_path = Path(name)
    env = dict(os.environ)
    env["TICKETBOT_LOG_LEVEL"] = "WARNING"
    env["TICKETBOT_ALLOW_PLACEHOLDER_SECRETS"] = "1"  # the shipped demo config: its token is a placeholder
    env.update(extra_env or {})
    entry = ["bot"] if profile_to is None else ["bench._profiled_serve", str(profile_to)]
    cmd = [
        sys.executable,
        "-m",
        *entry,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--config",
        str(config_dir),
        "--database-url",
        database_url,
        *(["--workers", str(workers)] if workers > 1 else []),
    ]
    with os.fdopen(fd, "wb") as stderr_file:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr_file
        )
    base_url = f"http://127.0.0.1:{port}"
    server = Server(base_url=base_url, pid=proc.pid, database_url=database_url, stderr_path=stderr_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while not _healthy(base_url + "/healthz"):
            if proc.poll() is not None:
                tail, _ = _tail(stderr_path)
                raise BenchError(
                    f"the server exited with status {proc.returncode} before it was healthy "
                    f"({' '.join(cmd[1:])}); its stderr:\n" + "\n".join(tail)
                )
            if time.monotonic() > deadline:
                tail, _ = _tail(stderr_path)
                raise BenchError(
                    f"the server was not healthy after {startup_timeout:.0f} s; its stderr:\n"
                    + "\n".join(tail)
                )
            time.sleep(0.1)
        # with --workers N: wait until every worker serves (each answers /healthz on the shared port)
        while workers > 1 and len(children(proc.pid)) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
        while workers > 1 and not all(_healthy(base_url + "/healthz") for _ in range(4 * workers)):
            if time.monotonic() > deadline:
                raise BenchError(f"not every one of the {workers} workers was healthy in time")
            time.sleep(0.1)
        yield server
    finally:
        if proc.poll() is None:
            kbs = [_proc_status_kb(pid, "VmHWM") for pid in (proc.pid, *children(proc.pid))]
            known = [kb for kb in kbs if kb is not None]
            server.peak_rss_mb = sum(known) / 1024 if known else None
        server.returncode = _stop(proc, stop_timeout)
        server.stderr_tail, server.stderr_lines = _tail(stderr_path)
        with contextlib.suppress(OSError):
            stderr_path.unlink()


@asynccontextmanager
async def running_server_async(database_url: str, **kwargs: Any) -> AsyncIterator[Server]:
    """`running_server` (same arguments) for a block inside an event loop: the start (up to its
    start-up timeout) and the stop run in a worker thread, so the loop is never blocked by them.

    A start interrupted by a cancellation (Ctrl-C) is waited for and the server stopped at once."""
    cm = running_server(database_url, **kwargs)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-server") as pool:
        started = pool.submit(cm.__enter__)
        try:
            server = await asyncio.wrap_future(started)
        except BaseException:
            # the thread cannot be cancelled: if the server came up after all, stop it (blocking)
            if not started.cancelled() and started.exception() is None:
                cm.__exit__(None, None, None)
            raise
        loop = asyncio.get_running_loop()
        try:
            yield server
        except BaseException as exc:
            if not await loop.run_in_executor(pool, cm.__exit__, type(exc), exc, exc.__traceback__):
                raise
        else:
            await loop.run_in_executor(pool, cm.__exit__, None, None, None)
