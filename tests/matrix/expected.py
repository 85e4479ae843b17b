"""What each role may do: the permission matrix's expectations, written by hand.

NOT computed from core/access.py (a table computed from the code under test could never fail).
Each row is read off the documented rules, named beside it:

- [L]  shared/docs/loonflow.md: per workflow "view, intervene (force state, deliver, close), admin";
       `view_permission_check` limits details to related users; users of type 2 are super admins.
- [R]  README.md, "The loonflow API / Authorisation": every request acts as its `username`; the
       engine checks that the person is a current handler (or admin / intervener where the action
       allows it); ticket reads need view permission (creator, anyone involved, CC, workflow
       viewers, admins, interveners). "Urges ... send the pending card again"; "DELETE (admin)".
- [W]  docs/workorder-api.md, "Writes on an order" and "button_operate": switch = a current handler
       (an admin or intervener may force a hand-over); accept = one of the people of an
       accept-first step; reply = anyone who may see it; close = an admin or intervener, or the
       creator while it is at its first step; reopen = an ended order's creator or an intervener;
       evaluate = an ended order's creator; cc = its creator, a current handler, someone it
       involved other than as a copy, an admin / intervener.
- [Y]  config/workflows/README.md: `enable_retreat` = the creator may withdraw while it is here;
       super admins have every right; `admins` / `interveners` of the workflow.

Doubts (the table keeps to what the product says; these are listed for its owner):
- update_fields by an intervener: [W] names "an admin", [L] lists intervene as "force state,
  deliver, close"; only [R]'s "admin / intervener where the action allows it" covers it. Kept as
  allowed (what the engine does), not a rule the documents spell out.
- urge by handler_now (urging oneself) and by anyone who may merely see the ticket: no document
  limits who urges, so whoever may read the ticket may.
- leader: the creator's department leader sees nothing of the ticket (not related to it); leaders
  only learn of tickets through SLA escalations, which copy them.

The tickets (tests/matrix/scenario.py): most actions are tried on a ticket that waits in 复核
(state B, editable 备注, withdraw enabled) for handler_now, after the creator submitted it (copying
cc_person) and handler_old approved 初审; `accept` on one waiting in 受理 for handler_now or helper
to accept; `reopen` / `evaluate` on one that has finished. Requests that need a person hand over to,
consult or copy `helper` (no role of the matrix).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

ROLES: tuple[str, ...] = (
    "creator",
    "handler_now",
    "handler_old",
    "cc_person",
    "leader",
    "wf_admin",
    "intervener",
    "super_admin",
    "stranger",
)

# Y: allowed, -: refused. Columns in the order of ROLES:
#   cre = creator, now = handler_now, old = handler_old, cc = cc_person, lead = leader,
#   wfa = wf_admin, int = intervener, sup = super_admin, str = stranger.
GRID = """
action         cre now old cc  lead wfa int sup str   rule
view            Y   Y   Y   Y   -    Y   Y   Y   -    [L][R] related users, admins, interveners (the leader is not related)
approve         -   Y   -   -   -    -   -   -   -    [R][W] a current handler only
reject          -   Y   -   -   -    -   -   -   -    [R][W] a current handler only
accept          -   Y   -   -   -    -   -   -   -    [W] one of the people of the accept-first step
deliver         -   Y   -   -   -    -   -   -   -    [R] 转交 by a current handler
force_deliver   -   -   -   -   -    Y   Y   Y   -    [L][W] an admin or intervener forces the hand-over
add_node        -   Y   -   -   -    -   -   -   -    [R] 加签 by a current handler
retreat         Y   -   -   -   -    -   -   -   -    [Y] the creator, where enable_retreat
close           -   -   -   -   -    Y   Y   Y   -    [L][W] admins / interveners (the creator only at the first step)
force_state     -   -   -   -   -    Y   Y   Y   -    [L] intervene: force state
comment         Y   Y   Y   Y   -    Y   Y   Y   -    [W] anyone who may see it
update_fields   -   Y   -   -   -    Y   Y   Y   -    [W] a handler of a step with editable fields, an admin; interveners too (a doubt, see above)
delete          -   -   -   -   -    Y   -   Y   -    [R] admin only; an intervener is no admin [L]
urge            Y   Y   Y   Y   -    Y   Y   Y   -    [R] a read of the ticket: whoever may see it
add_cc          Y   Y   Y   -   -    Y   Y   Y   -    [W] creator, handler, involved other than as a copy, admin / intervener
reopen          Y   -   -   -   -    Y   Y   Y   -    [W] an ended order's creator or an intervener
evaluate        Y   -   -   -   -    -   -   -   -    [W] an ended order's creator
"""


def _parse(grid: str) -> Mapping[str, frozenset[str]]:
    """action -> the roles allowed it, from GRID (checked: one mark per role, Y or -)."""
    rows = [line.split() for line in grid.strip().splitlines()]
    header, body = rows[0], rows[1:]
    assert header[1 : 1 + len(ROLES)] == ["cre", "now", "old", "cc", "lead", "wfa", "int", "sup", "str"]
    table: dict[str, frozenset[str]] = {}
    for row in body:
        action, marks = row[0], row[1 : 1 + len(ROLES)]
        assert all(m in ("Y", "-") for m in marks), row
        assert action not in table, action
        table[action] = frozenset(r for r, m in zip(ROLES, marks, strict=True) if m == "Y")
    return MappingProxyType(table)


ALLOWED_ROLES: Mapping[str, frozenset[str]] = _parse(GRID)
ACTIONS: tuple[str, ...] = tuple(ALLOWED_ROLES)
VIEWERS: frozenset[str] = ALLOWED_ROLES["view"]  # who sees every scenario ticket

# role -> the actions allowed to it (the same table, read the other way)
ALLOWED: Mapping[str, frozenset[str]] = MappingProxyType(
    {role: frozenset(a for a, roles in ALLOWED_ROLES.items() if role in roles) for role in ROLES}
)

# Which scenario ticket an action is tried on (scenario.Scenario.build); the rest: "at_b".
TICKET_OF: Mapping[str, str] = MappingProxyType({"accept": "accept", "reopen": "ended", "evaluate": "ended"})


def ticket_of(action: str) -> str:
    return TICKET_OF.get(action, "at_b")


# ------------------------------------------------------------------------------ the surfaces
# Each surface's action -> the table's actions it is (allowed when any of them is allowed to the role).

LOONFLOW: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "view": ("view",),  # GET /tickets/{id}
        "flowlogs": ("view",),  # GET /tickets/{id}/flowlogs
        "flowsteps": ("view",),  # GET /tickets/{id}/flowsteps
        "participant_info": ("view",),  # GET /tickets/{id}/participant_info
        "deliveries": ("view",),  # GET /tickets/{id}/deliveries (ticketbot's extension)
        "list": ("view",),  # GET /tickets?category=all: listed only for who may see it
        "approve": ("approve",),  # PATCH /tickets/{id} {transition_id: 同意}
        "reject": ("reject",),  # PATCH /tickets/{id} {transition_id: 驳回}
        "accept": ("accept",),  # POST /accept
        "deliver": ("deliver",),  # POST /deliver {target_username}
        "force_deliver": ("force_deliver",),  # POST /deliver {target_username, from_admin: true}
        "add_node": ("add_node",),  # POST /add_node {target_username}
        "retreat": ("retreat",),  # POST /retreat
        "close": ("close",),  # POST /close
        "force_state": ("force_state",),  # PUT /state {state_id}
        "comment": ("comment",),  # POST /comments
        "update_fields": ("update_fields",),  # PATCH /fields
        "delete": ("delete",),  # DELETE /tickets/{id}
        "urge": ("urge",),  # POST /urge (ticketbot's extension)
    }
)
# (no reopen, evaluate or add-CC route in the loonflow dialect)

WORKORDER: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "view": ("view",),  # GET detail
        "list": ("view",),  # GET list: listed only for who may see it
        "share": ("view",),  # POST share: a link to the order for oneself
        "approve": ("approve",),  # switch {transition_id: 同意}
        "reject": ("reject",),  # switch {transition_id: 驳回}
        "accept": ("accept",),  # accept
        "deliver": ("deliver", "force_deliver"),  # switch {handler_id}: forced for an admin / intervener
        "comment": ("comment",),  # reply
        "close": ("close",),  # close
        "reopen": ("reopen",),  # reopen
        "evaluate": ("evaluate",),  # evaluate
        "add_cc": ("add_cc",),  # cc
    }
)
# (no consult, withdraw, force-state, field-edit, delete or urge endpoint in the open API)

CHAT_COMMANDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "show": ("view",),  # 查看 N
        "urge": ("urge",),  # 催办 N
        "comment": ("comment",),  # 评论 N text
        "withdraw": ("retreat",),  # 撤回 N
        "approve": ("approve",),  # 同意 N
        "reject": ("reject",),  # 驳回 N
    }
)

# Card buttons: the clicker presses a button of handler_now's card (of the ticket that waits in
# 复核, or in 受理 for accept); nobody else has that card, so a click by anyone else is a click by
# someone the card was not sent to. Hand-over (转交) and consultation (加签) need a person to name,
# so README.md ("its buttons are exactly the one-click decisions ...: approve / reject / other
# transitions, 接单 in accept-first states, 完成 for a consult") never puts them on a card: a
# button payload made up for them is refused for everyone, handler_now included.
CHAT_CLICKS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "approve": ("approve",),
        "reject": ("reject",),
        "accept": ("accept",),
        "transfer": (),
        "consult": (),
    }
)

SURFACES: Mapping[str, Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {"loonflow": LOONFLOW, "workorder": WORKORDER, "command": CHAT_COMMANDS, "click": CHAT_CLICKS}
)


def allowed(surface: str, action: str, role: str) -> bool:
    """Whether `role` may do the surface's `action` on the scenario's ticket."""
    return any(role in ALLOWED_ROLES[a] for a in SURFACES[surface][action])


def table_action(surface: str, action: str) -> str:
    """The table action a surface's action is tried as (its ticket: ticket_of())."""
    mapped = SURFACES[surface][action]
    return mapped[0] if mapped else action


def cells(surface: str) -> list[tuple[str, str, bool]]:
    """(action, role, allowed) for every role and every action of `surface`."""
    return [(action, role, allowed(surface, action, role)) for action in SURFACES[surface] for role in ROLES]


assert set(ACTIONS) == {
    "view",
    "approve",
    "reject",
    "accept",
    "deliver",
    "force_deliver",
    "add_node",
    "retreat",
    "close",
    "force_state",
    "comment",
    "update_fields",
    "delete",
    "urge",
    "add_cc",
    "reopen",
    "evaluate",
}
assert all(a in ALLOWED_ROLES for s in SURFACES.values() for m in s.values() for a in m)
