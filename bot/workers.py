"""`ticketbot serve --workers N`: N worker processes on one port, on PostgreSQL.

The parent prepares the database once (migrations, the directory and workflow versions), then
starts N copies of `ticketbot serve --worker-index I`, each listening on the same port with
SO_REUSEPORT (the kernel spreads connections over them). Work that must happen once (a card, a
timer, a hook call, an inbox row) is claimed in the database with FOR UPDATE SKIP LOCKED, so any
worker may do it and none does it twice. Scheduled directory syncs run in worker 0 only.

The parent supervises: a worker that exits unexpectedly (crash, OOM kill, SIGKILL) is started
again, at most `MAX_RESTARTS` times a minute; SIGINT / SIGTERM stop every worker gracefully (they
finish what they hold, at most `STOP_TIMEOUT` seconds) and then the parent.

SQLite is single-process (writes are serialised in the process): asking for more than one worker
on SQLite is refused with an explanation.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

from config.settings import Settings, redact_url

log = logging.getLogger("ticketbot.workers")

MAX_WORKERS = 64
MAX_RESTARTS = 5  # per worker per minute; beyond that the service stops (something is broken)
STOP_TIMEOUT = 15.0
POLL = 0.2


class WorkersRefused(ValueError):
    """A --workers request that cannot be served (the message says why and what to do)."""


def check_workers(settings: Settings, workers: int) -> None:
    if not 1 <= workers <= MAX_WORKERS:
        raise WorkersRefused(f"--workers must be within 1..{MAX_WORKERS}, not {workers}")
    if workers > 1 and settings.database_url.startswith("sqlite"):
        raise WorkersRefused(
            f"--workers {workers} needs PostgreSQL: SQLite is single-process (its writes are serialised "
            "inside one process). Run one worker, or set TICKETBOT_DATABASE_URL="
            "postgresql+asyncpg://user@host:5432/db"
        )


async def prepare(settings: Settings) -> None:
    """What every worker would otherwise race to do: migrate, publish directory and workflows."""
    from bot.app import build_runtime

    runtime = await build_runtime(settings)
    await runtime.db.dispose()


@dataclass(slots=True)
class Worker:
    index: int
    process: subprocess.Popen[bytes]
    restarts: deque[float] = field(default_factory=deque)


def worker_command(argv: Sequence[str], index: int) -> list[str]:
    """The command line of worker `index`: this `serve` with --workers replaced by --worker-index."""
    out: list[str] = [sys.executable, "-m", "bot"]
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        out.append(arg)
    return [*out, "--worker-index", str(index)]


class Supervisor:
    def __init__(
        self,
        command: Callable[[int], list[str]],
        workers: int,
        env: dict[str, str],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        stdout: int | None = None,
    ) -> None:
        self._command = command
        self._count = workers
        self._env = env
        self._clock = clock
        self._sleep = sleep
        self._stdout = stdout
        self._stopping = False
        self.workers: dict[int, Worker] = {}

    def _start(self, index: int) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(self._command(index), env=self._env, stdout=self._stdout)  # noqa: S603 - ours
        log.info("worker started", extra={"worker": index, "pid": process.pid})
        return process

    def stop(self, signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        self._stopping = True

    def run(self) -> int:
        for index in range(self._count):
            self.workers[index] = Worker(index, self._start(index))
        code = 0
        while not self._stopping:
            for worker in self.workers.values():
                status = worker.process.poll()
                if status is None or self._stopping:
                    continue
                now = self._clock()
                while worker.restarts and now - worker.restarts[0] > 60:
                    worker.restarts.popleft()
                if len(worker.restarts) >= MAX_RESTARTS:
                    log.error(
                        "worker keeps exiting; stopping the service",
                        extra={
                            "worker": worker.index,
                            "exit_status": status,
                            "restarts": len(worker.restarts),
                        },
                    )
                    self._stopping, code = True, 1
                    break
                log.warning(
                    "worker exited; starting it again",
                    extra={"worker": worker.index, "pid": worker.process.pid, "exit_status": status},
                )
                worker.restarts.append(now)
                worker.process = self._start(worker.index)
            self._sleep(POLL)
        self._shutdown()
        return code

    def _shutdown(self) -> None:
        alive = [w.process for w in self.workers.values() if w.process.poll() is None]
        for process in alive:
            process.send_signal(signal.SIGTERM)
        deadline = self._clock() + STOP_TIMEOUT
        for process in alive:
            try:
                process.wait(timeout=max(0.0, deadline - self._clock()))
            except subprocess.TimeoutExpired:
                log.error("worker did not stop in time; killing it", extra={"pid": process.pid})
                process.kill()
                process.wait()


def serve_workers(settings: Settings, workers: int, argv: Sequence[str]) -> int:
    """Prepare once, then run and supervise `workers` worker processes until SIGINT / SIGTERM."""
    check_workers(settings, workers)
    asyncio.run(prepare(settings))
    env = dict(os.environ)
    if not settings.link_secret:
        # every worker must sign and check ticket-page links with the same key
        env["TICKETBOT_LINK_SECRET"] = secrets.token_urlsafe(32)
        log.warning(
            "TICKETBOT_LINK_SECRET is not set: the workers share a random key for this run; "
            "ticket page links stop working when ticketbot restarts"
        )
    supervisor = Supervisor(lambda i: worker_command(argv, i), workers, env)
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    print(
        f"ticketbot serving on http://{settings.host}:{settings.port} with {workers} workers "
        f"(database {redact_url(settings.database_url)}); Ctrl-C stops them",
        flush=True,
    )
    return supervisor.run()
