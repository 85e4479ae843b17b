"""The store's error base class and the few errors callers may want to tell apart."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error raised by the persistence layer."""


class DatabaseError(StoreError):
    """The database refused or failed a statement (wraps the SQLAlchemy / driver error)."""


class IntegrityViolation(DatabaseError):
    """A unique, foreign-key or not-null constraint was violated."""


class MigrationError(StoreError):
    """Applying or inspecting schema migrations failed."""


class WorkflowVersionConflict(StoreError):
    """A workflow version is already recorded with different source text (versions are immutable)."""

    def __init__(self, workflow_id: int, version: str) -> None:
        super().__init__(
            f"workflow {workflow_id} version {version!r} is already recorded with different source; "
            "bump the version when a workflow changes"
        )
        self.workflow_id = workflow_id
        self.version = version
