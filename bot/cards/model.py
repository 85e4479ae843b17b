"""The platform-neutral card: what a chat card says, independent of WeCom or DingTalk JSON.

Builders (bot.cards.build) make a `Card` from engine data; renderers (bot.cards.wecom, ...) turn it
into one platform's JSON and enforce that platform's limits (lengths, counts, charsets). A card
carries plain display strings only: no markup, no platform ids.

Button payload
--------------
Every button carries an action key that comes back verbatim in the click callback::

    t:<ticket_id>:s:<state_id>:a:<action>:x:<transition_id>:n:<nonce>
    e.g. t:123:s:102:a:transition:x:152:n:3f

- ticket_id, state_id: positive decimal ints without leading zeros (at most 2**63 - 1);
- action: an `core.access.ActionKind` value (``transition``, ``accept``, ``add_node_end``, ...);
- transition_id: > 0 for ``transition``, exactly 0 for every other action;
- nonce: 1..32 characters of ``[A-Za-z0-9_-]``; opaque here. The builders use the ticket version
  in base36, so a handler can tell a card made before the latest change of the ticket.

The format is canonical (one string per value), at most ~100 bytes (far below WeCom's 1024-byte
key limit) and uses only ASCII letters, digits and ``:_-``. The key is NOT trusted by itself: it
only says which ticket, state and action the card was made for. The engine re-checks the clicker's
permission; a state_id that differs from the ticket's current state means a stale click.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from core.access import ActionKind

MAX_ID = 2**63 - 1
NONCE_MAX = 32
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{1,32}\Z", re.ASCII)
_ID = r"(0|[1-9][0-9]{0,18})"
_KEY_RE = re.compile(
    rf"t:{_ID}:s:{_ID}:a:([a-z_]{{1,32}}):x:{_ID}:n:([A-Za-z0-9_-]{{1,{NONCE_MAX}}})\Z", re.ASCII
)
_KEY_MAX = 256  # longer strings cannot be a key of ours; refuse them before matching


class CardError(ValueError):
    """A card or a render request that no platform would accept (a programming error)."""


class CardKind(StrEnum):
    PENDING = "pending"  # needs a decision from the recipient
    URGE = "urge"  # 催办: a reminder for a pending decision
    CC = "cc"  # 抄送: read-only notice
    RESULT = "result"  # a decided / updated card (no buttons, greyed result text)
    INFO = "info"  # a plain notice


class ButtonStyle(StrEnum):
    PRIMARY = "primary"
    DANGER = "danger"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    action_key: str
    style: ButtonStyle = ButtonStyle.DEFAULT


@dataclass(frozen=True, slots=True)
class Card:
    """`result_text` (e.g. "已同意 · 王强 · 11-21 14:05") is shown greyed where buttons were.
    `ticket_id`, `state_id` and `version` say which snapshot of the ticket the card shows."""

    kind: CardKind
    title: str
    subtitle: str = ""
    rows: tuple[Row, ...] = ()
    buttons: tuple[Button, ...] = ()
    link_url: str = ""
    link_text: str = "查看详情"
    source: str = ""
    result_text: str = ""
    ticket_id: int = 0
    state_id: int = 0
    version: int = 0


@dataclass(frozen=True, slots=True)
class ButtonAction:
    """A decoded button key: what the card offered, not yet what the clicker may do."""

    ticket_id: int
    state_id: int
    action: ActionKind
    transition_id: int
    nonce: str

    def encode(self) -> str:
        return encode_action(self.ticket_id, self.state_id, self.action, self.transition_id, self.nonce)


def _valid(ticket_id: int, state_id: int, action: ActionKind, transition_id: int, nonce: str) -> bool:
    if not (0 < ticket_id <= MAX_ID and 0 < state_id <= MAX_ID and 0 <= transition_id <= MAX_ID):
        return False
    if (action == ActionKind.TRANSITION) != (transition_id > 0):
        return False
    return _NONCE_RE.match(nonce) is not None


def encode_action(
    ticket_id: int, state_id: int, action: ActionKind | str, transition_id: int, nonce: str
) -> str:
    """The button key for `action` on `ticket_id` in `state_id`; raises CardError on bad input."""
    try:
        kind = ActionKind(action)
    except ValueError:
        raise CardError(f"unknown action {action!r}") from None
    ints = (ticket_id, state_id, transition_id)
    if any(isinstance(i, bool) or not isinstance(i, int) for i in ints) or not isinstance(nonce, str):
        raise CardError("ids must be ints and the nonce a str")
    if not _valid(ticket_id, state_id, kind, transition_id, nonce):
        raise CardError(
            f"bad button payload: ticket {ticket_id}, state {state_id}, action {kind.value}, "
            f"transition {transition_id}, nonce {nonce!r}"
        )
    return f"t:{ticket_id}:s:{state_id}:a:{kind.value}:x:{transition_id}:n:{nonce}"


def decode_action(key: object) -> ButtonAction | None:
    """Parse a button key; None for anything that is not exactly what encode_action() makes.

    Never raises, whatever `key` is."""
    if not isinstance(key, str) or len(key) > _KEY_MAX:
        return None
    m = _KEY_RE.match(key)
    if m is None:
        return None
    try:
        kind = ActionKind(m.group(3))
    except ValueError:
        return None
    ticket_id, state_id, transition_id = int(m.group(1)), int(m.group(2)), int(m.group(4))
    nonce = m.group(5)
    if not _valid(ticket_id, state_id, kind, transition_id, nonce):
        return None
    return ButtonAction(ticket_id, state_id, kind, transition_id, nonce)


def base36(n: int) -> str:
    """A non-negative int in lowercase base36 (used for compact nonces)."""
    if n < 0:
        raise CardError("base36 needs a non-negative int")
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out
