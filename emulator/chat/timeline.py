"""Each person's conversation with the bot, per platform: what they sent from the web chat page and
what the platform delivered to them (the emulators' `on_record` hooks), in order, with live
updates for the page's subscribers.

- An `Entry` has a stable id ("e12"), a direction ("out": the person sent it, drawn on the right;
  "in": from the bot), a kind ("text" or "card") and a version that grows with every change.
- A card delivered to several people is one entry in each one's timeline, all with the same
  `card_id` (WeCom: the msgid; DingTalk: the outTrackId; a DingTalk work notification:
  "oa-<task_id>"). An update replaces the content of those entries in place: WeCom's
  update_template_card (through the card's response_code, for the userids it names), DingTalk's
  card update by outTrackId (each person seeing the public variables overridden by their private
  ones), a work notification's status bar.
- Subscribers (one per open page) get every new or changed entry of their person through an
  asyncio queue; `close()` ends them all (app shutdown).

The feeds translate records into entries; they run synchronously inside the emulators' handlers
and never raise into them (a record they cannot show is logged and skipped).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from emulator.chat.views import (
    JSON,
    dingtalk_card,
    dingtalk_params_for,
    dingtalk_robot_message,
    dingtalk_webhook_message,
    dingtalk_work_notice,
    text_view,
    wecom_card,
)
from emulator.dingtalk import (
    CardCreated,
    CardUpdated,
    DingTalkEmulator,
    RobotSend,
    StatusBarUpdate,
    WebhookPost,
    WorkNotice,
)
from emulator.wecom import CardUpdate, SentMessage, WeComEmulator

log = logging.getLogger(__name__)

Platform = Literal["wecom", "dingtalk"]
PLATFORMS: tuple[Platform, ...] = ("wecom", "dingtalk")
Direction = Literal["in", "out"]
Kind = Literal["text", "card"]
Status = Literal["sending", "sent", "failed"]
SINGLE_CHAT_PREFIX = "cid-single-"  # DingTalkEmulator.robot_text_message's 1:1 conversation ids


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Entry:
    """One message bubble of a person's timeline."""

    id: str
    seq: int
    platform: str
    userid: str
    direction: Direction
    kind: Kind
    at: datetime
    text: JSON | None = None  # kind "text": {"text", "format": "plain" | "markdown", "title"}
    card_id: str = ""
    card: JSON | None = None  # kind "card": the view (emulator.chat.views)
    raw: JSON | None = None  # the platform state the card was drawn from (for clicks and updates)
    status: Status = "sent"  # of an "out" entry: "sending" until the bot answered the callback
    error: str = ""
    version: int = 1

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "seq": self.seq,
            "platform": self.platform,
            "userid": self.userid,
            "direction": self.direction,
            "kind": self.kind,
            "at": self.at.isoformat(),
            "text": self.text,
            "card_id": self.card_id,
            "card": self.card,
            "raw": self.raw,
            "status": self.status,
            "error": self.error,
            "version": self.version,
        }


class Subscription:
    """One live reader of a person's timeline: `await get()` gives the next new or changed entry,
    None once closed. `ended` is set when it has been removed from the timeline."""

    def __init__(self, platform: str, userid: str) -> None:
        self.platform = platform
        self.userid = userid
        self.closed = False
        self.ended = asyncio.Event()
        self._queue: asyncio.Queue[Entry | None] = asyncio.Queue()

    def push(self, entry: Entry) -> None:
        if not self.closed:
            self._queue.put_nowait(entry)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(None)

    async def get(self) -> Entry | None:
        return await self._queue.get()


class Timeline:
    """Every person's entries, by (platform, userid), and their subscribers."""

    def __init__(self, *, now: Callable[[], datetime] = _now) -> None:
        self._now = now
        self._entries: dict[tuple[str, str], list[Entry]] = defaultdict(list)
        self._where: dict[str, tuple[tuple[str, str], int]] = {}  # entry id -> (person, index)
        self._subs: dict[tuple[str, str], list[Subscription]] = defaultdict(list)
        self._seq = 0
        self._closed = False

    # ---- reading

    def entries(self, platform: str, userid: str) -> list[Entry]:
        return list(self._entries.get((platform, userid), ()))

    def entry(self, entry_id: str) -> Entry | None:
        where = self._where.get(entry_id)
        return self._entries[where[0]][where[1]] if where else None

    def card(self, platform: str, userid: str, card_id: str) -> Entry | None:
        """The entry showing card `card_id` to `userid`, if it was delivered to them."""
        for entry in reversed(self._entries.get((platform, userid), ())):
            if entry.kind == "card" and entry.card_id == card_id:
                return entry
        return None

    def holders(self, platform: str, card_id: str) -> list[Entry]:
        """Every entry (of every person) showing card `card_id`."""
        return [
            e
            for (p, _), entries in self._entries.items()
            if p == platform
            for e in entries
            if e.kind == "card" and e.card_id == card_id
        ]

    def knows_card(self, platform: str, card_id: str) -> bool:
        return bool(self.holders(platform, card_id))

    # ---- writing

    def add(
        self,
        platform: str,
        userid: str,
        *,
        direction: Direction,
        kind: Kind,
        at: datetime | None = None,
        text: JSON | None = None,
        card_id: str = "",
        card: JSON | None = None,
        raw: JSON | None = None,
        status: Status = "sent",
    ) -> Entry:
        self._seq += 1
        entry = Entry(
            id=f"e{self._seq}",
            seq=self._seq,
            platform=platform,
            userid=userid,
            direction=direction,
            kind=kind,
            at=at or self._now(),
            text=text,
            card_id=card_id,
            card=card,
            raw=raw,
            status=status,
        )
        person = (platform, userid)
        self._where[entry.id] = (person, len(self._entries[person]))
        self._entries[person].append(entry)
        self._publish(entry)
        return entry

    def replace(self, entry_id: str, **changes: Any) -> Entry:
        """The entry with `changes` applied and its version bumped; subscribers are told."""
        person, index = self._where[entry_id]
        old = self._entries[person][index]
        new = dataclasses.replace(old, version=old.version + 1, **changes)
        self._entries[person][index] = new
        self._publish(new)
        return new

    # ---- subscribers

    def subscribe(self, platform: str, userid: str) -> Subscription:
        sub = Subscription(platform, userid)
        if self._closed:
            sub.close()
        self._subs[(platform, userid)].append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get((sub.platform, sub.userid), [])
        if sub in subs:
            subs.remove(sub)
        sub.close()
        sub.ended.set()

    @contextmanager
    def subscription(self, platform: str, userid: str) -> Iterator[Subscription]:
        sub = self.subscribe(platform, userid)
        try:
            yield sub
        finally:
            self.unsubscribe(sub)

    def subscriptions(self, platform: str, userid: str) -> list[Subscription]:
        return list(self._subs.get((platform, userid), ()))

    def close(self) -> None:
        """End every subscription (now and later ones): the app is shutting down."""
        self._closed = True
        for subs in self._subs.values():
            for sub in subs:
                sub.close()

    def _publish(self, entry: Entry) -> None:
        for sub in self._subs.get((entry.platform, entry.userid), ()):
            sub.push(entry)


Hook = Callable[[Any], None]


def chain(previous: Hook | None, ours: Hook) -> Hook:
    """An on_record hook calling `previous` (if any) and then `ours`, whatever `previous` does."""
    if previous is None:
        return ours

    def both(item: Any) -> None:
        try:
            previous(item)
        finally:
            ours(item)

    return both


class WeComFeed:
    """WeCom records -> timeline entries: text and template-card messages to each member they were
    delivered to (rate-limited ones were dropped), card updates to the userids they name."""

    def __init__(self, timeline: Timeline, *, name_of: Callable[[str], str] | None = None) -> None:
        self.timeline = timeline
        self.name_of = name_of

    @classmethod
    def attach(cls, timeline: Timeline, emulator: WeComEmulator) -> WeComFeed:
        """A feed fed by `emulator`'s on_record hook (chained after any hook already set)."""

        def name_of(userid: str) -> str:
            return str(emulator.users.get(userid, {}).get("name", ""))

        feed = cls(timeline, name_of=name_of)
        emulator.on_record = chain(emulator.on_record, feed)
        return feed

    def __call__(self, record: object) -> None:
        try:
            if isinstance(record, SentMessage):
                self.message(record)
            elif isinstance(record, CardUpdate):
                self.update(record)
        except Exception:
            log.exception("the chat page could not show a WeCom record: %r", record)

    def message(self, sent: SentMessage) -> None:
        body = sent.body
        for userid in sent.delivered_to:
            if sent.msgtype == "template_card":
                tc = body.get("template_card") or {}
                raw: JSON = {"template_card": tc, "replace_name": None}
                self.timeline.add(
                    "wecom",
                    userid,
                    direction="in",
                    kind="card",
                    at=sent.at,
                    card_id=sent.msgid,
                    card=wecom_card(tc, name_of=self.name_of),
                    raw=raw,
                )
                continue
            part = body.get(sent.msgtype)
            content = str(part.get("content", "")) if isinstance(part, dict) else ""
            if sent.msgtype == "text":
                text = text_view(content)
            elif sent.msgtype == "markdown":
                text = text_view(content, markdown=True)
            else:
                text = text_view(f"[{sent.msgtype} message]")
            self.timeline.add("wecom", userid, direction="in", kind="text", at=sent.at, text=text)

    def update(self, update: CardUpdate) -> None:
        body = update.body
        for userid in update.userids:
            entry = self.timeline.card("wecom", userid, update.msgid)
            if entry is None or entry.raw is None:
                continue
            tc = body.get("template_card")
            if isinstance(tc, dict):
                raw: JSON = {"template_card": tc, "replace_name": None}
            else:
                button = body.get("button")
                name = str(button.get("replace_name", "")) if isinstance(button, dict) else ""
                raw = {**entry.raw, "replace_name": name or None}
            card = wecom_card(raw["template_card"], replace_name=raw["replace_name"], name_of=self.name_of)
            self.timeline.replace(entry.id, card=card, raw=raw)


CardState = Callable[[str], tuple[Mapping[str, str], Mapping[str, Any]]]


class DingTalkFeed:
    """DingTalk records -> timeline entries: interactive cards delivered to a person's chat with the
    robot (and their updates), robot batchSend messages, session-webhook replies (to whoever sent
    the message the webhook came with), work notifications (and their status bars).

    `card_state(out_track_id)` gives the card's current (public params, private data): the feed
    draws each person's view of it. Cards delivered to groups are not shown (the page is the 1:1
    chat with the robot)."""

    def __init__(self, timeline: Timeline, card_state: CardState) -> None:
        self.timeline = timeline
        self.card_state = card_state
        self.conversations: dict[str, str] = {}  # conversationId -> userid, for webhook replies

    @classmethod
    def attach(cls, timeline: Timeline, emulator: DingTalkEmulator) -> DingTalkFeed:
        """A feed fed by `emulator`'s on_record hook (chained after any hook already set)."""

        def card_state(out_track_id: str) -> tuple[Mapping[str, str], Mapping[str, Any]]:
            return emulator.card_params(out_track_id), emulator.card_private_data(out_track_id)

        feed = cls(timeline, card_state)
        emulator.on_record = chain(emulator.on_record, feed)
        return feed

    def note_conversation(self, conversation_id: str, userid: str) -> None:
        """Replies through the webhooks of `conversation_id` go to `userid`."""
        self.conversations[conversation_id] = userid

    def person_of(self, conversation_id: str) -> str | None:
        if conversation_id in self.conversations:
            return self.conversations[conversation_id]
        if conversation_id.startswith(SINGLE_CHAT_PREFIX):
            return conversation_id[len(SINGLE_CHAT_PREFIX) :] or None
        return None

    def __call__(self, record: object) -> None:
        try:
            if isinstance(record, CardCreated):
                self.card_created(record)
            elif isinstance(record, CardUpdated):
                self.card_updated(record.out_track_id)
            elif isinstance(record, RobotSend):
                for userid in record.delivered_to:
                    self._message(
                        userid, *dingtalk_robot_message(record.msg_key, record.msg_param), at=record.at
                    )
            elif isinstance(record, WebhookPost):
                person = self.person_of(record.conversation_id)
                if person is not None:
                    self._message(person, *dingtalk_webhook_message(record.body), at=record.at)
            elif isinstance(record, WorkNotice):
                self.work_notice(record)
            elif isinstance(record, StatusBarUpdate):
                self.status_bar(record)
        except Exception:
            log.exception("the chat page could not show a DingTalk record: %r", record)

    def _message(
        self,
        userid: str,
        kind: str,
        content: JSON,
        *,
        at: datetime,
        card_id: str = "",
        raw: JSON | None = None,
    ) -> None:
        if kind == "card":
            self.timeline.add(
                "dingtalk", userid, direction="in", kind="card", at=at, card_id=card_id, card=content, raw=raw
            )
        else:
            self.timeline.add("dingtalk", userid, direction="in", kind="text", at=at, text=content)

    def _params(self, out_track_id: str, userid: str) -> dict[str, str]:
        params, private = self.card_state(out_track_id)
        return dingtalk_params_for(params, private, userid)

    def card_created(self, card: CardCreated) -> None:
        for result in card.deliver_results:
            if not (result.success and result.space_type == "IM_ROBOT"):
                continue
            params = self._params(card.out_track_id, result.space_id)
            self.timeline.add(
                "dingtalk",
                result.space_id,
                direction="in",
                kind="card",
                at=card.at,
                card_id=card.out_track_id,
                card=dingtalk_card(params),
                raw={"params": params},
            )

    def card_updated(self, out_track_id: str) -> None:
        for entry in self.timeline.holders("dingtalk", out_track_id):
            params = self._params(out_track_id, entry.userid)
            if entry.raw != {"params": params}:
                self.timeline.replace(entry.id, card=dingtalk_card(params), raw={"params": params})

    def work_notice(self, notice: WorkNotice) -> None:
        kind, content = dingtalk_work_notice(notice.msg)
        for userid in notice.delivered_to:
            self._message(
                userid, kind, content, at=notice.at, card_id=f"oa-{notice.task_id}", raw={"msg": notice.msg}
            )

    def status_bar(self, update: StatusBarUpdate) -> None:
        bar = {"status_value": update.status_value, "status_bg": update.status_bg}
        for entry in self.timeline.holders("dingtalk", f"oa-{update.task_id}"):
            msg = (entry.raw or {}).get("msg")
            if isinstance(msg, dict):
                _, card = dingtalk_work_notice(msg, bar)
                self.timeline.replace(entry.id, card=card)
