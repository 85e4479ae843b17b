"""Table models (SQLModel, table=True). The schema itself is created by the Alembic migrations in
store/migrations; these models are its single Python description (queries use their ``__table__``).

Conventions:
- datetimes are timezone-aware UTC in and out (``UTCDateTime``): TIMESTAMPTZ on PostgreSQL, naive
  UTC text (``YYYY-MM-DD HH:MM:SS.ffffff``, so text order is time order) on SQLite;
- JSON columns are JSON on SQLite and JSONB on PostgreSQL;
- surrogate ids are BIGINT on PostgreSQL and ``INTEGER PRIMARY KEY AUTOINCREMENT`` (a rowid alias,
  never reused) on SQLite;
- ``0`` / ``""`` rather than NULL where core uses them as "none" (parent ticket, accepted_by...).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, ForeignKey, Index, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Field, SQLModel

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime. Naive datetimes are refused (core only uses aware UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} (the store needs timezone-aware UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType: TypeEngine[Any] = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
IdType: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")


class StoreModel(SQLModel, registry=registry(metadata=metadata)):
    """Base of the store's tables: their own MetaData (with a naming convention), not SQLModel's."""


def table_of(model: type[SQLModel]) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------- tickets


class TicketRow(StoreModel, table=True):
    __tablename__ = "ticket"
    __table_args__ = (
        Index("ix_ticket_workflow_id_created_at", "workflow_id", "created_at"),
        Index("ix_ticket_state_id", "state_id"),
        Index("ix_ticket_creator_created_at", "creator", "created_at"),
        Index("ix_ticket_parent", "parent_ticket_id", "parent_ticket_state_id"),
        Index("ix_ticket_act_state_created_at", "act_state", "created_at"),
        Index("ix_ticket_created_at", "created_at"),
        # LIKE 'prefix%' on PostgreSQL only uses a pattern_ops btree under a non-C collation.
        Index("ix_ticket_sn_pattern", "sn", postgresql_ops={"sn": "varchar_pattern_ops"}).ddl_if(
            dialect="postgresql"
        ),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=IdType)
    sn: str = Field(unique=True)
    title: str = Field(sa_type=Text)
    workflow_id: int
    workflow_version: str
    state_id: int
    act_state: int
    creator: str
    participant_type: int
    participants: list[str] = Field(default_factory=list, sa_type=JSONType)
    accepted_by: str = ""
    in_add_node: bool = False
    add_node_man: str = ""
    add_node_target: str = ""
    votes: dict[str, int] = Field(default_factory=dict, sa_type=JSONType)
    relation: list[str] = Field(default_factory=list, sa_type=JSONType)
    cc: list[str] = Field(default_factory=list, sa_type=JSONType)
    fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    parent_ticket_id: int = Field(default=0, sa_type=IdType)
    parent_ticket_state_id: int = 0
    script_run_last_result: bool = True
    state_entered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_handlers: dict[str, str] = Field(default_factory=dict, sa_type=JSONType)  # str(state id) -> user
    is_deleted: bool = False
    version: int = 1
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class TicketUserRow(StoreModel, table=True):
    """Who is involved in a ticket: one row per (ticket, username) for everyone in its relation,
    its current handlers and everyone who acted. Serves the duty / relation / worked lists."""

    __tablename__ = "ticket_user"
    __table_args__ = (
        Index("ix_ticket_user_username_is_current_ticket_id", "username", "is_current", "ticket_id"),
        Index("ix_ticket_user_username_worked_ticket_id", "username", "worked", "ticket_id"),
    )

    ticket_id: int = Field(sa_type=IdType, sa_column_args=[ForeignKey("ticket.id")], primary_key=True)
    username: str = Field(primary_key=True)
    is_current: bool = False  # may act on the ticket now (duty)
    worked: bool = False  # has acted on it (any non-system flow log)


class FlowLogRow(StoreModel, table=True):
    __tablename__ = "flow_log"
    __table_args__ = (
        Index("ix_flow_log_ticket_id_id", "ticket_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=IdType)
    ticket_id: int = Field(sa_type=IdType, sa_column_args=[ForeignKey("ticket.id")])
    state_id: int
    actor: str
    actor_type: int
    intervene_type: int
    transition_id: int = 0
    transition_name: str = ""
    attribute: int = 0
    suggestion: str = Field(default="", sa_type=Text)
    fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    created_at: datetime = Field(sa_type=UTCDateTime)
    extra: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)  # core.ticket.FlowLog.extra


class SnCounterRow(StoreModel, table=True):
    __tablename__ = "sn_counter"

    prefix: str = Field(primary_key=True)
    day: str = Field(primary_key=True)  # YYYYMMDD (UTC)
    value: int = 0


# --------------------------------------------------------------------------------------------- inbox/outbox


class OutboxRow(StoreModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=IdType)
    ticket_id: int | None = Field(default=None, sa_type=IdType)
    event: str
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    created_at: datetime = Field(sa_type=UTCDateTime)
    status: str = "pending"  # pending | sent | dead
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    last_error: str = Field(default="", sa_type=Text)
    dedupe_key: str | None = Field(default=None, unique=True)


class InboxRow(StoreModel, table=True):
    __tablename__ = "inbox"
    __table_args__ = (
        Index("uq_inbox_platform_dedupe_key", "platform", "dedupe_key", unique=True),
        Index("ix_inbox_status_received_at", "status", "received_at"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=IdType)
    platform: str
    dedupe_key: str
    received_at: datetime = Field(sa_type=UTCDateTime)
    payload: str = Field(sa_type=Text)
    status: str = "pending"  # pending | processing | done | dead
    attempts: int = 0  # failed processing attempts
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # set while processing
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # after a failure
    last_error: str = Field(default="", sa_type=Text)


# --------------------------------------------------------------------------------------------- workflows


class WorkflowVersionRow(StoreModel, table=True):
    __tablename__ = "workflow_version"

    workflow_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    version: str = Field(primary_key=True)
    source: str = Field(sa_type=Text)
    loaded_at: datetime = Field(sa_type=UTCDateTime)


# --------------------------------------------------------------------------------------------- directory


class OrgUserRow(StoreModel, table=True):
    __tablename__ = "org_user"

    username: str = Field(primary_key=True)
    alias: str = ""
    email: str = ""
    phone: str = ""
    dept_ids: list[int] = Field(default_factory=list, sa_type=JSONType)
    type: int = 0
    is_active: bool = True
    wecom_userid: str = ""
    dingtalk_staff_id: str = ""
    avatar: str = Field(default="", sa_type=Text)
    source: str = "config"  # config | wecom | dingtalk
    updated_at: datetime = Field(sa_type=UTCDateTime)


class OrgDepartmentRow(StoreModel, table=True):
    __tablename__ = "org_department"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    name: str
    parent_id: int = 0
    leader: str = ""
    approvers: list[str] = Field(default_factory=list, sa_type=JSONType)
    source: str = "config"
    updated_at: datetime = Field(sa_type=UTCDateTime)


class OrgRoleRow(StoreModel, table=True):
    __tablename__ = "org_role"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    name: str
    members: list[str] = Field(default_factory=list, sa_type=JSONType)
    source: str = "config"
    updated_at: datetime = Field(sa_type=UTCDateTime)


POSTGRESQL_ONLY_INDEXES = frozenset({"ix_ticket_sn_pattern"})


def include_object_for(dialect_name: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic autogenerate filter: PostgreSQL-only indexes don't exist (and aren't missing) elsewhere."""

    def include_object(_obj: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any) -> bool:
        return not (type_ == "index" and name in POSTGRESQL_ONLY_INDEXES and dialect_name != "postgresql")

    return include_object


ticket = table_of(TicketRow)
ticket_user = table_of(TicketUserRow)
flow_log = table_of(FlowLogRow)
sn_counter = table_of(SnCounterRow)
outbox = table_of(OutboxRow)
inbox = table_of(InboxRow)
workflow_version = table_of(WorkflowVersionRow)
org_user = table_of(OrgUserRow)
org_department = table_of(OrgDepartmentRow)
org_role = table_of(OrgRoleRow)


# --------------------------------------------------------------------------------------------- chat


class DeliveryRow(StoreModel, table=True):
    """One message the service sends to one person on one chat platform, and what became of it.

    A card is planned (`status` pending), sent (`sent`, with the platform's message id, task id and
    single-use `response_code`), maybe cancelled before it went out (`cancelled`) or given up
    (`dead`). A card with buttons stays `live` until it is closed: `close_due_at` set means "turn it
    into a result card" (with `close_note`, e.g. "已同意 · 王强"); `closed_at` says it was done."""

    __tablename__ = "delivery"
    __table_args__ = (
        Index("ix_delivery_status_due_at", "status", "due_at"),
        Index("ix_delivery_close_due_at", "close_due_at"),
        Index("ix_delivery_ticket_id_id", "ticket_id", "id"),
        Index("ix_delivery_actor_kind_created_at", "actor", "kind", "created_at"),
        Index("uq_delivery_platform_task_id", "platform", "task_id", unique=True),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=IdType)
    platform: str
    ticket_id: int = Field(sa_type=IdType)
    recipient: str  # directory username
    address: str  # the recipient's id on the platform (WeCom userid, DingTalk userId)
    kind: str  # pending | urge | cc | notice
    actor: str = ""  # who caused it: the urger, the decider
    note: str = Field(default="", sa_type=Text)  # the result text of a notice
    dedupe_key: str = Field(unique=True)
    status: str = "pending"  # pending | sent | cancelled | dead
    attempts: int = 0
    due_at: datetime = Field(sa_type=UTCDateTime)
    last_error: str = Field(default="", sa_type=Text)
    task_id: str | None = None
    msg_id: str = ""
    state_id: int = 0  # the ticket state the card was made for
    version: int = 0  # the ticket version the card shows
    actions: str = ""  # the card's buttons as "kind:transition_id" joined by ","
    live: bool = False  # has buttons that may still be clicked
    response_code: str = Field(default="", sa_type=Text)  # single use; "" once used
    code_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    close_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    close_note: str = Field(default="", sa_type=Text)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    # several workers: the one sending it and until when its claim holds (FOR UPDATE SKIP LOCKED)
    claimed_by: str = Field(default="", sa_column_kwargs={"server_default": ""})
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ChatDraftRow(StoreModel, table=True):
    """A ticket being filled in step by step in a chat: one per (platform, person)."""

    __tablename__ = "chat_draft"
    __table_args__ = (Index("ix_chat_draft_expires_at", "expires_at"),)

    platform: str = Field(primary_key=True)
    username: str = Field(primary_key=True)
    workflow_id: int
    fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    asking: str = ""  # the field key the last bot message asked for
    lang: str = "zh"
    expires_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


delivery = table_of(DeliveryRow)
chat_draft = table_of(ChatDraftRow)


# --------------------------------------------------------------------------------------------- api


class ApiNonceRow(StoreModel, table=True):
    """A nonce of the API's HMAC scheme, remembered until `expires_at` so a request can't be replayed."""

    __tablename__ = "api_nonce"
    __table_args__ = (Index("ix_api_nonce_expires_at", "expires_at"),)

    app: str = Field(primary_key=True)
    nonce: str = Field(primary_key=True)
    expires_at: datetime = Field(sa_type=UTCDateTime)


api_nonce = table_of(ApiNonceRow)


# --------------------------------------------------------------------------------------------- due work, hooks


class DueWorkRow(StoreModel, table=True):
    """Something the system must do at a time, for a ticket still where it was when planned:
    fire a timer transition (`kind` timer, with `transition_id`), remind / urge the handlers, or
    escalate to their department leader (`step` counts repeats). Written in the same transaction as
    the ticket change that armed it; claimed by one worker at a time."""

    __tablename__ = "due_work"
    __table_args__ = (
        Index("ix_due_work_status_due_at", "status", "due_at"),
        Index("ix_due_work_ticket_id", "ticket_id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=IdType)
    ticket_id: int = Field(sa_type=IdType)
    state_id: int
    state_entered_at: datetime = Field(sa_type=UTCDateTime)
    kind: str  # timer | remind | urge | escalate
    transition_id: int = 0
    step: int = 0
    dedupe_key: str = Field(unique=True)
    due_at: datetime = Field(sa_type=UTCDateTime)
    status: str = "pending"  # pending | done | skipped | dead
    attempts: int = 0
    last_error: str = Field(default="", sa_type=Text)
    claimed_by: str = ""
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class HookCallRow(StoreModel, table=True):
    """One hook of a state (participant type hook): the signed POST, its retries and, for
    `wait` hooks, the callback that must name this `call_id` to be accepted."""

    __tablename__ = "hook_call"
    __table_args__ = (
        Index("ix_hook_call_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_hook_call_ticket_id", "ticket_id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=IdType)
    ticket_id: int = Field(sa_type=IdType)
    state_id: int
    ticket_version: int  # the version that entered the state and asked for the hook
    call_id: str = Field(unique=True)
    url: str = Field(sa_type=Text)
    wait: bool = False
    dedupe_key: str = Field(unique=True)
    status: str = "pending"  # pending | waiting | done | failed | dead
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    last_error: str = Field(default="", sa_type=Text)
    response_status: int | None = None
    claimed_by: str = ""
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    called_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


due_work = table_of(DueWorkRow)
hook_call = table_of(HookCallRow)


# --------------------------------------------------------------------------------------------- requests


class TicketRequestRow(StoreModel, table=True):
    """The request (a chat message's platform and MsgId) that created or changed a ticket, written
    in the change's own transaction: a message processed again (its worker died before marking it
    done) finds its ticket here instead of creating a second one or commenting twice. `command`:
    "create", or the command's class name (Comment...)."""

    __tablename__ = "ticket_request"

    request_key: str = Field(primary_key=True)
    ticket_id: int = Field(sa_type=IdType)
    command: str
    created_at: datetime = Field(sa_type=UTCDateTime)


ticket_request = table_of(TicketRequestRow)


# --------------------------------------------------------------------------------------------- work orders


class WorkOrderRow(StoreModel, table=True):
    """What the work-order open API adds to a ticket: the entity it is about (`relation_type` 1 =
    a customer, `relation_id` its WeCom external_userid). A ticket without a row has none."""

    __tablename__ = "work_order"
    __table_args__ = (Index("ix_work_order_relation", "relation_type", "relation_id"),)

    ticket_id: int = Field(primary_key=True, sa_type=IdType)
    relation_type: int = 0
    relation_id: str = ""
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class CustomerRow(StoreModel, table=True):
    """A WeCom external contact (客户), from `externalcontact/get` and change_external_contact
    events. `follow_users`: the staff who added them ({userid, remark, createtime, ...})."""

    __tablename__ = "customer"

    external_userid: str = Field(primary_key=True)
    name: str = ""
    avatar: str = Field(default="", sa_type=Text)
    corp_name: str = ""
    type: int = 0  # 1 a WeChat user, 2 a WeCom user of another company
    gender: int = 0
    unionid: str = ""
    follow_users: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType)
    deleted: bool = False  # no staff member has them as a contact any more
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ChatRecordRow(StoreModel, table=True):
    """One chat message kept for work orders: from the chat archive (会话存档), forwarded to the bot,
    or given through the API. `id` is the source's msgid."""

    __tablename__ = "chat_record"
    __table_args__ = (Index("ix_chat_record_sent_at", "sent_at"),)

    id: str = Field(primary_key=True)
    source: str  # archive | chat | api
    from_id: str = ""
    to_ids: list[str] = Field(default_factory=list, sa_type=JSONType)
    room_id: str = ""
    msg_type: str = "text"
    content: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    sent_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)


class WorkOrderMessageRow(StoreModel, table=True):
    """A chat record linked to a work order (the order's msg_list), by whom and when."""

    __tablename__ = "work_order_message"

    ticket_id: int = Field(primary_key=True, sa_type=IdType)
    msg_id: str = Field(primary_key=True)
    linked_by: str = ""
    linked_at: datetime = Field(sa_type=UTCDateTime)


class WebhookCallRow(StoreModel, table=True):
    """One signed work_order_change webhook to one API app, written in the transaction of the change
    that causes it, POSTed (and retried; `retry_count` is in the body) by the webhook sender."""

    __tablename__ = "webhook_call"
    __table_args__ = (
        Index("ix_webhook_call_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_webhook_call_ticket_id", "ticket_id"),
    )

    id: str = Field(primary_key=True)  # the envelope's id (uuid)
    app: str
    url: str = Field(sa_type=Text)
    ticket_id: int = Field(sa_type=IdType)
    status: str  # create | switch | close | reopen | reply
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    dedupe_key: str = Field(unique=True)
    state: str = "pending"  # pending | sent | dead
    retry_count: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    last_error: str = Field(default="", sa_type=Text)
    response_status: int | None = None
    claimed_by: str = ""
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ChatLinkSessionRow(StoreModel, table=True):
    """A staff member linking chat records to a work order from chat: after 关联 <order_no>, what
    they forward to the bot is linked to `ticket_id` until they say 完成 or `expires_at` passes."""

    __tablename__ = "chat_link_session"

    platform: str = Field(primary_key=True)
    username: str = Field(primary_key=True)
    ticket_id: int = Field(sa_type=IdType)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


work_order = table_of(WorkOrderRow)
customer = table_of(CustomerRow)
chat_record = table_of(ChatRecordRow)
work_order_message = table_of(WorkOrderMessageRow)
webhook_call = table_of(WebhookCallRow)
chat_link_session = table_of(ChatLinkSessionRow)


# --------------------------------------------------------------------------------------------- chat archive


class ChatArchiveCursorRow(StoreModel, table=True):
    """How far a chat archive (会话存档) was pulled into chat_record: the last seq kept, per archive."""

    __tablename__ = "chat_archive_cursor"

    name: str = Field(primary_key=True)
    seq: int = Field(default=0, sa_type=IdType)
    updated_at: datetime = Field(sa_type=UTCDateTime)


chat_archive_cursor = table_of(ChatArchiveCursorRow)
