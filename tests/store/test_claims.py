"""store.claims on its own, over rows written straight into ``hook_call`` (SQLite and PostgreSQL):
a claim's guard rails, the claim order (ties by the next order column) and limit, extra
conditions, and `owned` keeping or releasing the claim. The stores built on it have their own
contract tests (test_hook_calls.py, test_webhooks.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert

from store.claims import Claims
from store.db import Database
from store.errors import StoreError
from store.tables import hook_call
from tests.store.builders import T0

LEASE = 60.0
SOON = T0 + timedelta(seconds=10)


def _claims(db: Database) -> Claims:
    c = hook_call.c
    return Claims(
        db,
        hook_call,
        status="status",
        attempts="attempts",
        open=("pending", "waiting"),
        order=("next_attempt_at", "id"),
        columns=(c.id, c.next_attempt_at, c.claimed_by, c.claimed_until),
        max_attempts=2,
    )


async def _row(db: Database, key: str, due: datetime) -> int:
    values = {"ticket_id": 1, "state_id": 1, "ticket_version": 1, "call_id": key, "url": "http://h/"}
    values |= {"dedupe_key": key, "next_attempt_at": due, "created_at": T0}
    async with db.write() as conn:
        return int(
            (await conn.execute(insert(hook_call).values(**values).returning(hook_call.c.id))).scalar_one()
        )


async def test_a_claim_needs_an_aware_time_and_a_worker(db: Database) -> None:
    claims = _claims(db)
    naive = T0.replace(tzinfo=None)
    with pytest.raises(StoreError, match="timezone-aware"):
        await claims.claim("w", naive, 1, LEASE)
    assert await claims.claim("", T0, 0, LEASE) == []  # nothing asked for: no claim at all
    with pytest.raises(StoreError, match="worker name"):
        await claims.claim("", T0, 1, LEASE)
    with pytest.raises(StoreError, match="timezone-aware"):
        await claims.retry_later(1, "w", "x", naive)


async def test_claim_order_limit_conditions_and_owned(db: Database) -> None:
    claims = _claims(db)
    late = await _row(db, "late", T0 + timedelta(seconds=2))
    early = await _row(db, "early", T0 + timedelta(seconds=1))
    tie = await _row(db, "tie", T0 + timedelta(seconds=1))
    await _row(db, "future", T0 + timedelta(hours=1))
    first = await claims.claim("w1", SOON, 2, LEASE)
    assert [(r.id, r.claimed_by, r.claimed_until) for r in first] == [
        (early, "w1", SOON + timedelta(seconds=LEASE)),
        (tie, "w1", SOON + timedelta(seconds=LEASE)),
    ]
    assert await claims.claim("w2", SOON, 10, LEASE, hook_call.c.id != late) == []
    [row] = await claims.claim("w2", SOON, 10, LEASE)
    assert row.id == late
    assert not await claims.owned(late, "w1", {"last_error": "not w1's"})
    assert await claims.owned(late, "w2", {"last_error": "kept"}, keep_claim=True)
    assert await claims.claim("w3", SOON, 10, LEASE) == []  # still w2's
    assert await claims.owned(late, "w2", {})  # released, still pending: claimable again
    [again] = await claims.claim("w3", SOON, 10, LEASE)
    assert again.id == late
    assert await claims.retry_later(late, "w3", "HTTP 503", SOON, response_status=503) == "pending"
    [last] = await claims.claim("w3", SOON, 10, LEASE)
    assert await claims.retry_later(last.id, "w3", "HTTP 503", SOON) == "dead"  # max_attempts = 2
    assert await claims.retry_later(last.id, "w3", "HTTP 503", SOON) is None
    assert not await claims.owned(last.id, "w3", {})  # dead is not open
