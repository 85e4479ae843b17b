"""The organisation directory as pure data: users, departments, roles, and lookups over them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType


class UserType(IntEnum):
    NORMAL = 0
    WORKFLOW_ADMIN = 1
    SUPER_ADMIN = 2


@dataclass(frozen=True, slots=True)
class User:
    username: str
    alias: str = ""
    email: str = ""
    phone: str = ""
    dept_ids: tuple[int, ...] = ()
    type: UserType = UserType.NORMAL
    is_active: bool = True
    wecom_userid: str = ""
    dingtalk_staff_id: str = ""
    avatar: str = ""


@dataclass(frozen=True, slots=True)
class Department:
    id: int
    name: str
    parent_id: int = 0
    leader: str = ""
    approvers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Role:
    id: int
    name: str
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Org:
    """An immutable snapshot of the directory. Lookups are O(1); build once, share freely."""

    users: Mapping[str, User] = field(default_factory=lambda: MappingProxyType({}))
    departments: Mapping[int, Department] = field(default_factory=lambda: MappingProxyType({}))
    roles: Mapping[int, Role] = field(default_factory=lambda: MappingProxyType({}))

    @staticmethod
    def build(
        users: Iterable[User], departments: Iterable[Department] = (), roles: Iterable[Role] = ()
    ) -> Org:
        return Org(
            users=MappingProxyType({u.username: u for u in users}),
            departments=MappingProxyType({d.id: d for d in departments}),
            roles=MappingProxyType({r.id: r for r in roles}),
        )

    def user(self, username: str) -> User | None:
        return self.users.get(username)

    def active(self, username: str) -> bool:
        u = self.users.get(username)
        return u is not None and u.is_active

    def is_super_admin(self, username: str) -> bool:
        u = self.users.get(username)
        return u is not None and u.is_active and u.type == UserType.SUPER_ADMIN

    def department_members(self, dept_id: int) -> tuple[str, ...]:
        return tuple(sorted(u.username for u in self.users.values() if u.is_active and dept_id in u.dept_ids))

    def role_members(self, role_id: int) -> tuple[str, ...]:
        role = self.roles.get(role_id)
        if role is None:
            return ()
        return tuple(m for m in role.members if self.active(m))

    def leader_of(self, username: str) -> str:
        """The creator's leader for `creator_tl`: the first department's approver, else its leader.

        Someone who leads their own department goes to the parent department's approver/leader.
        """
        u = self.users.get(username)
        if u is None or not u.dept_ids:
            return ""
        dept = self.departments.get(u.dept_ids[0])
        seen: set[int] = set()
        while dept is not None and dept.id not in seen:
            seen.add(dept.id)
            if dept.leader != username:  # a leader is not approved by their own department
                for candidate in (*dept.approvers, dept.leader):
                    if candidate and candidate != username and self.active(candidate):
                        return candidate
            dept = self.departments.get(dept.parent_id) if dept.parent_id else None
        return ""

    def leads(self, leader: str, username: str) -> bool:
        """Whether `leader` leads or approves any department `username` belongs to (or an ancestor)."""
        u = self.users.get(username)
        if u is None:
            return False
        for dept_id in u.dept_ids:
            dept = self.departments.get(dept_id)
            while dept is not None:
                if leader == dept.leader or leader in dept.approvers:
                    return True
                dept = self.departments.get(dept.parent_id) if dept.parent_id else None
        return False
