"""The shipped demo config loads and has the documented shape."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config.apps import APPS_FILE, load_apps
from config.loader import LoadedConfig, check_config, load_config
from config.org import load_org
from config.settings import PACKAGE_DIR
from config.workflows import load_workflow_file, load_workflows
from core.conditions import evaluate
from core.org import UserType
from core.workflow import (
    Attribute,
    Distribute,
    FieldAccess,
    FieldType,
    ParticipantType,
    RejectPolicy,
    StateType,
    Variable,
)

CONFIG = PACKAGE_DIR


@pytest.fixture(scope="module")
def cfg() -> LoadedConfig:
    return load_config(CONFIG, env={})


def test_counts(cfg: LoadedConfig) -> None:
    assert [w.id for w in cfg.workflows] == [1, 2, 3]
    assert len(cfg.org.users) == 14
    assert len(cfg.org.departments) == 6
    assert len(cfg.org.roles) == 3
    assert [a.name for a in cfg.apps] == ["demo"]


def test_check_config_summary() -> None:
    ok, text = check_config(CONFIG, env={})
    assert ok, text
    assert text == (
        "config OK: 3 workflows (请假申请: 5 states, 7 transitions; IT 权限申请: 7 states, 12 transitions; "
        "客服工单: 5 states, 7 transitions), 14 users, 6 departments, 3 roles, 1 API app"
    )


def test_org(cfg: LoadedConfig) -> None:
    org = cfg.org
    assert org.is_super_admin("admin")
    assert org.departments[1].name == "总部"
    assert {d.name for d in org.departments.values() if d.parent_id == 1} == {
        "技术部",
        "人事部",
        "运维部",
        "客服部",
        "财务部",
    }
    assert org.leader_of("liuyang") == "wangqiang"  # the 技术部 approver
    assert org.leader_of("wangqiang") == "lina"  # an approver's own ticket goes to the leader
    assert org.leader_of("zhaolei") == "zhangwei"  # a leader's own ticket goes up to the parent department
    assert org.users["chenjing"].type == UserType.WORKFLOW_ADMIN
    assert org.users["lina"].alias == "李娜"
    assert org.users["admin"].phone == "13800000000"
    for user in org.users.values():
        assert user.alias and user.email and user.phone and user.wecom_userid and user.dingtalk_staff_id
    assert {r.name for r in org.roles.values()} == {"HR专员", "运维值班", "客服主管"}


def test_ids_are_globally_unique(cfg: LoadedConfig) -> None:
    state_ids = [s.id for w in cfg.workflows for s in w.states]
    transition_ids = [t.id for w in cfg.workflows for t in w.transitions]
    assert len(state_ids) == len(set(state_ids))
    assert len(transition_ids) == len(set(transition_ids))
    for w in cfg.workflows:
        assert all(w.id * 100 < s.id < w.id * 100 + 50 for s in w.states)
        assert all(w.id * 100 + 50 < t.id < w.id * 100 + 100 for t in w.transitions)


def test_versions_are_file_hashes(cfg: LoadedConfig) -> None:
    import hashlib

    for w, name in zip(cfg.workflows, ("leave", "it_access", "cs_workorder"), strict=True):
        data = (CONFIG / "workflows" / f"{name}.yaml").read_bytes()
        assert w.version == hashlib.sha256(data).hexdigest()[:12]
        assert re.fullmatch(r"[0-9a-f]{12}", w.version)


def test_leave(cfg: LoadedConfig) -> None:
    wf = cfg.workflow(1)
    assert wf is not None
    assert wf.name == "请假申请"
    assert wf.start_state().id == 101
    assert wf.start_state().participant.value == Variable.CREATOR
    assert [s.type for s in wf.states] == [
        StateType.START,
        StateType.NORMAL,
        StateType.NORMAL,
        StateType.NORMAL,
        StateType.END,
    ]
    tl = wf.state(102)
    assert tl is not None and tl.participant.type == ParticipantType.VARIABLE
    assert tl.participant.value == "creator_tl" and tl.enable_retreat
    ceo = wf.state(103)
    assert (
        ceo is not None
        and ceo.participant.type == ParticipantType.PERSON
        and ceo.participant.value == "zhangwei"
    )
    hr = wf.state(104)
    assert hr is not None and hr.participant.type == ParticipantType.ROLE and hr.participant.value == "1"
    assert hr.distribute == Distribute.ACCEPT_FIRST
    agree = wf.transition(152)
    assert agree is not None and agree.destination_state_id == 104
    (cond,) = agree.conditions
    assert cond.target_state_id == 103
    assert evaluate(cond.expression, {"days": 5}) and not evaluate(cond.expression, {"days": 2})
    reject = wf.transition(153)
    assert reject is not None and reject.attribute == Attribute.REJECT and reject.destination_state_id == 101
    assert not reject.field_require_check
    timer = wf.transition(157)
    assert timer is not None and timer.timer_seconds == 7 * 86400
    leave_type = wf.field_def("leave_type")
    assert leave_type is not None and leave_type.type == FieldType.SELECT and leave_type.default == "annual"
    assert leave_type.choices["sick"] == "病假"
    days = wf.field_def("days")
    assert days is not None and days.default == 1 and days.type == FieldType.INT
    start = wf.start_state()
    assert start.fields["days"] == FieldAccess.REQUIRED and start.fields["proxy"] == FieldAccess.OPTIONAL
    assert wf.title_template == "{creator} 请假 {days} 天"
    assert wf.display_fields == ("leave_type", "start_date", "end_date", "days")
    assert wf.permissions.api_apps == frozenset({"demo"})
    filed = wf.transition(156)
    assert filed is not None and filed.cc[0].type == ParticipantType.FIELD and filed.cc[0].value == "proxy"


def test_it_access(cfg: LoadedConfig) -> None:
    wf = cfg.workflow(2)
    assert wf is not None
    countersign = wf.state(203)
    assert countersign is not None
    assert countersign.distribute == Distribute.ALL
    assert countersign.reject_policy == RejectPolicy.FIRST_REJECT
    assert countersign.participant.type == ParticipantType.PEOPLE
    assert countersign.participant.value == "lina,zhaolei"
    hook_state = wf.state(205)
    assert hook_state is not None and hook_state.participant.type == ParticipantType.HOOK
    hook = hook_state.participant.hook
    assert hook is not None
    assert hook.url == "http://127.0.0.1:9/hook" and hook.token == "demo-hook-token" and hook.wait
    approve = wf.transition(252)
    assert approve is not None
    assert evaluate(approve.conditions[0].expression, {"access_level": "admin"})
    assert not evaluate(approve.conditions[0].expression, {"access_level": "read"})
    back = wf.transition(257)
    assert back is not None and back.alert_enable and back.alert_text


def test_cs_workorder(cfg: LoadedConfig) -> None:
    wf = cfg.workflow(3)
    assert wf is not None
    desk = wf.state(302)
    assert desk is not None and desk.participant.type == ParticipantType.DEPARTMENT
    assert desk.participant.value == "5" and desk.distribute == Distribute.ACCEPT_FIRST
    tech = wf.state(303)
    assert tech is not None and tech.distribute == Distribute.DIRECT and tech.participant.value == "2"
    follow_up = wf.state(304)
    assert (
        follow_up is not None
        and follow_up.cc[0].type == ParticipantType.ROLE
        and follow_up.cc[0].value == "3"
    )
    escalate = wf.transition(353)
    assert escalate is not None and escalate.attribute == Attribute.OTHER and escalate.cc
    attachments = wf.field_def("attachments")
    assert attachments is not None and attachments.type == FieldType.ATTACHMENT


def test_demo_app(cfg: LoadedConfig) -> None:
    app = cfg.app("demo")
    assert app is not None
    assert app.token == "demo-token"
    assert app.workflow_ids is None
    assert "demo-token" not in repr(app)
    assert all(app.allows(w) for w in cfg.workflows)


def test_single_loaders_agree(cfg: LoadedConfig) -> None:
    org = load_org(CONFIG)
    assert org == cfg.org
    assert load_workflows(CONFIG, org, env={}) == cfg.workflows
    assert load_workflow_file(CONFIG / "workflows" / "leave.yaml", org) == cfg.workflows[0]
    assert load_apps(CONFIG, env={}) == cfg.apps
    assert (CONFIG / APPS_FILE).exists()


def test_readme_example_is_valid(tmp_path: Path) -> None:
    text = (CONFIG / "workflows" / "README.md").read_text(encoding="utf-8")
    example = text.split("```yaml\n")[-1].split("```")[0]
    path = tmp_path / "expense.yaml"
    path.write_text(example, encoding="utf-8")
    wf = load_workflow_file(path, load_org(CONFIG), env={})
    assert wf.id == 9 and len(wf.states) == 4
