"""The listing helpers of `ticketbot outbox list | retry` (bot.listing) on plain rows: the table's
columns, errors cut to one line, and what `show` and `retry` print, plurals included. The
commands themselves are tested end to end in test_outbox_cli.py and test_webhook_cli.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from bot.listing import Kind, one_line, retry, show, table, time_text


@dataclass(frozen=True)
class Row:
    id: int
    state: str


def _table(rows: Sequence[Row]) -> str:
    return table(("ID", "STATE"), [(str(r.id), r.state) for r in rows])


ROWS: Kind[Row, int] = Kind(
    one="row",
    many="rows",
    id_of=lambda r: r.id,
    status_of=lambda r: r.state,
    in_status="in state",
    as_json=lambda r: {"id": r.id, "state": r.state},
    format_table=_table,
    retried="dead",
)


def test_table_time_and_one_line() -> None:
    assert (
        table(("A", "LONGER"), [("wide cell", ""), ("x", "y")])
        == "A          LONGER\nwide cell\nx          y"
    )
    east = timezone(timedelta(hours=8))
    assert time_text(datetime(2025, 1, 2, 8, 4, 5, tzinfo=east)) == "2025-01-02 00:04:05"
    assert time_text(None) == ""
    assert one_line("a\n  b\tc") == "a b c"
    assert one_line("x" * 61) == "x" * 59 + "…" and one_line("x" * 60) == "x" * 60


def test_show_prints_json_nothing_or_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    show(ROWS, [], False, 7, "dead")
    show(ROWS, [], False, None, None)
    show(ROWS, [Row(1, "dead")], False, None, None)
    show(ROWS, [Row(1, "dead")], True, None, None)
    assert capsys.readouterr().out == (
        'no rows of ticket 7 in state dead\nno rows\nID  STATE\n1   dead\n[\n  {\n    "id": 1,\n    "state": "dead"\n  }\n]\n'
    )


class Store:
    def __init__(self, rows: list[Row]) -> None:
        self.rows = {r.id: r for r in rows}
        self.requeued_at: list[datetime] = []

    async def dead(self) -> list[Row]:
        return [r for r in self.rows.values() if r.state == "dead"]

    async def find(self, ids: Sequence[int]) -> list[Row]:
        return [self.rows[i] for i in sorted(set(ids)) if i in self.rows]

    async def requeue(self, ids: list[int], now: datetime) -> list[int]:
        self.requeued_at.append(now)
        return sorted(i for i in ids if self.rows[i].state == "dead")


async def _retry(store: Store, ids: Sequence[int], dead: bool, ticket: int | None = None) -> Any:
    return await retry(
        ROWS, ids, dead=store.dead if dead else None, find=store.find, requeue=store.requeue, ticket=ticket
    )


async def test_retry_says_what_it_requeued_and_what_it_left(capsys: pytest.CaptureFixture[str]) -> None:
    store = Store([Row(3, "dead"), Row(1, "dead"), Row(2, "sent")])
    assert await _retry(store, [3, 2, 1], dead=False) == 0
    assert (
        capsys.readouterr().out
        == "requeued 2 rows (pending, due now): 1, 3\nleft alone (only dead ones are retried): 2 (sent)\n"
    )
    assert store.requeued_at[0].tzinfo is UTC
    assert await _retry(store, [], dead=True) == 0
    assert capsys.readouterr().out == "requeued 2 rows (pending, due now): 1, 3\n"
    assert await _retry(store, [2, 9, 8], dead=False) == 1
    assert capsys.readouterr().err == "ticketbot: no row 8, 9; nothing was changed\n"
    assert await _retry(Store([Row(4, "dead")]), [4], dead=False) == 0
    assert capsys.readouterr().out == "requeued 1 row (pending, due now): 4\n"
    assert await _retry(Store([]), [], dead=True, ticket=5) == 0
    assert capsys.readouterr().out == "no dead rows of ticket 5\n"
    assert len(store.requeued_at) == 2  # an unknown id changes nothing
