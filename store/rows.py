"""Mapping between table rows and core's immutable snapshots (Ticket, FlowLog)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from sqlalchemy.engine import RowMapping

from core.ticket import ActState, FlowLog, InterveneType, Ticket
from core.workflow import ParticipantType


def ticket_values(t: Ticket) -> dict[str, Any]:
    """Column values of a snapshot, JSON-ready (except datetimes, which the column type handles)."""
    return {
        "title": t.title,
        "workflow_id": t.workflow_id,
        "workflow_version": t.workflow_version,
        "state_id": t.state_id,
        "act_state": int(t.act_state),
        "creator": t.creator,
        "participant_type": int(t.participant_type),
        "participants": list(t.participants),
        "accepted_by": t.accepted_by,
        "in_add_node": t.in_add_node,
        "add_node_man": t.add_node_man,
        "add_node_target": t.add_node_target,
        "votes": {str(k): int(v) for k, v in t.votes.items()},
        "relation": sorted(t.relation),
        "cc": sorted(t.cc),
        "fields": dict(t.fields),
        "parent_ticket_id": t.parent_ticket_id,
        "parent_ticket_state_id": t.parent_ticket_state_id,
        "script_run_last_result": t.script_run_last_result,
        "state_entered_at": t.state_entered_at,
        "last_handlers": {str(k): v for k, v in t.last_handlers.items()},
        "is_deleted": t.is_deleted,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    }


def _mapping(value: Any) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def ticket_from_row(row: RowMapping) -> Ticket:
    return Ticket(
        id=int(row["id"]),
        sn=row["sn"],
        title=row["title"],
        workflow_id=row["workflow_id"],
        workflow_version=row["workflow_version"],
        state_id=row["state_id"],
        act_state=ActState(row["act_state"]),
        creator=row["creator"],
        participant_type=ParticipantType(row["participant_type"]),
        participants=tuple(row["participants"] or ()),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        fields=_mapping(row["fields"]),
        accepted_by=row["accepted_by"],
        in_add_node=bool(row["in_add_node"]),
        add_node_man=row["add_node_man"],
        add_node_target=row["add_node_target"],
        votes=MappingProxyType({str(k): int(v) for k, v in (row["votes"] or {}).items()}),
        relation=frozenset(row["relation"] or ()),
        cc=frozenset(row["cc"] or ()),
        parent_ticket_id=int(row["parent_ticket_id"]),
        parent_ticket_state_id=row["parent_ticket_state_id"],
        script_run_last_result=bool(row["script_run_last_result"]),
        state_entered_at=row["state_entered_at"],
        last_handlers=MappingProxyType({int(k): v for k, v in (row["last_handlers"] or {}).items()}),
        is_deleted=bool(row["is_deleted"]),
        version=row["version"],
    )


def log_values(log: FlowLog, ticket_id: int) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "state_id": log.state_id,
        "actor": log.actor,
        "actor_type": int(log.actor_type),
        "intervene_type": int(log.intervene_type),
        "transition_id": log.transition_id,
        "transition_name": log.transition_name,
        "attribute": log.attribute,
        "suggestion": log.suggestion,
        "fields": dict(log.fields),
        "created_at": log.created_at,
        "extra": dict(log.extra),
    }


def log_from_row(row: RowMapping) -> FlowLog:
    return FlowLog(
        id=int(row["id"]),
        ticket_id=int(row["ticket_id"]),
        state_id=row["state_id"],
        actor=row["actor"],
        actor_type=ParticipantType(row["actor_type"]),
        intervene_type=InterveneType(row["intervene_type"]),
        created_at=row["created_at"],
        transition_id=row["transition_id"],
        transition_name=row["transition_name"],
        attribute=row["attribute"],
        suggestion=row["suggestion"],
        fields=_mapping(row["fields"]),
        extra=_mapping(row.get("extra") or {}),
    )
