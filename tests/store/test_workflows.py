"""record_versions / load_versions on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from store.db import Database
from store.errors import WorkflowVersionConflict
from store.workflows import load_versions, record_versions


async def test_record_only_unseen_versions(db: Database) -> None:
    assert await record_versions(db, [(1, "1", "name: vpn"), (2, "1", "name: hr")]) == [(1, "1"), (2, "1")]
    assert await record_versions(db, [(1, "1", "name: vpn"), (1, "2", "name: vpn v2")]) == [(1, "2")]
    assert await record_versions(db, []) == []
    assert await load_versions(db) == [(1, "1", "name: vpn"), (1, "2", "name: vpn v2"), (2, "1", "name: hr")]


async def test_a_version_never_changes(db: Database) -> None:
    await record_versions(db, [(1, "1", "name: vpn")])
    with pytest.raises(WorkflowVersionConflict, match="workflow 1 version '1'"):
        await record_versions(db, [(3, "1", "new"), (1, "1", "name: changed")])
    with pytest.raises(WorkflowVersionConflict):
        await record_versions(db, [(4, "1", "a"), (4, "1", "b")])
    assert await load_versions(db) == [(1, "1", "name: vpn")]  # nothing of the failed calls
