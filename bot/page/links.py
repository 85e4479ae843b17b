"""Signed, short-lived links to the ticket page, one per viewer, and the signed OAuth `state`.

A link is ``{public_url}/tickets/{id}?u=<username>&e=<unix expiry>&s=<signature>`` where the
signature is base64url (no padding) of HMAC-SHA256(secret, message) over an unambiguous encoding of
("ticketbot-page-link", ticket id, username, expiry). Whoever holds the link acts as that person on
that one ticket until the expiry: it is a credential (the page is served with `no-referrer` and
`no-store`), and it is checked in constant time. Expired, tampered, another ticket's or another
person's link: no access.

The OAuth `state` (WeCom allows only ``[A-Za-z0-9]``, at most 128 bytes) is ``<expiry>z<hex>``, the
hex being the first 128 bits of HMAC-SHA256 over ("ticketbot-oauth-state", ticket id, expiry), so a
login that starts on one ticket's page can only come back to that page, within STATE_TTL.

The secret never appears in a repr, a log line or an exception.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from core.ports import Clock

STATE_TTL = timedelta(minutes=10)
MAX_USERNAME = 200
MAX_TICKET_ID = 2**63 - 1
_SIG_RE = re.compile(r"[A-Za-z0-9_-]{43}\Z", re.ASCII)
_EXPIRY_RE = re.compile(r"[1-9][0-9]{0,11}\Z", re.ASCII)
_STATE_RE = re.compile(r"([1-9][0-9]{0,11})z([0-9a-f]{32})\Z", re.ASCII)


class LinkCheck(StrEnum):
    """Why a link gives no access (or OK)."""

    OK = "ok"
    MISSING = "missing"  # no link parameters at all: the page was opened without a link
    BAD = "bad"  # malformed, tampered, or signed for another ticket or person
    EXPIRED = "expired"  # a genuine link whose time is up


@dataclass(frozen=True, slots=True)
class Verified:
    check: LinkCheck
    username: str = ""
    expires: int = 0

    @property
    def ok(self) -> bool:
        return self.check == LinkCheck.OK


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class LinkSigner:
    """Signs and verifies viewer links for one secret; `ttl` is how long a new link lives."""

    secret: bytes = field(repr=False)
    public_url: str
    ttl: timedelta
    clock: Clock

    def __post_init__(self) -> None:
        object.__setattr__(self, "public_url", self.public_url.rstrip("/"))
        if len(self.secret) < 16:
            raise ValueError("the link secret must be at least 16 bytes")

    # ---------------------------------------------------------------- viewer links

    def _mac(self, *parts: object) -> bytes:
        message = json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return hmac.new(self.secret, message, hashlib.sha256).digest()

    def signature(self, ticket_id: int, username: str, expires: int) -> str:
        return _b64(self._mac("ticketbot-page-link", ticket_id, username, expires))

    def now_ts(self) -> int:
        return int(self.clock.now().timestamp())

    def params(self, ticket_id: int, username: str, *, expires: int | None = None) -> dict[str, str]:
        """The query parameters (u, e, s) of a link for `username` on `ticket_id`."""
        e = expires if expires is not None else self.now_ts() + int(self.ttl.total_seconds())
        return {"u": username, "e": str(e), "s": self.signature(ticket_id, username, e)}

    def path(self, ticket_id: int, params: dict[str, str]) -> str:
        return f"/tickets/{ticket_id}?{urllib.parse.urlencode(params, quote_via=urllib.parse.quote)}"

    def link(self, ticket_id: int, username: str) -> str:
        """A fresh link for `username` on `ticket_id`, valid for `ttl`."""
        return self.public_url + self.path(ticket_id, self.params(ticket_id, username))

    def verify(self, ticket_id: int, u: str | None, e: str | None, s: str | None) -> Verified:
        """Whether (u, e, s) is a genuine, unexpired link to `ticket_id`; the viewer when it is."""
        if u is None and e is None and s is None:
            return Verified(LinkCheck.MISSING)
        if (
            not u
            or not e
            or not s
            or len(u) > MAX_USERNAME
            or not _EXPIRY_RE.match(e)
            or not _SIG_RE.match(s)
            or not 1 <= ticket_id <= MAX_TICKET_ID
        ):
            return Verified(LinkCheck.BAD)
        expires = int(e)
        expected = self.signature(ticket_id, u, expires)
        if not hmac.compare_digest(expected.encode("ascii"), s.encode("ascii")):
            return Verified(LinkCheck.BAD)
        if self.now_ts() >= expires:
            return Verified(LinkCheck.EXPIRED, u, expires)
        return Verified(LinkCheck.OK, u, expires)

    # ---------------------------------------------------------------- OAuth state

    def _state_mac(self, ticket_id: int, expires: int) -> str:
        return self._mac("ticketbot-oauth-state", ticket_id, expires).hex()[:32]

    def oauth_state(self, ticket_id: int) -> str:
        expires = self.now_ts() + int(STATE_TTL.total_seconds())
        return f"{expires}z{self._state_mac(ticket_id, expires)}"

    def verify_state(self, ticket_id: int, state: str | None) -> LinkCheck:
        m = _STATE_RE.match(state or "")
        if m is None or not 1 <= ticket_id <= MAX_TICKET_ID:
            return LinkCheck.BAD
        expires = int(m.group(1))
        expected = self._state_mac(ticket_id, expires)
        if not hmac.compare_digest(expected.encode("ascii"), m.group(2).encode("ascii")):
            return LinkCheck.BAD
        if self.now_ts() >= expires:
            return LinkCheck.EXPIRED
        return LinkCheck.OK
