"""The hook caller: every "pending" hook call (core.hook_calls) -> a signed POST -> the ticket moves on.

One pass (`run_once`, bot.claimed_calls) claims the due calls (several processes never get the
same call; a call whose worker died is claimed again after the lease) and makes them concurrently:

- the ticket is read first; a call whose ticket has ended or left the call's state is "failed"
  without a POST (moot);
- the POST (timeout `timeout`, 10 s) carries every field of the ticket (its basic fields and its
  custom fields, loonflow's ``get_ticket_all_field_value``) plus ``ticket_id``, ``state_id``,
  ``participant_type_id``, ``call_id``, ``callback_url``, ``wait`` and ``extra_info``, with
  loonflow's headers ``timestamp`` (epoch seconds) and ``signature`` = md5(timestamp + hook_token)
  and ticketbot's ``X-Ticketbot-Signature: sha256=<hex HMAC-SHA256(hook_token, timestamp + "." +
  body)>`` (and ``X-Ticketbot-Call-Id``);
- wait=false: a 2xx answering ``{"code": 0, "msg": ..., "field_value"?: {...}}`` runs
  HookResult(True) as the system user, pinned to the call (core.hook_calls.apply_hook_result): the
  ticket moves on; a definite refusal (``{"code": != 0}``, a 2xx that is not loonflow's JSON, or a
  4xx but 408/429) runs HookResult(False): the ticket stays, script_run_last_result false, until
  retry_script;
- wait=true: a 2xx with ``{"code": 0}`` (or no JSON body) -> "waiting" for hook_call_back;
- transport errors, timeouts, 5xx, 408 and 429 are retried with exponential backoff and jitter
  (5 s doubling, at most an hour, +-20 %); the MAX_ATTEMPTS-th failure makes the call "dead" and
  runs HookResult(False, reason): the failure is in the flow log, retry_script calls again.

The background loop (`start`) runs a pass when kicked (after a ticket change) and every
`poll_seconds` anyway. Logs name the ticket, call id, attempt and status; never the hook token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Unpack

from bot.claimed_calls import TRANSPORT_ERRORS, ClaimedCallLoop, Options
from core.commands import HookResult
from core.errors import Reason, Rejected
from core.hook_calls import MAX_ATTEMPTS, PENDING, HookCall, HookCalls, apply_hook_result, moot
from core.ports import Clock, TicketQueries, WorkflowCatalog
from core.service import Done, Result, TicketService
from core.ticket import SYSTEM_USER, Ticket
from core.workflow import Hook, Workflow

log = logging.getLogger("ticketbot.hooks")

RETRY_BASE = 5.0
RETRY_MAX = 3600.0
JITTER = 0.2
MAX_ANSWER_BYTES = 64 * 1024
SIGNATURE_HEADER = "X-Ticketbot-Signature"
CALL_ID_HEADER = "X-Ticketbot-Call-Id"
_RETRY_STATUSES = frozenset({408, 429})


def backoff(attempts: int, rnd: float) -> float:
    """Seconds before the next try after `attempts` failures: 5 s doubling, at most an hour, with
    +-20 % jitter (`rnd` in [0, 1))."""
    delay = min(RETRY_BASE * 2.0 ** min(attempts, 12), RETRY_MAX)
    return delay * (1.0 - JITTER + 2 * JITTER * rnd)


def sign(token: str, timestamp: str, body: bytes) -> dict[str, str]:
    """The signature headers of a hook POST (see the module docstring)."""
    md5 = hashlib.md5((timestamp + token).encode()).hexdigest()  # noqa: S324 - loonflow's scheme
    mac = hmac.new(token.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "signature": md5, SIGNATURE_HEADER: f"sha256={mac}"}


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Set):
        return sorted(value, key=str)
    return str(value)


def payload(ticket: Ticket, call: HookCall, hook: Hook, callback_url: str) -> dict[str, Any]:
    """The JSON a hook receives: the ticket's fields (basic and custom, like loonflow) and the call."""
    body: dict[str, Any] = dict(ticket.fields)
    body.update(
        {
            "id": ticket.id,
            "ticket_id": ticket.id,
            "sn": ticket.sn,
            "title": ticket.title,
            "workflow_id": ticket.workflow_id,
            "state_id": ticket.state_id,
            "parent_ticket_id": ticket.parent_ticket_id,
            "parent_ticket_state_id": ticket.parent_ticket_state_id,
            "participant_type_id": int(ticket.participant_type),
            "participant": hook.url,
            "act_state_id": int(ticket.act_state),
            "creator": ticket.creator,
            "gmt_created": ticket.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            "gmt_modified": ticket.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            "call_id": call.call_id,
            "callback_url": callback_url,
            "wait": call.wait,
            "extra_info": hook.extra_info,
        }
    )
    return body


@dataclass(frozen=True, slots=True)
class Answer:
    """What a POST came to: "ok" (msg, fields), "fail" (a definite refusal) or "retry"."""

    kind: str
    msg: str
    status: int | None = None
    fields: Mapping[str, Any] | None = None


def classify(status: int, raw: bytes, *, wait: bool) -> Answer:
    """Read a hook's HTTP answer (see the module docstring)."""
    if status >= 500 or status in _RETRY_STATUSES:
        return Answer("retry", f"HTTP {status}", status)
    if not 200 <= status < 300:
        return Answer("fail", f"the hook refused the call: HTTP {status}", status)
    try:
        data = json.loads(raw) if raw.strip() else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or "code" not in data:
        if wait:  # it took the call; its result comes with the callback
            return Answer("ok", "", status)
        return Answer("fail", f'the hook answered HTTP {status} without a loonflow {{"code": 0}}', status)
    msg = data.get("msg")
    text = msg if isinstance(msg, str) else ""
    if data.get("code") not in (0, "0"):
        return Answer("fail", text or f"the hook answered code {str(data.get('code'))[:40]}", status)
    fields = data.get("field_value")
    inner = data.get("data")
    if fields is None and isinstance(inner, dict):
        fields = inner.get("field_value")
    return Answer("ok", text, status, fields if isinstance(fields, dict) else None)


class HookCaller(ClaimedCallLoop[HookCall]):
    def __init__(
        self,
        calls: HookCalls,
        service: TicketService,
        queries: TicketQueries,
        catalog: WorkflowCatalog,
        clock: Clock,
        public_url: str,
        **options: Unpack[Options],
    ) -> None:
        """`options`: the HTTP session, worker name, poll, timeout, lease, jitter and signature
        clock (bot.claimed_calls.Options)."""
        super().__init__("hooks", calls.claim_due, self.call, self._crashed, clock, **options)
        self.calls = calls
        self._service = service
        self._queries = queries
        self._catalog = catalog
        self._public_url = public_url.rstrip("/")

    # ---------------------------------------------------------------- one call

    def _workflow(self, ticket: Ticket) -> Workflow | None:
        return self._catalog.get(ticket.workflow_id, ticket.workflow_version) or self._catalog.get(
            ticket.workflow_id
        )

    def _extra(self, h: HookCall, **more: object) -> dict[str, object]:
        return {"ticket_id": h.ticket_id, "call_id": h.call_id, "attempt": h.attempts + 1, **more}

    async def _crashed(self, h: HookCall, exc: Exception) -> None:
        """A bug must not block the other calls: the call is retried like a failure."""
        log.exception("hook call crashed", extra=self._extra(h))
        await self._retry(h, f"{type(exc).__name__}: {exc}", None)

    async def call(self, h: HookCall) -> None:
        """Make the claimed call `h` and act on its answer."""
        now = self._clock.now()
        ticket = await self._queries.get_ticket(h.ticket_id)
        why = moot(ticket, h)
        wf = self._workflow(ticket) if ticket is not None else None
        state = wf.state(h.state_id) if wf is not None else None
        hook = state.participant.hook if state is not None else None
        if ticket is None or why or hook is None:
            why = why or f"state {h.state_id} of the ticket's workflow has no hook"
            await self.calls.mark_failed(h.id, self.worker, now, f"cancelled: {why}")
            log.info("hook call cancelled", extra=self._extra(h, status="failed", why=why))
            return
        callback = f"{self._public_url}/api/v1.0/tickets/{h.ticket_id}/hook_call_back"
        raw = json.dumps(
            payload(ticket, h, hook, callback), ensure_ascii=False, default=_json_default
        ).encode("utf-8")
        headers = {
            **sign(hook.token, self._stamp(now), raw),
            CALL_ID_HEADER: h.call_id,
            "Content-Type": "application/json",
        }
        if not await self.calls.mark_called(h.id, self.worker, now):
            log.info("hook call no longer ours; skipped", extra=self._extra(h))
            return
        try:
            reply = await self._post(h.url, raw, headers, max_bytes=MAX_ANSWER_BYTES)
        except TRANSPORT_ERRORS as exc:
            await self._retry(h, f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__, None)
            return
        status = reply.status
        answer = classify(status, reply.body, wait=h.wait)
        log.info(
            "hook answered",
            extra=self._extra(h, http_status=status, answer=answer.kind, ms=reply.ms),
        )
        if answer.kind == "retry":
            await self._retry(h, answer.msg, answer.status)
        elif answer.kind == "fail":
            await self._fail(h, answer.msg, answer.status)
        elif h.wait:
            await self.calls.mark_waiting(h.id, self.worker, self._clock.now(), status)
            log.info("hook call waiting for its callback", extra=self._extra(h, status="waiting"))
        else:
            await self._succeed(h, answer)

    async def _apply(self, h: HookCall, cmd: HookResult) -> Result:
        return await apply_hook_result(self._service, self._queries, self.calls, h, self.worker, PENDING, cmd)

    async def _succeed(self, h: HookCall, answer: Answer) -> None:
        cmd = HookResult(SYSTEM_USER, True, answer.msg, answer.fields or {})
        applied = await self._apply(h, cmd)
        now = self._clock.now()
        if isinstance(applied, Done):
            await self.calls.mark_done(h.id, self.worker, now, response_status=answer.status)
            log.info("hook call done; the ticket moved on", extra=self._extra(h, status="done"))
            return
        why = getattr(applied, "message", "")
        if isinstance(applied, Rejected) and applied.reason == Reason.STALE:  # moot or superseded
            await self.calls.mark_failed(
                h.id, self.worker, now, f"cancelled: {why}", response_status=answer.status
            )
            log.info("hook answered but its ticket moved on", extra=self._extra(h, status="failed", why=why))
            return
        # the engine refused the hook's answer (e.g. a bad field value): a failure, in the flow log
        await self._fail(h, f"the hook's answer was refused: {why}", answer.status)

    async def _fail(self, h: HookCall, error: str, status: int | None, *, dead: bool = False) -> None:
        applied = await self._apply(h, HookResult(SYSTEM_USER, False, error[:500]))
        now = self._clock.now()
        if dead:
            await self.calls.mark_dead(h.id, self.worker, now, error)
        else:
            await self.calls.mark_failed(h.id, self.worker, now, error, response_status=status)
        log.warning(
            "hook call failed",
            extra=self._extra(
                h,
                status="dead" if dead else "failed",
                error=error[:300],
                recorded=isinstance(applied, Done),
            ),
        )

    async def _retry(self, h: HookCall, error: str, status: int | None) -> None:
        if h.attempts + 1 >= MAX_ATTEMPTS:
            await self._fail(h, f"the hook failed {MAX_ATTEMPTS} times; last: {error}", status, dead=True)
            return
        delay = backoff(h.attempts, self._rnd())
        at = self._clock.now() + timedelta(seconds=delay)
        got = await self.calls.retry_later(h.id, self.worker, error, at, response_status=status)
        log.warning(
            "hook call failed; retrying",
            extra=self._extra(h, status=got or "lost", error=error[:300], retry_in_s=round(delay)),
        )
