"""The sidebar's signed cookie session, its CSRF token and its OAuth state.

- Session cookie ``tb_sidebar`` (HttpOnly, SameSite=Lax, Path=/sidebar, Secure under https):
  ``<base64url(username)>.<unix expiry>.<base64url(HMAC-SHA256(key, ("ticketbot-sidebar-session",
  username, expiry)))>``. Set after WeCom's OAuth named the staff member; valid for SESSION_TTL.
- CSRF token: base64url(HMAC-SHA256(key, ("ticketbot-sidebar-csrf", cookie value))), written into
  the page and sent back by its script in the ``X-CSRF-Token`` header of every API call. A page
  whose cookie was replaced (another login in the same browser) can no longer act.
- OAuth: before going to WeCom, a random nonce goes into the cookie ``tb_sidebar_login`` (10 min)
  and the state is ``<expiry>z<hex>`` (WeCom allows ``[A-Za-z0-9]``, at most 128 bytes), the hex
  being HMAC over ("ticketbot-sidebar-state", expiry, nonce): a login started in another browser
  (login CSRF) or too long ago is refused.

`key` is derived from the ticket-page link secret; it never appears in a repr, a log line or an
exception. Every comparison is constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from core.ports import Clock

COOKIE = "tb_sidebar"
LOGIN_COOKIE = "tb_sidebar_login"
COOKIE_PATH = "/sidebar"
SESSION_TTL = timedelta(hours=8)
STATE_TTL = timedelta(minutes=10)
MAX_USERNAME = 200
_COOKIE_RE = re.compile(r"([A-Za-z0-9_-]{1,300})\.([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{43})\Z", re.ASCII)
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}\Z", re.ASCII)
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{22,64}\Z", re.ASCII)
_STATE_RE = re.compile(r"([1-9][0-9]{0,11})z([0-9a-f]{32})\Z", re.ASCII)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def derive_key(link_secret: bytes) -> bytes:
    """The sidebar's own key, from the ticket-page link secret (so one secret is configured)."""
    return hmac.new(link_secret, b"ticketbot-sidebar-key", hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class Session:
    username: str
    expires: int
    cookie: str  # the cookie value, which the CSRF token is bound to


@dataclass(frozen=True, slots=True)
class SidebarSessions:
    key: bytes = field(repr=False)
    clock: Clock
    ttl: timedelta = SESSION_TTL

    def __post_init__(self) -> None:
        if len(self.key) < 16:
            raise ValueError("the sidebar key must be at least 16 bytes")

    def _mac(self, *parts: object) -> bytes:
        message = json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return hmac.new(self.key, message, hashlib.sha256).digest()

    def now_ts(self) -> int:
        return int(self.clock.now().timestamp())

    # ---------------------------------------------------------------- the session cookie

    def issue(self, username: str) -> Session:
        """A fresh session for `username`, valid for `ttl`."""
        if not username or len(username) > MAX_USERNAME:
            raise ValueError("a sidebar session needs a username of 1 to 200 characters")
        expires = self.now_ts() + int(self.ttl.total_seconds())
        name = _b64(username.encode("utf-8"))
        sig = _b64(self._mac("ticketbot-sidebar-session", username, expires))
        return Session(username, expires, f"{name}.{expires}.{sig}")

    def verify(self, cookie: str | None) -> Session | None:
        """The session a cookie value carries, if it is genuine and unexpired."""
        m = _COOKIE_RE.match(cookie or "")
        if m is None:
            return None
        raw = _unb64(m.group(1))
        try:
            username = raw.decode("utf-8") if raw is not None else ""
        except UnicodeDecodeError:
            return None
        if not username or len(username) > MAX_USERNAME:
            return None
        expires = int(m.group(2))
        expected = _b64(self._mac("ticketbot-sidebar-session", username, expires))
        if not hmac.compare_digest(expected.encode("ascii"), m.group(3).encode("ascii")):
            return None
        if self.now_ts() >= expires:
            return None
        return Session(username, expires, m.group(0))

    # ---------------------------------------------------------------- CSRF

    def csrf_token(self, session: Session) -> str:
        return _b64(self._mac("ticketbot-sidebar-csrf", session.cookie))

    def check_csrf(self, session: Session, token: str | None) -> bool:
        if not token or not _TOKEN_RE.match(token):
            return False
        return hmac.compare_digest(self.csrf_token(session).encode("ascii"), token.encode("ascii"))

    # ---------------------------------------------------------------- OAuth

    @staticmethod
    def login_nonce() -> str:
        return secrets.token_urlsafe(24)

    def _state_mac(self, expires: int, nonce: str) -> str:
        return self._mac("ticketbot-sidebar-state", expires, nonce).hex()[:32]

    def oauth_state(self, nonce: str) -> str:
        expires = self.now_ts() + int(STATE_TTL.total_seconds())
        return f"{expires}z{self._state_mac(expires, nonce)}"

    def check_state(self, state: str | None, nonce: str | None) -> bool:
        """The state came back to the browser that started the login, in time."""
        m = _STATE_RE.match(state or "")
        if m is None or not nonce or not _NONCE_RE.match(nonce):
            return False
        expires = int(m.group(1))
        expected = self._state_mac(expires, nonce)
        if not hmac.compare_digest(expected.encode("ascii"), m.group(2).encode("ascii")):
            return False
        return self.now_ts() < expires
