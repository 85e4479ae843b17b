"""``button_operate``: what the viewer may do with the order now, from the engine's own rules
(core.access), so a button shown is a request the write endpoints accept:

- chat_record, preview_flow, share: the viewer may see the order (link chat records, see its flow,
  get a link to it);
- comment: a reply is possible (the viewer may see it);
- deliver: a switch (流转) is possible: the viewer may take a transition now, or hand the order to
  someone else (a current handler, or an admin / intervener forcing it);
- close: core.access.can_close (an admin or intervener, or the creator while it is at its start);
- reopen: core.access.can_reopen (it has ended; its creator or an intervener);
- evaluate: core.access.can_evaluate (it has ended; its creator);
- update: the viewer may edit component values now (core.access UPDATE_FIELDS).
"""

from __future__ import annotations

from core.access import ActionKind, allowed_actions, can_evaluate, can_reopen, can_view
from core.org import Org
from core.ticket import Ticket
from core.workflow import Workflow

BUTTONS = (
    "chat_record",
    "close",
    "comment",
    "deliver",
    "evaluate",
    "preview_flow",
    "reopen",
    "share",
    "update",
)
SWITCHES = frozenset({ActionKind.TRANSITION, ActionKind.DELIVER})


def button_operate(ticket: Ticket, wf: Workflow, org: Org, viewer: str) -> dict[str, bool]:
    visible = org.active(viewer) and not ticket.is_deleted and can_view(ticket, wf, org, viewer)
    kinds = {a.kind for a in allowed_actions(ticket, wf, org, viewer)}
    return {
        "chat_record": visible,
        "close": ActionKind.CLOSE in kinds,
        "comment": ActionKind.COMMENT in kinds,
        "deliver": bool(kinds & SWITCHES),
        "evaluate": visible and can_evaluate(ticket, viewer),
        "preview_flow": visible,
        "reopen": visible and can_reopen(ticket, wf, org, viewer),
        "share": visible,
        "update": ActionKind.UPDATE_FIELDS in kinds,
    }
