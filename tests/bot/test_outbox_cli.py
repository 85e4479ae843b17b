"""`ticketbot outbox list | retry | replay` against a real database (SQLite and PostgreSQL): the
engine makes tickets, a notifier with a recording platform and a fake clock sends (or fails) their
cards, and the command line is run as a user would run it."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.app import Runtime, build_runtime
from bot.notify.notifier import Notifier
from bot.notify.ports import Delivery, OutboxEvent, SendFailed
from config.settings import load_settings
from core import commands as core
from core.service import Done
from store.deliveries import MAX_ATTEMPTS, SqlDeliveries
from store.queries import SqlTicketQueries
from tests.fakes import FakeClock, RecordingSender

CONFIG = Path(__file__).resolve().parents[2] / "config"
FIELDS = {"start_date": "2024-05-06", "end_date": "2024-05-07", "days": 2, "reason": "家里有事"}
WECOM_ENV = {
    "TICKETBOT_WECOM_CORP_ID": "wwcorp0123456789",
    "TICKETBOT_WECOM_AGENT_ID": "1000002",
    "TICKETBOT_WECOM_SECRET": "app-secret",
    "TICKETBOT_WECOM_TOKEN": "callback-token-77",
    "TICKETBOT_WECOM_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
}


@dataclass
class World:
    url: str
    runtime: Runtime
    notifier: Notifier
    sender: RecordingSender
    clock: FakeClock
    store: SqlDeliveries[Delivery, OutboxEvent]
    capsys: pytest.CaptureFixture[str]

    async def cli(self, *argv: str) -> tuple[int, str, str]:
        """Run `ticketbot <argv> --database-url <url>` (in a thread: it runs its own event loop)."""
        self.capsys.readouterr()
        code = await asyncio.to_thread(main, [*argv, "--database-url", self.url])
        out, err = self.capsys.readouterr()
        return code, out, err

    async def ticket(self) -> int:
        result = await self.runtime.service.create(core.Create("liuyang", 1, 151, FIELDS))
        assert isinstance(result, Done)
        return result.ticket.id

    async def kill(self) -> None:
        """Make every card due now fail until it is dead."""
        for _ in range(MAX_ATTEMPTS + 1):
            self.sender.fail = [SendFailed("HTTP 502 bad gateway", retry_after=1)] * 50
            await self.notifier.drain()
            self.clock.advance(hours=2)
        self.sender.fail = []

    async def statuses(self, ticket_id: int) -> list[tuple[int, str, int]]:
        return [(d.id, d.status, d.attempts) for d in await self.store.for_ticket(ticket_id)]


@pytest.fixture
async def world(database_url: str, capsys: pytest.CaptureFixture[str]) -> AsyncIterator[World]:
    runtime = await build_runtime(load_settings(env={}, database_url=database_url, config_dir=CONFIG))
    sender = RecordingSender()
    clock = FakeClock(datetime.now(UTC))
    store = SqlDeliveries(runtime.db, delivery_type=Delivery, event_type=OutboxEvent)
    notifier = Notifier(
        store,
        SqlTicketQueries(runtime.db),
        runtime.catalog,
        runtime.directory,
        {"wecom": sender},
        clock,
        "https://bot.example.com",
        rng=random.Random(7),
    )
    yield World(database_url, runtime, notifier, sender, clock, store, capsys)
    await runtime.db.dispose()


# ------------------------------------------------------------------------------------ help


@pytest.mark.parametrize("command", [[], ["list"], ["retry"], ["replay"]])
def test_every_outbox_command_has_help_with_examples(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["outbox", *command, "--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "ticketbot outbox" in out
    if command:
        assert "--database-url" in out


def test_outbox_is_listed_in_the_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "outbox" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["list", "--status", "lost"], "invalid choice: 'lost'"),
        (["list", "--limit", "0"], "limit must be within 1..10000"),
        (["list", "--ticket", "x"], "ticket must be a whole number"),
        (["retry", "abc"], "id must be a whole number"),
        (["retry", "-3"], "id must be within 1..9223372036854775807, got -3"),
        (["replay"], "the following arguments are required: --ticket"),
    ],
)
def test_bad_arguments_are_refused_by_name(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["outbox", *argv])
    assert exit.value.code == 2
    assert message in capsys.readouterr().err


# ------------------------------------------------------------------------------------ list


async def test_list_shows_a_table_newest_first_and_filters(world: World) -> None:
    first = await world.ticket()
    await world.notifier.drain()
    second = await world.ticket()
    await world.kill()
    code, out, _ = await world.cli("outbox", "list")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == [
        "ID", "TICKET", "PLATFORM", "RECIPIENT", "KIND", "STATUS", "ATTEMPTS", "DUE/SENT", "LAST", "ERROR"
    ]  # fmt: skip
    assert [r.split()[1] for r in rows] == [str(second), str(first)]
    dead, sent = rows
    assert dead.split()[2:7] == ["wecom", "wangqiang", "pending", "dead", str(MAX_ATTEMPTS)]
    assert dead.endswith("HTTP 502 bad gateway") and " due " in dead
    assert sent.split()[5] == "sent" and " sent " in sent

    code, out, _ = await world.cli("outbox", "list", "--status", "dead")
    assert code == 0 and [r.split()[1] for r in out.splitlines()[1:]] == [str(second)]
    code, out, _ = await world.cli("outbox", "list", "--ticket", str(first), "--json")
    (item,) = json.loads(out)
    assert item["ticket_id"] == first and item["status"] == "sent" and item["msg_id"] == "m1"
    assert "response_code" not in item and item["sent_at"].endswith("+00:00")
    code, out, _ = await world.cli("outbox", "list", "--ticket", "999999")
    assert (code, out.strip()) == (0, "no deliveries of ticket 999999")


# ------------------------------------------------------------------------------------ retry


async def test_retry_puts_a_dead_delivery_back_and_it_is_sent(world: World) -> None:
    ticket_id = await world.ticket()
    await world.kill()
    ((id, status, attempts),) = await world.statuses(ticket_id)
    assert (status, attempts) == ("dead", MAX_ATTEMPTS)
    code, out, _ = await world.cli("outbox", "retry", str(id))
    assert code == 0 and out.strip() == f"requeued 1 delivery (pending, due now): {id}"
    assert await world.statuses(ticket_id) == [(id, "pending", 0)]
    await world.notifier.drain()
    assert await world.statuses(ticket_id) == [(id, "sent", 0)]
    assert len(world.sender.to("WangQiang")) == 1


async def test_retry_of_an_unknown_id_names_it_and_changes_nothing(world: World) -> None:
    ticket_id = await world.ticket()
    await world.kill()
    before = await world.statuses(ticket_id)
    (id, _, _) = before[0]
    code, out, err = await world.cli("outbox", "retry", str(id), "424242", "424243")
    assert code == 1 and out == ""
    assert "no delivery 424242, 424243; nothing was changed" in err
    assert await world.statuses(ticket_id) == before


async def test_retry_leaves_deliveries_that_are_not_dead_or_cancelled_alone(world: World) -> None:
    ticket_id = await world.ticket()
    await world.notifier.drain()
    ((id, _, _),) = await world.statuses(ticket_id)
    code, out, _ = await world.cli("outbox", "retry", str(id))
    assert code == 0 and out.strip() == f"left alone (only dead or cancelled ones are retried): {id} (sent)"
    assert await world.statuses(ticket_id) == [(id, "sent", 0)]


async def test_retry_dead_takes_every_dead_delivery_or_one_tickets(world: World) -> None:
    a = await world.ticket()
    b = await world.ticket()
    await world.kill()
    code, out, _ = await world.cli("outbox", "retry", "--dead", "--ticket", str(a))
    assert code == 0 and out.startswith("requeued 1 delivery")
    assert [s for _, s, _ in await world.statuses(a)] == ["pending"]
    assert [s for _, s, _ in await world.statuses(b)] == ["dead"]
    code, out, _ = await world.cli("outbox", "retry", "--dead")
    assert code == 0 and out.startswith("requeued 1 delivery")
    code, out, _ = await world.cli("outbox", "retry", "--dead")
    assert (code, out.strip()) == (0, "no dead deliveries")


@pytest.mark.parametrize("argv", [["retry"], ["retry", "1", "--dead"], ["retry", "1", "--ticket", "1"]])
async def test_retry_needs_ids_or_dead(world: World, argv: list[str]) -> None:
    ticket_id = await world.ticket()
    await world.kill()
    before = await world.statuses(ticket_id)
    code, _, err = await world.cli("outbox", *argv)
    assert code == 2 and "ticketbot: outbox retry" in err
    assert await world.statuses(ticket_id) == before


# ------------------------------------------------------------------------------------ replay


async def test_replay_sends_the_current_handler_a_fresh_card(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in WECOM_ENV.items():
        monkeypatch.setenv(name, value)
    ticket_id = await world.ticket()
    await world.notifier.drain()
    assert len(world.sender.to("WangQiang")) == 1
    code, out, _ = await world.cli("outbox", "replay", "--ticket", str(ticket_id), "--config", str(CONFIG))
    assert code == 0, out
    assert out.startswith(f"replayed ticket {ticket_id}: 1 fresh card queued")
    assert "wangqiang" in out and "pending" in out
    # queued but not sent yet: a second replay doesn't double it
    code, out, err = await world.cli("outbox", "replay", "--ticket", str(ticket_id), "--config", str(CONFIG))
    assert code == 1 and "already queued" in err and "nothing was changed" in err
    world.clock.advance(minutes=1)  # the command queued it due at the real "now"
    await world.notifier.drain()
    first, again = world.sender.to("WangQiang")
    assert [b.label for b in again.buttons] == [b.label for b in first.buttons] == ["同意", "驳回"]
    # both cards are closed when someone acts
    assert isinstance(await world.runtime.service.execute(ticket_id, core.Handle("wangqiang", 152)), Done)
    await world.notifier.drain()
    assert len(world.sender.updated) == 2


async def test_replay_refuses_what_it_cannot_do_and_changes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket_id = await world.ticket()
    await world.notifier.drain()
    before = await world.statuses(ticket_id)
    code, _, err = await world.cli("outbox", "replay", "--ticket", str(ticket_id), "--config", str(CONFIG))
    assert code == 1 and "no chat platform is enabled" in err  # no WeCom settings
    for name, value in WECOM_ENV.items():
        monkeypatch.setenv(name, value)
    code, _, err = await world.cli("outbox", "replay", "--ticket", "987654", "--config", str(CONFIG))
    assert code == 1 and "ticket 987654 does not exist" in err
    closed = await world.runtime.service.execute(ticket_id, core.Close("chenjing", "不需要了"))
    assert isinstance(closed, Done)
    await world.notifier.drain()
    before = await world.statuses(ticket_id)
    code, _, err = await world.cli("outbox", "replay", "--ticket", str(ticket_id), "--config", str(CONFIG))
    assert code == 1 and "has ended" in err
    assert await world.statuses(ticket_id) == before
