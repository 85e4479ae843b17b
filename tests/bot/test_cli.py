"""The `ticketbot` command line, run as a user runs it (a subprocess of the installed script)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "config"


def ticketbot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own entry point
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_help_lists_commands_and_settings() -> None:
    out = ticketbot("--help")
    assert out.returncode == 0
    for word in ("serve", "check", "migrate", "TICKETBOT_DATABASE_URL", "TICKETBOT_CONFIG_DIR"):
        assert word in out.stdout
    for sub in ("serve", "check", "migrate"):
        assert ticketbot(sub, "--help").returncode == 0


def test_check_accepts_the_shipped_config() -> None:
    out = ticketbot("check", "--config", str(CONFIG))
    assert out.returncode == 0, out.stderr
    assert "3 workflows" in out.stdout


def test_check_reports_a_broken_workflow_precisely(tmp_path: Path) -> None:
    broken = tmp_path / "config"
    shutil.copytree(CONFIG, broken, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    leave = broken / "workflows" / "leave.yaml"
    text = leave.read_text(encoding="utf-8")
    lines = text.splitlines()
    # point the first transition's destination at a state that does not exist
    idx = next(i for i, line in enumerate(lines) if line.strip().startswith("to:"))
    indent = lines[idx][: len(lines[idx]) - len(lines[idx].lstrip())]
    lines[idx] = f"{indent}to: 999"
    leave.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = ticketbot("check", "--config", str(broken))
    assert out.returncode == 1
    assert "leave.yaml" in out.stderr and "999" in out.stderr and "transitions[" in out.stderr


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
    first = ticketbot("migrate", "--database-url", url)
    assert first.returncode == 0, first.stderr
    again = ticketbot("migrate", "--database-url", url)
    assert again.returncode == 0 and "revision" in again.stdout


def test_no_command_prints_help_and_fails() -> None:
    out = ticketbot()
    assert out.returncode == 2 and "COMMAND" in out.stdout
