"""`ticketbot serve --workers N`: refused on SQLite, each worker's command line, and the
supervisor (a worker that exits is started again, one that keeps exiting stops the service, a stop
reaches every worker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.workers import MAX_RESTARTS, Supervisor, WorkersRefused, check_workers, worker_command
from config.settings import load_settings

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def test_more_than_one_worker_on_sqlite_is_refused_with_the_reason(tmp_path: Path) -> None:
    settings = load_settings(env={}, database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db")
    check_workers(settings, 1)
    with pytest.raises(WorkersRefused, match="needs PostgreSQL: SQLite is single-process"):
        check_workers(settings, 2)
    check_workers(load_settings(env={}, database_url=PG), 4)
    for bad in (0, -1, 65):
        with pytest.raises(WorkersRefused, match=r"within 1\.\.64"):
            check_workers(load_settings(env={}, database_url=PG), bad)


def test_the_cli_refuses_workers_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/t.db"
    done = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "bot", "serve", "--workers", "2", "--database-url", url],
        env={**os.environ, "TICKETBOT_ALLOW_PLACEHOLDER_SECRETS": "1"},  # the shipped demo config
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "needs PostgreSQL" in done.stderr
    assert not (tmp_path / "t.db").exists()  # refused before anything was touched


def test_a_worker_runs_this_serve_without_workers_and_with_its_index() -> None:
    argv = ["serve", "--workers", "3", "--port", "9000", "--workers=3", "--database-url", PG]
    command = worker_command(argv, 2)
    assert command[:3] == [sys.executable, "-m", "bot"]
    assert command[3:] == ["serve", "--port", "9000", "--database-url", PG, "--worker-index", "2"]


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_worker_that_keeps_exiting_is_restarted_then_the_service_stops() -> None:
    started: list[int] = []

    def command(index: int) -> list[str]:
        started.append(index)
        return _python("import sys; sys.exit(3)")

    supervisor: Supervisor

    def until_a_worker_exits(_seconds: float) -> None:  # instead of the poll interval: wait for the event
        for worker in supervisor.workers.values():
            worker.process.wait(timeout=30)

    supervisor = Supervisor(command, 2, {}, clock=lambda: 0.0, sleep=until_a_worker_exits)
    assert supervisor.run() == 1
    # each worker: the first start plus MAX_RESTARTS restarts within the minute, then the service stops
    assert started.count(0) <= MAX_RESTARTS + 1 and started.count(1) <= MAX_RESTARTS + 1
    assert max(started.count(0), started.count(1)) == MAX_RESTARTS + 1
    assert all(w.process.poll() is not None for w in supervisor.workers.values())


def test_a_stop_reaches_every_worker_and_they_exit_gracefully(tmp_path: Path) -> None:
    marker = tmp_path / "stopped"
    code = (
        "import signal, sys, pathlib\n"
        f"p = pathlib.Path({str(marker)!r})\n"
        "def bye(*_):\n"
        "    with p.open('a') as f: f.write('x')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "signal.pause()\n"
    )
    supervisor: Supervisor

    def tick(_seconds: float) -> None:  # once every worker said it is ready, stop the service
        for worker in supervisor.workers.values():
            assert worker.process.stdout is not None
            assert worker.process.stdout.readline() == b"ready\n"
        supervisor.stop(signal.SIGTERM)

    supervisor = Supervisor(lambda _i: _python(code), 3, {}, sleep=tick, stdout=subprocess.PIPE)
    assert supervisor.run() == 0
    assert all(w.process.returncode == 0 for w in supervisor.workers.values())
    assert marker.read_text() == "xxx"
