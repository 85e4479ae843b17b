"""The open API's part of the OpenAPI document (api.openapi adds these paths and schemas): every
route the /open-api sub-application registers, in the errcode envelope. A success is HTTP 200 with
``{"errcode": 0, "errmsg": "ok", ...the route's keys}``; a refusal a 4xx with ``{"errcode": N,
"errmsg": "..."}`` (schema WorkOrderFailure). Same security schemes as the loonflow routes."""

from __future__ import annotations

from typing import Any

from api.openapi import BOOL, INT, STR, Schema, array, obj, query, ref
from api.workorder.codes import FLOW_NAMES, STATUS_NAMES, ComponentType
from api.workorder.errcodes import ErrCode

PREFIX = "/open-api/workorder"
TAG = "work orders"
FAILURE_STATUSES: dict[str, str] = {
    "400": "40003 a malformed or refused parameter, 41001 a missing one.",
    "401": "40001 authentication failed.",
    "403": "40001 unknown or inactive username; 48002 not allowed.",
    "404": "22301 no such work order (or not yours to see), 22302 unknown template, 22304 unknown chat "
    "record, 22305 unknown customer.",
    "409": "22303 not possible in the order's current state.",
    "413": "40003 request body too large.",
}
NULLABLE_LIST: Schema = {"type": "array", "items": STR, "nullable": True}
ORDER_NO: Schema = {
    "type": "string",
    "description": "19 digits: 1470000000000000000 + the ticket id",
    "example": "1470000000000000042",
}
CONTENT: Schema = obj({"pic": {**NULLABLE_LIST, "description": "picture urls"}, "text": STR})
ATTACHED: Schema = array(
    obj({"type": {"type": "string", "enum": ["image", "video"]}, "url": STR}, description="an attachment")
)


def loose(props: dict[str, Schema]) -> Schema:
    """An object with these (optional) properties."""
    return {"type": "object", "properties": props, "additionalProperties": True}


def _codes(names: dict[Any, str]) -> str:
    return ", ".join(f"{int(k)} {v}" for k, v in names.items())


def workorder_components() -> dict[str, Schema]:
    person = {f"{p}_{k}": STR for p in ("creator", "handler", "to") for k in ("avatar", "id", "name")}
    flow = obj(
        {
            "attached_json": ATTACHED,
            "cc_list": {**NULLABLE_LIST, "description": "staff ids copied with the step; null when none"},
            "content": CONTENT,
            "created_at": INT,
            **person,
            "del_reply_status": BOOL,
            "id": {**INT, "description": "the flow-log entry; 0 for the synthetic 待处理 entry"},
            "is_show": {"type": "integer", "enum": [0, 1]},
            "point": INT,
            "reply_time": INT,
            "to_type": INT,
            "type": {"type": "integer", "description": _codes(dict(FLOW_NAMES))},
            "type_name": STR,
        }
    )
    record = obj(
        {
            "component_id": INT,
            "component_type": {"type": "string", "enum": [str(t) for t in ComponentType]},
            "corp_id": INT,
            "created_at": {**STR, "example": "2021-12-17T19:43:02+08:00"},
            "id": INT,
            "order_no": INT,
            "sort": INT,
            "template_id": INT,
            "title": STR,
            "updated_at": STR,
            "value": STR,
            "values": {
                "nullable": True,
                "description": 'by component type: "" for text-like components, a list of option names '
                "/ staff ids / urls otherwise (null when unset)",
            },
        }
    )
    buttons = obj(
        {
            k: BOOL
            for k in (
                "chat_record",
                "close",
                "comment",
                "deliver",
                "evaluate",
                "preview_flow",
                "reopen",
                "share",
                "update",
            )
        }
    )
    people = {
        f"{p}_{k}": STR for p in ("creator", "handler", "last_handler") for k in ("avatar", "id", "name")
    }
    relation = {
        "relation_avatar": STR,
        "relation_corp_name": STR,
        "relation_id": STR,
        "relation_name": STR,
        "relation_type": {**INT, "description": "1 a customer, 0 none"},
    }
    status: Schema = {"type": "integer", "description": _codes(dict(STATUS_NAMES))}
    work_order = obj(
        {
            "button_operate": buttons,
            "cc_list": array(STR),
            "content": CONTENT,
            "corp_id": STR,
            "created_at": INT,
            **people,
            "deleted": INT,
            "deliver": BOOL,
            "flow_handler": {"type": "integer", "enum": [0, 1]},
            "id": INT,
            "msg_list": array(STR),
            "order_no": ORDER_NO,
            "processing_flows": array(ref("WorkOrderFlow")),
            **relation,
            "reopen": BOOL,
            "stage_name": STR,
            "status": status,
            "template_id": INT,
            "template_step": INT,
            "template_title": STR,
            "title": STR,
            "total_time": INT,
            "updated_at": INT,
            "work_order_component_record_list": array(ref("WorkOrderComponentRecord")),
        }
    )
    row = obj(
        {
            "id": INT,
            "order_no": ORDER_NO,
            "template_id": INT,
            "template_title": STR,
            "flow_handler": INT,
            "template_step": INT,
            "title": STR,
            "relation_type": INT,
            "relation_id": STR,
            "status": status,
            "handler_id": STR,
            "last_handler_id": STR,
            "creator_id": STR,
            "created_at": INT,
            "updated_at": INT,
            "total_time": INT,
            "content": CONTENT,
        }
    )
    option = obj({"option_name": STR, "option_img_src": STR})
    component = obj(
        {
            "component_id": INT,
            "component_type": STR,
            "key": STR,
            "title": STR,
            "sort": INT,
            "required": BOOL,
            "editable": BOOL,
            "config": obj(
                {
                    "option_list": array(option),
                    "input_type": STR,
                    "placeholder": STR,
                    "description": STR,
                    "default_value": {"nullable": True, "description": "as the component's value / values"},
                    "enable_mark_tag": BOOL,
                    "multiple": BOOL,
                }
            ),
        }
    )
    template = obj(
        {
            "id": INT,
            "title": STR,
            "description": STR,
            "template_type": {"type": "integer", "enum": [1, 2], "description": "1 常规流程, 2 自动化工单"},
            "template_type_name": STR,
            "status": INT,
            "count": INT,
            "template_stage": array(obj({"step": INT, "stage_name": STR, "state_id": INT, "is_end": BOOL})),
            "component_list": array(component),
        }
    )
    codes = sorted(int(c) for c in ErrCode if c != ErrCode.OK)
    return {
        "WorkOrderFailure": {
            "type": "object",
            "description": "A refusal: errcode (see docs/workorder-api.md) and what is wrong.",
            "properties": {
                "errcode": {"type": "integer", "enum": codes},
                "errmsg": {"type": "string", "minLength": 1},
            },
            "required": ["errcode", "errmsg"],
            "additionalProperties": False,
        },
        "WorkOrder": work_order,
        "WorkOrderFlow": flow,
        "WorkOrderComponentRecord": record,
        "WorkOrderListRow": row,
        "WorkOrderTemplate": template,
    }


def _success(props: dict[str, Schema]) -> Schema:
    return {
        "type": "object",
        "properties": {
            "errcode": {"type": "integer", "enum": [0]},
            "errmsg": {"type": "string", "enum": ["ok"]},
            **props,
        },
        "required": ["errcode", "errmsg", *props],
        "additionalProperties": False,
    }


def _operation(
    op_id: str,
    summary: str,
    props: dict[str, Schema],
    *,
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
    description: str = "",
) -> dict[str, Any]:
    failure = {"application/json": {"schema": ref("WorkOrderFailure")}}
    out: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "tags": [TAG],
        "responses": {
            "200": {"description": "errcode 0", "content": {"application/json": {"schema": _success(props)}}},
            **{
                status: {"description": text, "content": failure} for status, text in FAILURE_STATUSES.items()
            },
        },
    }
    if description:
        out["description"] = description
    if parameters:
        out["parameters"] = parameters
    if body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return out


def _body(props: dict[str, Schema], required: list[str]) -> Schema:
    schema: Schema = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


STAFF_IDS: Schema = {**array(STR), "description": "staff ids: WeCom userids or usernames"}
NOTE: dict[str, Schema] = {
    "order_no": ORDER_NO,
    "content": loose({"text": STR, "pic": array(STR)}),
    "is_show": {"type": "integer", "enum": [0, 1], "description": "1: the customer may see it"},
    "attached_json": ATTACHED,
}
COMPONENTS: Schema = array(
    loose({"component_id": INT, "key": STR, "value": STR, "values": {"description": "a list, or a string"}})
)
DONE = {"order_no": ORDER_NO}


def workorder_paths() -> dict[str, dict[str, Any]]:
    p = PREFIX
    order_param = query("order_no", ORDER_NO, "The work order.", required=True)
    return {
        f"{p}/detail": {
            "get": _operation(
                "workOrderDetail",
                "One work order, as the viewer may see it",
                {"work_order": ref("WorkOrder")},
                parameters=[order_param],
            )
        },
        f"{p}/list": {
            "get": _operation(
                "workOrderList",
                "The work orders the caller may see, newest first",
                {"total": INT, "workorder_list": array(ref("WorkOrderListRow"))},
                parameters=[
                    query(
                        "limit", {"type": "integer", "minimum": 1, "default": 30}, "At most 100 are served."
                    ),
                    query("offset", {"type": "integer", "minimum": 0, "default": 0}, "Orders to skip."),
                    query("start_time", {"type": "integer", "minimum": 0}, "Epoch seconds; with end_time."),
                    query("end_time", {"type": "integer", "minimum": 0}, "Epoch seconds; with start_time."),
                    query("title", STR, "Title contains this (any case)."),
                ],
            )
        },
        f"{p}/template/list": {
            "get": _operation(
                "workOrderTemplates",
                "Work-order templates the app may use",
                {"total": INT, "template_list": array(ref("WorkOrderTemplate"))},
                parameters=[
                    query("template_type", {"type": "integer", "enum": [1, 2]}, "1 常规流程, 2 自动化工单.")
                ],
            )
        },
        f"{p}/create": {
            "post": _operation(
                "workOrderCreate",
                "Create a work order from a template",
                {"order_no": ORDER_NO, "id": INT},
                body=_body(
                    {
                        "template_id": INT,
                        "title": STR,
                        "relation_type": {"type": "integer", "enum": [0, 1]},
                        "relation_id": STR,
                        "content": NOTE["content"],
                        "is_show": NOTE["is_show"],
                        "attached_json": ATTACHED,
                        "component_list": COMPONENTS,
                        "cc_list": STAFF_IDS,
                        "msg_list": array(STR),
                        "transition_id": INT,
                    },
                    ["template_id"],
                ),
            )
        },
        f"{p}/switch": {
            "post": _operation(
                "workOrderSwitch",
                "流转: take a transition, or hand the order to someone",
                DONE,
                body=_body(
                    {
                        **NOTE,
                        "transition_id": INT,
                        "handler_id": STR,
                        "cc_list": STAFF_IDS,
                        "component_list": COMPONENTS,
                    },
                    ["order_no"],
                ),
            )
        },
        f"{p}/accept": {
            "post": _operation(
                "workOrderAccept",
                "接单 in an accept-first step",
                DONE,
                body=_body({"order_no": ORDER_NO}, ["order_no"]),
            )
        },
        f"{p}/reply": {
            "post": _operation(
                "workOrderReply", "回复 (comment)", DONE, body=_body(NOTE, ["order_no", "content"])
            )
        },
        f"{p}/close": {
            "post": _operation(
                "workOrderClose", "关闭", DONE, body=_body({**NOTE, "cc_list": STAFF_IDS}, ["order_no"])
            )
        },
        f"{p}/reopen": {
            "post": _operation(
                "workOrderReopen",
                "重新打开 an ended order",
                DONE,
                body=_body({**NOTE, "cc_list": STAFF_IDS}, ["order_no"]),
            )
        },
        f"{p}/evaluate": {
            "post": _operation(
                "workOrderEvaluate",
                "评价: the creator rates an ended order",
                DONE,
                body=_body(
                    {
                        "order_no": ORDER_NO,
                        "point": {"type": "integer", "minimum": 1, "maximum": 5},
                        "content": NOTE["content"],
                    },
                    ["order_no", "point"],
                ),
            )
        },
        f"{p}/cc": {
            "post": _operation(
                "workOrderCc",
                "抄送: copy more people on the order",
                DONE,
                body=_body(
                    {"order_no": ORDER_NO, "cc_list": STAFF_IDS, "content": NOTE["content"]},
                    ["order_no", "cc_list"],
                ),
            )
        },
        f"{p}/share": {
            "post": _operation(
                "workOrderShare",
                "A signed ticket-page link to the order for one person",
                {"order_no": ORDER_NO, "staff_id": STR, "url": STR},
                body=_body({"order_no": ORDER_NO, "staff_id": STR}, ["order_no"]),
            )
        },
        f"{p}/msg/link": {
            "post": _operation(
                "workOrderLinkMessages",
                "Link chat records to the order",
                {"order_no": ORDER_NO, "linked": array(STR), "msg_list": array(STR)},
                body=_body(
                    {
                        "order_no": ORDER_NO,
                        "msg_ids": array(STR),
                        "records": array(
                            obj(
                                {
                                    "msgid": STR,
                                    "from": STR,
                                    "to": {"description": "a list of ids, or one id"},
                                    "roomid": STR,
                                    "msgtime": INT,
                                    "msgtype": STR,
                                    "text": STR,
                                },
                                required=["msgid", "msgtime"],
                            )
                        ),
                    },
                    ["order_no"],
                ),
            )
        },
    }
