"""Step-by-step create: a draft ticket, asked one field at a time, kept between chat messages.

A create that lacks required fields (or has a bad value) opens a draft for (platform, person) and
asks for ONE field: the next empty one in form order while a required field is still empty
(optional fields on the way may be skipped with 跳过 / skip; see bot.handlers.form). The person's
next message is that field's value, or KEY=VALUE pairs that fill several fields at once (and
``抄送=`` the CC list). A bad value is asked again with the reason. When every required field is
in, `Ready` tells the caller to create the ticket (through TicketService, which has the last word).

Drafts live in a `DraftStore` (store.drafts.SqlDraftStore in the app) and expire after
`DRAFT_TTL` without an answer: an expired draft is ignored (and deleted by the store). What the
rest of the chat does while a draft is open (cancel, help, other commands) is decided by
bot.handlers.conversation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, Protocol

from bot.handlers import commands as cmds
from bot.handlers.form import (
    CC,
    CC_STEP,
    Filled,
    Problem,
    Step,
    fill,
    has_default,
    is_cc_key,
    next_step,
    problem_lines,
    question,
    read,
    steps,
)
from bot.handlers.help import Lang
from core.org import Org
from core.ports import Clock
from core.workflow import Transition, Workflow

DRAFT_TTL: Final = timedelta(minutes=30)


def _t(lang: Lang, zh: str, en: str) -> str:
    return zh if lang == "zh" else en


def _frozen(m: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(m or {}))


class DraftRecord(Protocol):
    """A stored draft as a `DraftStore` hands it back (store.drafts.StoredDraft, or a `Draft`)."""

    @property
    def platform(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def workflow_id(self) -> int: ...
    @property
    def fields(self) -> Mapping[str, Any]: ...
    @property
    def cc(self) -> Sequence[str]: ...
    @property
    def asking(self) -> str: ...
    @property
    def lang(self) -> str: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Draft:
    """A ticket being filled in by one person on one platform.

    `fields` holds canonical values (as `core.fields.coerce` returns them); None marks an optional
    field the person skipped. `cc` are usernames. `asking` is the key of the field the last reply
    asked for (``@cc`` for the CC list, "" when nothing is being asked)."""

    platform: str
    username: str
    workflow_id: int
    expires_at: datetime
    updated_at: datetime
    fields: Mapping[str, Any] = field(default_factory=_frozen, hash=False)
    cc: tuple[str, ...] = ()
    asking: str = ""
    lang: Lang = "zh"

    @staticmethod
    def of(record: DraftRecord) -> Draft:
        return Draft(
            platform=record.platform,
            username=record.username,
            workflow_id=record.workflow_id,
            expires_at=record.expires_at,
            updated_at=record.updated_at,
            fields=_frozen(record.fields),
            cc=tuple(record.cc),
            asking=record.asking,
            lang="en" if record.lang == "en" else "zh",
        )


class DraftStore(Protocol):
    """Where drafts are kept between messages: one per (platform, username)."""

    async def get(self, platform: str, username: str, now: datetime) -> DraftRecord | None:
        """The draft, or None if there is none or it expired at or before `now` (it is then deleted)."""
        ...

    async def put(self, draft: Draft) -> None:
        """Insert or replace the draft of (draft.platform, draft.username)."""
        ...

    async def delete(self, platform: str, username: str) -> None:
        """Drop the draft, if any."""
        ...


@dataclass(frozen=True, slots=True)
class Ready:
    """Every required field is in: create the ticket with these values (skipped ones left out)."""

    wf: Workflow
    transition: Transition
    fields: Mapping[str, Any]
    cc: tuple[str, ...]
    lang: Lang


class Dialogue:
    """The draft's state machine over a `DraftStore`; the clock times the expiry."""

    def __init__(self, drafts: DraftStore, clock: Clock, *, ttl: timedelta = DRAFT_TTL) -> None:
        self._drafts = drafts
        self._clock = clock
        self._ttl = ttl

    async def current(self, platform: str, username: str) -> Draft | None:
        record = await self._drafts.get(platform, username, self._clock.now())
        return Draft.of(record) if record is not None else None

    async def drop(self, platform: str, username: str) -> None:
        await self._drafts.delete(platform, username)

    async def start(
        self,
        platform: str,
        username: str,
        wf: Workflow,
        t: Transition,
        pairs: Mapping[str, str],
        org: Org,
        lang: Lang,
    ) -> str | Ready:
        """A create line: fill what it gives; ask for the rest (replacing any open draft) or be Ready."""
        now = self._clock.now()
        draft = Draft(platform, username, wf.id, now + self._ttl, now, lang=lang)
        return await self._advance(draft, wf, t, fill(wf, steps(wf, t), pairs, org, lang), start=True)

    async def answer(self, draft: Draft, wf: Workflow, t: Transition, text: str, org: Org) -> str | Ready:
        """The person's reply while the draft is open: the asked field's value, 跳过 / skip, or pairs."""
        lang = draft.lang
        form = steps(wf, t)
        asked = _step(form, draft.asking)
        if cmds.is_skip(text):
            if asked is None:
                return await self._advance(draft, wf, t, Filled({}, None, ()))
            if asked.required and not has_default(asked):
                again = question(wf, asked, lang, self._clock.now().date())
                return (
                    _t(lang, "这一项必填，不能跳过。\n", "This field is required; it cannot be skipped.\n")
                    + again
                )
            if asked.key == CC_STEP:
                return await self._advance(draft, wf, t, Filled({}, (), ()))
            return await self._advance(draft, wf, t, Filled({asked.key: None}, None, ()))
        pairs = cmds.field_pairs(text)
        if pairs is not None and (
            asked is None or not asked.free_text or any(is_cc_key(wf, k) or _step(form, k) for k in pairs)
        ):
            return await self._advance(draft, wf, t, fill(wf, form, pairs, org, lang))
        if asked is None:
            return await self._advance(draft, wf, t, Filled({}, None, ()), hint=True)
        raw, folded = cmds.answer(text)
        got = read(asked, raw, folded, org, lang)
        if isinstance(got, Problem):
            return await self._advance(draft, wf, t, Filled({}, None, (got,)))
        if asked.key == CC_STEP:
            return await self._advance(draft, wf, t, Filled({}, tuple(got or ()), ()))
        return await self._advance(draft, wf, t, Filled({asked.key: got}, None, ()))

    @staticmethod
    def asks_free_text(draft: Draft, wf: Workflow, t: Transition) -> bool:
        """Is the draft waiting for a text field (where even command-like words are a value)?"""
        asked = _step(steps(wf, t), draft.asking)
        return asked is not None and asked.free_text

    def reminder(self, draft: Draft, wf: Workflow, t: Transition, lang: Lang | None = None) -> str:
        """One line saying a draft is still open and what it waits for (in `lang`, else the draft's)."""
        lang = lang or draft.lang
        asked = _step(steps(wf, t), draft.asking)
        if asked is None:
            return _t(
                lang,
                f"（“{wf.name}”还在填写中，回复“取消”放弃。）",
                f"('{wf.name}' is still being filled in; reply \"cancel\" to give up.)",
            )
        return _t(
            lang,
            f"（“{wf.name}”还在填写中，等你回复 {asked.label(lang)}；回复“取消”放弃。）",
            f"('{wf.name}' is still being filled in and waits for {asked.label(lang)}; "
            'reply "cancel" to give up.)',
        )

    def current_question(self, draft: Draft, wf: Workflow, t: Transition, lang: Lang | None = None) -> str:
        """The question the draft is waiting for, or the reminder when none (in `lang`, else the draft's)."""
        asked = _step(steps(wf, t), draft.asking)
        if asked is None:
            return self.reminder(draft, wf, t, lang)
        return question(wf, asked, lang or draft.lang, self._clock.now().date())

    async def _advance(
        self,
        draft: Draft,
        wf: Workflow,
        t: Transition,
        got: Filled,
        *,
        hint: bool = False,
        start: bool = False,
    ) -> str | Ready:
        """Merge what a message gave; ask the next question (saving the draft) or be Ready. A create
        line that gives every required field (or leaves it to its default) is Ready at once, or asks
        only for what it got wrong; otherwise required fields with a default are asked too."""
        lang = draft.lang
        form = steps(wf, t)
        fields = {**draft.fields, **got.fields}
        for p in got.problems:
            fields.pop(p.key, None)  # a refused value replaces nothing: the field is asked again
        cc = draft.cc if got.cc is None else got.cc
        lines = problem_lines(got.problems, form, lang)
        if start and _complete(form, fields, got.problems):
            for step in form:  # a complete line takes the defaults, as the engine would
                if step.required and has_default(step) and step.key not in fields:
                    fields[step.key] = None
        wrong = [s for p in got.problems if (s := _step(form, p.key)) is not None]
        ask = wrong[0] if wrong else next_step(form, fields)
        if ask is None and not got.problems and not hint:
            return Ready(wf, t, _frozen({k: v for k, v in fields.items() if v is not None}), cc, lang)
        now = self._clock.now()
        await self._drafts.put(
            replace(
                draft,
                fields=_frozen(fields),
                cc=cc,
                asking=ask.key if ask is not None else "",
                expires_at=now + self._ttl,
                updated_at=now,
            )
        )
        if ask is not None:
            lines.append(question(wf, ask, lang, now.date()))
        else:
            lines.append(
                _t(
                    lang,
                    "其余字段都已填好：可用 字段=值 改正，回复“跳过”直接提交，或回复“取消”放弃。",
                    'Everything else is filled in: fix it with key=value, reply "skip" to submit as it is, '
                    'or "cancel" to give up.',
                )
            )
        return "\n".join(lines)


def _complete(form: Sequence[Step], fields: Mapping[str, Any], problems: Sequence[Problem]) -> bool:
    """Did the create line give every required field (maybe wrongly) or leave it to its default?"""
    given = {*fields, *(p.key for p in problems)}
    return all(s.key in given or has_default(s) for s in form if s.required)


def _step(form: Sequence[Step], key: str) -> Step | None:
    if key == CC_STEP:
        return CC
    return next((s for s in form if s.key == key), None)
