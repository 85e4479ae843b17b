"""The output and the retry flow that `ticketbot outbox list | retry` share between its kinds of
rows: deliveries (bot.outbox_cli) and work_order_change webhook calls (bot.webhook_cli).

- `table` lines up a header and rows of cells (times by `time_text`, errors by `one_line`);
- `Kind` says what a kind of row is called and how it prints; `show` prints a listing of them:
  JSON, a "no ..." line, or the table;
- `retry` requeues the dead rows (or the rows of the ids given, all of which must exist) and says
  which were requeued and which were left alone.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

ERROR_WIDTH = 60

R = TypeVar("R")
K = TypeVar("K", int, str)


def time_text(value: datetime | None) -> str:
    """`value` in UTC as ``YYYY-MM-DD HH:MM:SS`` ("" for None)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def one_line(text: str, width: int = ERROR_WIDTH) -> str:
    """`text` on one line, cut to `width` characters (with "…")."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _of_ticket(ticket: int | None) -> str:
    return f" of ticket {ticket}" if ticket else ""


def table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """The rows under the header, in columns two spaces apart (no trailing spaces)."""
    rows = [header, *body]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


@dataclass(frozen=True, slots=True)
class Kind(Generic[R, K]):
    """A kind of row: its name (`one`, `many`), its id and status (and how a listing names the
    status it shows: `in_status`), how rows print (`as_json`, `format_table`) and which statuses
    `retry` requeues (for its "left alone" line)."""

    one: str
    many: str
    id_of: Callable[[R], K]
    status_of: Callable[[R], str]
    in_status: str
    as_json: Callable[[R], dict[str, Any]]
    format_table: Callable[[Sequence[R]], str]
    retried: str

    def count(self, n: int) -> str:
        return f"{n} {self.one if n == 1 else self.many}"


def show(
    kind: Kind[R, Any], rows: Sequence[R], in_json: bool, ticket: int | None, status: str | None
) -> None:
    """Print the rows listed (of `ticket`, in `status`, if given): as JSON (`in_json`), else a
    "no ..." line when there are none, else as the table."""
    if in_json:
        print(json.dumps([kind.as_json(r) for r in rows], ensure_ascii=False, indent=2))
    elif not rows:
        print(f"no {kind.many}{_of_ticket(ticket)}" + (f" {kind.in_status} {status}" if status else ""))
    else:
        print(kind.format_table(rows))


async def retry(
    kind: Kind[R, K],
    ids: Sequence[K],
    *,
    dead: Callable[[], Awaitable[list[R]]] | None,
    find: Callable[[Sequence[K]], Awaitable[list[R]]],
    requeue: Callable[[list[K], datetime], Awaitable[list[K]]],
    ticket: int | None,
) -> int:
    """`outbox retry`: the rows `dead()` lists (when given) or those of `ids`, requeued. 0 done (or
    nothing dead), 1 an unknown id (nothing changed)."""
    if dead is not None:
        found = await dead()
        if not found:
            print(f"no dead {kind.many}{_of_ticket(ticket)}")
            return 0
    else:
        found = await find(ids)
        unknown = sorted(set(ids) - {kind.id_of(r) for r in found})
        if unknown:
            print(
                f"ticketbot: no {kind.one} {', '.join(map(str, unknown))}; nothing was changed",
                file=sys.stderr,
            )
            return 1
    done = await requeue([kind.id_of(r) for r in found], datetime.now(UTC))
    if done:
        print(f"requeued {kind.count(len(done))} (pending, due now): {', '.join(map(str, done))}")
    left = sorted((r for r in found if kind.id_of(r) not in done), key=kind.id_of)
    if left:
        print(
            f"left alone (only {kind.retried} ones are retried): "
            + ", ".join(f"{kind.id_of(r)} ({kind.status_of(r)})" for r in left)
        )
    return 0
