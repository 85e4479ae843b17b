"""Workflow versions seen by this installation: a ticket pins the version it started on, so the
source text of every version ever loaded is kept (and never changed) to rebuild it later."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import select, tuple_

from store.db import Database, upsert
from store.errors import WorkflowVersionConflict
from store.tables import workflow_version

WorkflowSource = tuple[int, str, str]  # (workflow_id, version, source text)


async def record_versions(
    db: Database, sources: Iterable[WorkflowSource], *, now: datetime | None = None
) -> list[tuple[int, str]]:
    """Store the versions not seen before; returns their (workflow_id, version), in input order.

    Raises WorkflowVersionConflict (and stores nothing) when a version is already recorded with a
    different source text: a changed workflow needs a new version.
    """
    wanted: dict[tuple[int, str], str] = {}
    for workflow_id, version, source in sources:
        key = (workflow_id, version)
        if wanted.setdefault(key, source) != source:
            raise WorkflowVersionConflict(workflow_id, version)
    if not wanted:
        return []
    stamp = now if now is not None else datetime.now(UTC)
    c = workflow_version.c
    async with db.write() as conn:
        keys = list(wanted)
        result = await conn.execute(
            select(c.workflow_id, c.version, c.source).where(tuple_(c.workflow_id, c.version).in_(keys))
        )
        stored = {(r.workflow_id, r.version): r.source for r in result}
        for key, source in stored.items():
            if wanted[key] != source:
                raise WorkflowVersionConflict(*key)
        new = [key for key in keys if key not in stored]
        if new:
            stmt = upsert(db.dialect, workflow_version).on_conflict_do_nothing(
                index_elements=[c.workflow_id, c.version]
            )
            await conn.execute(
                stmt,
                [
                    {"workflow_id": w, "version": v, "source": wanted[(w, v)], "loaded_at": stamp}
                    for w, v in new
                ],
            )
    return new


async def load_versions(db: Database) -> list[WorkflowSource]:
    """Every recorded version, by workflow id, oldest first."""
    c = workflow_version.c
    async with db.read() as conn:
        result = await conn.execute(
            select(c.workflow_id, c.version, c.source).order_by(c.workflow_id, c.loaded_at, c.version)
        )
        return [(r.workflow_id, r.version, r.source) for r in result]
