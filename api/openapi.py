"""The OpenAPI 3.0.3 document of the loonflow v1.0 dialect, served at GET /api/openapi.json.

`openapi_document()` describes every route the /api/v1.0 sub-application registers (tests walk the
router and compare both ways), its query, path and body parameters as loonflow's ticket API
document (seed 001) names them, the two authentication schemes, and the response envelope per
operation: ``{"code": 0, "msg": str, "data": <the route's shape>}`` on success, ``{"code": -1,
"msg": str, "data": {}}`` on failure. Every response schema is a ``oneOf`` of the two, so one schema
check validates successes and failures alike.

The document is built once per process and returned as a fresh deep copy on each call.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from aiohttp import web

Schema = dict[str, Any]

PREFIX = "/api/v1.0"
OPENAPI_PATH = "/api/openapi.json"
STRICT_STATUSES: dict[str, str] = {
    "400": "Strict-status mode only: bad input (a missing, malformed or unknown parameter; a "
    "transition, state or field the engine refuses).",
    "401": "Strict-status mode only: authentication failed (missing header, unknown app, bad "
    "signature, timestamp outside the window, reused nonce).",
    "403": "Strict-status mode only: not allowed (unknown or inactive user, not a participant, no "
    "permission, app may not use the workflow).",
    "404": "Strict-status mode only: the ticket, workflow or state does not exist.",
    "409": "Strict-status mode only: conflict with the ticket's current state (already handled, "
    "ended, must accept first, in add-node, stale).",
    "413": "Strict-status mode only: request body too large.",
}

DESCRIPTION = """\
ticketbot serves loonflow's classic ticket API (loonflow 1.x / 2.x, integer ids) over its own
workflow engine: the same routes, parameters and response shapes, so an existing loonflow client
works unchanged.

## Envelope

Every answer is JSON `{"code": 0 | -1, "msg": "...", "data": ...}`. `code` 0 is success and `data`
has the route's shape; `code` -1 is a failure, `msg` says exactly what is wrong and `data` is `{}`.
Lists answer `data: {"value": [...], "page": N, "per_page": N, "total": N}`.

## HTTP status policy

Like loonflow, every answer is **HTTP 200**, successes and failures alike: read `code`. With strict
statuses on (`TICKETBOT_API_STRICT_STATUS=1`) a failure carries a 4xx status as well (the body is
the same envelope): **400** bad input, **401** authentication failed, **403** not allowed (unknown
or inactive user, not a participant, no permission, app may not use the workflow), **404** unknown
ticket, workflow or state, **409** conflict with the ticket's current state (already handled,
ended, must accept first, in add-node, stale), **413** request body too large; an unknown path
under /api/v1.0 is a 404 and a method a path does not serve a 405, in the same envelope. A 5xx is a
bug: it is logged with its trace and the answer never carries one.

## Authentication

Every /api/v1.0 route needs one of two schemes; the `username` header names the acting user.

1. loonflow's: headers `appname`, `timestamp` (epoch seconds, 10 digits), `signature` =
   lowercase hex md5(timestamp + app_token), `username`. Replayable within the window and it
   does not sign the request, so an app may be configured to refuse it (`strong_auth`).
2. ticketbot's HMAC-SHA256 (used whenever `x-ticketbot-signature` is present): headers `appname`,
   `timestamp`, `nonce` (8 to 64 characters of `A-Z a-z 0-9 _ -`, fresh for every request),
   `username` and `x-ticketbot-signature` = lowercase hex HMAC-SHA256, keyed with the app's
   `hmac_secret` (its token when none is set), of the six lines
   `METHOD\\nPATH_QS\\nTIMESTAMP\\nNONCE\\nUSERNAME\\nBODY_SHA256` (PATH_QS: the request target
   as sent, path and raw query; BODY_SHA256: lowercase hex sha256 of the raw body, of b"" when
   there is none). A nonce is accepted once per app within the window.

Both accept a timestamp within +-120 seconds of the server clock. A refusal answers
`{"code": -1, "msg": "permission check fail: <why>", "data": {}}` (401, or 403 for an unknown or
inactive user, in strict-status mode).

## Parameters

Integers in JSON bodies may be JSON numbers or numeric strings (never booleans); an absent, null or
blank optional parameter takes its default; booleans (`from_admin`, `result`) are JSON booleans,
0/1 or "0"/"1"/"true"/"false". Create, handle and `PATCH /fields` take custom field values at the
top level of the body, as loonflow does; unlike loonflow, a key that is neither a parameter nor a
field of the workflow is refused ("unknown field ..."). Times are "YYYY-MM-DD HH:MM:SS" in UTC.
"""

# --- schema helpers -------------------------------------------------------------------------------

INT: Schema = {"type": "integer"}
STR: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
ANY: Schema = {"description": "any JSON value"}
FREE_OBJECT: Schema = {"type": "object", "additionalProperties": True}
TIME: Schema = {
    "type": "string",
    "pattern": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$",
    "example": "2018-05-15 07:16:38",
}
TIME_OR_EMPTY: Schema = {
    "type": "string",
    "pattern": r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})?$",
    "description": '"" where ticketbot keeps no such time (states, departments)',
}
ACT_STATE: Schema = {
    "type": "integer",
    "enum": [0, 1, 2, 3, 4, 5],
    "description": "0 draft, 1 ongoing, 2 rejected, 3 withdrawn, 4 finished, 5 closed",
}
PARTICIPANT_TYPE: Schema = {
    "type": "integer",
    "enum": [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11],
    "description": "0 none, 1 person, 2 several people, 3 department, 4 role, 5 variable, 6 script "
    "(refused by ticketbot), 7 ticket field, 8 parent-ticket field, 10 hook, 11 external lookup",
}
ATTRIBUTE_TYPE: Schema = {"type": "integer", "enum": [1, 2, 3], "description": "1 agree, 2 reject, 3 other"}
INTERVENE_TYPE: Schema = {
    "type": "integer",
    "enum": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
    "description": "0 transition, 1 deliver, 2 add_node, 3 add_node_end, 4 accept, 5 comment, "
    "6 delete, 7 close, 8 alter state, 9 hook, 10 retreat; ticketbot's: 11 field update, 12 reopen, "
    "13 evaluate (rating), 14 CC added",
}
FIELD_TYPE: Schema = {
    "type": "integer",
    "enum": [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 58, 60, 70, 80],
    "description": "5 string, 10 int, 15 float, 20 bool, 25 date, 30 datetime, 35 radio, 40 checkbox, "
    "45 select, 50 multi-select, 55 textarea, 58 rich text, 60 user, 70 multi-user, 80 attachment",
}
FIELD_ACCESS: Schema = {
    "type": "integer",
    "enum": [1, 2, 3],
    "description": "1 read-only, 2 required, 3 optional",
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(props: dict[str, Schema], *, required: list[str] | None = None, description: str = "") -> Schema:
    """An object with these properties, all required unless `required` says which; more allowed."""
    out: Schema = {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
        "additionalProperties": True,
    }
    if description:
        out["description"] = description
    return out


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def page_of(item: Schema) -> Schema:
    return obj({"value": array(item), "page": INT, "per_page": INT, "total": INT})


def values_of(item: Schema) -> Schema:
    return obj({"value": array(item)})


def ref_if_named(schema: Schema | str) -> Schema:
    return ref(schema) if isinstance(schema, str) else schema


# --- components -----------------------------------------------------------------------------------


def _components() -> dict[str, Any]:
    state_brief = obj({"state_name": STR, "state_id": INT})
    participant_brief = obj(
        {
            "participant_type_id": PARTICIPANT_TYPE,
            "participant": {**STR, "description": "comma-joined usernames of the people who may act now"},
            "participant_name": STR,
            "participant_type_name": STR,
            "participant_alias": STR,
        }
    )
    log_participant = obj(
        {
            "participant_email": STR,
            "participant_alias": STR,
            "participant_phone": STR,
            "participant": STR,
            "participant_type_id": PARTICIPANT_TYPE,
        }
    )
    schemas: dict[str, Schema] = {
        "Failure": {
            "type": "object",
            "description": "A failure: code -1, msg says why, data {}.",
            "properties": {
                "code": {"type": "integer", "enum": [-1]},
                "msg": {"type": "string", "minLength": 1},
                "data": {"type": "object", "maxProperties": 0},
            },
            "required": ["code", "msg", "data"],
            "additionalProperties": False,
        },
        "Envelope": {
            "type": "object",
            "description": "The loonflow envelope every route answers with.",
            "properties": {"code": {"type": "integer", "enum": [0, -1]}, "msg": STR, "data": ANY},
            "required": ["code", "msg", "data"],
        },
        "Empty": {"type": "object", "maxProperties": 0, "description": "{}"},
        "TicketListItem": obj(
            {
                "participant_info": participant_brief,
                "gmt_created": TIME,
                "parent_ticket_state_id": INT,
                "state": state_brief,
                "creator": STR,
                "parent_ticket_id": INT,
                "title": STR,
                "gmt_modified": TIME,
                "workflow": obj({"workflow_name": STR, "workflow_id": INT}),
                "sn": STR,
                "id": INT,
                "act_state_id": ACT_STATE,
            }
        ),
        "Department": obj(
            {
                "id": INT,
                "name": STR,
                "leader": STR,
                "approver": {**STR, "description": "comma-joined usernames"},
                "parent_dept_id": INT,
                "parent_dept_info": obj({"parent_dept_name": STR, "parent_dept_id": INT}),
                "leader_info": obj({"leader_username": STR, "leader_alias": STR}),
                "approver_info": array(obj({"approver_name": STR, "approver_alias": STR})),
                "creator_info": obj({"creator_id": INT, "creator_alias": STR}),
                "label": ANY,
                "is_deleted": BOOL,
                "creator": STR,
                "gmt_created": TIME_OR_EMPTY,
                "gmt_modified": TIME_OR_EMPTY,
            }
        ),
        "CreatorInfo": obj(
            {
                "email": STR,
                "alias": STR,
                "dept_info": ref("Department"),
                "username": STR,
                "phone": STR,
                "is_active": BOOL,
            }
        ),
        "Field": obj(
            {
                "field_key": STR,
                "field_name": STR,
                "field_type_id": FIELD_TYPE,
                "field_value": ANY,
                "field_attribute": FIELD_ACCESS,
                "order_id": INT,
                "default_value": ANY,
                "description": STR,
                "field_template": STR,
                "boolean_field_display": FREE_OBJECT,
                "field_choice": FREE_OBJECT,
                "label": FREE_OBJECT,
                "placeholder": STR,
            },
            description="A ticket field (built-in or custom) with its value and the viewer's access.",
        ),
        "State": obj(
            {
                "id": INT,
                "creator": STR,
                "gmt_created": TIME_OR_EMPTY,
                "gmt_modified": TIME_OR_EMPTY,
                "is_deleted": BOOL,
                "name": STR,
                "workflow_id": INT,
                "is_hidden": BOOL,
                "order_id": INT,
                "type_id": {"type": "integer", "enum": [0, 1, 2], "description": "0 normal, 1 start, 2 end"},
                "enable_retreat": BOOL,
                "remember_last_man_enable": BOOL,
                "participant_type_id": PARTICIPANT_TYPE,
                "participant": {
                    **STR,
                    "description": "usernames / department / role / variable; for a hook a JSON string "
                    "of {hook_url, wait, extra_info} (never the token)",
                },
                "distribute_type_id": {
                    "type": "integer",
                    "enum": [1, 2, 3, 4],
                    "description": "1 accept first, 2 direct, 3 random, 4 all must process",
                },
                "participant_info": participant_brief,
                "state_field_str": {"type": "object", "additionalProperties": FIELD_ACCESS},
                "label": FREE_OBJECT,
            },
            required=[
                "id",
                "creator",
                "gmt_created",
                "gmt_modified",
                "name",
                "workflow_id",
                "is_hidden",
                "order_id",
                "type_id",
                "enable_retreat",
                "remember_last_man_enable",
                "participant_type_id",
                "participant",
                "distribute_type_id",
                "state_field_str",
                "label",
            ],
            description="A workflow state, as loonflow's state record (state_field_str and label as "
            "objects). The workflow routes add participant_info; a ticket's state_info adds is_deleted.",
        ),
        "TicketDetail": obj(
            {
                "workflow_id": INT,
                "in_add_node": BOOL,
                "gmt_created": TIME,
                "id": INT,
                "relation": {**STR, "description": "comma-joined usernames of everyone involved"},
                "title": STR,
                "sn": STR,
                "parent_ticket_id": INT,
                "creator": STR,
                "script_run_last_result": BOOL,
                "gmt_modified": TIME,
                "act_state_id": ACT_STATE,
                "multi_all_person": {
                    **STR,
                    "description": 'JSON string: {username: {} | {transition_id, transition_name}}; "{}" '
                    "outside an all-must-process state",
                },
                "creator_info": ref("CreatorInfo"),
                "participant_type_id": PARTICIPANT_TYPE,
                "state_id": INT,
                "is_end": BOOL,
                "is_deleted": BOOL,
                "field_list": array(ref("Field")),
                "parent_ticket_state_id": INT,
                "add_node_man": STR,
                "participant": STR,
                "state_info": ref("State"),
            }
        ),
        "TicketTransition": obj(
            {
                "transition_name": STR,
                "field_require_check": BOOL,
                "transition_id": {
                    **INT,
                    "description": "0 for the accept (接单) and add-node (完成) buttons",
                },
                "is_accept": BOOL,
                "in_add_node": BOOL,
                "enable_alert": BOOL,
                "alert_text": STR,
                "attribute_type_id": ATTRIBUTE_TYPE,
            },
            required=["transition_name", "field_require_check", "transition_id", "is_accept", "in_add_node"],
        ),
        "FlowLog": obj(
            {
                "id": INT,
                "ticket_id": INT,
                "state": state_brief,
                "state_id": INT,
                "transition": obj(
                    {"transition_name": STR, "transition_id": INT, "attribute_type_id": ATTRIBUTE_TYPE},
                    required=["transition_name", "transition_id"],
                ),
                "participant_info": log_participant,
                "participant": STR,
                "participant_type_id": PARTICIPANT_TYPE,
                "intervene_type_id": INTERVENE_TYPE,
                "suggestion": STR,
                "gmt_created": TIME,
                "gmt_modified": TIME,
                "ticket_data": {
                    **FREE_OBJECT,
                    "description": "only with ticket_data=1: the ticket's fields when the entry was made",
                },
            },
            required=[
                "id",
                "ticket_id",
                "state",
                "state_id",
                "transition",
                "participant_info",
                "participant",
                "participant_type_id",
                "intervene_type_id",
                "suggestion",
                "gmt_created",
                "gmt_modified",
            ],
        ),
        "FlowStep": obj(
            {
                "state_id": INT,
                "state_name": STR,
                "order_id": INT,
                "state_flow_log_list": array(ref("FlowLog")),
            }
        ),
        "Person": obj({"alias": STR, "username": STR, "phone": STR, "email": STR}),
        "Delivery": obj(
            {
                "id": INT,
                "recipient": obj({"username": STR, "alias": STR}),
                "platform": {**STR, "description": "wecom or dingtalk"},
                "address": {**STR, "description": "the recipient's id on the platform"},
                "kind": {"type": "string", "enum": ["pending", "urge", "cc", "notice"]},
                "kind_name": {**STR, "description": "待处理 / 催办 / 抄送 / 通知"},
                "what": {**STR, "description": "the note, or a summary of the card"},
                "result": {**STR, "description": "what the card was turned into when closed"},
                "status": {"type": "string", "enum": ["pending", "sent", "cancelled", "dead"]},
                "status_name": STR,
                "attempts": {**INT, "description": "failed attempts since the last success"},
                "last_error": {**STR, "description": "the platform's last error, credentials masked"},
                "msg_id": {**STR, "description": "the platform's message id once sent"},
                "created_at": {**STR, "description": 'UTC "YYYY-MM-DD HH:MM:SS"'},
                "due_at": {**STR, "description": 'when a pending one is sent next; "" otherwise'},
                "sent_at": {**STR, "description": '"" until sent'},
                "closed_at": {**STR, "description": 'when the card became a result card; "" if not'},
            }
        ),
    }
    return {"schemas": schemas, "securitySchemes": _security_schemes()}


def _security_schemes() -> dict[str, Schema]:
    def header(name: str, description: str) -> Schema:
        return {"type": "apiKey", "in": "header", "name": name, "description": description}

    return {
        "appname": header("appname", "The API app's name (config/apps.yaml)."),
        "timestamp": header("timestamp", "Epoch seconds (10 digits), within +-120 s of the server clock."),
        "signature": header("signature", "loonflow's scheme: lowercase hex md5(timestamp + app_token)."),
        "username": header("username", "The acting user (a username of the directory)."),
        "nonce": header(
            "nonce", "HMAC scheme: 8 to 64 characters of A-Z a-z 0-9 _ -, fresh for every request."
        ),
        "hmacSignature": header(
            "x-ticketbot-signature",
            "HMAC scheme: lowercase hex HMAC-SHA256 (key: the app's hmac_secret, else its token) of "
            "METHOD, PATH_QS, TIMESTAMP, NONCE, USERNAME and BODY_SHA256 joined by newlines.",
        ),
    }


SECURITY: list[dict[str, list[str]]] = [
    {"appname": [], "timestamp": [], "signature": [], "username": []},
    {"appname": [], "timestamp": [], "nonce": [], "username": [], "hmacSignature": []},
]


# --- operations -----------------------------------------------------------------------------------


def _envelope(data: Schema) -> Schema:
    return {
        "type": "object",
        "properties": {"code": {"type": "integer", "enum": [0]}, "msg": STR, "data": data},
        "required": ["code", "msg", "data"],
        "additionalProperties": False,
    }


def _responses(data: Schema, description: str, extra: dict[str, str] | None = None) -> dict[str, Any]:
    failure = {"application/json": {"schema": ref("Failure")}}
    out: dict[str, Any] = {
        "200": {
            "description": f"code 0: {description}; code -1: a failure (data {{}}). Always 200 unless "
            "strict statuses are on.",
            "content": {"application/json": {"schema": {"oneOf": [_envelope(data), ref("Failure")]}}},
        }
    }
    for status, text in {**STRICT_STATUSES, **(extra or {})}.items():
        out[status] = {"description": text, "content": failure}
    return out


def _param(where: str, name: str, schema: Schema, description: str, *, required: bool = False) -> Schema:
    out: Schema = {
        "name": name,
        "in": where,
        "required": required,
        "description": description,
        "schema": schema,
    }
    if schema.get("type") == "array":
        out["style"] = "form"
        out["explode"] = False
    return out


def query(name: str, schema: Schema, description: str, *, required: bool = False) -> Schema:
    return _param("query", name, schema, description, required=required)


def path(name: str, description: str) -> Schema:
    return _param("path", name, {"type": "integer", "minimum": 1}, description, required=True)


TICKET_ID = path("ticket_id", "The ticket's id.")
WORKFLOW_ID = path("workflow_id", "The workflow's id.")
STATE_ID = path("state_id", "The state's id (state ids are unique across workflows).")
PAGE = query(
    "page", {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1}, "Page number, from 1."
)
PER_PAGE = query(
    "per_page",
    {"type": "integer", "minimum": 1, "default": 10},
    "Items per page; more than 100 is served as 100 (the answer's per_page says what was used).",
)
WF_PAGE = query("page", {"type": "integer", "minimum": 1, "default": 1}, "Page number, from 1.")
WF_PER_PAGE = query(
    "per_page", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10}, "Items per page."
)
SEARCH = query(
    "search_value",
    STR,
    "Only items whose name (custom fields: key, name or description) contains this, any case.",
)


def id_list(maximum: int, max_items: int) -> Schema:
    return {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": maximum},
        "maxItems": max_items,
    }


SMALL_IDS = id_list(2**31 - 1, 1000)
TICKET_IDS = id_list(2**63 - 1, 1000)


def body(props: dict[str, Schema], *, required: list[str], custom_fields: bool = False) -> Schema:
    schema: Schema = {"type": "object", "properties": props, "additionalProperties": custom_fields}
    if required:
        schema["required"] = required
    if custom_fields:
        schema["additionalProperties"] = {
            "description": "a custom field value, keyed by the field's key (see the workflow's custom_fields)"
        }
    return {"required": bool(required), "content": {"application/json": {"schema": schema}}}


SUGGESTION: Schema = {**STR, "description": "处理意见: a free-text remark recorded in the flow log."}
INT_PARAM: Schema = {"type": "integer", "description": "an integer (a numeric string is accepted too)"}


def operation(
    op_id: str,
    summary: str,
    data: Schema | str,
    data_description: str,
    *,
    tag: str = "tickets",
    parameters: list[Schema] | None = None,
    request_body: Schema | None = None,
    description: str = "",
    extra_statuses: dict[str, str] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "tags": [tag],
        "responses": _responses(ref_if_named(data), data_description, extra_statuses),
    }
    if description:
        out["description"] = description
    if parameters:
        out["parameters"] = parameters
    if request_body is not None:
        out["requestBody"] = request_body
    return out


def _ticket_paths() -> dict[str, dict[str, Any]]:
    t = f"{PREFIX}/tickets"
    ti = f"{t}/{{ticket_id}}"
    empty = ref("Empty")
    list_params = [
        query("sn", STR, "SN prefix: tickets whose sn starts with this."),
        query("title", STR, "Title contains this (fuzzy)."),
        query(
            "create_start",
            STR,
            'Created at or after: "YYYY-MM-DD HH:MM:SS", "YYYY-MM-DD HH:MM" or "YYYY-MM-DD" (UTC '
            "unless an ISO offset is given). Without create_start and create_end only the tickets "
            "of the last 365 days are listed.",
        ),
        query(
            "create_end",
            STR,
            "Created at or before, same formats; a date alone means the whole day.",
        ),
        query("workflow_ids", SMALL_IDS, 'Workflow ids, comma-separated: "1,2,3".'),
        query("state_ids", SMALL_IDS, 'State ids, comma-separated: "1,2,3".'),
        query("ticket_ids", TICKET_IDS, 'Ticket ids, comma-separated: "1,2,3" (at most 1000).'),
        query(
            "reverse",
            {"type": "string", "enum": ["0", "1"], "default": "1"},
            '"1" (default): newest first; "0": oldest first.',
        ),
        PAGE,
        PER_PAGE,
        query("act_state_id", ACT_STATE, "Progress: " + ACT_STATE["description"] + "."),
        query(
            "parent_ticket_id",
            {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
            "Sub-tickets of this ticket (0 or absent: no filter).",
        ),
        query(
            "parent_ticket_state_id",
            {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
            "Sub-tickets of this parent state (0 or absent: no filter).",
        ),
        query(
            "category",
            {"type": "string", "enum": ["all", "owner", "duty", "relation", "worked"]},
            "all: every ticket the user may see; owner: created by the user; duty: waiting for the "
            "user; relation: the user created, handled or was once asked to handle it (history only); "
            "worked: the user handled it.",
            required=True,
        ),
    ]
    return {
        t: {
            "get": operation(
                "listTickets",
                "List tickets (获取工单列表)",
                page_of(ref("TicketListItem")),
                "a page of tickets",
                parameters=list_params,
            ),
            "post": operation(
                "createTicket",
                "Create a ticket (新建工单)",
                obj({"ticket_id": INT}),
                "the new ticket's id",
                request_body=body(
                    {
                        "workflow_id": INT_PARAM,
                        "transition_id": {
                            **INT_PARAM,
                            "description": "a transition of the start state (GET /workflows/{id}/init_state)",
                        },
                        "parent_ticket_id": {**INT_PARAM, "description": "the parent, for a sub-ticket"},
                        "parent_ticket_state_id": {
                            **INT_PARAM,
                            "description": "the parent's state the sub-ticket belongs to (with parent_ticket_id)",
                        },
                        "suggestion": SUGGESTION,
                        "title": {**STR, "description": "the title (else the workflow's title template)"},
                    },
                    required=["workflow_id", "transition_id"],
                    custom_fields=True,
                ),
                description="Custom field values go at the top level of the body; the start state's "
                "required fields must be given.",
            ),
        },
        f"{t}/states": {
            "get": operation(
                "ticketStates",
                "States of several tickets (批量获取工单状态)",
                {
                    "type": "object",
                    "description": "ticket id (as a string key) -> its state",
                    "additionalProperties": obj({"state_id": INT, "state_name": STR}),
                },
                "each listed ticket's state",
                parameters=[
                    query(
                        "ticket_ids",
                        {**TICKET_IDS, "minItems": 1, "maxItems": 100},
                        'Ticket ids, comma-separated: "1,2,3" (1 to 100). Tickets the user may not see '
                        "are left out of the answer.",
                        required=True,
                    )
                ],
            )
        },
        ti: {
            "get": operation(
                "getTicket",
                "Ticket detail (获取工单详情)",
                obj({"value": ref("TicketDetail")}),
                "the ticket",
                parameters=[TICKET_ID],
            ),
            "patch": operation(
                "handleTicket",
                "Handle a ticket: take a transition (处理工单)",
                empty,
                "{}",
                parameters=[TICKET_ID],
                request_body=body(
                    {"transition_id": INT_PARAM, "suggestion": SUGGESTION},
                    required=["transition_id"],
                    custom_fields=True,
                ),
                description="Custom field values go at the top level of the body; the current state's "
                "required fields must be given unless the transition skips the check.",
            ),
            "delete": operation(
                "deleteTicket",
                "Delete a ticket (workflow admins and super admins)",
                empty,
                "{}",
                parameters=[TICKET_ID],
                request_body=body({"suggestion": SUGGESTION}, required=[]),
            ),
        },
        f"{ti}/transitions": {
            "get": operation(
                "ticketTransitions",
                "What the user may do now (获取工单可以做的操作)",
                values_of(ref("TicketTransition")),
                "the buttons: the state's transitions, or only 接单 (accept first), or only 完成 (add-node)",
                parameters=[TICKET_ID],
            )
        },
        f"{ti}/flowlogs": {
            "get": operation(
                "ticketFlowLogs",
                "Flow log (获取工单流转记录)",
                page_of(ref("FlowLog")),
                "a page of flow-log entries",
                parameters=[
                    TICKET_ID,
                    query(
                        "ticket_data",
                        {"type": "string", "enum": ["0", "1"], "default": "0"},
                        '"1": each entry carries ticket_data, the ticket\'s fields at that time.',
                    ),
                    query(
                        "desc",
                        {"type": "string", "enum": ["0", "1"], "default": "1"},
                        '"1" (default): newest first; "0": oldest first.',
                    ),
                    PAGE,
                    PER_PAGE,
                ],
            )
        },
        f"{ti}/flowsteps": {
            "get": operation(
                "ticketFlowSteps",
                "Steps with their log entries (工单处理步骤记录)",
                obj({"current_state_id": INT, "value": array(ref("FlowStep"))}),
                "every state not hidden, in order, with its entries",
                parameters=[TICKET_ID],
            )
        },
        f"{ti}/participant_info": {
            "get": operation(
                "ticketParticipants",
                "The people who may act now (工单当前的参与人详情)",
                obj({"participant_username_list": array(STR), "participant_info_list": array(ref("Person"))}),
                "the current participants",
                parameters=[TICKET_ID],
            )
        },
        f"{ti}/state": {
            "put": operation(
                "changeTicketState",
                "Force the ticket into a state (修改工单状态; interveners and admins)",
                empty,
                "{}",
                parameters=[TICKET_ID],
                request_body=body({"state_id": INT_PARAM, "suggestion": SUGGESTION}, required=["state_id"]),
            )
        },
        f"{ti}/fields": {
            "patch": operation(
                "updateTicketFields",
                "Change field values (修改工单字段的值)",
                empty,
                "{}",
                parameters=[TICKET_ID],
                request_body={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "description": "field key -> new value (at least one), e.g. "
                                '{"title": "..."}; plus an optional suggestion',
                                "properties": {"suggestion": SUGGESTION},
                                "additionalProperties": {"description": "the field's new value"},
                                "minProperties": 1,
                            }
                        }
                    },
                },
            )
        },
        f"{ti}/accept": {
            "post": operation("acceptTicket", "Accept the ticket (接单)", empty, "{}", parameters=[TICKET_ID])
        },
        f"{ti}/deliver": {
            "post": operation(
                "deliverTicket",
                "Hand the ticket over to someone else (转交)",
                {"type": "boolean", "enum": [True], "description": "true, as loonflow answers"},
                "true",
                parameters=[TICKET_ID],
                request_body=body(
                    {
                        "target_username": STR,
                        "suggestion": SUGGESTION,
                        "from_admin": {
                            "description": "an admin's forced deliver: true/false, 0/1 or "
                            '"0"/"1"/"true"/"false"',
                            "oneOf": [
                                BOOL,
                                {"type": "integer", "enum": [0, 1]},
                                {"type": "string", "enum": ["0", "1", "true", "false"]},
                            ],
                        },
                    },
                    required=["target_username"],
                ),
            )
        },
        f"{ti}/add_node": {
            "post": operation(
                "addNode",
                "Consult someone first (加签)",
                empty,
                "{}",
                parameters=[TICKET_ID],
                request_body=body(
                    {"target_username": STR, "suggestion": SUGGESTION}, required=["target_username"]
                ),
            )
        },
        f"{ti}/add_node_end": {
            "post": operation(
                "addNodeEnd",
                "Finish the consultation (加签处理完成)",
                empty,
                "{}",
                parameters=[TICKET_ID],
                request_body=body({"suggestion": SUGGESTION}, required=[]),
            )
        },
        f"{ti}/retry_script": {
            "post": operation(
                "retryScript",
                "Retry the state's hook (重试工单脚本/hook任务)",
                empty,
                '{}, msg "Ticket script or hook retry start successful"',
                parameters=[TICKET_ID],
                description="Queues a new hook call (delivered with retries) and answers at once; "
                "ticketbot never runs server-side scripts.",
            )
        },
        f"{ti}/comments": {
            "post": operation(
                "commentTicket",
                "Add a comment (新增工单评论)",
                empty,
                "{}",
                parameters=[TICKET_ID],
                request_body=body({"suggestion": {**SUGGESTION, "minLength": 1}}, required=["suggestion"]),
            )
        },
        f"{ti}/hook_call_back": {
            "post": operation(
                "hookCallBack",
                "A hook's result (工单hook回调)",
                empty,
                "{}",
                parameters=[TICKET_ID],
                request_body=body(
                    {
                        "result": {
                            "description": "whether the hook's task succeeded: true/false, 0/1 or "
                            '"0"/"1"/"true"/"false"',
                            "oneOf": [
                                BOOL,
                                {"type": "integer", "enum": [0, 1]},
                                {"type": "string", "enum": ["0", "1", "true", "false"]},
                            ],
                        },
                        "msg": {**STR, "description": "the hook's output, recorded in the flow log"},
                        "field_value": {**FREE_OBJECT, "description": "field key -> value to set"},
                        "call_id": {
                            **STR,
                            "description": "optional: the call_id the hook was POSTed; when given, "
                            "it must be the waiting call's",
                        },
                    },
                    required=["result"],
                ),
                description="Accepted only while a hook call that was really made (a wait: true hook "
                "that answered 2xx) waits in the ticket's current state (participant type 10); else "
                'refused with "no hook call is waiting for ticket N in state X" (409) and nothing '
                'changes. Ends that call ("done"; "failed" for a false result, which also marks '
                "script_run_last_result false).",
            )
        },
        f"{ti}/close": {
            "post": operation(
                "closeTicket",
                "Close the ticket (强制关闭工单)",
                empty,
                "{}",
                parameters=[TICKET_ID],
                request_body=body({"suggestion": SUGGESTION}, required=[]),
            )
        },
        f"{ti}/retreat": {
            "post": operation(
                "retreatTicket",
                "Withdraw the ticket (撤回工单; the creator, where the state allows it)",
                empty,
                "{}",
                parameters=[TICKET_ID],
                request_body=body({"suggestion": SUGGESTION}, required=[]),
            )
        },
        f"{ti}/urge": {
            "post": operation(
                "urgeTicket",
                "Urge the current handlers (催办; a ticketbot extension)",
                obj({"urged": {"type": "array", "items": STR}}),
                "the usernames who were sent an urge card",
                parameters=[TICKET_ID],
                request_body=body({"suggestion": SUGGESTION, "note": STR}, required=[]),
                description="Sends each current handler an urge card on their chat platform. One urge per "
                "ticket per 10 minutes and at most 20 tickets per urger per hour (HTTP 429 in strict-status "
                "mode, the message ending with (retry_after=N)); an ended ticket or one nobody can be "
                "reached for is refused (409).",
                extra_statuses={
                    "429": "strict statuses: urged too recently (message ends with (retry_after=N))"
                },
            )
        },
        f"{ti}/deliveries": {
            "get": operation(
                "ticketDeliveries",
                "The ticket's delivery ledger: who was told what, where, when (a ticketbot extension)",
                obj({"value": array(ref("Delivery")), "total": INT}),
                "every delivery of the ticket, oldest first",
                parameters=[TICKET_ID],
                description="Every chat message the ticket caused, one item per person per platform: "
                "pending cards (待处理), urges (催办), CCs (抄送) and notices to the requester, with their "
                "status (pending: not sent yet; sent; cancelled: no longer wanted; dead: given up after "
                "repeated failures), failed attempts and the platform's last error (credentials masked). "
                "Same access as the ticket's detail.",
            )
        },
    }


def _workflow_paths() -> dict[str, dict[str, Any]]:
    w = f"{PREFIX}/workflows"
    wi = f"{w}/{{workflow_id}}"
    return {
        w: {
            "get": operation(
                "listWorkflows",
                "Workflows the app may use",
                page_of(ref("Workflow")),
                "a page of workflows",
                tag="workflows",
                parameters=[
                    WF_PAGE,
                    WF_PER_PAGE,
                    query("name", STR, "Only workflows whose name contains this, any case."),
                ],
            )
        },
        wi: {
            "get": operation(
                "getWorkflow",
                "One workflow",
                ref("Workflow"),
                "the workflow",
                tag="workflows",
                parameters=[WORKFLOW_ID],
            )
        },
        f"{wi}/init_state": {
            "get": operation(
                "workflowInitState",
                "The start state, its fields and transitions (for creating a ticket)",
                ref("InitState"),
                "the start state",
                tag="workflows",
                parameters=[WORKFLOW_ID],
            )
        },
        f"{wi}/states": {
            "get": operation(
                "workflowStates",
                "The workflow's states",
                page_of(ref("State")),
                "the states",
                tag="workflows",
                parameters=[WORKFLOW_ID, WF_PAGE, WF_PER_PAGE, SEARCH],
            )
        },
        f"{wi}/transitions": {
            "get": operation(
                "workflowTransitions",
                "The workflow's transitions",
                page_of(ref("Transition")),
                "the transitions",
                tag="workflows",
                parameters=[WORKFLOW_ID, WF_PAGE, WF_PER_PAGE, SEARCH],
            )
        },
        f"{wi}/custom_fields": {
            "get": operation(
                "workflowCustomFields",
                "The workflow's custom fields",
                page_of(ref("CustomField")),
                "the custom fields",
                tag="workflows",
                parameters=[WORKFLOW_ID, WF_PAGE, WF_PER_PAGE, SEARCH],
            )
        },
        f"{w}/states/{{state_id}}": {
            "get": operation(
                "getState", "One state", ref("State"), "the state", tag="workflows", parameters=[STATE_ID]
            )
        },
    }


def _workflow_components() -> dict[str, Schema]:
    stamps: dict[str, Schema] = {
        "creator": {**STR, "description": 'workflows are YAML files: "admin"'},
        "gmt_created": TIME,
        "gmt_modified": TIME,
    }
    state_ref = obj({"id": INT, "name": STR})
    return {
        "Workflow": obj(
            {
                "id": INT,
                "name": STR,
                "description": STR,
                "notices": STR,
                "view_permission_check": BOOL,
                "limit_expression": {**STR, "description": 'JSON string, "{}"'},
                "display_form_str": {**STR, "description": "JSON string: the field keys shown in lists"},
                "title_template": STR,
                **stamps,
            }
        ),
        "InitState": {
            "allOf": [
                ref("State"),
                obj({"field_list": array(ref("Field")), "transition": array(ref("TicketTransition"))}),
            ],
            "description": "The start state with the fields a new ticket takes (field_attribute 1 "
            "read-only, 2 required, 3 optional) and the transitions create may choose.",
        },
        "Transition": obj(
            {
                "id": INT,
                "name": STR,
                "workflow_id": INT,
                "transition_type_id": {"type": "integer", "enum": [1, 2], "description": "1 normal, 2 timer"},
                "timer": {**INT, "description": "seconds; 0 without a timer"},
                "source_state_id": INT,
                "destination_state_id": INT,
                "condition_expression": {
                    **STR,
                    "description": 'JSON string: [{"expression": "{days} > 3", "target_state_id": N}, ...]',
                },
                "attribute_type_id": ATTRIBUTE_TYPE,
                "field_require_check": BOOL,
                "alert_enable": BOOL,
                "alert_text": STR,
                "source_state_info": state_ref,
                "destination_state_info": state_ref,
                **stamps,
            }
        ),
        "CustomField": obj(
            {
                "workflow_id": INT,
                "field_key": STR,
                "field_name": STR,
                "field_type_id": FIELD_TYPE,
                "order_id": INT,
                "default_value": {**ANY, "description": "the typed default (null when none)"},
                "description": STR,
                "placeholder": STR,
                "field_template": STR,
                "boolean_field_display": FREE_OBJECT,
                "field_choice": FREE_OBJECT,
                "label": FREE_OBJECT,
                **stamps,
            }
        ),
    }


@functools.cache
def _document() -> dict[str, Any]:
    from api.workorder.openapi_doc import TAG, workorder_components, workorder_paths

    components = _components()
    components["schemas"].update(_workflow_components())
    components["schemas"].update(workorder_components())
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "ticketbot: loonflow v1.0 ticket API",
            "version": "1.0",
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0"},
        },
        "servers": [{"url": "/", "description": "this service"}],
        "tags": [
            {"name": "tickets", "description": "Tickets: list, create, read, handle and intervene."},
            {"name": "workflows", "description": "The read side of workflows that clients need."},
            {
                "name": TAG,
                "description": "The work-order open API at /open-api (docs/workorder-api.md): the same "
                'apps and signatures, answers in the {"errcode", "errmsg"} envelope with 4xx refusals.',
            },
        ],
        "security": SECURITY,
        "paths": {**_ticket_paths(), **_workflow_paths(), **workorder_paths()},
        "components": components,
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of the /api/v1.0 dialect (a fresh copy: callers may mutate it)."""
    return copy.deepcopy(_document())


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def add_openapi_route(app: web.Application) -> None:
    """Register GET /api/openapi.json (no authentication) on the main application."""
    app.router.add_get(OPENAPI_PATH, openapi_json)
