"""Which ``work_order_change`` webhooks a committed ticket change causes, and what they say.

Pure: from the ticket as the change left it, the change's events and its flow-log entries, to the
statuses of shared/docs/workorder.md ("Change webhooks") with their ``msg_data``:

=========  ================================================  =============================================
status     caused by                                         msg_data
=========  ================================================  =============================================
create     TicketCreated                                     order_no, staff_id
switch     TicketTransitioned, TicketDelivered (转交),        order_no, staff_id, staff_ext_id, handler_id,
           StateForced, TicketRetreated (撤回), when the     cc_list, content, is_show, attached_json
           ticket does not end (流转)
close      TicketEnded: closed, or finished (an end state)   order_no, staff_id, cc_list, content, is_show,
                                                             attached_json
reopen     TicketReopened                                    order_no, staff_id, cc_list, content, is_show,
                                                             attached_json
reply      CommentAdded                                      order_no, staff_id, content, is_show,
                                                             attached_json
=========  ================================================  =============================================

A change causes at most one of create / reopen / switch, then reply (a comment), then close: a
create that ends the ticket at once gives "create" and "close"; a transition into an end state gives
"close" only (its step's text is the close's content). Accepting (接单), consulting (加签), votes
that do not move the ticket, field edits, ratings, hooks that fail and deletions cause nothing.

- ``order_no``: core.order_no of the ticket;
- ``staff_id``: who acted ("system" for timers, hooks and automatic moves); ``handler_id``: the
  first person who may act on the ticket now ("" when nobody may, e.g. a hook step); ``cc_list``:
  the people this change copies (抄送: the ``cc`` of the state entered and of the transition);
- ``content``: ``{"text": the step's comment, "pic": [urls]}``; ``is_show``: 1 if the customer may
  see it, else 0; ``attached_json``: ``[{"type": "image" | "video", "url": ...}]`` — from the
  flow-log entry of the step (its suggestion and ``extra``: ``pic``, ``is_show``, ``attached``).

Staff ids in the msg_data built here are ticketbot usernames. `with_staff_ids` turns them into
WeCom userids where the directory knows one, when the webhook is sent (the directory is not read
inside the ticket's transaction); ``staff_ext_id`` stays the ticketbot username of the actor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from core.events import (
    CcNotified,
    CommentAdded,
    Event,
    StateForced,
    TicketClosed,
    TicketCreated,
    TicketDelivered,
    TicketEnded,
    TicketReopened,
    TicketRetreated,
    TicketTransitioned,
)
from core.order_no import order_no
from core.org import Org
from core.ticket import FlowLog, InterveneType, Ticket
from core.workflow import Workflow

CREATE, SWITCH, CLOSE, REOPEN, REPLY = "create", "switch", "close", "reopen", "reply"
STATUSES = (CREATE, SWITCH, CLOSE, REOPEN, REPLY)
TEMPLATE_LABEL = "workorder_template_type"  # a workflow whose label has it serves work orders

STAFF_KEYS = ("staff_id", "handler_id")  # msg_data values that are one staff id
STAFF_LIST_KEYS = ("cc_list",)  # msg_data values that are lists of staff ids

_E = TypeVar("_E")
_VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".webm", ".mkv", ".3gp")
_ATTACHMENT_TYPES = ("image", "video")
_MOVES = (TicketTransitioned, TicketDelivered, StateForced, TicketRetreated)
_STEP_LOGS = frozenset(
    {
        InterveneType.TRANSITION,
        InterveneType.DELIVER,
        InterveneType.ALTER_STATE,
        InterveneType.RETREAT,
        InterveneType.HOOK,
        InterveneType.CLOSE,
    }
)


@dataclass(frozen=True, slots=True)
class WorkOrderChange:
    """One webhook status a change causes, with its msg_data (JSON-ready; staff ids are usernames)."""

    status: str
    msg_data: Mapping[str, Any]


def is_work_order(wf: Workflow) -> bool:
    """Whether tickets of `wf` are work orders (its label names a work-order template type)."""
    return TEMPLATE_LABEL in wf.label


def changes_of(
    ticket: Ticket, events: Sequence[Event], logs: Sequence[FlowLog]
) -> tuple[WorkOrderChange, ...]:
    """The work_order_change statuses a committed change causes, in the order they happened.
    `ticket` is the stored snapshot after the change (its id set)."""
    number = order_no(ticket.id)
    cc = _cc(events)
    created = _first(events, TicketCreated)
    reopened = _first(events, TicketReopened)
    comment = _first(events, CommentAdded)
    moved = next((e for e in events if isinstance(e, _MOVES)), None)
    ended = _first(events, TicketEnded)
    out: list[WorkOrderChange] = []
    if created is not None:
        out.append(WorkOrderChange(CREATE, {"order_no": number, "staff_id": created.actor}))
    elif reopened is not None:
        step = _step(_log(logs, {InterveneType.REOPEN}))
        out.append(
            WorkOrderChange(REOPEN, {"order_no": number, "staff_id": reopened.actor, "cc_list": cc, **step})
        )
    elif moved is not None and ended is None:
        handlers = ticket.handlers
        data = {
            "order_no": number,
            "staff_id": moved.actor,
            "staff_ext_id": moved.actor,
            "handler_id": handlers[0] if handlers else "",
            "cc_list": cc,
            **_step(_log(logs, _STEP_LOGS)),
        }
        out.append(WorkOrderChange(SWITCH, data))
    if comment is not None:
        step = _step(_log(logs, {InterveneType.COMMENT}))
        out.append(WorkOrderChange(REPLY, {"order_no": number, "staff_id": comment.actor, **step}))
    if ended is not None:
        closed = _first(events, TicketClosed)
        log = _log(logs, _STEP_LOGS)
        by = closed or moved or created or log
        actor = by.actor if by is not None else ""
        step = _step(log if created is None else None)  # a create's own step is not a closing remark
        out.append(WorkOrderChange(CLOSE, {"order_no": number, "staff_id": actor, "cc_list": cc, **step}))
    return tuple(out)


def with_staff_ids(msg_data: Mapping[str, Any], userid_of: Callable[[str], str]) -> dict[str, Any]:
    """`msg_data` with every staff id (staff_id, handler_id, cc_list) mapped by `userid_of`;
    ``staff_ext_id`` and everything else as it is."""
    out = dict(msg_data)
    for key in STAFF_KEYS:
        value = out.get(key)
        if isinstance(value, str) and value:
            out[key] = userid_of(value)
    for key in STAFF_LIST_KEYS:
        values = out.get(key)
        if isinstance(values, list | tuple):
            out[key] = [userid_of(v) if isinstance(v, str) and v else v for v in values]
    return out


def wecom_userid_of(org: Org) -> Callable[[str], str]:
    """username -> the person's WeCom userid where the directory knows one, else the username."""

    def userid_of(username: str) -> str:
        user = org.user(username)
        return user.wecom_userid if user is not None and user.wecom_userid else username

    return userid_of


# ----------------------------------------------------------------------------------- helpers


def _first(events: Sequence[Event], kind: type[_E]) -> _E | None:
    return next((e for e in events if isinstance(e, kind)), None)


def _cc(events: Sequence[Event]) -> list[str]:
    people: dict[str, None] = {}
    for e in events:
        if isinstance(e, CcNotified):
            people.update(dict.fromkeys(e.recipients))
    return list(people)


def _log(logs: Sequence[FlowLog], kinds: set[InterveneType] | frozenset[InterveneType]) -> FlowLog | None:
    return next((log for log in logs if log.intervene_type in kinds), None)


def _step(log: FlowLog | None) -> dict[str, Any]:
    """content, is_show and attached_json of a flow-log entry (empty ones when there is none)."""
    extra: Mapping[str, Any] = log.extra if log is not None else {}
    return {
        "content": {"text": log.suggestion if log is not None else "", "pic": _urls(extra.get("pic"))},
        "is_show": 1 if _truthy(extra.get("is_show")) else 0,
        "attached_json": _attachments(extra.get("attached")),
    }


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return isinstance(value, bool | int) and bool(value)


def _urls(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if not isinstance(value, list | tuple):
        return []
    return [v for v in value if isinstance(v, str) and v]


def _attachments(value: object) -> list[dict[str, str]]:
    """[{type, url}]: mappings with a url (type image or video; guessed from the url when missing
    or unknown), or bare url strings (type guessed)."""
    if not isinstance(value, list | tuple):
        return []
    out: list[dict[str, str]] = []
    for item in value:
        if isinstance(item, str) and item:
            out.append({"type": _guess(item), "url": item})
        elif isinstance(item, Mapping):
            url = item.get("url")
            if not isinstance(url, str) or not url:
                continue
            kind = item.get("type")
            out.append({"type": kind if kind in _ATTACHMENT_TYPES else _guess(url), "url": url})
    return out


def _guess(url: str) -> str:
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    return "video" if path.endswith(_VIDEO_SUFFIXES) else "image"
