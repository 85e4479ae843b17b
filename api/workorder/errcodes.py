"""The open API's error codes: every refusal is ``{"errcode": N, "errmsg": "..."}`` with a 4xx.

=======  ======  ===============================================================================
errcode  HTTP    meaning
=======  ======  ===============================================================================
0        200     ok
40001    401     authentication failed (missing header, unknown app, bad signature, timestamp
                 outside the window, reused nonce); 403 for an unknown or inactive ``username``
40003    400     a parameter is malformed or refused (also: a person or transition that does not
                 exist, a value the template's component refuses); 413 for a body over 1 MiB
40004    404     no such endpoint (405: the endpoint does not take this method)
41001    400     a required parameter is missing
48002    403     the acting user may not do this (or the app may not use the template)
22301    404     order_no非法,对应工单不存在: missing, malformed, unknown, deleted, not a work
                 order, or one the acting user may not see (the same answer for all of them)
22302    404     template_id names no work-order template
22303    409     the action is not possible in the order's current state (ended, still open,
                 waiting to be accepted, out for consultation, already handled by someone else)
22304    404     a chat record id names no kept chat record
22305    404     relation_id names no known customer
50001    500     an internal error (a bug; logged with its trace, never answered with one)
=======  ======  ===============================================================================
"""

from __future__ import annotations

from enum import IntEnum

from core.errors import Reason


class ErrCode(IntEnum):
    OK = 0
    AUTH = 40001
    BAD_PARAM = 40003
    NO_ENDPOINT = 40004
    MISSING_PARAM = 41001
    NO_PERMISSION = 48002
    UNKNOWN_ORDER = 22301
    UNKNOWN_TEMPLATE = 22302
    NOT_NOW = 22303
    UNKNOWN_MESSAGE = 22304
    UNKNOWN_CUSTOMER = 22305
    INTERNAL = 50001


STATUS: dict[ErrCode, int] = {
    ErrCode.OK: 200,
    ErrCode.AUTH: 401,
    ErrCode.BAD_PARAM: 400,
    ErrCode.NO_ENDPOINT: 404,
    ErrCode.MISSING_PARAM: 400,
    ErrCode.NO_PERMISSION: 403,
    ErrCode.UNKNOWN_ORDER: 404,
    ErrCode.UNKNOWN_TEMPLATE: 404,
    ErrCode.NOT_NOW: 409,
    ErrCode.UNKNOWN_MESSAGE: 404,
    ErrCode.UNKNOWN_CUSTOMER: 404,
    ErrCode.INTERNAL: 500,
}

UNKNOWN_ORDER_MSG = "order_no非法,对应工单不存在"

REASON_CODES: dict[Reason, ErrCode] = {
    Reason.NOT_FOUND: ErrCode.UNKNOWN_ORDER,
    Reason.NOT_PARTICIPANT: ErrCode.NO_PERMISSION,
    Reason.NO_PERMISSION: ErrCode.NO_PERMISSION,
    Reason.UNKNOWN_USER: ErrCode.BAD_PARAM,
    Reason.BAD_TRANSITION: ErrCode.BAD_PARAM,
    Reason.BAD_FIELD: ErrCode.BAD_PARAM,
    Reason.MISSING_FIELD: ErrCode.BAD_PARAM,
    Reason.READ_ONLY_FIELD: ErrCode.BAD_PARAM,
    Reason.INVALID: ErrCode.BAD_PARAM,
    Reason.BAD_STATE: ErrCode.NOT_NOW,
    Reason.NO_PARTICIPANT: ErrCode.NOT_NOW,
    Reason.TICKET_ENDED: ErrCode.NOT_NOW,
    Reason.MUST_ACCEPT: ErrCode.NOT_NOW,
    Reason.IN_ADD_NODE: ErrCode.NOT_NOW,
    Reason.ALREADY_VOTED: ErrCode.NOT_NOW,
    Reason.STALE: ErrCode.NOT_NOW,
}


class WorkOrderError(Exception):
    """A refusal in the open API's envelope; the HTTP status follows the errcode unless given."""

    def __init__(self, errcode: ErrCode, errmsg: str, status: int | None = None) -> None:
        super().__init__(errmsg)
        self.errcode = errcode
        self.errmsg = errmsg
        self.status = STATUS[errcode] if status is None else status


def unknown_order(detail: str) -> WorkOrderError:
    """22301 with the vendor's text and what was wrong (never whether the order exists)."""
    return WorkOrderError(ErrCode.UNKNOWN_ORDER, f"{UNKNOWN_ORDER_MSG} ({detail})")


def missing(name: str) -> WorkOrderError:
    return WorkOrderError(ErrCode.MISSING_PARAM, f"'{name}' is required")


def bad(msg: str) -> WorkOrderError:
    return WorkOrderError(ErrCode.BAD_PARAM, msg)
