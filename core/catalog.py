"""An in-memory workflow catalog: the current version of each workflow plus pinned older ones."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from core.workflow import Workflow


class Catalog:
    """Implements core.ports.WorkflowCatalog over workflows held in memory."""

    def __init__(self, current: Iterable[Workflow], older: Iterable[Workflow] = ()) -> None:
        self._current = {wf.id: wf for wf in current}
        self._versions = {(wf.id, wf.version): wf for wf in (*older, *self._current.values())}

    def get(self, workflow_id: int, version: str | None = None) -> Workflow | None:
        if version is None:
            return self._current.get(workflow_id)
        return self._versions.get((workflow_id, version))

    def all(self) -> Sequence[Workflow]:
        return tuple(sorted(self._current.values(), key=lambda w: w.id))
