"""`ticketbot outbox list | retry --kind webhook` against a real database (SQLite and PostgreSQL):
work orders made by the engine record their webhook calls, one is made dead, and the command line
is run as a user would run it."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.app import Runtime, build_runtime
from config.settings import load_settings
from core import commands as core
from core.service import Done
from core.webhook_calls import DEAD, PENDING, WebhookCall
from store.webhooks import SqlWebhookCalls

CONFIG = Path(__file__).resolve().parents[2] / "config"
SECRET = "cli-test-signing-key-5e6f7a8b"
ORDER = {"customer_name": "李先生", "category": "consult", "priority": "normal", "description": "打不开"}
APPS = f"""
apps:
  - name: demo
    token: demo-token
    workflows: all
  - name: crm
    token: crm-api-token-1
    workflows: [3]
    webhook_url: https://crm.example.com/wh?access_token=hidden-in-query
    webhook_secret: {SECRET}
"""


@dataclass
class World:
    url: str
    runtime: Runtime
    capsys: pytest.CaptureFixture[str]

    @property
    def calls(self) -> SqlWebhookCalls:
        return SqlWebhookCalls(self.runtime.db)

    async def cli(self, *argv: str) -> tuple[int, str, str]:
        """Run `ticketbot <argv> --database-url <url>` (in a thread: it runs its own event loop)."""
        self.capsys.readouterr()
        code = await asyncio.to_thread(main, [*argv, "--database-url", self.url])
        out, err = self.capsys.readouterr()
        return code, out, err

    async def order(self) -> int:
        done = await self.runtime.service.create(core.Create("liuyang", 3, 351, ORDER))
        assert isinstance(done, Done), done
        return done.ticket.id

    async def kill(self, call: WebhookCall) -> None:
        now = datetime.now(UTC)
        claimed = await self.calls.claim_due("cli-test", now, 100, 60)
        assert call.id in {c.id for c in claimed}
        assert await self.calls.mark_dead(
            call.id, "cli-test", now, "the receiver refused it: HTTP 404", response_status=404
        )
        for other in claimed:
            if other.id != call.id:
                await self.calls.retry_later(other.id, "cli-test", "HTTP 503", now, response_status=503)


@pytest.fixture
async def world(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> AsyncIterator[World]:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (config / "apps.yaml").write_text(APPS, encoding="utf-8")
    runtime = await build_runtime(load_settings(env={}, database_url=database_url, config_dir=config))
    yield World(database_url, runtime, capsys)
    await runtime.db.dispose()


async def test_list_shows_the_webhook_calls(world: World) -> None:
    first, second = await world.order(), await world.order()
    a, b = (await world.calls.for_ticket(first))[0], (await world.calls.for_ticket(second))[0]
    await world.kill(a)
    code, out, err = await world.cli("outbox", "list", "--kind", "webhook")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID",
        "TICKET",
        "APP",
        "STATUS",
        "STATE",
        "ATTEMPTS",
        "DUE/SENT",
        "HTTP",
        "LAST",
        "ERROR",
    ]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {a.id, b.id}
    assert rows[a.id].split()[1:6] == [str(first), "crm", "create", DEAD, "1"]
    assert "404" in rows[a.id] and "the receiver refused it: HTTP 404" in rows[a.id]
    code, out, _ = await world.cli("outbox", "list", "--kind", "webhook", "--status", "dead", "--json")
    assert code == 0
    [listed] = json.loads(out)
    assert (listed["id"], listed["state"], listed["retry_count"], listed["response_status"]) == (
        a.id,
        DEAD,
        1,
        404,
    )
    assert listed["url"] == "https://crm.example.com/wh"  # the query (a token, maybe) is not shown
    assert listed["payload"]["msg_data"]["staff_id"] == "liuyang"
    assert "hidden-in-query" not in out and SECRET not in out
    code, out, _ = await world.cli(
        "outbox", "list", "--kind", "webhook", "--ticket", str(second), "--status", "sent"
    )
    assert (code, out.strip()) == (0, f"no webhook calls of ticket {second} in state sent")
    code, _, err = await world.cli("outbox", "list", "--kind", "webhook", "--status", "cancelled")
    assert code == 2 and "a webhook call is pending, sent, dead (not cancelled)" in err


async def test_retry_puts_dead_calls_back(world: World) -> None:
    ticket_id = await world.order()
    [call] = await world.calls.for_ticket(ticket_id)
    await world.kill(call)
    code, out, err = await world.cli("outbox", "retry", "--kind", "webhook", call.id.upper())
    assert (code, err) == (0, "")
    assert out.strip() == f"requeued 1 webhook call (pending, due now): {call.id}"
    [again] = await world.calls.for_ticket(ticket_id)
    assert (again.state, again.retry_count, again.claimed_by) == (PENDING, 0, "")
    code, out, _ = await world.cli("outbox", "retry", "--kind", "webhook", call.id)
    assert code == 0 and f"left alone (only dead ones are retried): {call.id} (pending)" in out
    await world.kill(again)
    code, out, _ = await world.cli(
        "outbox", "retry", "--kind", "webhook", "--dead", "--ticket", str(ticket_id)
    )
    assert code == 0 and out.startswith("requeued 1 webhook call")
    code, out, _ = await world.cli("outbox", "retry", "--kind", "webhook", "--dead")
    assert (code, out.strip()) == (0, "no dead webhook calls")


async def test_retry_refuses_ids_of_the_wrong_kind_and_unknown_ones(world: World) -> None:
    ticket_id = await world.order()
    [call] = await world.calls.for_ticket(ticket_id)
    await world.kill(call)
    unknown = str(uuid.uuid4())
    code, _, err = await world.cli("outbox", "retry", "--kind", "webhook", call.id, unknown)
    assert code == 1 and f"no webhook call {unknown}; nothing was changed" in err
    code, _, err = await world.cli("outbox", "retry", call.id)
    assert code == 2 and "is a webhook call id; add --kind webhook" in err
    code, _, err = await world.cli("outbox", "retry", "--kind", "webhook", "17")
    assert code == 2 and "17 is not a webhook call id (a UUID)" in err
    [still] = await world.calls.for_ticket(ticket_id)
    assert still.state == DEAD


@pytest.mark.parametrize("command", ["list", "retry"])
def test_help_names_the_webhook_kind(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["outbox", command, "--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert "--kind {delivery,webhook}" in out and f"ticketbot outbox {command} --kind webhook" in out


def test_a_bad_id_is_still_refused_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["outbox", "retry", "not-an-id"])
    assert exit.value.code == 2
    assert "id must be a whole number" in capsys.readouterr().err
