"""The loonflow v1.0 ticket write routes: create, handle, and every intervention on a ticket.

Routes (under /api/v1.0; the acting user is the signed ``username`` header)::

    POST   /tickets                          create         -> {"ticket_id": N}
    PATCH  /tickets/{id}                     handle         -> {}
    DELETE /tickets/{id}                     delete (admin) -> {}
    PUT    /tickets/{id}/state               force a state  -> {}
    PATCH  /tickets/{id}/fields              update fields  -> {}
    POST   /tickets/{id}/accept              accept (接单)   -> {}
    POST   /tickets/{id}/deliver             deliver (转交)  -> true
    POST   /tickets/{id}/add_node            consult (加签)  -> {}
    POST   /tickets/{id}/add_node_end        end consulting -> {}
    POST   /tickets/{id}/retry_script        retry the hook -> {}, msg "Ticket script or hook retry
                                                               start successful"
    POST   /tickets/{id}/comments            comment        -> {}
    POST   /tickets/{id}/hook_call_back      hook result    -> {}
    POST   /tickets/{id}/close               close          -> {}
    POST   /tickets/{id}/retreat             withdraw (撤回) -> {}

Every request is checked before the engine is touched, in this order: the body (size, JSON, an
object), each parameter's presence and type, the ticket's existence ("ticket N does not exist",
404; a deleted ticket, or an id beyond the database's range, does not exist either, as on the read
side), whether the calling app may use the ticket's workflow ("app 'x' may not use workflow N",
403) and whether the acting user may see the ticket ("you have no permission to view ticket N",
403, as on the read side). Then the engine decides; its refusals come back with its own sentence
(see api.envelope for the strict-status mapping), and a lost race answers "ticket X was already
handled by Y at T" (409). Nothing is changed by a refused request.

Parameters: integers may be JSON numbers or numeric strings (never booleans); an absent, null or
blank optional parameter takes its default; booleans (``from_admin``, ``result``) are JSON
booleans, 0/1 or "0"/"1"/"true"/"false".

Differences from loonflow (deliberate):

- Create, handle and ``PATCH /fields`` take custom field values at the top level of the body, like
  loonflow, but a key that is neither a parameter of the route nor a field of the workflow is
  refused with "unknown field 'x' ..." (loonflow silently drops it, hiding typos). Echoing a
  read-only field back with its current value is accepted. A ``username`` key in the body is
  ignored, as in loonflow: the ``username`` header names the acting user.
- The other routes ignore keys they do not know, like loonflow.
- ``from_admin``: "0" / "false" mean false (loonflow treats any non-empty value as true).
- ``PATCH /fields`` with no field to change is refused (loonflow answers success and does nothing).
- A ticket the acting user may not see is refused before the engine runs, so a stranger learns
  nothing about it (loonflow answers "no permission to handle" with details).
- ``parent_ticket_id`` / ``parent_ticket_state_id`` go together (the seed says so; loonflow does
  not check). The parent must be a ticket of a workflow the calling app may use, and the acting
  user a current handler of the parent or someone who may intervene in its workflow: once every
  sub-ticket of the parent's state has ended, the parent moves on by itself, so anyone else could
  push a ticket past its approvers (loonflow lets any user attach sub-tickets).
- ``hook_call_back``: loonflow accepts a callback at any time, even before the hook fired. Here a
  callback is accepted only while a hook call that was really made (a ``wait: true`` hook that
  answered 2xx) waits for it in the ticket's CURRENT state; with a ``call_id`` in the body (the
  one the hook was sent) it must be that call's. Otherwise it is refused with "no hook call is
  waiting for ticket N in state X" (409) and nothing changes. It is recorded with the actor
  ``hook`` and ends the call ("done", or "failed" for a false result). ``msg`` may be left out ("").
- ``retry_script`` does not run anything in the request: it queues a new hook call (delivered by
  the outbox, with retries) and answers at once; ticketbot never runs server-side scripts.
- ``hook_call_back`` does not need the acting user to see the ticket (the callback acts as the
  hook); it still needs an app allowed the workflow and an active ``username``, like every call.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from aiohttp import web

from api.context import Caller, caller, context
from api.envelope import ok, raise_for
from api.errors import ApiError
from api.params import int_value, json_body
from core.access import can_intervene, can_view, is_handler
from core.commands import (
    Accept,
    AddNode,
    AddNodeEnd,
    Close,
    Command,
    Comment,
    Create,
    Delete,
    Deliver,
    ForceState,
    Handle,
    HookResult,
    Retreat,
    RetryHook,
    UpdateFields,
)
from core.errors import Reason, Rejected
from core.hook_calls import WAITING, HookCalls, apply_hook_result
from core.org import Org
from core.service import Done
from core.ticket import Ticket
from core.workflow import ParticipantType, Workflow

MAX_ID = 2**63 - 1  # ids are BIGINT: anything larger cannot exist
MAX_KEY = 100  # a longer body key cannot be a field key
MAX_USERNAME = 200  # nor a longer name a username
HOOK_ACTOR = "hook"
RETRY_MSG = "Ticket script or hook retry start successful"
CALLBACK_LEASE = 30.0  # seconds a callback holds its hook call while the result is applied

_IGNORED = frozenset({"username"})  # loonflow overwrites it with the header; so do we (by ignoring it)
CREATE_PARAMS = frozenset(
    {"workflow_id", "transition_id", "parent_ticket_id", "parent_ticket_state_id", "suggestion", "title"}
)
HANDLE_PARAMS = frozenset({"transition_id", "suggestion"})
FIELDS_PARAMS = frozenset({"suggestion"})
_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# ------------------------------------------------------------------------------------ parameters


async def _json(request: web.Request) -> dict[str, Any]:
    return await json_body(request)


def _given(body: dict[str, Any], name: str) -> Any:
    """The raw value of `name`, or None when it is absent, null or a blank string."""
    raw = body.get(name)
    if isinstance(raw, str) and not raw.strip():
        return None
    return raw


def _int(body: dict[str, Any], name: str, *, required: bool = False, minimum: int | None = None) -> int:
    raw = _given(body, name)
    if raw is None:
        if required:
            raise ApiError(f"'{name}' is required")
        return 0
    if isinstance(raw, dict | list):
        raise ApiError(f"'{name}' must be an integer, got {_kind(raw)}")
    value = int_value(name, raw)
    if abs(value) > MAX_ID:
        raise ApiError(f"'{name}' is out of range (at most {MAX_ID})")
    if minimum is not None and value < minimum:
        raise ApiError(f"'{name}' must be at least {minimum}, got {value}")
    return value


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str:
    raw = body.get(name)
    if raw is None:
        if required:
            raise ApiError(f"'{name}' is required")
        return ""
    if not isinstance(raw, str):
        raise ApiError(f"'{name}' must be a string, got {_kind(raw)}")
    if required and not raw.strip():
        raise ApiError(f"'{name}' is required (it is empty)")
    return raw


def _username(body: dict[str, Any], name: str) -> str:
    value = _text(body, name, required=True).strip()
    if len(value) > MAX_USERNAME:
        raise ApiError(f"no active user '{value[:40]}...' (a username is at most {MAX_USERNAME} characters)")
    return value


def _bool(body: dict[str, Any], name: str, *, required: bool = False) -> bool:
    raw = _given(body, name)
    if raw is None:
        if required:
            raise ApiError(f"'{name}' is required (true or false)")
        return False
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    shown = repr(raw[:40]) if isinstance(raw, str) else _kind(raw)
    raise ApiError(f"'{name}' must be a boolean (true or false, 1 or 0), got {shown}")


def _object(body: dict[str, Any], name: str) -> dict[str, Any]:
    raw = body.get(name)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError(f"'{name}' must be an object of field values, got {_kind(raw)}")
    return _checked_keys(raw)


def _fields(body: dict[str, Any], params: Collection[str]) -> dict[str, Any]:
    """Every key of `body` that is not a parameter of the route: the custom field values."""
    return _checked_keys({k: v for k, v in body.items() if k not in params and k not in _IGNORED})


def _checked_keys(values: dict[str, Any]) -> dict[str, Any]:
    for key in values:
        if len(key) > MAX_KEY:
            raise ApiError(f"unknown field '{key[:40]}...' (a field key is at most {MAX_KEY} characters)")
    return values


def _kind(raw: Any) -> str:
    if isinstance(raw, bool):
        return "a boolean"
    if isinstance(raw, int | float):
        return f"a number ({raw!r})"[:60]
    if isinstance(raw, str):
        return "a string"
    if isinstance(raw, dict):
        return "an object"
    if isinstance(raw, list):
        return "a list"
    return type(raw).__name__


# ------------------------------------------------------------------------------------- tickets


def _ticket_id(request: web.Request) -> int:
    raw = request.match_info["ticket_id"]
    digits = raw.lstrip("0")
    if not digits or len(digits) > len(str(MAX_ID)) or int(digits) > MAX_ID:
        shown = raw if len(raw) <= 24 else raw[:21] + "..."
        raise ApiError(f"ticket {shown} does not exist", 404)
    return int(digits)


async def _usable_ticket(
    request: web.Request, who: Caller, ticket_id: int, *, what: str = "ticket", view: bool = True
) -> tuple[Ticket, Workflow | None, Org]:
    """The ticket, its workflow and the org, refused unless the ticket exists (and is not deleted),
    the app may use its workflow and (with `view`) the acting user may see it."""
    ctx = context(request)
    found = await ctx.queries.get_ticket(ticket_id)
    if found is None or found.is_deleted:
        raise ApiError(f"{what} {ticket_id} does not exist", 404)
    who.require(found.workflow_id)
    wf = ctx.catalog.get(found.workflow_id, found.workflow_version) or ctx.catalog.get(found.workflow_id)
    org = await ctx.directory.org()
    if view and wf is not None and not can_view(found, wf, org, who.username):
        raise ApiError(f"you have no permission to view {what} {ticket_id}", 403)
    return found, wf, org


async def _check_parent(request: web.Request, who: Caller, parent_ticket_id: int) -> None:
    """Only a current handler of the parent (or who may intervene in its workflow) adds sub-tickets:
    when they have all ended, the parent moves on by itself."""
    parent, wf, org = await _usable_ticket(request, who, parent_ticket_id, what="parent ticket")
    if is_handler(parent, who.username) or (wf is not None and can_intervene(wf, org, who.username)):
        return
    raise ApiError(
        f"only a current handler of ticket {parent_ticket_id} (or an admin of its workflow) "
        "may add sub-tickets to it",
        403,
    )


async def _execute(
    request: web.Request, who: Caller, ticket_id: int, cmd: Command, *, view: bool = True
) -> Done:
    """Run `cmd`, first refusing (inside the same transaction) a deleted ticket, a workflow the app
    may not use and, with `view`, a ticket the acting user may not see."""

    def guard(found: Ticket, wf: Workflow, org: Org) -> Rejected | None:
        if found.is_deleted:
            return Rejected(Reason.NOT_FOUND, f"ticket {ticket_id} does not exist")
        if not who.may_use(found.workflow_id):
            return Rejected(Reason.NO_PERMISSION, who.refusal(found.workflow_id))
        if view and not can_view(found, wf, org, who.username):
            return Rejected(Reason.NO_PERMISSION, f"you have no permission to view ticket {ticket_id}")
        return None

    return raise_for(await context(request).service.execute(ticket_id, cmd, guard=guard))


# -------------------------------------------------------------------------------------- routes


async def create_ticket(request: web.Request) -> web.Response:
    who = caller(request)
    body = await _json(request)
    workflow_id = _int(body, "workflow_id", required=True)
    transition_id = _int(body, "transition_id", required=True)
    parent_ticket_id = _int(body, "parent_ticket_id", minimum=0)
    parent_ticket_state_id = _int(body, "parent_ticket_state_id", minimum=0)
    suggestion = _text(body, "suggestion")
    title = _text(body, "title")
    if bool(parent_ticket_id) != bool(parent_ticket_state_id):
        given, other = (
            ("parent_ticket_id", "parent_ticket_state_id")
            if parent_ticket_id
            else ("parent_ticket_state_id", "parent_ticket_id")
        )
        raise ApiError(f"'{other}' is required with '{given}'")
    fields = _fields(body, CREATE_PARAMS)
    ctx = context(request)
    if ctx.catalog.get(workflow_id) is None:
        raise ApiError(f"workflow {workflow_id} does not exist", 404)
    who.require(workflow_id)
    if parent_ticket_id:
        await _check_parent(request, who, parent_ticket_id)
    cmd = Create(
        actor=who.username,
        workflow_id=workflow_id,
        transition_id=transition_id,
        fields=fields,
        title=title,
        suggestion=suggestion,
        parent_ticket_id=parent_ticket_id,
        parent_ticket_state_id=parent_ticket_state_id,
    )
    done = raise_for(await ctx.service.create(cmd, sn_prefix=who.app.sn_prefix))
    return ok({"ticket_id": done.ticket.id})


async def handle_ticket(request: web.Request) -> web.Response:
    who, ticket_id, body = await _begin(request)
    cmd = Handle(
        actor=who.username,
        transition_id=_int(body, "transition_id", required=True),
        fields=_fields(body, HANDLE_PARAMS),
        suggestion=_text(body, "suggestion"),
    )
    await _execute(request, who, ticket_id, cmd)
    return ok()


async def delete_ticket(request: web.Request) -> web.Response:
    who, ticket_id, body = await _begin(request)
    await _execute(request, who, ticket_id, Delete(who.username, _text(body, "suggestion")))
    return ok()


async def change_state(request: web.Request) -> web.Response:
    who, ticket_id, body = await _begin(request)
    cmd = ForceState(who.username, _int(body, "state_id", required=True), _text(body, "suggestion"))
    await _execute(request, who, ticket_id, cmd)
    return ok()


async def update_fields(request: web.Request) -> web.Response:
    who, ticket_id, body = await _begin(request)
    fields = _fields(body, FIELDS_PARAMS)
    if not fields:
        raise ApiError('give at least one field to change, e.g. {"title": "..."}')
    await _execute(request, who, ticket_id, UpdateFields(who.username, fields, _text(body, "suggestion")))
    return ok()


async def accept(request: web.Request) -> web.Response:
    who, ticket_id, _ = await _begin(request)
    await _execute(request, who, ticket_id, Accept(who.username))
    return ok()


async def deliver(request: web.Request) -> web.Response:
    who, ticket_id, body = await _begin(request)
    cmd = Deliver(
        actor=who.username,
        target=_username(body, "target_username"),
        suggestion=_text(body, "suggestion"),
        from_admin=_bool(body, "from_admin"),
    )
    await _execute(request, who, ticket_id, cmd)
    return ok(True)


async def add_node(request: web.Request) -> web.Response:
    who, ticket_id, body = await _begin(request)
    target = _username(body, "target_username")
    await _execute(request, who, ticket_id, AddNode(who.username, target, _text(body, "suggestion")))
    return ok()


async def add_node_end(request: web.Request) -> web.Response:
    who, ticket_id, body = await _begin(request)
    await _execute(request, who, ticket_id, AddNodeEnd(who.username, _text(body, "suggestion")))
    return ok()


async def retry_script(request: web.Request) -> web.Response:
    who, ticket_id, _ = await _begin(request)
    await _execute(request, who, ticket_id, RetryHook(who.username))
    return ok(msg=RETRY_MSG)


async def comment(request: web.Request) -> web.Response:
    who, ticket_id, body = await _begin(request)
    await _execute(request, who, ticket_id, Comment(who.username, _text(body, "suggestion", required=True)))
    return ok()


async def hook_call_back(request: web.Request) -> web.Response:
    who, ticket_id, body = await _begin(request)
    cmd = HookResult(
        actor=HOOK_ACTOR,
        result=_bool(body, "result", required=True),
        msg=_text(body, "msg"),
        fields=_object(body, "field_value"),
    )
    call_id = _text(body, "call_id").strip()
    hooks = context(request).hooks
    found, _, _ = await _usable_ticket(request, who, ticket_id, view=False)  # the actor is the hook
    if hooks is None or found.participant_type != ParticipantType.HOOK or found.is_ended:
        await _execute(request, who, ticket_id, cmd, view=False)  # (the engine refuses a non-hook state)
        return ok()
    await _hook_callback(request, who, found, hooks, call_id, cmd)
    return ok()


async def _hook_callback(
    request: web.Request, who: Caller, found: Ticket, hooks: HookCalls, call_id: str, cmd: HookResult
) -> None:
    """Apply a callback only to a hook call really made and waiting in the ticket's current state
    (and named by `call_id` when given); the call is claimed while its result is applied, so two
    callbacks cannot both apply, and ends "done" (result true) or "failed" (result false)."""
    ctx = context(request)
    refusal = f"no hook call is waiting for ticket {found.id} in state {found.state_id}"
    waiting = await hooks.waiting_for(found.id, found.state_id)
    if waiting is None or (call_id and not hmac.compare_digest(call_id.encode(), waiting.call_id.encode())):
        raise ApiError(refusal, 409)
    worker = f"callback:{secrets.token_hex(6)}"
    if not await hooks.claim_waiting(waiting.id, worker, ctx.clock.now(), CALLBACK_LEASE):
        raise ApiError(refusal, 409)

    def guard(t: Ticket, wf: Workflow, org: Org) -> Rejected | None:
        return (
            None if who.may_use(t.workflow_id) else Rejected(Reason.NO_PERMISSION, who.refusal(t.workflow_id))
        )

    try:
        result = await apply_hook_result(
            ctx.service, ctx.queries, hooks, waiting, worker, WAITING, cmd, guard=guard
        )
    except BaseException:
        await hooks.release(waiting.id, worker)
        raise
    if not isinstance(result, Done):
        await hooks.release(waiting.id, worker)
        if isinstance(result, Rejected) and result.reason == Reason.STALE:
            raise ApiError(refusal, 409)
        raise_for(result)
    now = ctx.clock.now()
    if cmd.result:
        await hooks.mark_done(waiting.id, worker, now)
    else:
        await hooks.mark_failed(waiting.id, worker, now, cmd.msg or "the hook reported a failure")


async def close(request: web.Request) -> web.Response:
    who, ticket_id, body = await _begin(request)
    await _execute(request, who, ticket_id, Close(who.username, _text(body, "suggestion")))
    return ok()


async def retreat(request: web.Request) -> web.Response:
    who, ticket_id, body = await _begin(request)
    await _execute(request, who, ticket_id, Retreat(who.username, _text(body, "suggestion")))
    return ok()


async def _begin(request: web.Request) -> tuple[Caller, int, dict[str, Any]]:
    """The caller, the ticket id of the path and the JSON body: the start of every ticket route."""
    who = caller(request)
    ticket_id = _ticket_id(request)
    return who, ticket_id, await _json(request)


_TICKET = r"/tickets/{ticket_id:[0-9]+}"
_ACTIONS: tuple[tuple[str, Handler], ...] = (
    ("accept", accept),
    ("deliver", deliver),
    ("add_node", add_node),
    ("add_node_end", add_node_end),
    ("retry_script", retry_script),
    ("comments", comment),
    ("hook_call_back", hook_call_back),
    ("close", close),
    ("retreat", retreat),
)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/tickets", create_ticket)
    router.add_patch(_TICKET, handle_ticket)
    router.add_delete(_TICKET, delete_ticket)
    router.add_put(_TICKET + "/state", change_state)
    router.add_patch(_TICKET + "/fields", update_fields)
    for name, handler in _ACTIONS:
        router.add_post(f"{_TICKET}/{name}", handler)
