"""The change an allowed action makes, as the store shows it afterwards (shared by the HTTP and
the chat matrices): `check_change(action, role, before, after, new_logs)`."""

from __future__ import annotations

from collections.abc import Sequence

from core.ticket import ActState, FlowLog, InterveneType, Ticket
from tests.matrix.scenario import END, HANDLER_OLD, HELPER, START, STATE_A

_KIND = {
    "approve": InterveneType.TRANSITION,
    "reject": InterveneType.TRANSITION,
    "accept": InterveneType.ACCEPT,
    "deliver": InterveneType.DELIVER,
    "force_deliver": InterveneType.DELIVER,
    "add_node": InterveneType.ADD_NODE,
    "retreat": InterveneType.RETREAT,
    "close": InterveneType.CLOSE,
    "force_state": InterveneType.ALTER_STATE,
    "comment": InterveneType.COMMENT,
    "update_fields": InterveneType.UPDATE_FIELDS,
    "delete": InterveneType.DELETE,
    "add_cc": InterveneType.CC,
    "reopen": InterveneType.REOPEN,
    "evaluate": InterveneType.EVALUATE,
}


def check_change(action: str, role: str, before: Ticket, after: Ticket, new_logs: Sequence[FlowLog]) -> None:
    """`action` (a table action of tests/matrix/expected.py) by `role` changed `before` into `after`,
    with one flow-log entry by `role` (a view or an urge: no change at all)."""
    if action in ("view", "urge"):
        assert after == before and not new_logs, "a read (or an urge) changes no ticket"
        return
    assert after.version == before.version + 1, (before, after)
    (log,) = new_logs
    assert (log.actor, log.intervene_type) == (role, _KIND[action]), log
    if action == "approve":
        assert (after.state_id, after.act_state) == (END, ActState.FINISHED), after
    elif action == "reject":
        assert (after.state_id, after.act_state) == (START, ActState.REJECTED), after
    elif action == "accept":
        assert (after.accepted_by, after.participants) == (role, (role,)), after
    elif action in ("deliver", "force_deliver"):
        assert (after.state_id, after.participants) == (before.state_id, (HELPER,)), after
    elif action == "add_node":
        assert (after.in_add_node, after.add_node_man, after.add_node_target) == (True, role, HELPER), after
    elif action == "retreat":
        assert (after.state_id, after.act_state) == (START, ActState.WITHDRAWN), after
    elif action == "close":
        assert (after.act_state, after.participants) == (ActState.CLOSED, ()), after
    elif action == "force_state":
        assert (after.state_id, after.participants) == (STATE_A, (HANDLER_OLD,)), after
    elif action == "comment":
        assert (after.state_id, after.participants, after.fields) == (
            before.state_id,
            before.participants,
            before.fields,
        ), after
    elif action == "update_fields":
        assert after.fields["note"] == f"edited by {role}", after
    elif action == "delete":
        assert after.is_deleted, after
    elif action == "add_cc":
        assert after.cc == before.cc | {HELPER}, after
    elif action == "reopen":
        assert (after.state_id, after.act_state, after.participants) == (
            STATE_A,
            ActState.ONGOING,
            (HANDLER_OLD,),
        ), after
    elif action == "evaluate":
        assert log.extra.get("point") == 4 and after.state_id == before.state_id, log
    else:  # pragma: no cover - every action of the table has its check above
        raise AssertionError(f"no check for {action}")
