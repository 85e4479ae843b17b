"""Small programmatic workflows and an org for pure engine tests (no YAML, no event loop)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from core.conditions import compile_expression
from core.decision import Context, Decision
from core.org import Department, Org, Role, User, UserType
from core.ticket import Ticket
from core.workflow import (
    Attribute,
    Condition,
    CustomField,
    Distribute,
    FieldAccess,
    FieldType,
    Hook,
    Participant,
    ParticipantType,
    Permissions,
    RejectPolicy,
    State,
    StateType,
    Transition,
    Workflow,
)

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

ORG = Org.build(
    users=[
        User("alice", "爱丽丝", dept_ids=(2,)),
        User("bob", "鲍勃", dept_ids=(2,)),
        User("carol", "卡罗尔", dept_ids=(2,)),
        User("ceo", "老板", dept_ids=(1,)),
        User("erin", "艾琳", dept_ids=(3,)),
        User("frank", "弗兰克", dept_ids=(3,)),
        User("gina", "吉娜", dept_ids=(3,)),
        User("admin", "管理员", type=UserType.SUPER_ADMIN),
        User("wfadmin", "流程管理员"),
        User("inter", "干预人"),
        User("viewer", "观察者"),
        User("stranger", "路人", dept_ids=(1,)),
        User("gone", "离职", dept_ids=(2,), is_active=False),
    ],
    departments=[
        Department(1, "总部", leader="ceo"),
        Department(2, "技术部", parent_id=1, leader="bob"),
        Department(3, "运维部", parent_id=1, leader="erin"),
    ],
    roles=[Role(1, "运维值班", ("erin", "frank", "gina"))],
)

FIELDS = (
    CustomField("days", "天数", FieldType.INT),
    CustomField("reason", "原因", FieldType.STRING),
    CustomField("handler", "处理人", FieldType.USER),
    CustomField("kind", "类型", FieldType.SELECT, choices={"annual": "年假", "sick": "病假"}),
)

START, TL, OPS, END = 1, 2, 3, 9
SUBMIT, SAVE, APPROVE, REJECT, DONE, OPS_REJECT = 10, 11, 20, 21, 30, 31


def state(sid: int, name: str, **kw: Any) -> State:
    return State(sid, name, **kw)


def workflow(
    *,
    tl: Participant | None = None,
    tl_distribute: Distribute = Distribute.DIRECT,
    tl_policy: RejectPolicy = RejectPolicy.FIRST_REJECT,
    tl_retreat: bool = True,
    ops: Participant | None = None,
    ops_distribute: Distribute = Distribute.ACCEPT_FIRST,
    approve_conditions: tuple[tuple[str, int], ...] = (),
    timer: int = 0,
) -> Workflow:
    """start -> TL (creator_tl) -> Ops (role 1, accept first) -> end; rejects go back to start."""
    known = frozenset({"days", "reason", "handler", "kind", "title", "creator"})
    conds = tuple(Condition(compile_expression(e, known), t) for e, t in approve_conditions)
    return Workflow(
        id=1,
        name="请假",
        version="v1",
        fields=FIELDS,
        states=(
            state(
                START,
                "发起人-新建中",
                type=StateType.START,
                fields={
                    "days": FieldAccess.REQUIRED,
                    "reason": FieldAccess.OPTIONAL,
                    "kind": FieldAccess.OPTIONAL,
                    "handler": FieldAccess.OPTIONAL,
                },
            ),
            state(
                TL,
                "领导审批",
                participant=tl or Participant(ParticipantType.VARIABLE, "creator_tl"),
                distribute=tl_distribute,
                reject_policy=tl_policy,
                enable_retreat=tl_retreat,
                fields={"days": FieldAccess.READ_ONLY, "reason": FieldAccess.OPTIONAL},
            ),
            state(
                OPS,
                "运维处理",
                participant=ops or Participant(ParticipantType.ROLE, "1"),
                distribute=ops_distribute,
                fields={"reason": FieldAccess.REQUIRED},
                wait_subtickets=True,
            ),
            state(END, "结束", type=StateType.END),
        ),
        transitions=(
            Transition(SUBMIT, "提交", START, TL),
            Transition(SAVE, "保存", START, START, field_require_check=False),
            Transition(APPROVE, "同意", TL, OPS, conditions=conds, timer_seconds=timer),
            Transition(REJECT, "拒绝", TL, START, attribute=Attribute.REJECT, field_require_check=False),
            Transition(DONE, "完成", OPS, END),
            Transition(OPS_REJECT, "退回", OPS, START, attribute=Attribute.REJECT, field_require_check=False),
        ),
        permissions=Permissions(
            admins=frozenset({"wfadmin"}), interveners=frozenset({"inter"}), viewers=frozenset({"viewer"})
        ),
    )


def hook_workflow(wait: bool = True) -> Workflow:
    wf = workflow()
    hook = Participant(ParticipantType.HOOK, "", Hook("http://127.0.0.1:9/hook", "t0k", wait=wait))
    states = tuple(replace(s, participant=hook) if s.id == OPS else s for s in wf.states)
    return replace(wf, states=states)


def ctx(**kw: Any) -> Context:
    kw.setdefault("now", NOW)
    kw.setdefault("org", ORG)
    return Context(**kw)


def stored(decision: Decision, ticket_id: int = 7, sn: str = "loonflow_202601050001") -> Ticket:
    """What the store would hand back: the decided snapshot with an id, SN and bumped version."""
    t = decision.ticket
    return replace(t, id=t.id or ticket_id, sn=t.sn or sn, version=t.version + 1)
