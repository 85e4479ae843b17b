"""The organisation directory from ``<config_dir>/org.yaml`` into a `core.org.Org`.

Schema (every list optional, keys in English, names may be Chinese)::

    departments:
      - id: 1                 # int >= 1, unique
        name: 总部             # required
        parent: 0             # parent department id; 0 or absent = a root
        leader: zhangwei      # a username (optional)
        approvers: [lina]     # usernames who approve for the department before the leader (creator_tl)
    users:
      - username: lina        # required, unique; no spaces or commas (participant lists are comma-joined)
        alias: 李娜            # display name
        email: lina@example.com
        phone: "13800000002"
        departments: [2]      # department ids; the first one is the user's main department
        type: normal          # normal | workflow_admin | super_admin (or 0 | 1 | 2)
        active: true
        wecom_userid: LiNa    # WeCom userid (unique when given)
        dingtalk_staff_id: "manager4521"   # DingTalk staffId / userid (unique when given)
        avatar: https://...
    roles:
      - id: 1                 # int >= 1, unique
        name: HR专员
        members: [yangfan]    # usernames

Checked: types, unknown keys (with suggestions), required keys, duplicate usernames / ids / platform
ids, users' departments exist, leaders / approvers / members are users, parents exist, no parent
cycles. Errors are located: ``org.yaml: users[3].departments[0]: unknown department 9 (known: 1, 2)``.
"""

from __future__ import annotations

import re
from pathlib import Path

from config._schema import Node, Problems, join, kind, listing, read_yaml, suggest
from config.errors import ConfigError
from core.org import Department, Org, Role, User, UserType

ORG_FILE = "org.yaml"

USER_TYPES = {
    "normal": UserType.NORMAL,
    "workflow_admin": UserType.WORKFLOW_ADMIN,
    "super_admin": UserType.SUPER_ADMIN,
}
USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]*\Z")

_TOP_KEYS = ("departments", "users", "roles")
_DEPT_KEYS = ("id", "name", "parent", "leader", "approvers")
_USER_KEYS = (
    "username",
    "alias",
    "email",
    "phone",
    "departments",
    "type",
    "active",
    "wecom_userid",
    "dingtalk_staff_id",
    "avatar",
)
_ROLE_KEYS = ("id", "name", "members")


def load_org(config_dir: Path) -> Org:
    """Read and validate ``<config_dir>/org.yaml``; raise ConfigError listing every problem."""
    org, errors, _ = read_org(config_dir / ORG_FILE)
    if errors:
        raise ConfigError(errors)
    return org


def read_org(path: Path) -> tuple[Org, list[str], bool]:
    """(best-effort org, errors, usable). `usable` is False when the file could not be read at all,
    so that references to users and departments cannot be checked against it."""
    problems = Problems(path.name)
    doc = read_yaml(path, problems)
    if doc is None:
        return Org(), problems.errors, False
    data = {} if doc.data is None else doc.data
    root = Node.of(problems, "", data, _TOP_KEYS)
    if root is None:
        return Org(), problems.errors, False

    departments = _departments(root, problems)
    users = _users(root, problems, departments)
    roles = _roles(root, problems)
    dept_by_id = {d.id: d for _, d in departments}
    user_by_name = {u.username: u for _, u in users}

    def need_user(path: str, name: str) -> None:
        if name not in user_by_name:
            problems.add(path, f"unknown user '{name}'{suggest(name, user_by_name)}")

    for i, d in departments:
        base = join("departments", i)
        if d.leader:
            need_user(join(base, "leader"), d.leader)
        for j, a in enumerate(d.approvers):
            need_user(join(join(base, "approvers"), j), a)
        if d.parent_id and d.parent_id not in dept_by_id:
            problems.add(
                join(base, "parent"),
                f"unknown department {d.parent_id} (known: {listing(sorted(dept_by_id))})",
            )
    _check_cycles(departments, dept_by_id, problems)
    for i, r in roles:
        for j, m in enumerate(r.members):
            need_user(join(join(join("roles", i), "members"), j), m)

    org = Org.build(
        (u for _, u in users),
        (d for _, d in departments),
        (r for _, r in roles),
    )
    return org, problems.errors, True


def _departments(root: Node, problems: Problems) -> list[tuple[int, Department]]:
    out: list[tuple[int, Department]] = []
    seen: dict[int, int] = {}
    for i, item in enumerate(root.seq("departments")):
        node = Node.of(problems, join("departments", i), item, _DEPT_KEYS, required=("id", "name"))
        if node is None:
            continue
        dept_id = node.optional_int("id", minimum=1)
        name = node.string("name", nonempty=True)
        parent = node.integer("parent", 0, minimum=0)
        leader = node.string("leader")
        approvers = node.strings("approvers")
        if dept_id is None:
            continue
        if dept_id in seen:
            node.error("id", f"duplicate department id {dept_id} (also departments[{seen[dept_id]}])")
            continue
        seen[dept_id] = i
        if parent == dept_id:
            node.error("parent", f"department {dept_id} cannot be its own parent")
            parent = 0
        dupes = _dupes(approvers)
        if dupes:
            node.error("approvers", f"listed more than once: {', '.join(dupes)}")
        out.append((i, Department(dept_id, name, parent, leader, tuple(dict.fromkeys(approvers)))))
    return out


def _check_cycles(
    departments: list[tuple[int, Department]], by_id: dict[int, Department], problems: Problems
) -> None:
    reported: set[int] = set()
    for i, d in departments:
        chain = [d.id]
        parent = d.parent_id
        while parent and parent in by_id:
            if parent in chain:
                cycle = chain[chain.index(parent) :]
                if not reported & set(cycle):
                    problems.add(
                        join(join("departments", i), "parent"),
                        "parent cycle: " + " -> ".join(str(x) for x in [*cycle, parent]),
                    )
                reported.update(cycle)
                break
            chain.append(parent)
            parent = by_id[parent].parent_id


def _users(
    root: Node, problems: Problems, departments: list[tuple[int, Department]]
) -> list[tuple[int, User]]:
    known_depts = sorted(d.id for _, d in departments)
    out: list[tuple[int, User]] = []
    seen: dict[str, int] = {}
    platform_ids: dict[tuple[str, str], int] = {}
    for i, item in enumerate(root.seq("users")):
        node = Node.of(problems, join("users", i), item, _USER_KEYS, required=("username",))
        if node is None:
            continue
        username = node.string("username", nonempty=True)
        if username and not USERNAME_RE.match(username):
            node.error(
                "username",
                f"'{username}' is not a valid username "
                "(letters, digits, '_', '.', '@', '-'; no spaces or commas)",
            )
            username = ""
        elif username in seen:
            node.error("username", f"duplicate username '{username}' (also users[{seen[username]}])")
            username = ""
        dept_ids: list[int] = []
        for j, dep in enumerate(node.seq("departments")):
            dpath = join(node.at("departments"), j)
            if isinstance(dep, bool) or not isinstance(dep, int):
                problems.add(dpath, f"expected a department id (integer), got {kind(dep)}")
            elif dep not in known_depts:
                problems.add(dpath, f"unknown department {dep} (known: {listing(known_depts)})")
            elif dep in dept_ids:
                problems.add(dpath, f"department {dep} is listed twice")
            else:
                dept_ids.append(dep)
        user = User(
            username=username,
            alias=node.string("alias"),
            email=node.string("email"),
            phone=node.string("phone", numbers=True),
            dept_ids=tuple(dept_ids),
            type=node.choice("type", USER_TYPES, "user type", UserType.NORMAL),
            is_active=node.boolean("active", True),
            wecom_userid=node.string("wecom_userid", numbers=True),
            dingtalk_staff_id=node.string("dingtalk_staff_id", numbers=True),
            avatar=node.string("avatar"),
        )
        for key, value in (
            ("wecom_userid", user.wecom_userid),
            ("dingtalk_staff_id", user.dingtalk_staff_id),
        ):
            if value:
                other = platform_ids.setdefault((key, value), i)
                if other != i:
                    node.error(key, f"duplicate {key} '{value}' (also users[{other}])")
        if username:
            # A user with a bad detail is kept (the errors are reported) so that references to it
            # elsewhere do not produce a cascade of "unknown user" errors.
            seen[username] = i
            out.append((i, user))
    return out


def _roles(root: Node, problems: Problems) -> list[tuple[int, Role]]:
    out: list[tuple[int, Role]] = []
    seen: dict[int, int] = {}
    for i, item in enumerate(root.seq("roles")):
        node = Node.of(problems, join("roles", i), item, _ROLE_KEYS, required=("id", "name"))
        if node is None:
            continue
        role_id = node.optional_int("id", minimum=1)
        name = node.string("name", nonempty=True)
        members = node.strings("members")
        if role_id is None:
            continue
        if role_id in seen:
            node.error("id", f"duplicate role id {role_id} (also roles[{seen[role_id]}])")
            continue
        seen[role_id] = i
        dupes = _dupes(members)
        if dupes:
            node.error("members", f"listed more than once: {', '.join(dupes)}")
        out.append((i, Role(role_id, name, tuple(dict.fromkeys(members)))))
    return out


def _dupes(items: list[str]) -> list[str]:
    return sorted({m for m in items if items.count(m) > 1})
