"""Persistence: SQLModel tables, repositories implementing core's ports, Alembic migrations.

Modules: db (Database: engines + transactions), tables, tickets (SqlTicketStore), directory
(SqlDirectory, replace_org), workflows (workflow versions), queries (read-side lists), migrate
(upgrade / current_revision), errors (StoreError and subclasses).
"""

from __future__ import annotations

from store.db import Database
from store.directory import SqlDirectory, replace_org
from store.errors import StoreError
from store.tickets import SqlTicketStore

__all__ = ["Database", "SqlDirectory", "SqlTicketStore", "StoreError", "replace_org"]
