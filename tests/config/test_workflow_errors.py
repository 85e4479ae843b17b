"""Broken workflow files: each produces a located error (file: path: what is wrong)."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError
from config.workflows import load_workflow_file, load_workflows
from core.org import Department, Org, Role, User
from core.workflow import ParticipantType

ORG = Org.build(
    [
        User("alice", "爱丽丝", dept_ids=(1,)),
        User("bob", "鲍勃", dept_ids=(1,)),
    ],
    [Department(1, "技术部", leader="bob")],
    [Role(1, "运维值班", ("alice",))],
)

FIELDS = """\
  - {key: days, name: 天数, type: int}
  - {key: kind, name: 类型, type: select, choices: {a: 甲, b: 乙}}
  - {key: owner, name: 负责人, type: user}
"""
STATES = """\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批, participant: {type: person, value: alice}}
  - {id: 3, name: 结束, type: end}
"""
TRANSITIONS = """\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 12, name: 同意, from: 2, to: 3}
"""


def workflow(
    *,
    head: str = "id: 7\nname: 测试\n",
    fields: str = FIELDS,
    states: str = STATES,
    transitions: str = TRANSITIONS,
) -> str:
    return f"{head}fields:\n{fields}states:\n{states}transitions:\n{transitions}"


def errors_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_workflow_file(path, ORG, env=env or {})
    return info.value.errors


def test_the_base_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(workflow(), encoding="utf-8")
    wf = load_workflow_file(path, ORG, env={})
    assert wf.id == 7 and len(wf.states) == 3 and len(wf.transitions) == 2


CASES: list[tuple[str, str, str]] = [
    # (test id, yaml text, expected error text)
    (
        "syntax error with line",
        "id: 7\nname: [unclosed\nstates: []\n",
        "bad.yaml: line 3, column 7: YAML syntax error: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence started at line 2)",
    ),
    (
        "duplicate yaml key",
        workflow(head="id: 7\nname: 测试\nname: again\n"),
        "bad.yaml: line 3: duplicate key 'name'",
    ),
    ("empty file", "", "bad.yaml: the file is empty"),
    ("top level not a mapping", "- 1\n- 2\n", "bad.yaml: expected a mapping, got a list"),
    ("missing name", workflow(head="id: 7\n"), "bad.yaml: name: required key is missing"),
    ("missing id", workflow(head="name: x\n"), "bad.yaml: id: required key is missing"),
    (
        "unknown top-level key with suggestion",
        workflow(head="id: 7\nname: 测试\ndescripton: x\n"),
        "bad.yaml: descripton: unknown key (did you mean 'description'?)",
    ),
    (
        "unknown state key with suggestion",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批, distrbute: all, participant: {type: person, value: alice}}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].distrbute: unknown key (did you mean 'distribute'?)",
    ),
    (
        "workflow id type",
        workflow(head="id: seven\nname: 测试\n"),
        "bad.yaml: id: expected an integer, got string 'seven'",
    ),
    (
        "bool type",
        workflow(head="id: 7\nname: 测试\nview_permission_check: maybe\n"),
        "bad.yaml: view_permission_check: expected true or false, got string 'maybe'",
    ),
    (
        "unknown transition target",
        workflow(
            transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 12, name: 同意, from: 2, to: 99}
"""
        ),
        "bad.yaml: transitions[1].to: unknown state id 99 (known: 1, 2, 3)",
    ),
    (
        "unknown transition source",
        workflow(
            transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 12, name: 同意, from: 2, to: 3}
  - {id: 13, name: 其他, from: 42, to: 3}
"""
        ),
        "bad.yaml: transitions[2].from: unknown state id 42 (known: 1, 2, 3)",
    ),
    (
        "duplicate state id",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批}
  - {id: 2, name: 复核}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[2].id: duplicate state id 2 (also states[1])",
    ),
    (
        "duplicate transition id",
        workflow(
            transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 11, name: 同意, from: 2, to: 3}
"""
        ),
        "bad.yaml: transitions[1].id: duplicate transition id 11 (also transitions[0])",
    ),
    (
        "no start state",
        workflow(
            states="""\
  - {id: 1, name: 新建}
  - {id: 2, name: 审批}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states: no start state (exactly one state needs type: start)",
    ),
    (
        "two start states",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批, type: 1}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].type: a second start state; state 1 (新建) (states[0]) is already the start",
    ),
    (
        "no end state",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批}
  - {id: 3, name: 结束}
""",
            transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 12, name: 同意, from: 2, to: 3}
  - {id: 13, name: 重开, from: 3, to: 1}
""",
        ),
        "bad.yaml: states: no end state (at least one state needs type: end)",
    ),
    (
        "unknown state type",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: strat}
  - {id: 2, name: 审批}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[0].type: unknown state type 'strat' (did you mean 'start'?); known: start, normal, end",
    ),
    (
        "end state with outgoing transition",
        workflow(
            transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 12, name: 同意, from: 2, to: 3}
  - {id: 13, name: 重开, from: 3, to: 1}
"""
        ),
        "bad.yaml: transitions[2].from: state 3 (结束) is an end state; end states have no outgoing transitions",
    ),
    (
        "state without outgoing transition",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批}
  - {id: 4, name: 复核}
  - {id: 3, name: 结束, type: end}
""",
            transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 12, name: 同意, from: 2, to: 3}
  - {id: 13, name: 复核, from: 2, to: 4}
""",
        ),
        "bad.yaml: states[2]: state 4 (复核) has no outgoing transition",
    ),
    (
        "unreachable state",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批}
  - {id: 4, name: 孤岛}
  - {id: 3, name: 结束, type: end}
""",
            transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 12, name: 同意, from: 2, to: 3}
  - {id: 13, name: 离开, from: 4, to: 3}
""",
        ),
        "bad.yaml: states[2]: state 4 (孤岛) is not reachable from the start state 1",
    ),
    (
        "loop without an end",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批}
  - {id: 4, name: 循环}
  - {id: 3, name: 结束, type: end}
""",
            transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 12, name: 同意, from: 2, to: 3}
  - {id: 13, name: 进入循环, from: 2, to: 4}
  - {id: 14, name: 再来, from: 4, to: 4}
""",
        ),
        "bad.yaml: states[2]: state 4 (循环) has no path to an end state",
    ),
    (
        "duplicate transition name from one state",
        workflow(
            transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 12, name: 同意, from: 2, to: 3}
  - {id: 13, name: 同意, from: 2, to: 1}
"""
        ),
        "bad.yaml: transitions[2].name: state 2 (审批) already has a transition named '同意' (transitions[1])",
    ),
    (
        "state field not declared",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start, fields: {dayz: required}}
  - {id: 2, name: 审批}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[0].fields.dayz: unknown field (did you mean 'days'?); "
        "declared fields: days, kind, owner (built-in: title)",
    ),
    (
        "bad field access",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start, fields: {days: mandatory}}
  - {id: 2, name: 审批}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[0].fields.days: unknown field access 'mandatory'; known: read_only, required, optional",
    ),
    (
        "condition does not compile",
        workflow(
            transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 12, name: 同意, from: 2, to: 3, conditions: [{expression: "{days} >", to: 1}]}
"""
        ),
        "bad.yaml: transitions[1].conditions[0].expression: condition '{days} >' is not a valid expression",
    ),
    (
        "condition names an unknown field",
        workflow(
            transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 12, name: 同意, from: 2, to: 3, conditions: [{expression: "{amount} > 3", to: 1}]}
"""
        ),
        "bad.yaml: transitions[1].conditions[0].expression: ",
    ),
    (
        "condition with a call is refused",
        workflow(
            transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 12, name: 同意, from: 2, to: 3, conditions: [{expression: "__import__('os')", to: 1}]}
"""
        ),
        "bad.yaml: transitions[1].conditions[0].expression: ",
    ),
    (
        "condition target unknown",
        workflow(
            transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 12, name: 同意, from: 2, to: 3, conditions: [{expression: "{days} > 3", to: 77}]}
"""
        ),
        "bad.yaml: transitions[1].conditions[0].to: unknown state id 77 (known: 1, 2, 3)",
    ),
    (
        "script participant refused",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批, participant: {type: script, value: run.py}}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].participant.type: script participants run server-side code; use a hook instead",
    ),
    (
        "script participant refused by loonflow id",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批, participant: {type: 6, value: run.py}}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].participant.type: script participants run server-side code; use a hook instead",
    ),
    (
        "unknown participant type",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批, participant: {type: persn, value: alice}}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].participant.type: unknown participant type 'persn' (did you mean 'person'?)",
    ),
    (
        "unknown user",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批, participant: {type: person, value: alicia}}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].participant.value: unknown user 'alicia' (did you mean 'alice'?)",
    ),
    (
        "unknown user among people",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批, participant: {type: people, value: [alice, carol]}, distribute: all}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].participant.value[1]: unknown user 'carol'",
    ),
    (
        "unknown department",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批, participant: {type: department, value: 9}}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].participant.value: unknown department 9 (known: 1 (技术部))",
    ),
    (
        "unknown role",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批, participant: {type: role, value: [1, 5]}}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].participant.value[1]: unknown role 5 (known: 1 (运维值班))",
    ),
    (
        "unknown variable",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批, participant: {type: variable, value: creator_leader}}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].participant.value: unknown variable 'creator_leader'",
    ),
    (
        "participant field not declared",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批, participant: {type: field, value: ownr}}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].participant.value: unknown field 'ownr' (did you mean 'owner'?); known: days, kind, owner",
    ),
    (
        "participant field of the wrong type",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批, participant: {type: field, value: days}}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].participant.value: field 'days' has type int; a participant field holds usernames",
    ),
    (
        "parent_field needs a value",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批, participant: {type: parent_field}}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].participant.value: required for a participant of type parent_field",
    ),
    (
        "hook without token",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 授权, participant: {type: hook, hook: {url: "http://127.0.0.1:9/hook"}}}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].participant.hook.token: required key is missing",
    ),
    (
        "hook without url",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 授权, participant: {type: hook, hook: {token: t}}}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].participant.hook.url: required key is missing",
    ),
    (
        "hook without hook",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 授权, participant: {type: hook, value: "http://x"}}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].participant.hook: required for a hook participant",
    ),
    (
        "hook token env var missing",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 授权, participant: {type: hook, hook: {url: "http://h/x", token: "${NOPE_TOKEN}"}}}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].participant.hook.token: environment variable NOPE_TOKEN is not set",
    ),
    (
        "cc cannot be a hook",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批, cc: [{type: hook, hook: {url: "http://h", token: t}}]}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].cc[0].type: a CC list cannot use participant type hook",
    ),
    (
        "reject policy without distribute all",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批, reject_policy: after_all}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].reject_policy: only applies to states with distribute: all",
    ),
    (
        "unknown distribute id",
        workflow(
            states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批, distribute: 7}
  - {id: 3, name: 结束, type: end}
"""
        ),
        "bad.yaml: states[1].distribute: unknown distribute type id 7; known: 1 (accept_first), 2 (direct)",
    ),
    (
        "choices required for a select",
        workflow(fields="  - {key: kind, name: 类型, type: select}\n"),
        "bad.yaml: fields[0].choices: required for a select field",
    ),
    (
        "choices on a non-choice field",
        workflow(fields="  - {key: days, name: 天数, type: int, choices: {a: b}}\n"),
        "bad.yaml: fields[0].choices: only radio, checkbox, select and multi_select fields have choices, not int",
    ),
    (
        "unknown field type",
        workflow(fields="  - {key: days, name: 天数, type: integer}\n"),
        "bad.yaml: fields[0].type: unknown field type 'integer' (did you mean 'int'?)",
    ),
    (
        "unknown field type id",
        workflow(fields="  - {key: days, name: 天数, type: 11}\n"),
        "bad.yaml: fields[0].type: unknown field type id 11",
    ),
    (
        "duplicate field key",
        workflow(
            fields="  - {key: days, name: 天数, type: int}\n  - {key: days, name: 又是天数, type: int}\n"
        ),
        "bad.yaml: fields[1].key: duplicate field key 'days' (also fields[0])",
    ),
    (
        "reserved field key",
        workflow(fields="  - {key: title, name: 标题, type: string}\n"),
        "bad.yaml: fields[0].key: 'title' is reserved for a ticket attribute",
    ),
    (
        "invalid field key",
        workflow(fields="  - {key: 2days, name: 天数, type: int}\n"),
        "bad.yaml: fields[0].key: '2days' is not a valid field key",
    ),
    (
        "default does not coerce",
        workflow(fields="  - {key: days, name: 天数, type: int, default: many}\n"),
        "bad.yaml: fields[0].default: ",
    ),
    (
        "default not among choices",
        workflow(fields="  - {key: kind, name: 类型, type: select, choices: {a: 甲}, default: z}\n"),
        "bad.yaml: fields[0].default: ",
    ),
    (
        "bad timer",
        workflow(
            transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 12, name: 同意, from: 2, to: 3, timer: soon}
"""
        ),
        "bad.yaml: transitions[1].timer: expected seconds or a duration like '30m', '2h', '1d', got string 'soon'",
    ),
    (
        "alert without text",
        workflow(
            transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 12, name: 同意, from: 2, to: 3, alert_enable: true}
"""
        ),
        "bad.yaml: transitions[1].alert_text: required when alert_enable is true",
    ),
    (
        "unknown attribute",
        workflow(
            transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 12, name: 同意, from: 2, to: 3, attribute: approve}
"""
        ),
        "bad.yaml: transitions[1].attribute: unknown transition attribute 'approve'; known: agree, reject, other",
    ),
    (
        "transition missing to",
        workflow(
            transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 12, name: 同意, from: 2}
"""
        ),
        "bad.yaml: transitions[1].to: required key is missing",
    ),
    (
        "unknown permission user",
        workflow(head="id: 7\nname: 测试\npermissions: {admins: [bobby]}\n"),
        "bad.yaml: permissions.admins[0]: unknown user 'bobby' (did you mean 'bob'?)",
    ),
    (
        "unknown display field",
        workflow(head="id: 7\nname: 测试\ndisplay_fields: [days, cost]\n"),
        "bad.yaml: display_fields[1]: unknown field 'cost'",
    ),
    (
        "unknown title placeholder",
        workflow(head="id: 7\nname: 测试\ntitle_template: '{creator} {dayz}'\n"),
        "bad.yaml: title_template: unknown placeholder '{dayz}' (did you mean 'days'?)",
    ),
    (
        "malformed title template",
        workflow(head="id: 7\nname: 测试\ntitle_template: '{creator'\n"),
        "bad.yaml: title_template: malformed template",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in CASES], ids=[c[0] for c in CASES])
def test_located_error(tmp_path: Path, text: str, expected: str) -> None:
    errors = errors_of(tmp_path, text)
    assert any(e.startswith(expected) for e in errors), "\n".join(errors)


def test_all_errors_are_collected(tmp_path: Path) -> None:
    text = workflow(
        fields="  - {key: days, name: 天数, type: integer}\n",
        states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 审批, participant: {type: script, value: x}}
  - {id: 3, name: 结束, type: end}
""",
        transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2}
  - {id: 12, name: 同意, from: 2, to: 99}
""",
    )
    errors = errors_of(tmp_path, text)
    assert any(e.startswith("bad.yaml: fields[0].type: unknown field type 'integer'") for e in errors)
    assert (
        "bad.yaml: states[1].participant.type: "
        + ("script participants run server-side code; use a hook instead")
        in errors
    )
    assert "bad.yaml: transitions[1].to: unknown state id 99 (known: 1, 2, 3)" in errors


def test_config_error_message_lists_everything(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(workflow(head="id: 0\nname: ''\n"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_workflow_file(path, ORG, env={})
    assert info.value.errors == [
        "bad.yaml: id: must be at least 1, got 0",
        "bad.yaml: name: must not be empty",
    ]
    assert str(info.value) == (
        "2 configuration errors:\n  bad.yaml: id: must be at least 1, got 0\n  bad.yaml: name: must not be empty"
    )


def test_hook_token_from_environment(tmp_path: Path) -> None:
    text = workflow(
        states="""\
  - {id: 1, name: 新建, type: start}
  - {id: 2, name: 授权, participant: {type: hook, hook: {url: "https://h.example/x", token: "${HOOK_T}", wait: true}}}
  - {id: 3, name: 结束, type: end}
"""
    )
    path = tmp_path / "ok.yaml"
    path.write_text(text, encoding="utf-8")
    wf = load_workflow_file(path, ORG, env={"HOOK_T": "s3cret"})
    state = wf.state(2)
    assert state is not None and state.participant.type == ParticipantType.HOOK
    assert state.participant.hook is not None
    assert state.participant.hook.token == "s3cret" and state.participant.hook.wait


def test_enumerations_accept_loonflow_ids(tmp_path: Path) -> None:
    text = workflow(
        fields="  - {key: days, name: 天数, type: 10, default: '2'}\n",
        states="""\
  - {id: 1, name: 新建, type: 1, fields: {days: 2}}
  - {id: 2, name: 审批, type: 0, participant: {type: 2, value: "alice, bob"}, distribute: 4,
     reject_policy: after_all}
  - {id: 3, name: 结束, type: 2}
""",
        transitions="""\
  - {id: 11, name: 提交, from: 1, to: 2, attribute: 1, timer: 1h30m}
  - {id: 12, name: 同意, from: 2, to: 3, attribute: 3, timer: 90}
""",
    )
    path = tmp_path / "ids.yaml"
    path.write_text(text, encoding="utf-8")
    wf = load_workflow_file(path, ORG, env={})
    days = wf.field_def("days")
    assert days is not None and days.default == 2
    state = wf.state(2)
    assert state is not None and state.participant.value == "alice,bob"
    assert [t.timer_seconds for t in wf.transitions] == [5400, 90]


def test_ids_unique_across_workflows(tmp_path: Path) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "a.yaml").write_text(workflow(), encoding="utf-8")
    (folder / "b.yaml").write_text(
        workflow(
            states="""\
  - {id: 21, name: 新建, type: start}
  - {id: 2, name: 审批}
  - {id: 23, name: 结束, type: end}
""",
            transitions="""\
  - {id: 11, name: 提交, from: 21, to: 2}
  - {id: 32, name: 同意, from: 2, to: 23}
""",
        ),
        encoding="utf-8",
    )
    (folder / "c.yml").write_text("id: 9\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_workflows(tmp_path, ORG, env={})
    assert info.value.errors == [
        "c.yml: workflow files must end in .yaml (this file is ignored)",
        "b.yaml: id: workflow id 7 is already used by a.yaml",
        "b.yaml: states[1].id: state id 2 is already used by a.yaml (states[1]); "
        "state ids must be unique across all workflows",
        "b.yaml: transitions[0].id: transition id 11 is already used by a.yaml (transitions[0]); "
        "transition ids must be unique across all workflows",
    ]


def test_missing_workflows_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_workflows(tmp_path, ORG)
    assert info.value.errors == [f"workflows/: directory not found in {tmp_path}"]
