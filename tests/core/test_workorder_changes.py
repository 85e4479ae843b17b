"""core.workorder_changes: which work_order_change statuses a committed change causes, with what
msg_data. Pure: the shipped 客服工单 (workflow 3) run through decide()."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from config.loader import LoadedConfig, load_config
from core import commands as c
from core.decide import decide
from core.decision import Context, Decision
from core.events import StateEntered, TicketEnded, TicketRetreated
from core.order_no import order_no
from core.ticket import ActState, FlowLog, InterveneType, Ticket
from core.workflow import ParticipantType, Workflow
from core.workorder_changes import (
    CLOSE,
    CREATE,
    REOPEN,
    REPLY,
    SWITCH,
    WorkOrderChange,
    changes_of,
    is_work_order,
    wecom_userid_of,
    with_staff_ids,
)

CONFIG = Path(__file__).resolve().parents[2] / "config"
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
TICKET_ID = 42
ORDER = order_no(TICKET_ID)
FIELDS = {"customer_name": "李先生", "category": "consult", "priority": "normal", "description": "打不开"}
STEP = {
    "pic": ["https://img.example.com/a.png"],
    "is_show": 1,
    "attached": [{"type": "video", "url": "https://v.example.com/b.mp4"}],
}
NO_STEP = {"content": {"text": "", "pic": []}, "is_show": 0, "attached_json": []}


@pytest.fixture(scope="module")
def config() -> LoadedConfig:
    return load_config(CONFIG, env={})


@pytest.fixture(scope="module")
def wf(config: LoadedConfig) -> Workflow:
    found = next(w for w in config.workflows if w.id == 3)
    assert is_work_order(found)
    return found


class Flow:
    """Runs commands on one work order, like the service would (id set, clock moving)."""

    def __init__(self, config: LoadedConfig, wf: Workflow) -> None:
        self.config, self.wf, self.now = config, wf, NOW
        self.ticket: Ticket | None = None

    def run(self, cmd: c.Command) -> tuple[WorkOrderChange, ...]:
        self.now += timedelta(minutes=1)
        out = decide(self.ticket, self.wf, cmd, Context(now=self.now, org=self.config.org))
        assert isinstance(out, Decision), out
        stored = replace(out.ticket, id=TICKET_ID, sn="loonflow_202611220001")
        self.ticket = stored
        return changes_of(stored, out.events, out.logs)

    def create(self) -> tuple[WorkOrderChange, ...]:
        return self.run(c.Create("liuyang", 3, 351, FIELDS))

    def at_follow_up(self) -> None:
        """Created, accepted by xuli and solved directly: waiting in 304 (客服回访) for liuyang."""
        self.create()
        assert self.run(c.Accept("xuli")) == ()
        self.run(c.Handle("xuli", 352, suggestion="已远程解决"))


@pytest.fixture
def flow(config: LoadedConfig, wf: Workflow) -> Flow:
    return Flow(config, wf)


# ------------------------------------------------------------------------------------ statuses


def test_create_names_the_order_and_its_creator(flow: Flow) -> None:
    assert flow.create() == (WorkOrderChange(CREATE, {"order_no": ORDER, "staff_id": "liuyang"}),)


def test_a_transition_is_a_switch_with_its_step(flow: Flow) -> None:
    flow.create()
    flow.run(c.Accept("xuli"))
    (change,) = flow.run(c.Handle("xuli", 352, suggestion="已远程解决", extra=STEP))
    assert change == WorkOrderChange(
        SWITCH,
        {
            "order_no": ORDER,
            "staff_id": "xuli",
            "staff_ext_id": "xuli",
            "handler_id": "liuyang",  # 304 客服回访 goes back to the creator
            "cc_list": ["wujuan"],  # 304's cc: role 客服主管
            "content": {"text": "已远程解决", "pic": ["https://img.example.com/a.png"]},
            "is_show": 1,
            "attached_json": [{"type": "video", "url": "https://v.example.com/b.mp4"}],
        },
    )


def test_deliver_and_force_state_are_switches(flow: Flow) -> None:
    flow.create()
    flow.run(c.Accept("xuli"))
    (delivered,) = flow.run(c.Deliver("xuli", "heping", "你来"))
    assert (delivered.status, delivered.msg_data["staff_id"], delivered.msg_data["handler_id"]) == (
        SWITCH,
        "xuli",
        "heping",
    )
    assert delivered.msg_data["content"] == {"text": "你来", "pic": []}
    (forced,) = flow.run(c.ForceState("admin", 303, "转技术"))
    assert (forced.status, forced.msg_data["staff_id"], forced.msg_data["cc_list"]) == (
        SWITCH,
        "admin",
        ["wujuan"],
    )


def test_a_retreat_is_a_switch_back_to_the_creator(flow: Flow) -> None:
    """The shipped 客服工单 allows no withdrawal: the mapping is fed what Retreat decides."""
    flow.create()
    assert flow.ticket is not None
    back = replace(flow.ticket, state_id=301, participants=("liuyang",), act_state=ActState.WITHDRAWN)
    log = FlowLog(
        TICKET_ID, 302, "liuyang", ParticipantType.VARIABLE, InterveneType.RETREAT, NOW, suggestion="先撤回"
    )
    events = (TicketRetreated("liuyang"), StateEntered(301, ("liuyang",)))
    (change,) = changes_of(back, events, (log,))
    assert change == WorkOrderChange(
        SWITCH,
        {
            "order_no": ORDER,
            "staff_id": "liuyang",
            "staff_ext_id": "liuyang",
            "handler_id": "liuyang",
            "cc_list": [],
            "content": {"text": "先撤回", "pic": []},
            "is_show": 0,
            "attached_json": [],
        },
    )


def test_reaching_the_end_is_a_close_only(flow: Flow) -> None:
    flow.at_follow_up()
    (change,) = flow.run(
        c.Handle("liuyang", 356, {"satisfaction": "satisfied"}, "谢谢", extra={"is_show": True})
    )
    assert change == WorkOrderChange(
        CLOSE,
        {
            "order_no": ORDER,
            "staff_id": "liuyang",
            "cc_list": [],
            "content": {"text": "谢谢", "pic": []},
            "is_show": 1,
            "attached_json": [],
        },
    )
    assert flow.ticket is not None and flow.ticket.act_state == ActState.FINISHED


def test_closing_and_forcing_into_the_end_state_are_closes(flow: Flow) -> None:
    flow.create()
    (closed,) = flow.run(c.Close("wujuan", "重复工单", extra={"pic": "https://img.example.com/c.png"}))
    assert closed == WorkOrderChange(
        CLOSE,
        {
            "order_no": ORDER,
            "staff_id": "wujuan",
            "cc_list": [],
            "content": {"text": "重复工单", "pic": ["https://img.example.com/c.png"]},
            "is_show": 0,
            "attached_json": [],
        },
    )
    other = Flow(flow.config, flow.wf)
    other.create()
    (forced,) = other.run(c.ForceState("admin", 305, "结单"))
    assert (forced.status, forced.msg_data["staff_id"]) == (CLOSE, "admin")


def test_reopen_and_reply(flow: Flow) -> None:
    flow.at_follow_up()
    flow.run(c.Handle("liuyang", 356, {"satisfaction": "neutral"}))
    (reopened,) = flow.run(c.Reopen("liuyang", "又坏了", extra=STEP))
    assert reopened == WorkOrderChange(
        REOPEN,
        {
            "order_no": ORDER,
            "staff_id": "liuyang",
            "cc_list": [],
            "content": {"text": "又坏了", "pic": ["https://img.example.com/a.png"]},
            "is_show": 1,
            "attached_json": [{"type": "video", "url": "https://v.example.com/b.mp4"}],
        },
    )
    (reply,) = flow.run(
        c.Comment("xuli", "正在看", extra={"is_show": 0, "attached": ["https://f.example.com/x.MOV?s=1"]})
    )
    assert reply == WorkOrderChange(
        REPLY,
        {
            "order_no": ORDER,
            "staff_id": "xuli",
            "content": {"text": "正在看", "pic": []},
            "is_show": 0,
            "attached_json": [{"type": "video", "url": "https://f.example.com/x.MOV?s=1"}],
        },
    )


def test_changes_that_are_no_webhook(flow: Flow) -> None:
    flow.create()
    assert flow.run(c.Accept("xuli")) == ()
    assert flow.run(c.UpdateFields("xuli", {"priority": "high"})) == ()
    assert flow.run(c.AddNode("xuli", "heping", "帮看下")) == ()
    flow.run(c.ForceState("admin", 305))
    assert flow.run(c.Evaluate("liuyang", 5, "好")) == ()
    assert flow.run(c.Delete("wujuan")) == ()


def test_a_create_that_ends_at_once_is_create_then_close(flow: Flow) -> None:
    """No shipped flow ends at its creation; the mapping is fed such a change."""
    created = decide(
        None, flow.wf, c.Create("liuyang", 3, 351, FIELDS), Context(now=NOW, org=flow.config.org)
    )
    assert isinstance(created, Decision)
    events = (*created.events, TicketEnded(int(ActState.FINISHED), 0, 0))
    changes = changes_of(replace(created.ticket, id=TICKET_ID), events, created.logs)
    assert changes == (
        WorkOrderChange(CREATE, {"order_no": ORDER, "staff_id": "liuyang"}),
        WorkOrderChange(CLOSE, {"order_no": ORDER, "staff_id": "liuyang", "cc_list": [], **NO_STEP}),
    )


def test_only_work_order_workflows_count(config: LoadedConfig) -> None:
    assert {w.id for w in config.workflows if is_work_order(w)} == {3}


# ------------------------------------------------------------------------------------ staff ids


def test_staff_ids_become_wecom_userids_where_known(config: LoadedConfig) -> None:
    data = {
        "order_no": ORDER,
        "staff_id": "xuli",
        "staff_ext_id": "xuli",
        "handler_id": "nobody-known",
        "cc_list": ["wujuan", "system", ""],
        "content": {"text": "xuli", "pic": []},
    }
    mapped = with_staff_ids(data, wecom_userid_of(config.org))
    assert mapped == {
        "order_no": ORDER,
        "staff_id": "XuLi",
        "staff_ext_id": "xuli",  # stays the ticketbot username
        "handler_id": "nobody-known",
        "cc_list": ["WuJuan", "system", ""],
        "content": {"text": "xuli", "pic": []},
    }
    assert data["staff_id"] == "xuli"  # not changed in place


def test_attachments_are_normalised() -> None:
    from core.workorder_changes import _attachments

    assert _attachments(
        [
            "https://x/a.png",
            "https://x/b.webm#t=1",
            {"type": "video", "url": "https://x/c"},
            {"type": "pdf", "url": "https://x/d.mp4"},
            {"url": ""},
            {"type": "image"},
            7,
        ]
    ) == [
        {"type": "image", "url": "https://x/a.png"},
        {"type": "video", "url": "https://x/b.webm#t=1"},
        {"type": "video", "url": "https://x/c"},
        {"type": "video", "url": "https://x/d.mp4"},
    ]
    assert _attachments("https://x/a.png") == []
