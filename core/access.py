"""Who may do what: the role predicates and allowed_actions(), the single source of the buttons a
person gets. decide() checks commands with the same predicates, so a button shown is a command
accepted, and a command refused is a button never shown."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.org import Org
from core.participants import must_accept
from core.ticket import ActState, Ticket
from core.workflow import ParticipantType, State, StateType, Workflow


class ActionKind(StrEnum):
    TRANSITION = "transition"
    ACCEPT = "accept"
    ADD_NODE_END = "add_node_end"
    DELIVER = "deliver"
    ADD_NODE = "add_node"
    RETREAT = "retreat"
    CLOSE = "close"
    FORCE_STATE = "force_state"
    COMMENT = "comment"
    UPDATE_FIELDS = "update_fields"
    DELETE = "delete"
    RETRY_HOOK = "retry_hook"


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    transition_id: int = 0
    name: str = ""
    attribute: int = 0
    field_require_check: bool = False
    alert_enable: bool = False
    alert_text: str = ""


def is_admin(wf: Workflow, org: Org, user: str) -> bool:
    """Super admin, or an active admin of this workflow."""
    return org.is_super_admin(user) or (user in wf.permissions.admins and org.active(user))


def can_intervene(wf: Workflow, org: Org, user: str) -> bool:
    return is_admin(wf, org, user) or (user in wf.permissions.interveners and org.active(user))


def can_view(ticket: Ticket, wf: Workflow, org: Org, user: str) -> bool:
    if ticket.is_deleted:
        return is_admin(wf, org, user)
    if can_intervene(wf, org, user) or user in wf.permissions.viewers:
        return True
    if not wf.view_permission_check:
        return org.active(user)
    return user == ticket.creator or user in ticket.relation or user in ticket.cc


def is_handler(ticket: Ticket, user: str) -> bool:
    return user in ticket.handlers


def needs_accept(ticket: Ticket, state: State) -> bool:
    return not ticket.in_add_node and must_accept(state, ticket.participants, ticket.accepted_by)


def can_handle(ticket: Ticket, state: State, user: str) -> bool:
    """A current handler of an active ticket, not in add-node or waiting for an accept."""
    return (
        not ticket.is_ended
        and not ticket.in_add_node
        and ticket.participant_type != ParticipantType.HOOK
        and is_handler(ticket, user)
        and not needs_accept(ticket, state)
    )


def can_retreat(ticket: Ticket, state: State, user: str) -> bool:
    return (
        user == ticket.creator
        and state.enable_retreat
        and state.type == StateType.NORMAL
        and ticket.act_state == ActState.ONGOING
        and not ticket.is_ended
    )


def can_close(ticket: Ticket, wf: Workflow, org: Org, state: State, user: str) -> bool:
    if ticket.is_ended:
        return False
    return can_intervene(wf, org, user) or (user == ticket.creator and state.type == StateType.START)


def can_update_fields(ticket: Ticket, wf: Workflow, org: Org, state: State, user: str) -> bool:
    if ticket.is_ended:
        return False
    return can_intervene(wf, org, user) or (can_handle(ticket, state, user) and bool(editable_fields(state)))


def editable_fields(state: State) -> frozenset[str]:
    from core.workflow import FieldAccess

    return frozenset(k for k, a in state.fields.items() if a in (FieldAccess.REQUIRED, FieldAccess.OPTIONAL))


def allowed_actions(ticket: Ticket, wf: Workflow, org: Org, viewer: str) -> tuple[Action, ...]:
    """Every action `viewer` may take on `ticket` now, in display order."""
    state = wf.state(ticket.state_id)
    if state is None or not org.active(viewer) or not can_view(ticket, wf, org, viewer):
        return ()
    actions: list[Action] = []
    if not ticket.is_ended:
        if ticket.in_add_node and viewer == ticket.add_node_target:
            actions.append(Action(ActionKind.ADD_NODE_END, name="完成"))
        elif needs_accept(ticket, state) and viewer in ticket.participants:
            actions.append(Action(ActionKind.ACCEPT, name="接单"))
        elif can_handle(ticket, state, viewer):
            for t in wf.transitions_from(state.id):
                actions.append(
                    Action(
                        ActionKind.TRANSITION,
                        transition_id=t.id,
                        name=t.name,
                        attribute=int(t.attribute),
                        field_require_check=t.field_require_check,
                        alert_enable=t.alert_enable,
                        alert_text=t.alert_text,
                    )
                )
            actions.append(Action(ActionKind.DELIVER, name="转交"))
            actions.append(Action(ActionKind.ADD_NODE, name="加签"))
        elif can_intervene(wf, org, viewer) and ticket.participant_type != ParticipantType.HOOK:
            actions.append(Action(ActionKind.DELIVER, name="强制转交"))
        if can_retreat(ticket, state, viewer):
            actions.append(Action(ActionKind.RETREAT, name="撤回"))
        if can_update_fields(ticket, wf, org, state, viewer):
            actions.append(Action(ActionKind.UPDATE_FIELDS, name="修改字段"))
        if ticket.participant_type == ParticipantType.HOOK and (
            can_intervene(wf, org, viewer) or viewer == ticket.creator
        ):
            actions.append(Action(ActionKind.RETRY_HOOK, name="重试"))
        if can_intervene(wf, org, viewer):
            actions.append(Action(ActionKind.FORCE_STATE, name="修改状态"))
        if can_close(ticket, wf, org, state, viewer):
            actions.append(Action(ActionKind.CLOSE, name="关闭"))
    if not ticket.is_deleted:
        actions.append(Action(ActionKind.COMMENT, name="评论"))
        if is_admin(wf, org, viewer):
            actions.append(Action(ActionKind.DELETE, name="删除"))
    return tuple(actions)


def can_reopen(ticket: Ticket, wf: Workflow, org: Org, user: str) -> bool:
    """An ended (finished or closed), undeleted ticket: its creator or an intervener."""
    if not ticket.is_ended or ticket.is_deleted:
        return False
    return (user == ticket.creator and org.active(user)) or can_intervene(wf, org, user)


def can_evaluate(ticket: Ticket, user: str) -> bool:
    """An ended, undeleted ticket: its creator rates how it was handled."""
    return ticket.is_ended and not ticket.is_deleted and user == ticket.creator
