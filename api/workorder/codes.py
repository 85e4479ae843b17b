"""The code tables of the open API that the vendor does not publish, defined here completely.

Order ``status`` (of the order as a whole; deleted orders are never served):

====  ==========  ==============================================================================
code  name        when
====  ==========  ==============================================================================
10    待处理      open: its current handler(s) have to act (the vendor's example)
11    待接单      open in an accept-first step: one of several people has to accept it (接单)
12    加签中      out for consultation (加签): the consulted person has to answer first
13    自动处理中  waiting for an automated step (a hook)
14    待提交      back at its first step with its creator (sent back, or withdrawn), to resubmit
30    已完成      finished: it went through to an end step
40    已关闭      closed before the end (关闭)
====  ==========  ==============================================================================

``processing_flows[].type`` (newest first; 2 is the one entry not stored):

====  ==========  ==============================================================================
type  type_name   the step
====  ==========  ==============================================================================
1     新建工单    the order was created (its first step)
2     待处理      synthetic, on top while the order is open: who has to act now
3     流转        a transition was taken (agree, reject, resubmit, ...)
4     转交        handed to another person (deliver)
5     加签        sent to someone for consultation
6     加签完成    the consulted person answered
7     接单        accepted by one of several possible handlers
8     回复        a reply (comment)
9     关闭        closed
10    重新打开    reopened after it had ended
11    评价        rated by its creator (``point`` 1-5)
12    抄送        people copied on it (``cc_list``)
13    撤回        withdrawn by its creator
14    修改状态    moved to another step by an admin
15    自动处理    an automated step (hook) answered, or was retried
16    修改内容    component values edited
17    删除        deleted by an admin
====  ==========  ==============================================================================

Component types (``component_type``; each from the template field's core.workflow.FieldType):

==================  ==============  ===========================================================
component_type      field type      value / values
==================  ==============  ===========================================================
input               STRING          value: the text; values: ""; config.input_type "text"
input               INT             value: the number as text; values: ""; input_type "number"
input               FLOAT           value: the number as text; values: ""; input_type "decimal"
textarea            TEXTAREA        value: the text; values: ""
richText            RICH_TEXT       value: the text (HTML); values: ""
date                DATE            value: "YYYY-MM-DD"; values: ""
datetime            DATETIME        value: "YYYY-MM-DD HH:MM:SS"; values: ""
radio               RADIO, BOOL     value: ""; values: [option_name] (null when unset); a BOOL's
                                    options are its boolean display names, else 是 / 否
select              SELECT          value: ""; values: [option_name] (null when unset)
checked             CHECKBOX        value: ""; values: [option_name, ...] (null when unset)
selectMultiple      MULTI_SELECT    value: ""; values: [option_name, ...] (null when unset)
member              USER            value: ""; values: [staff id] (null when unset)
memberMultiple      MULTI_USER      value: ""; values: [staff id, ...] (null when unset)
file                ATTACHMENT      value: ""; values: [url, ...] ([] when none)
==================  ==============  ===========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum, StrEnum
from types import MappingProxyType

from core.access import needs_accept
from core.ticket import ActState, InterveneType, Ticket
from core.workflow import FieldType, ParticipantType, StateType, Workflow


class OrderStatus(IntEnum):
    PENDING = 10
    TO_ACCEPT = 11
    CONSULTING = 12
    AUTOMATED = 13
    TO_SUBMIT = 14
    FINISHED = 30
    CLOSED = 40


STATUS_NAMES: Mapping[OrderStatus, str] = MappingProxyType(
    {
        OrderStatus.PENDING: "待处理",
        OrderStatus.TO_ACCEPT: "待接单",
        OrderStatus.CONSULTING: "加签中",
        OrderStatus.AUTOMATED: "自动处理中",
        OrderStatus.TO_SUBMIT: "待提交",
        OrderStatus.FINISHED: "已完成",
        OrderStatus.CLOSED: "已关闭",
    }
)


def order_status(ticket: Ticket, wf: Workflow) -> OrderStatus:
    if ticket.act_state == ActState.CLOSED:
        return OrderStatus.CLOSED
    if ticket.act_state == ActState.FINISHED:
        return OrderStatus.FINISHED
    state = wf.state(ticket.state_id)
    if state is None or state.type == StateType.START:
        return OrderStatus.TO_SUBMIT
    if ticket.participant_type == ParticipantType.HOOK:
        return OrderStatus.AUTOMATED
    if ticket.in_add_node:
        return OrderStatus.CONSULTING
    if needs_accept(ticket, state):
        return OrderStatus.TO_ACCEPT
    return OrderStatus.PENDING


class FlowType(IntEnum):
    CREATE = 1
    PENDING = 2
    SWITCH = 3
    DELIVER = 4
    ADD_NODE = 5
    ADD_NODE_END = 6
    ACCEPT = 7
    REPLY = 8
    CLOSE = 9
    REOPEN = 10
    EVALUATE = 11
    CC = 12
    RETREAT = 13
    ALTER_STATE = 14
    HOOK = 15
    UPDATE = 16
    DELETE = 17


FLOW_NAMES: Mapping[FlowType, str] = MappingProxyType(
    {
        FlowType.CREATE: "新建工单",
        FlowType.PENDING: "待处理",
        FlowType.SWITCH: "流转",
        FlowType.DELIVER: "转交",
        FlowType.ADD_NODE: "加签",
        FlowType.ADD_NODE_END: "加签完成",
        FlowType.ACCEPT: "接单",
        FlowType.REPLY: "回复",
        FlowType.CLOSE: "关闭",
        FlowType.REOPEN: "重新打开",
        FlowType.EVALUATE: "评价",
        FlowType.CC: "抄送",
        FlowType.RETREAT: "撤回",
        FlowType.ALTER_STATE: "修改状态",
        FlowType.HOOK: "自动处理",
        FlowType.UPDATE: "修改内容",
        FlowType.DELETE: "删除",
    }
)

FLOW_TYPES: Mapping[InterveneType, FlowType] = MappingProxyType(
    {
        InterveneType.TRANSITION: FlowType.SWITCH,
        InterveneType.DELIVER: FlowType.DELIVER,
        InterveneType.ADD_NODE: FlowType.ADD_NODE,
        InterveneType.ADD_NODE_END: FlowType.ADD_NODE_END,
        InterveneType.ACCEPT: FlowType.ACCEPT,
        InterveneType.COMMENT: FlowType.REPLY,
        InterveneType.DELETE: FlowType.DELETE,
        InterveneType.CLOSE: FlowType.CLOSE,
        InterveneType.ALTER_STATE: FlowType.ALTER_STATE,
        InterveneType.HOOK: FlowType.HOOK,
        InterveneType.RETREAT: FlowType.RETREAT,
        InterveneType.UPDATE_FIELDS: FlowType.UPDATE,
        InterveneType.REOPEN: FlowType.REOPEN,
        InterveneType.EVALUATE: FlowType.EVALUATE,
        InterveneType.CC: FlowType.CC,
    }
)


class ComponentType(StrEnum):
    INPUT = "input"
    TEXTAREA = "textarea"
    RICH_TEXT = "richText"
    DATE = "date"
    DATETIME = "datetime"
    RADIO = "radio"
    SELECT = "select"
    CHECKED = "checked"
    SELECT_MULTIPLE = "selectMultiple"
    MEMBER = "member"
    MEMBER_MULTIPLE = "memberMultiple"
    FILE = "file"


COMPONENT_TYPES: Mapping[FieldType, ComponentType] = MappingProxyType(
    {
        FieldType.STRING: ComponentType.INPUT,
        FieldType.INT: ComponentType.INPUT,
        FieldType.FLOAT: ComponentType.INPUT,
        FieldType.TEXTAREA: ComponentType.TEXTAREA,
        FieldType.RICH_TEXT: ComponentType.RICH_TEXT,
        FieldType.DATE: ComponentType.DATE,
        FieldType.DATETIME: ComponentType.DATETIME,
        FieldType.BOOL: ComponentType.RADIO,
        FieldType.RADIO: ComponentType.RADIO,
        FieldType.SELECT: ComponentType.SELECT,
        FieldType.CHECKBOX: ComponentType.CHECKED,
        FieldType.MULTI_SELECT: ComponentType.SELECT_MULTIPLE,
        FieldType.USER: ComponentType.MEMBER,
        FieldType.MULTI_USER: ComponentType.MEMBER_MULTIPLE,
        FieldType.ATTACHMENT: ComponentType.FILE,
    }
)

INPUT_TYPES: Mapping[FieldType, str] = MappingProxyType(
    {FieldType.STRING: "text", FieldType.INT: "number", FieldType.FLOAT: "decimal"}
)
