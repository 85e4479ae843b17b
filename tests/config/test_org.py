"""org.yaml: the directory loads, and broken directories give located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError
from config.org import load_org
from core.org import UserType

GOOD = """\
departments:
  - {id: 1, name: 总部, leader: boss}
  - {id: 2, name: 技术部, parent: 1, leader: lead, approvers: [deputy]}
users:
  - {username: boss, alias: 老板, departments: [1], type: super_admin}
  - {username: lead, alias: 组长, departments: [2], phone: 13800000000, wecom_userid: Lead}
  - {username: deputy, alias: 副组长, departments: [2], type: 1}
  - {username: dev, alias: 开发, departments: [2], active: false}
roles:
  - {id: 1, name: 值班, members: [dev, lead]}
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "org.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def errors_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_org(write(tmp_path, text))
    return info.value.errors


def test_good_org(tmp_path: Path) -> None:
    org = load_org(write(tmp_path, GOOD))
    assert set(org.users) == {"boss", "lead", "deputy", "dev"}
    assert org.users["boss"].type == UserType.SUPER_ADMIN
    assert org.users["deputy"].type == UserType.WORKFLOW_ADMIN
    assert org.users["lead"].phone == "13800000000"  # an unquoted number is read as text
    assert not org.users["dev"].is_active
    assert org.departments[2].approvers == ("deputy",)
    assert org.role_members(1) == ("lead",)  # inactive members are skipped
    assert org.leader_of("dev") == "deputy"


CASES: list[tuple[str, str, str]] = [
    (
        "unknown department in a user",
        GOOD.replace(
            "{username: dev, alias: 开发, departments: [2]", "{username: dev, alias: 开发, departments: [9]"
        ),
        "org.yaml: users[3].departments[0]: unknown department 9 (known: 1, 2)",
    ),
    (
        "leader not a user",
        GOOD.replace("leader: lead,", "leader: leed,"),
        "org.yaml: departments[1].leader: unknown user 'leed' (did you mean 'lead'?)",
    ),
    (
        "approver not a user",
        GOOD.replace("approvers: [deputy]", "approvers: [nobody]"),
        "org.yaml: departments[1].approvers[0]: unknown user 'nobody'",
    ),
    (
        "role member not a user",
        GOOD.replace("members: [dev, lead]", "members: [dev, ghost]"),
        "org.yaml: roles[0].members[1]: unknown user 'ghost'",
    ),
    (
        "duplicate department id",
        GOOD.replace("{id: 2, name: 技术部", "{id: 1, name: 技术部"),
        "org.yaml: departments[1].id: duplicate department id 1 (also departments[0])",
    ),
    (
        "duplicate role id",
        GOOD + "  - {id: 1, name: 又一个}\n",
        "org.yaml: roles[1].id: duplicate role id 1 (also roles[0])",
    ),
    (
        "parent cycle",
        GOOD.replace("{id: 1, name: 总部, leader: boss}", "{id: 1, name: 总部, parent: 2, leader: boss}"),
        "org.yaml: departments[0].parent: parent cycle: 1 -> 2 -> 1",
    ),
    (
        "own parent",
        GOOD.replace("{id: 2, name: 技术部, parent: 1", "{id: 2, name: 技术部, parent: 2"),
        "org.yaml: departments[1].parent: department 2 cannot be its own parent",
    ),
    (
        "unknown parent",
        GOOD.replace("{id: 2, name: 技术部, parent: 1", "{id: 2, name: 技术部, parent: 5"),
        "org.yaml: departments[1].parent: unknown department 5 (known: 1, 2)",
    ),
    (
        "unknown user type",
        GOOD.replace("type: super_admin", "type: superadmin"),
        "org.yaml: users[0].type: unknown user type 'superadmin' (did you mean 'super_admin'?)",
    ),
    (
        "unknown user key",
        GOOD.replace("alias: 老板", "alais: 老板"),
        "org.yaml: users[0].alais: unknown key (did you mean 'alias'?)",
    ),
    (
        "username with a comma",
        GOOD.replace("{username: dev,", "{username: 'dev,ops',"),
        "org.yaml: users[3].username: 'dev,ops' is not a valid username",
    ),
    (
        "missing username",
        GOOD.replace("{username: dev, alias: 开发", "{alias: 开发"),
        "org.yaml: users[3].username: required key is missing",
    ),
    (
        "duplicate wecom userid",
        GOOD.replace(
            "{username: deputy, alias: 副组长,", "{username: deputy, alias: 副组长, wecom_userid: Lead,"
        ),
        "org.yaml: users[2].wecom_userid: duplicate wecom_userid 'Lead' (also users[1])",
    ),
    (
        "active not a bool",
        GOOD.replace("active: false", "active: nope"),
        "org.yaml: users[3].active: expected true or false, got string 'nope'",
    ),
    (
        "unknown top-level key",
        GOOD + "rols: []\n",
        "org.yaml: rols: unknown key (did you mean 'roles'?)",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in CASES], ids=[c[0] for c in CASES])
def test_located_error(tmp_path: Path, text: str, expected: str) -> None:
    errors = errors_of(tmp_path, text)
    assert any(e.startswith(expected) for e in errors), "\n".join(errors)


def test_duplicate_username(tmp_path: Path) -> None:
    text = GOOD.replace("roles:", "  - {username: lead, alias: 重名}\nroles:")
    assert errors_of(tmp_path, text) == [
        "org.yaml: users[4].username: duplicate username 'lead' (also users[1])"
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_org(tmp_path)
    assert info.value.errors == ["org.yaml: file not found"]


def test_a_broken_user_does_not_cascade(tmp_path: Path) -> None:
    # `lead` has a bad department, yet it stays a known user for the leader and role checks.
    text = GOOD.replace(
        "{username: lead, alias: 组长, departments: [2]", "{username: lead, alias: 组长, departments: [7]"
    )
    assert errors_of(tmp_path, text) == [
        "org.yaml: users[1].departments[0]: unknown department 7 (known: 1, 2)"
    ]
