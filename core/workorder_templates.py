"""Which workflows are work-order templates: those whose `label` carries `workorder_template_type`
(1 a regular flow, 2 an automated work order), e.g. config/workflows/cs_workorder.yaml."""

from __future__ import annotations

from collections.abc import Iterable

from core.workflow import Workflow

TEMPLATE_TYPE_LABEL = "workorder_template_type"


def is_work_order(wf: Workflow) -> bool:
    """The workflow is a work-order template (its tickets are work orders)."""
    value = wf.label.get(TEMPLATE_TYPE_LABEL)
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def work_order_templates(workflows: Iterable[Workflow]) -> list[Workflow]:
    """The work-order templates among `workflows`, by id."""
    return sorted((wf for wf in workflows if is_work_order(wf)), key=lambda wf: wf.id)
