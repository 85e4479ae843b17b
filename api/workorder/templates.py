"""Work-order templates: the workflows whose ``label`` has ``workorder_template_type`` (1 a
regular flow 常规流程, 2 an automated work order 自动化工单); template_id is the workflow id.

A template's stages (``template_stage``) are its states after the first (start) one, by
(order_id, id): the normal steps and then the end. An order's ``template_step`` is the 1-based
position of its current state among them (0 while it is back at its start state) and its
``stage_name`` that state's name."""

from __future__ import annotations

from typing import Any

from core.ticket import Ticket
from core.workflow import State, StateType, Workflow

TEMPLATE_LABEL = "workorder_template_type"
REGULAR, AUTOMATED = 1, 2
TEMPLATE_TYPES = (REGULAR, AUTOMATED)
TEMPLATE_TYPE_NAMES = {REGULAR: "常规流程", AUTOMATED: "自动化工单"}
ENABLED = 1  # a template's status: every loaded template is in use


def template_type(wf: Workflow) -> int | None:
    """The template type of `wf`, or None when its tickets are not work orders."""
    value = wf.label.get(TEMPLATE_LABEL)
    if isinstance(value, int) and not isinstance(value, bool) and value in TEMPLATE_TYPES:
        return value
    return None


def is_template(wf: Workflow) -> bool:
    return template_type(wf) is not None


def stages(wf: Workflow) -> list[State]:
    return sorted((s for s in wf.states if s.type != StateType.START), key=lambda s: (s.order_id, s.id))


def step_of(ticket: Ticket, wf: Workflow) -> tuple[int, str]:
    """(template_step, stage_name) of the order now."""
    for index, state in enumerate(stages(wf), start=1):
        if state.id == ticket.state_id:
            return index, state.name
    current = wf.state(ticket.state_id)
    return 0, current.name if current is not None else ""


def stage_list(wf: Workflow) -> list[dict[str, Any]]:
    return [
        {"step": index, "stage_name": s.name, "state_id": s.id, "is_end": s.type == StateType.END}
        for index, s in enumerate(stages(wf), start=1)
    ]
