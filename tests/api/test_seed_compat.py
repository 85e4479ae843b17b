"""Seed compatibility: every response example of the loonflow ticket API document (seed 001,
shared/seeds/001_b593151b3a3ecef7.txt) is a contract, key by key and type by type.

Each example below is the seed's JSON copied as a Python dict. Changes needed to make them data:
the comments (`# 默认为ture ...` in the transitions example, `//工单当前状态id` in the flowsteps
example, which also lacks the comma before "value") are stripped, and the batch-states example's
bare key `2` is the string "2" (JSON object keys are strings). In the flowlogs example with
ticket_data, `"xxxx": "....."` stands for "every other field": the test drops it before comparing.

`assert_shape(example, actual)` checks that the actual response has every key of the example,
recursively, with the same JSON type: int, str, bool, list, dict (a bool is never an int); a null in
the example allows any type. A list's items are each compared with one example item: the first one
whose nested lists are not empty (else the first), so that e.g. the flowsteps log entries are checked
against a real log entry. Extra keys in the actual response are allowed. Two exceptions, named
below: `field_value` (its type follows the field's type) and `state_field_str` (keyed by field keys).
"""

from __future__ import annotations

import copy
from typing import Any

from core.commands import Accept, AddNode, Comment, Create, Deliver, Handle
from core.service import Done
from tests.api.conftest import Api

# `field_value` holds the field's value: its JSON type follows the field's field_type_id (an int
# for an int field, a list for a multi-select...), so only string fields (type 5) must give a str.
POLYMORPHIC = frozenset({"field_value"})
# Objects keyed by data, not by a fixed set of names: `state_field_str` maps the keys of the
# workflow's fields (the seed's are another workflow's) to 1/2/3. Only their values are compared.
DATA_KEYED = frozenset({"state_field_str"})


LIST_EXAMPLE: dict[str, Any] = {
    "msg": "",
    "code": 0,
    "data": {
        "value": [
            {
                "participant_info": {
                    "participant_type_id": 1,
                    "participant": "1",
                    "participant_name": "zhangsan",
                    "participant_type_name": "个人",
                    "participant_alias": "张三",
                },
                "gmt_created": "2018-05-15 07:16:38",
                "parent_ticket_state_id": 0,
                "state": {"state_name": "发起人-确认中", "state_id": 10},
                "creator": "lilei",
                "parent_ticket_id": 0,
                "title": "vpn申请",
                "gmt_modified": "2018-05-22 07:26:54",
                "workflow": {"workflow_name": "vpn申请", "workflow_id": 2},
                "sn": "loonflow_201805150001",
                "id": 17,
            }
        ],
        "total": 1,
        "page": 1,
        "per_page": 10,
    },
}

DETAIL_EXAMPLE: dict[str, Any] = {
    "code": 0,
    "msg": "",
    "data": {
        "value": {
            "workflow_id": 2,
            "in_add_node": True,
            "gmt_created": "2018-05-15 07:16:38",
            "id": 17,
            "relation": "guiji,wangwu,lilei",
            "title": "vpn申请2",
            "sn": "loonflow_201805150001",
            "parent_ticket_id": 0,
            "creator": "lilei",
            "script_run_last_result": True,
            "gmt_modified": "2018-05-22 07:26:54",
            "act_state_id": 1,
            "multi_all_person": "{}",
            "creator_info": {
                "email": "lilei@163.com",
                "alias": "李磊",
                "dept_info": {
                    "creator_info": {"creator_id": 1, "creator_alias": "超级管理员"},
                    "leader": "lilei",
                    "parent_dept_info": {"parent_dept_name": "总部", "parent_dept_id": 1},
                    "approver_info": [],
                    "parent_dept_id": 1,
                    "name": "技术部",
                    "is_deleted": False,
                    "creator": "admin",
                    "gmt_modified": "2018-05-09 06:45:27",
                    "label": "",
                    "id": 2,
                    "approver": "",
                    "gmt_created": "2018-04-14 23:37:06",
                    "leader_info": {"leader_alias": "李磊", "leader_username": "lilei"},
                },
                "username": "lilei",
                "phone": "13888888888",
                "is_active": True,
            },
            "participant_type_id": 3,
            "state_id": 10,
            "is_end": False,
            "is_deleted": False,
            "field_list": [
                {
                    "field_value": "loonflow_201805150001",
                    "label": {},
                    "boolean_field_display": {},
                    "field_type_id": 5,
                    "field_template": "",
                    "field_choice": {},
                    "field_key": "sn",
                    "field_attribute": 1,
                    "description": "工单的流水号",
                    "default_value": None,
                    "order_id": 10,
                    "field_name": "流水号",
                },
                {
                    "field_value": "发起人-确认中",
                    "label": {},
                    "boolean_field_display": {},
                    "field_type_id": 5,
                    "field_template": "",
                    "field_choice": {},
                    "field_key": "state.state_name",
                    "field_attribute": 1,
                    "description": "工单当前状态的名称",
                    "default_value": None,
                    "order_id": 41,
                    "field_name": "状态名",
                },
                {
                    "field_value": "总部",
                    "label": {},
                    "boolean_field_display": {},
                    "field_type_id": 5,
                    "field_template": "",
                    "field_choice": {},
                    "field_key": "participant_info.participant_name",
                    "field_attribute": 1,
                    "description": "工单的当前处理人",
                    "default_value": None,
                    "order_id": 50,
                    "field_name": "当前处理人",
                },
                {
                    "field_value": "vpn申请",
                    "label": {},
                    "boolean_field_display": {},
                    "field_type_id": 5,
                    "field_template": "",
                    "field_choice": {},
                    "field_key": "workflow.workflow_name",
                    "field_attribute": 1,
                    "description": "工单所属工作流的名称",
                    "default_value": None,
                    "order_id": 60,
                    "field_name": "工作流名称",
                },
            ],
            "parent_ticket_state_id": 0,
            "add_node_man": "zhangsan",
            "participant": "1",
            "state_info": {
                "id": 10,
                "creator": "admin",
                "gmt_created": "2018-04-30 15:47:58",
                "gmt_modified": "2018-05-13 11:42:59",
                "is_deleted": False,
                "name": "人事部门-处理中",
                "workflow_id": 1,
                "is_hidden": False,
                "order_id": 4,
                "type_id": 0,
                "enable_retreat": False,
                "remember_last_man_enable": False,
                "participant_type_id": 1,
                "participant": "admin",
                "distribute_type_id": 1,
                "state_field_str": {
                    "sn": 1,
                    "title": 1,
                    "leave_start": 1,
                    "leave_end": 1,
                    "leave_days": 1,
                    "leave_proxy": 1,
                    "leave_type": 1,
                    "creator": 1,
                    "gmt_created": 1,
                    "leave_reason": 1,
                },
                "label": {},
            },
        }
    },
}

TRANSITIONS_EXAMPLE: dict[str, Any] = {
    "msg": "",
    "data": {
        "value": [
            {
                "transition_name": "提交",
                "field_require_check": True,
                "transition_id": 1,
                "is_accept": False,
                "in_add_node": False,
                "enable_alert": False,
                "alert_text": "",
            },
            {
                "transition_name": "保存",
                "field_require_check": True,
                "transition_id": 2,
                "is_accept": False,
                "in_add_node": False,
                "enable_alert": False,
                "alert_text": "",
            },
        ]
    },
    "code": 0,
}

TRANSITIONS_ACCEPT_EXAMPLE: dict[str, Any] = {
    "msg": "",
    "code": 0,
    "data": {
        "value": [
            {
                "transition_id": 0,
                "transition_name": "接单",
                "is_accept": True,
                "in_add_node": False,
                "field_require_check": False,
            }
        ]
    },
}

TRANSITIONS_ADD_NODE_EXAMPLE: dict[str, Any] = {
    "msg": "",
    "code": 0,
    "data": {
        "value": [
            {
                "transition_id": 0,
                "transition_name": "完成",
                "is_accept": False,
                "in_add_node": True,
                "field_require_check": False,
            }
        ]
    },
}

FLOWLOGS_EXAMPLE: dict[str, Any] = {
    "msg": "",
    "data": {
        "total": 4,
        "value": [
            {
                "state": {"state_name": "发起人-确认中", "state_id": 5},
                "transition": {"transition_name": "确认完成", "transition_id": 5, "attribute_type_id": 3},
                "ticket_id": 1,
                "participant_info": {
                    "participant_email": "lilei@163.com",
                    "participant_alias": "李磊",
                    "participant_phone": "13888888888",
                    "participant": "lilei",
                    "participant_type_id": 1,
                },
                "gmt_modified": "2018-04-30 15:57:26",
                "gmt_created": "2018-04-30 15:56:02",
                "suggestion": "已经生效,感谢",
            },
            {
                "state": {"state_name": "技术人员-处理中", "state_id": 4},
                "transition": {"transition_name": "处理完成", "transition_id": 4},
                "ticket_id": 1,
                "participant_info": {
                    "participant_email": "lilei@163.com",
                    "participant_alias": "李磊",
                    "participant_phone": "13888888888",
                    "participant": "lilei",
                    "participant_type_id": 1,
                },
                "gmt_modified": "2018-04-30 15:57:14",
                "gmt_created": "2018-04-30 15:55:32",
                "suggestion": "处理完成",
            },
            {
                "state": {"state_name": "TL审批中", "state_id": 3},
                "transition": {"transition_name": "同意", "transition_id": 3},
                "ticket_id": 1,
                "participant_info": {
                    "participant_email": "lilei@163.com",
                    "participant_alias": "李磊",
                    "participant_phone": "13888888888",
                    "participant": "lilei",
                    "participant_type_id": 1,
                },
                "gmt_modified": "2018-04-30 15:57:00",
                "gmt_created": "2018-04-30 15:53:19",
                "suggestion": "同意处理",
            },
            {
                "state": {"state_name": "新建中", "state_id": 1},
                "transition": {"transition_name": "提交", "transition_id": 1},
                "ticket_id": 1,
                "gmt_modified": "2018-04-30 15:52:35",
                "gmt_created": "2018-04-10 17:39:33",
                "suggestion": "请尽快处理,谢谢",
            },
        ],
        "page": 1,
        "per_page": 10,
    },
    "code": 0,
}

FLOWLOGS_TICKET_DATA_EXAMPLE: dict[str, Any] = {
    "msg": "",
    "data": {
        "total": 4,
        "value": [
            {
                "state": {"state_name": "发起人-确认中", "state_id": 5},
                "transition": {"transition_name": "确认完成", "transition_id": 5, "attribute_type_id": 3},
                "ticket_id": 1,
                "participant_info": {
                    "participant_email": "lilei@163.com",
                    "participant_alias": "李磊",
                    "participant_phone": "13888888888",
                    "participant": "lilei",
                    "participant_type_id": 1,
                },
                "gmt_modified": "2018-04-30 15:57:26",
                "gmt_created": "2018-04-30 15:56:02",
                "suggestion": "已经生效,感谢",
                "ticket_data": {
                    "title": "xxx",
                    "sn": "xxxxx",
                    "state_id": 1,
                    "ticket_id": 1,
                    "gmt_modified": "2018-04-30 15:57:26",
                    "gmt_created": "2018-04-30 15:56:02",
                    "xxxx": ".....",
                },
            },
            {
                "state": {"state_name": "技术人员-处理中", "state_id": 4},
                "transition": {"transition_name": "处理完成", "transition_id": 4},
                "ticket_id": 1,
                "participant_info": {
                    "participant_email": "lilei@163.com",
                    "participant_alias": "李磊",
                    "participant_phone": "13888888888",
                    "participant": "lilei",
                    "participant_type_id": 1,
                },
                "gmt_modified": "2018-04-30 15:57:14",
                "gmt_created": "2018-04-30 15:55:32",
                "suggestion": "处理完成",
                "ticket_data": {
                    "title": "xxx",
                    "sn": "xxxxx",
                    "state_id": 1,
                    "ticket_id": 1,
                    "gmt_modified": "2018-04-30 15:57:26",
                    "gmt_created": "2018-04-30 15:56:02",
                    "xxxx": ".....",
                },
            },
            {
                "state": {"state_name": "TL审批中", "state_id": 3},
                "transition": {"transition_name": "同意", "transition_id": 3},
                "ticket_id": 1,
                "participant_info": {
                    "participant_email": "lilei@163.com",
                    "participant_alias": "李磊",
                    "participant_phone": "13888888888",
                    "participant": "lilei",
                    "participant_type_id": 1,
                },
                "gmt_modified": "2018-04-30 15:57:00",
                "gmt_created": "2018-04-30 15:53:19",
                "suggestion": "同意处理",
                "ticket_data": {
                    "title": "xxx",
                    "sn": "xxxxx",
                    "state_id": 1,
                    "ticket_id": 1,
                    "gmt_modified": "2018-04-30 15:57:26",
                    "gmt_created": "2018-04-30 15:56:02",
                    "xxxx": ".....",
                },
            },
            {
                "state": {"state_name": "新建中", "state_id": 1},
                "transition": {"transition_name": "提交", "transition_id": 1},
                "ticket_id": 1,
                "gmt_modified": "2018-04-30 15:52:35",
                "gmt_created": "2018-04-10 17:39:33",
                "suggestion": "请尽快处理,谢谢",
                "ticket_data": {
                    "title": "xxx",
                    "sn": "xxxxx",
                    "state_id": 1,
                    "ticket_id": 1,
                    "gmt_modified": "2018-04-30 15:57:26",
                    "gmt_created": "2018-04-30 15:56:02",
                    "xxxx": ".....",
                },
            },
        ],
        "page": 1,
        "per_page": 10,
    },
    "code": 0,
}

FLOWSTEPS_EXAMPLE: dict[str, Any] = {
    "data": {
        "current_state_id": 2,
        "value": [
            {"state_id": 17, "state_flow_log_list": [], "order_id": 0, "state_name": "test11111"},
            {"state_id": 18, "state_flow_log_list": [], "order_id": 0, "state_name": "2233222"},
            {
                "state_id": 6,
                "state_flow_log_list": [
                    {
                        "gmt_created": "2018-05-15 07:16:38",
                        "participant_info": {
                            "participant_alias": "李磊",
                            "participant_type_id": 1,
                            "participant": "lilei",
                            "participant_phone": "13888888888",
                            "participant_email": "lilei@163.com",
                        },
                        "suggestion": "",
                        "participant": "lilei",
                        "state_id": 6,
                        "participant_type_id": 1,
                        "transition": {"transition_name": "提交", "transition_id": 7},
                        "id": 32,
                        "intervene_type_id": 0,
                    }
                ],
                "order_id": 1,
                "state_name": "发起人-新建中",
            },
            {
                "state_id": 7,
                "state_flow_log_list": [
                    {
                        "gmt_created": "2018-05-15 07:20:40",
                        "participant_info": {
                            "participant_alias": "李磊",
                            "participant_type_id": 1,
                            "participant": "lilei",
                            "participant_phone": "13888888888",
                            "participant_email": "lilei@163.com",
                        },
                        "suggestion": "同意申请",
                        "participant": "lilei",
                        "state_id": 7,
                        "participant_type_id": 1,
                        "transition": {"transition_name": "同意", "transition_id": 8},
                        "id": 33,
                        "intervene_type_id": 0,
                    }
                ],
                "order_id": 2,
                "state_name": "发起人tl-审批中",
            },
            {
                "state_id": 8,
                "state_flow_log_list": [
                    {
                        "gmt_created": "2018-05-16 06:42:00",
                        "participant_info": {
                            "participant_alias": "轨迹",
                            "participant_type_id": 1,
                            "participant": "guiji",
                            "participant_phone": "13888888888",
                            "participant_email": "guiji@163.com",
                        },
                        "suggestion": "接单处理",
                        "participant": "guiji",
                        "state_id": 8,
                        "participant_type_id": 1,
                        "transition": {"transition_name": "未知操作", "transition_id": 0},
                        "id": 36,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 06:49:55",
                        "participant_info": {
                            "participant_alias": "轨迹",
                            "participant_type_id": 1,
                            "participant": "guiji",
                            "participant_phone": "13888888888",
                            "participant_email": "guiji@163.com",
                        },
                        "suggestion": "同意",
                        "participant": "guiji",
                        "state_id": 8,
                        "participant_type_id": 1,
                        "transition": {"transition_name": "同意", "transition_id": 9},
                        "id": 37,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 06:57:31",
                        "participant_info": {
                            "participant_alias": "轨迹",
                            "participant_type_id": 1,
                            "participant": "guiji",
                            "participant_phone": "13888888888",
                            "participant_email": "guiji@163.com",
                        },
                        "suggestion": "接单处理",
                        "participant": "guiji",
                        "state_id": 8,
                        "participant_type_id": 1,
                        "transition": {"transition_name": "未知操作", "transition_id": 0},
                        "id": 38,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 06:57:36",
                        "participant_info": {
                            "participant_alias": "轨迹",
                            "participant_type_id": 1,
                            "participant": "guiji",
                            "participant_phone": "13888888888",
                            "participant_email": "guiji@163.com",
                        },
                        "suggestion": "同意",
                        "participant": "guiji",
                        "state_id": 8,
                        "participant_type_id": 1,
                        "transition": {"transition_name": "同意", "transition_id": 9},
                        "id": 39,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 06:58:41",
                        "participant_info": {
                            "participant_alias": "轨迹",
                            "participant_type_id": 1,
                            "participant": "guiji",
                            "participant_phone": "13888888888",
                            "participant_email": "guiji@163.com",
                        },
                        "suggestion": "同意",
                        "participant": "guiji",
                        "state_id": 8,
                        "participant_type_id": 1,
                        "transition": {"transition_name": "同意", "transition_id": 9},
                        "id": 40,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 07:01:53",
                        "participant_info": {
                            "participant_alias": "轨迹",
                            "participant_type_id": 1,
                            "participant": "guiji",
                            "participant_phone": "13888888888",
                            "participant_email": "guiji@163.com",
                        },
                        "suggestion": "同意",
                        "participant": "guiji",
                        "state_id": 8,
                        "participant_type_id": 1,
                        "transition": {"transition_name": "同意", "transition_id": 9},
                        "id": 41,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 07:03:34",
                        "participant_info": {
                            "participant_alias": "轨迹",
                            "participant_type_id": 1,
                            "participant": "guiji",
                            "participant_phone": "13888888888",
                            "participant_email": "guiji@163.com",
                        },
                        "suggestion": "同意",
                        "participant": "guiji",
                        "state_id": 8,
                        "participant_type_id": 1,
                        "transition": {"transition_name": "同意", "transition_id": 9},
                        "id": 43,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 07:04:45",
                        "participant_info": {
                            "participant_alias": "轨迹",
                            "participant_type_id": 1,
                            "participant": "guiji",
                            "participant_phone": "13888888888",
                            "participant_email": "guiji@163.com",
                        },
                        "suggestion": "同意",
                        "participant": "guiji",
                        "state_id": 8,
                        "participant_type_id": 1,
                        "transition": {"transition_name": "同意", "transition_id": 9},
                        "id": 45,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 07:31:29",
                        "participant_info": {
                            "participant_alias": "轨迹",
                            "participant_type_id": 1,
                            "participant": "guiji",
                            "participant_phone": "13888888888",
                            "participant_email": "guiji@163.com",
                        },
                        "suggestion": "同意",
                        "participant": "guiji",
                        "state_id": 8,
                        "participant_type_id": 1,
                        "transition": {"transition_name": "同意", "transition_id": 9},
                        "id": 47,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 23:21:00",
                        "participant_info": {
                            "participant_alias": "轨迹",
                            "participant_type_id": 1,
                            "participant": "guiji",
                            "participant_phone": "13888888888",
                            "participant_email": "guiji@163.com",
                        },
                        "suggestion": "同意",
                        "participant": "guiji",
                        "state_id": 8,
                        "participant_type_id": 1,
                        "transition": {"transition_name": "同意", "transition_id": 9},
                        "id": 49,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 23:24:03",
                        "participant_info": {
                            "participant_alias": "轨迹",
                            "participant_type_id": 1,
                            "participant": "guiji",
                            "participant_phone": "13888888888",
                            "participant_email": "guiji@163.com",
                        },
                        "suggestion": "同意",
                        "participant": "guiji",
                        "state_id": 8,
                        "participant_type_id": 1,
                        "transition": {"transition_name": "同意", "transition_id": 9},
                        "id": 51,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 23:24:44",
                        "participant_info": {
                            "participant_alias": "轨迹",
                            "participant_type_id": 1,
                            "participant": "guiji",
                            "participant_phone": "13888888888",
                            "participant_email": "guiji@163.com",
                        },
                        "suggestion": "同意",
                        "participant": "guiji",
                        "state_id": 8,
                        "participant_type_id": 1,
                        "transition": {"transition_name": "同意", "transition_id": 9},
                        "id": 53,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 23:33:26",
                        "participant_info": {
                            "participant_alias": "轨迹",
                            "participant_type_id": 1,
                            "participant": "guiji",
                            "participant_phone": "13888888888",
                            "participant_email": "guiji@163.com",
                        },
                        "suggestion": "同意",
                        "participant": "guiji",
                        "state_id": 8,
                        "participant_type_id": 1,
                        "transition": {"transition_name": "同意", "transition_id": 9},
                        "id": 55,
                        "intervene_type_id": 0,
                    },
                ],
                "order_id": 3,
                "state_name": "运维人员-审批中",
            },
            {
                "state_id": 9,
                "state_flow_log_list": [
                    {
                        "gmt_created": "2018-05-16 07:01:54",
                        "participant_info": {
                            "participant_phone": "",
                            "participant_alias": "demo_script.py",
                            "participant_email": "",
                            "participant_type_id": 6,
                            "participant": "demo_script.py",
                        },
                        "suggestion": "False\n",
                        "participant": "demo_script.py",
                        "state_id": 9,
                        "participant_type_id": 6,
                        "transition": {"transition_name": "脚本执行完成", "transition_id": 10},
                        "id": 42,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 07:03:34",
                        "participant_info": {
                            "participant_phone": "",
                            "participant_alias": "demo_script.py",
                            "participant_email": "",
                            "participant_type_id": 6,
                            "participant": "demo_script.py",
                        },
                        "suggestion": "False\n",
                        "participant": "demo_script.py",
                        "state_id": 9,
                        "participant_type_id": 6,
                        "transition": {"transition_name": "脚本执行完成", "transition_id": 10},
                        "id": 44,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 07:04:45",
                        "participant_info": {
                            "participant_phone": "",
                            "participant_alias": "demo_script.py",
                            "participant_email": "",
                            "participant_type_id": 6,
                            "participant": "demo_script.py",
                        },
                        "suggestion": "False\n",
                        "participant": "demo_script.py",
                        "state_id": 9,
                        "participant_type_id": 6,
                        "transition": {"transition_name": "脚本执行完成", "transition_id": 10},
                        "id": 46,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 07:31:29",
                        "participant_info": {
                            "participant_phone": "",
                            "participant_alias": "demo_script.py",
                            "participant_email": "",
                            "participant_type_id": 6,
                            "participant": "demo_script.py",
                        },
                        "suggestion": "lilei\n",
                        "participant": "demo_script.py",
                        "state_id": 9,
                        "participant_type_id": 6,
                        "transition": {"transition_name": "脚本执行完成", "transition_id": 10},
                        "id": 48,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 23:21:00",
                        "participant_info": {
                            "participant_phone": "",
                            "participant_alias": "demo_script.py",
                            "participant_email": "",
                            "participant_type_id": 6,
                            "participant": "demo_script.py",
                        },
                        "suggestion": "lilei\n",
                        "participant": "demo_script.py",
                        "state_id": 9,
                        "participant_type_id": 6,
                        "transition": {"transition_name": "脚本执行完成", "transition_id": 10},
                        "id": 50,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 23:24:03",
                        "participant_info": {
                            "participant_phone": "",
                            "participant_alias": "demo_script.py",
                            "participant_email": "",
                            "participant_type_id": 6,
                            "participant": "demo_script.py",
                        },
                        "suggestion": "lilei\n",
                        "participant": "demo_script.py",
                        "state_id": 9,
                        "participant_type_id": 6,
                        "transition": {"transition_name": "脚本执行完成", "transition_id": 10},
                        "id": 52,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 23:24:44",
                        "participant_info": {
                            "participant_phone": "",
                            "participant_alias": "demo_script.py",
                            "participant_email": "",
                            "participant_type_id": 6,
                            "participant": "demo_script.py",
                        },
                        "suggestion": "lilei\n",
                        "participant": "demo_script.py",
                        "state_id": 9,
                        "participant_type_id": 6,
                        "transition": {"transition_name": "脚本执行完成", "transition_id": 10},
                        "id": 54,
                        "intervene_type_id": 0,
                    },
                    {
                        "gmt_created": "2018-05-16 23:33:26",
                        "participant_info": {
                            "participant_phone": "",
                            "participant_alias": "demo_script.py",
                            "participant_email": "",
                            "participant_type_id": 6,
                            "participant": "demo_script.py",
                        },
                        "suggestion": "lilei\n",
                        "participant": "demo_script.py",
                        "state_id": 9,
                        "participant_type_id": 6,
                        "transition": {"transition_name": "脚本执行完成", "transition_id": 10},
                        "id": 56,
                        "intervene_type_id": 0,
                    },
                ],
                "order_id": 4,
                "state_name": "授权脚本-自动执行中",
            },
            {
                "state_id": 10,
                "state_flow_log_list": [
                    {
                        "gmt_created": "2018-05-17 06:45:58",
                        "participant_info": {
                            "participant_alias": "李磊",
                            "participant_type_id": 1,
                            "participant": "lilei",
                            "participant_phone": "13888888888",
                            "participant_email": "lilei@163.com",
                        },
                        "suggestion": "请处理",
                        "participant": "lilei",
                        "state_id": 10,
                        "participant_type_id": 1,
                        "transition": {"transition_name": "转交操作", "transition_id": 0},
                        "id": 57,
                        "intervene_type_id": 1,
                    },
                    {
                        "gmt_created": "2018-05-17 06:47:46",
                        "participant_info": {
                            "participant_alias": "张三",
                            "participant_type_id": 1,
                            "participant": "zhangsan",
                            "participant_phone": "13888888888",
                            "participant_email": "zhangsan@163.com",
                        },
                        "suggestion": "请协助处理",
                        "participant": "zhangsan",
                        "state_id": 10,
                        "participant_type_id": 1,
                        "transition": {"transition_name": "加签操作", "transition_id": 0},
                        "id": 58,
                        "intervene_type_id": 2,
                    },
                ],
                "order_id": 6,
                "state_name": "发起人-确认中",
            },
            {"state_id": 11, "state_flow_log_list": [], "order_id": 7, "state_name": "结束"},
        ],
    },
    "msg": "",
    "code": 0,
}

STATES_EXAMPLE: dict[str, Any] = {
    "code": 0,
    "data": {
        "1": {"state_id": 1, "state_name": "发起人-编辑中"},
        "2": {"state_id": 2, "state_name": "新建中"},
    },
    "msg": "",
}

PARTICIPANT_INFO_EXAMPLE: dict[str, Any] = {
    "msg": "",
    "data": {
        "participant_info_list": [
            {
                "alias": "超级管理员",
                "username": "admin",
                "phone": "13888888888",
                "email": "blackholll@163.com",
            },
            {"alias": "轨迹", "username": "guiji", "phone": "13888888888", "email": "guiji@163.com"},
            {"alias": "李磊", "username": "lilei", "phone": "13888888888", "email": "lilei@163.com"},
            {"alias": "张三", "username": "zhangsan", "phone": "13888888888", "email": "zhangsan@163.com"},
            {"alias": "李四", "username": "lisi", "phone": "13888888888", "email": "lisi@163.com"},
            {"alias": "王五", "username": "wangwu", "phone": "13888888888", "email": "wangwu@163.com"},
            {"alias": "杰克", "username": "jack", "phone": "13888888888", "email": "jack@163.com"},
        ],
        "participant_username_list": ["admin", "guiji", "lilei", "zhangsan", "lisi", "wangwu", "jack"],
    },
    "code": 0,
}


# --- the comparison -------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "dict"
    raise TypeError(f"not a JSON value: {value!r}")


def _complete(value: Any) -> bool:
    """No empty list anywhere inside `value`."""
    if isinstance(value, list):
        return bool(value) and all(_complete(v) for v in value)
    if isinstance(value, dict):
        return all(_complete(v) for v in value.values())
    return True


def _template(items: list[Any]) -> Any:
    return next((item for item in items if _complete(item)), items[0])


def assert_shape(example: Any, actual: Any, path: str = "$") -> None:
    if example is None:
        return  # null in the seed: any type
    assert _kind(actual) == _kind(example), (
        f"{path}: seed has {_kind(example)}, got {_kind(actual)} ({actual!r})"
    )
    if isinstance(example, dict):
        for key, sub in example.items():
            assert key in actual, f"{path}: missing key {key!r} (has {sorted(actual)})"
            if key in POLYMORPHIC:
                continue
            if key in DATA_KEYED:
                assert _kind(actual[key]) == "dict" and actual[key], f"{path}.{key}: {actual[key]!r}"
                for name, value in actual[key].items():
                    assert_shape(next(iter(sub.values())), value, f"{path}.{key}.{name}")
                continue
            assert_shape(sub, actual[key], f"{path}.{key}")
    elif isinstance(example, list) and example:
        template = _template(example)
        for i, item in enumerate(actual):
            assert_shape(template, item, f"{path}[{i}]")


def assert_fields(field_list: list[dict[str, Any]]) -> None:
    for f in field_list:
        if f["field_type_id"] == 5:
            assert f["field_value"] is None or isinstance(f["field_value"], str), f


# --- the routes -------------------------------------------------------------------------------------

FIELDS: dict[str, Any] = {
    "leave_type": "annual",
    "start_date": "2026-01-05",
    "end_date": "2026-01-06",
    "days": 2,
    "reason": "rest",
}


async def create(api: Api, actor: str = "liuyang") -> int:
    result = await api.runtime.service.create(Create(actor, 1, 151, fields=FIELDS, suggestion="请批准"))
    assert isinstance(result, Done), result
    return result.ticket.id


async def run(api: Api, ticket_id: int, cmd: Any) -> None:
    result = await api.runtime.service.execute(ticket_id, cmd)
    assert isinstance(result, Done), result


async def get(api: Api, path: str, username: str = "admin", **params: str) -> Any:
    status, body = await api.call("GET", path, username=username, params=params or None)
    assert status == 200 and body["code"] == 0, body
    return body


async def test_list(api: Api) -> None:
    await create(api)
    body = await get(api, "tickets", category="all")
    assert body["data"]["value"]
    assert_shape(LIST_EXAMPLE, body)


async def test_detail(api: Api) -> None:
    tid = await create(api)
    body = await get(api, f"tickets/{tid}", "liuyang")
    value = body["data"]["value"]
    assert value["field_list"] and value["creator_info"]["dept_info"]["approver_info"]
    assert_shape(DETAIL_EXAMPLE, body)
    assert_fields(value["field_list"])


async def test_transitions(api: Api) -> None:
    tid = await create(api)
    body = await get(api, f"tickets/{tid}/transitions", "wangqiang")
    assert body["data"]["value"]
    assert_shape(TRANSITIONS_EXAMPLE, body)


async def test_transitions_accept(api: Api) -> None:
    tid = await create(api)
    await run(api, tid, Handle("wangqiang", 152))  # 人事备案: HR role, accept first
    body = await get(api, f"tickets/{tid}/transitions", "yangfan")
    assert [t["is_accept"] for t in body["data"]["value"]] == [True]
    assert_shape(TRANSITIONS_ACCEPT_EXAMPLE, body)


async def test_transitions_add_node(api: Api) -> None:
    tid = await create(api)
    await run(api, tid, AddNode("wangqiang", "lina", "请协助"))
    body = await get(api, f"tickets/{tid}/transitions", "lina")
    assert [t["in_add_node"] for t in body["data"]["value"]] == [True]
    assert_shape(TRANSITIONS_ADD_NODE_EXAMPLE, body)


async def _history(api: Api) -> int:
    """A ticket with transitions and interventions in its log."""
    tid = await create(api)
    await run(api, tid, Comment("liuyang", "补充说明"))
    await run(api, tid, Deliver("wangqiang", "lina", "请处理"))
    await run(api, tid, Handle("lina", 152, suggestion="同意"))
    await run(api, tid, Accept("yangfan"))
    return tid


async def test_flowlogs(api: Api) -> None:
    tid = await _history(api)
    body = await get(api, f"tickets/{tid}/flowlogs", "liuyang")
    assert len(body["data"]["value"]) == 5
    assert_shape(FLOWLOGS_EXAMPLE, body)
    assert all("ticket_data" not in e for e in body["data"]["value"])


async def test_flowlogs_ticket_data(api: Api) -> None:
    tid = await _history(api)
    body = await get(api, f"tickets/{tid}/flowlogs", "liuyang", ticket_data="1")
    example = copy.deepcopy(FLOWLOGS_TICKET_DATA_EXAMPLE)
    for entry in example["data"]["value"]:
        del entry["ticket_data"]["xxxx"]  # the seed's placeholder for "every other field"
    assert_shape(example, body)
    for entry in body["data"]["value"]:
        assert entry["ticket_data"]["days"] == 2  # the fields are there too


async def test_flowsteps(api: Api) -> None:
    tid = await _history(api)
    body = await get(api, f"tickets/{tid}/flowsteps", "liuyang")
    assert sum(len(s["state_flow_log_list"]) for s in body["data"]["value"]) == 5
    assert_shape(FLOWSTEPS_EXAMPLE, body)


async def test_states(api: Api) -> None:
    first, second = await create(api), await create(api)
    body = await get(api, "tickets/states", "liuyang", ticket_ids=f"{first},{second}")
    assert sorted(body["data"]) == sorted([str(first), str(second)])
    assert_shape({**STATES_EXAMPLE, "data": {}}, body)  # the envelope; the data keys are ticket ids
    for key, value in body["data"].items():
        assert key.isdigit()
        for example in STATES_EXAMPLE["data"].values():
            assert_shape(example, value)


async def test_participant_info(api: Api) -> None:
    tid = await create(api)
    await run(api, tid, Handle("wangqiang", 152))  # two HR people
    body = await get(api, f"tickets/{tid}/participant_info", "liuyang")
    assert len(body["data"]["participant_info_list"]) == 2
    assert_shape(PARTICIPANT_INFO_EXAMPLE, body)


def test_assert_shape_catches_differences() -> None:
    assert_shape(
        {"a": 1, "b": None, "c": [{"d": True}]}, {"a": 2, "b": [], "c": [{"d": False, "e": 1}], "x": 0}
    )
    bad: dict[str, Any]
    for bad in (
        {"a": "1", "b": None, "c": []},  # str for int
        {"a": True, "b": None, "c": []},  # bool for int
        {"b": None, "c": []},  # missing key
        {"a": 1, "b": None, "c": [{"d": 1}]},  # int for bool inside a list item
        {"a": 1, "b": None, "c": {}},  # dict for list
    ):
        try:
            assert_shape({"a": 1, "b": None, "c": [{"d": True}]}, bad)
        except AssertionError:
            continue
        raise AssertionError(f"not caught: {bad}")
