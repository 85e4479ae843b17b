"""Staff as the open API shows them: a staff id is the person's WeCom userid (their ticketbot
username when the directory has none), a name is their alias (else the username), an avatar is
the directory's ("" when unknown). Staff ids in requests may be either a WeCom userid or a
username; an exact username wins."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from core.org import Org

MAX_ID = 200


@dataclass
class Staff:
    org: Org
    _by_userid: dict[str, str] | None = field(default=None, repr=False)

    def id_of(self, username: str) -> str:
        user = self.org.user(username)
        return user.wecom_userid if user is not None and user.wecom_userid else username

    def ids_of(self, usernames: Iterable[str]) -> list[str]:
        return [self.id_of(u) for u in usernames]

    def name_of(self, username: str) -> str:
        user = self.org.user(username)
        return user.alias if user is not None and user.alias else username

    def avatar_of(self, username: str) -> str:
        user = self.org.user(username)
        return user.avatar if user is not None else ""

    def username_of(self, staff_id: str) -> str | None:
        """The active user a staff id (username or WeCom userid) names, or None."""
        if not staff_id or len(staff_id) > MAX_ID:
            return None
        if self.org.active(staff_id):
            return staff_id
        if self._by_userid is None:
            self._by_userid = {
                u.wecom_userid: u.username for u in self.org.users.values() if u.wecom_userid and u.is_active
            }
        return self._by_userid.get(staff_id)
