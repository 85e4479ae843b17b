"""Helpers for the process-level fault tests: a real `ticketbot serve` subprocess with WeCom on,
pointed at an in-process WeCom emulator, callbacks delivered the way WeCom does (retried until a
200), bounded waits on real observations, the workers of `serve --workers N`, the TCP socket that
accepted a callback, and a private PostgreSQL cluster.

Nothing here sleeps for a fixed time to let something happen: `wait_until` polls a real check (a
query, a process table) until it holds or a deadline passes, and fails with what it last saw.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from yarl import URL

from emulator.wecom import SystemClock, WeComEmulator, encrypt_callback, text_message_xml
from store.db import Database
from tests.conftest import PG_URL, pg_schema_url

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "config"
CORP = "wwfaultcorp0000001"
AGENT = 1000002
CALLBACK_PATH = "/wecom/callback"
WECOM_DEADLINE_S = 5.0  # WeCom waits this long for an answer, then delivers the callback again
LEADERS = {2: "WangQiang", 4: "ZhaoLei", 5: "WuJuan", 6: "MaXiaoYu"}  # creator_tl of these departments
HR = ("YangFan", "ChenJing")  # role 1 (HR专员): the leave request's last step
CREATE = "发起 请假申请 start_date=2026-12-01 end_date=2026-12-02 days=2 reason=fault"


# ------------------------------------------------------------------------------------------ waiting


async def wait_until(
    check: Callable[[], Awaitable[Any]],
    *,
    within: float,
    what: str | Callable[[], str],
    interval: float = 0.1,
) -> Any:
    """Poll `check()` until it returns something truthy (returned); fail after `within` seconds
    with `what` (or what it returns, then) and the last value seen."""
    deadline = time.monotonic() + within
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            said = what if isinstance(what, str) else what()
            raise AssertionError(f"timed out after {within:.0f} s waiting for {said}; last seen: {last!r}")
        await asyncio.sleep(interval)


# ------------------------------------------------------------------------------------------ processes


def children(pid: int) -> list[int]:
    """The child processes of `pid` (the workers of `serve --workers N`)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _socket_inodes(pid: int) -> set[int]:
    out: set[int] = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    out.add(int(target[8:-1]))
    return out


def _tcp_inode(local_port: int, remote_port: int) -> int | None:
    """The inode of the IPv4 TCP socket 127.0.0.1:local_port <-> 127.0.0.1:remote_port."""
    want_local = f"0100007F:{local_port:04X}"
    want_remote = f"0100007F:{remote_port:04X}"
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            parts = line.split()
            if parts[1] == want_local and parts[2] == want_remote:
                return int(parts[9])
    return None


def socket_owner(pids: list[int], server_port: int, client_port: int) -> int | None:
    """Which of `pids` holds the server side of the connection from `client_port` (SO_REUSEPORT:
    the worker the kernel handed the connection to, which stores and processes the callback)."""
    inode = _tcp_inode(server_port, client_port)
    if inode is None:
        return None
    return next((pid for pid in pids if inode in _socket_inodes(pid)), None)


# ------------------------------------------------------------------------------------------ config


@dataclass(frozen=True, slots=True)
class Requester:
    userid: str  # WeCom userid
    username: str
    leader: str  # WeCom userid of their creator_tl


def write_config(where: Path, requesters: int) -> tuple[Path, list[Requester]]:
    """The shipped config with `requesters` extra people in departments 2, 4, 5 and 6 (at most
    ceil(n/4) cards a leader, so nobody nears WeCom's 30 messages a minute)."""
    config = where / "config"
    shutil.copytree(CONFIG_DIR, config, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    org = yaml.safe_load((config / "org.yaml").read_text(encoding="utf-8"))
    depts = sorted(LEADERS)
    people: list[Requester] = []
    for i in range(requesters):
        dept = depts[i % len(depts)]
        username = f"req{i:03d}"
        userid = f"Req{i:03d}"
        org["users"].append(
            {
                "username": username,
                "alias": f"请求人{i:03d}",
                "email": f"{username}@example.com",
                "phone": f"139{i:08d}",
                "departments": [dept],
                "wecom_userid": userid,
            }
        )
        people.append(Requester(userid, username, LEADERS[dept]))
    (config / "org.yaml").write_text(
        yaml.safe_dump(org, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return config, people


def _aes_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()[:43]


# ------------------------------------------------------------------------------------------ WeCom side


@dataclass
class WeCom:
    emulator: WeComEmulator
    token: str
    aes_key: str
    env: dict[str, str]

    def signed(self, callback_url: str, plaintext_xml: str) -> tuple[URL, bytes]:
        params, body = encrypt_callback(
            plaintext_xml,
            token=self.token,
            aes_key=self.aes_key,
            corp_id=CORP,
            timestamp=str(int(time.time())),
            nonce=str(secrets.randbelow(10**10)),
        )
        query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        return URL(f"{callback_url}?{query}", encoded=True), body.encode()


@asynccontextmanager
async def wecom(config_dir: Path) -> AsyncIterator[WeCom]:
    """A WeCom emulator on 127.0.0.1 (this event loop) whose corp has every WeCom member of the
    config's org.yaml, and the env that points `ticketbot serve` at it."""
    org = yaml.safe_load((config_dir / "org.yaml").read_text(encoding="utf-8"))
    members = [
        {"userid": str(u["wecom_userid"]), "name": str(u.get("alias", u["username"])), "department": [1]}
        for u in org["users"]
        if u.get("wecom_userid")
    ]
    secret, token, aes_key = secrets.token_urlsafe(24), secrets.token_urlsafe(16), _aes_key()
    emulator = WeComEmulator(
        corp_id=CORP,
        apps={AGENT: secret},
        clock=SystemClock(),
        org={"departments": [{"id": 1, "name": "总部", "parentid": 0}], "users": members},
    )
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
            "TICKETBOT_LINK_SECRET": secrets.token_urlsafe(24),
            "TICKETBOT_DUE_WORK_SECONDS": "0",
        }
        yield WeCom(emulator, token, aes_key, env)
    finally:
        await runner.cleanup()


def create_xml(userid: str, msg_id: int, content: str = CREATE) -> str:
    return text_message_xml(
        corp_id=CORP,
        from_user=userid,
        content=content,
        msg_id=msg_id,
        agent_id=AGENT,
        create_time=int(time.time()),
    )


@dataclass
class Delivered:
    """WeCom's delivery of one callback: the statuses of its attempts (None: no answer / no
    connection) and, per attempt that got an answer, the pid of the worker that answered it."""

    statuses: list[int | None] = field(default_factory=list)
    answered_by: list[int | None] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.statuses) and self.statuses[-1] == 200


async def deliver(
    we: WeCom,
    callback_url: str,
    plaintext_xml: str,
    *,
    attempts: int,
    retry_delay: float,
    owners: Callable[[], list[int]] | None = None,
) -> Delivered:
    """WeCom's retrying delivery (as emulator.wecom.retrying_send_callback): one signed POST, sent
    again after `retry_delay` while it gets no 200 within WeCom's deadline, at most `attempts`
    times. With `owners` (the worker pids), each answer notes which worker's socket took it."""
    url, body = we.signed(callback_url, plaintext_xml)
    out = Delivered()
    for i in range(attempts):
        if i:
            await asyncio.sleep(retry_delay)  # WeCom's pause between deliveries of one callback
        try:
            async with asyncio.timeout(WECOM_DEADLINE_S):
                status, owner = await _post(url, body, owners)
        except (TimeoutError, OSError, ValueError):
            status, owner = None, None
        out.statuses.append(status)
        out.answered_by.append(owner)
        if status == 200:
            break
    return out


async def wait_serving(base_url: str, pids: list[int], *, within: float) -> None:
    """Until every one of `pids` has answered GET /healthz 200 itself (SO_REUSEPORT spreads new
    connections over the workers that listen; one that is still starting gets none)."""
    url = URL(base_url + "/healthz")
    answered: set[int] = set()

    async def all_serving() -> bool:
        for _ in range(8):
            with contextlib.suppress(OSError, ValueError):
                status, owner = await _post(url, None, lambda: pids)
                if status == 200 and owner is not None:
                    answered.add(owner)
        return answered >= set(pids)

    await wait_until(
        all_serving, within=within, what=lambda: f"workers {pids} serving (answered: {answered})"
    )


async def _post(
    url: URL, body: bytes | None, owners: Callable[[], list[int]] | None
) -> tuple[int, int | None]:
    """One HTTP/1.1 POST (a GET without `body`) on its own connection: (status, pid of the worker
    whose socket answered). Plain streams, so the connection stays open (keep-alive) while its
    owner is looked up."""
    host, port = url.host or "127.0.0.1", int(url.port or 80)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        method = "GET" if body is None else "POST"
        body = body or b""
        head = (
            f"{method} {url.raw_path_qs} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode("ascii") + body)
        await writer.drain()
        status_line = await reader.readline()
        parts = status_line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            raise ValueError(f"not an HTTP answer: {status_line!r}")
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length:
            await reader.readexactly(length)
        owner = None
        if owners is not None:
            client_port = int(writer.get_extra_info("sockname")[1])
            owner = socket_owner(owners(), port, client_port)
        return int(parts[1]), owner
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


# ------------------------------------------------------------------------------------------ databases


@asynccontextmanager
async def pg_schema(base: str = PG_URL) -> AsyncIterator[str]:
    """A fresh, empty schema on `base` (`serve` migrates it), named by the URL; dropped afterwards."""
    schema = f"fault_{uuid.uuid4().hex[:12]}"
    engine = create_async_engine(base, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        yield pg_schema_url(schema, base)
    finally:
        with contextlib.suppress(Exception):
            async with engine.begin() as conn:
                await conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
                await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await engine.dispose()


async def rows(db: Database, sql: str, **params: Any) -> list[Any]:
    async with db.read() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def execute(db: Database, sql: str, **params: Any) -> int:
    async with db.write() as conn:
        return int((await conn.execute(text(sql), params)).rowcount or 0)


async def returning(db: Database, sql: str, **params: Any) -> list[Any]:
    """A writing statement's RETURNING rows."""
    async with db.write() as conn:
        return list((await conn.execute(text(sql), params)).all())


# ------------------------------------------------------------------------------------------ PostgreSQL


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bin_dir() -> Path:
    """Debian's PostgreSQL binaries (/usr/lib/postgresql/<version>/bin), newest version first."""
    root = Path("/usr/lib/postgresql")
    found = sorted(
        (p / "bin" for p in root.glob("*") if (p / "bin" / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    if not found:
        raise AssertionError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/<version>/bin "
            "(initdb, pg_ctl): install Debian's postgresql package; this test needs a private cluster"
        )
    return found[0]


@dataclass
class Cluster:
    bin_dir: Path
    data_dir: Path
    port: int
    log_path: Path
    run_as: list[str]  # [] as the current user, or ["runuser", "-u", "postgres", "--"] for root

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        cmd = [
            *self.run_as,
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            *args,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
        if done.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}\n{self.log_tail()}"
            )
        return done

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    """initdb a PostgreSQL cluster into a temporary directory (trust auth, superuser postgres) and
    start it on a free 127.0.0.1 port; stopped (immediate) and removed afterwards. As root the
    cluster runs as the `postgres` user (runuser): PostgreSQL refuses to run as root."""
    bin_dir = pg_bin_dir()
    run_as: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="ticketbot-pg-"))
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(tmp, "postgres", "postgres")
    cluster = Cluster(bin_dir, tmp / "data", free_port(), tmp / "postgres.log", run_as)
    started = False
    try:
        init = subprocess.run(  # noqa: S603 - Debian's initdb, our arguments
            [
                *run_as,
                str(bin_dir / "initdb"),
                "-D",
                str(cluster.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if init.returncode != 0:
            raise AssertionError(f"initdb failed ({init.returncode}): {init.stderr.strip()}")
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={cluster.port} -c unix_socket_directories={tmp} "
            "-c fsync=off -c full_page_writes=off"
        )
        cluster.pg_ctl("start", "-w", "-o", options)
        started = True
        yield cluster
    finally:
        if started:
            with contextlib.suppress(Exception):
                cluster.pg_ctl("stop", "-m", "immediate", "-w")
            pid_file = cluster.data_dir / "postmaster.pid"
            with contextlib.suppress(OSError, ValueError):  # pg_ctl failed: end the postmaster ourselves
                os.kill(int(pid_file.read_text().splitlines()[0]), signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)
