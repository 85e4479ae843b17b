"""Pure planning: a ticket as it is now + its new domain events + its open deliveries -> a `Plan`.

Cards are reconciled with the ticket rather than derived from each event, so a lost race, a
replayed event or a crash between two steps converges to the same cards:

- every current handler who may take a one-click decision (approve / reject / accept / finish
  add-node) has exactly one live card per platform for the current state, whose buttons are what
  `allowed_actions` gives them now (its *signature*);
- every live card that no longer matches (the ticket moved on, ended, the person's buttons changed)
  is closed: turned into a result card showing what happened ("已同意 · 王强 · 11-21 14:05");
- a planned card not yet sent that no longer matches is cancelled instead.

Events add the notices that are not cards to act on: CC (抄送) cards for `CcNotified`, and the
requester is told when someone else decides, closes, hands over, forces or deletes their ticket.
Dedupe keys make planning idempotent: planning the same events twice inserts nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from bot.cards.build import CARD_ACTIONS, alias
from bot.notify.ports import (
    BUTTON_KINDS,
    CC,
    NOTICE,
    PENDING,
    PLANNED,
    SENT,
    Close,
    Delivery,
    NewDelivery,
    OutboxEvent,
)
from core.access import Action, allowed_actions
from core.org import Org, User
from core.ticket import Ticket
from core.workflow import Attribute, Workflow

AddressOf = Callable[[User], str]


@dataclass(frozen=True, slots=True)
class Plan:
    new: tuple[NewDelivery, ...] = ()
    closes: tuple[Close, ...] = ()
    cancels: tuple[int, ...] = ()
    reasons: Mapping[int, str] = field(default_factory=dict)  # delivery id -> why closed/cancelled

    @property
    def empty(self) -> bool:
        return not (self.new or self.closes or self.cancels)


def signature(actions: Sequence[Action]) -> str:
    """The one-click buttons of a card as a comparable string, e.g. "transition:152,transition:153"."""
    return ",".join(f"{a.kind.value}:{a.transition_id}" for a in actions if a.kind in CARD_ACTIONS)


def wanted_cards(ticket: Ticket, wf: Workflow, org: Org) -> dict[str, str]:
    """username -> card signature, for every current handler who has a one-click decision."""
    if ticket.is_ended or ticket.is_deleted:
        return {}
    out: dict[str, str] = {}
    for username in ticket.handlers:
        sig = signature(allowed_actions(ticket, wf, org, username))
        if sig:
            out[username] = sig
    return out


def _notice_note(event: OutboxEvent, ticket: Ticket, wf: Workflow, org: Org) -> str | None:
    """What to tell the requester about `event` (None: nothing). Their own actions aren't news."""
    actor = str(event.payload.get("actor", ""))
    if not actor or actor == ticket.creator:
        return None
    who = alias(org, actor)
    if event.event == "TicketTransitioned":
        t = wf.transition(int(event.payload.get("transition_id", 0)))
        name = t.name.strip() if t is not None else ""
        if name:
            verb = name if name.startswith("已") else f"已{name}"
        else:
            attribute = int(event.payload.get("attribute", 0))
            verb = {int(Attribute.AGREE): "已同意", int(Attribute.REJECT): "已拒绝"}.get(attribute, "已处理")
        return f"{verb} · {who}"
    if event.event == "TicketClosed":
        return f"已关闭 · {who}"
    if event.event == "TicketDelivered":
        return f"已转交给{alias(org, str(event.payload.get('target', '')))} · {who}"
    if event.event == "StateForced":
        return f"已修改状态 · {who}"
    if event.event == "TicketDeleted":
        return f"已删除 · {who}"
    return None


def addressed(
    ticket: Ticket,
    org: Org,
    username: str,
    platforms: Mapping[str, AddressOf],
    *,
    kind: str,
    key: str,
    actor: str = "",
    note: str = "",
    skip: Collection[str] = (),
) -> list[NewDelivery]:
    """One delivery of `kind` to `username` on each platform where they have an address (none if
    they are unknown or inactive); its dedupe key is "<kind>:<platform>:<key>"."""
    user = org.user(username)
    if user is None or not user.is_active:
        return []
    out: list[NewDelivery] = []
    for platform, address_of in platforms.items():
        address = address_of(user)
        if address and platform not in skip:
            out.append(
                NewDelivery(
                    platform=platform,
                    ticket_id=ticket.id,
                    recipient=username,
                    address=address,
                    kind=kind,
                    dedupe_key=f"{kind}:{platform}:{key}",
                    actor=actor,
                    note=note,
                    state_id=ticket.state_id,
                    version=ticket.version,
                )
            )
    return out


def plan(
    ticket: Ticket,
    wf: Workflow,
    org: Org,
    events: Sequence[OutboxEvent],
    open_deliveries: Sequence[Delivery],
    platforms: Mapping[str, AddressOf],
) -> Plan:
    """The deliveries to add, close and cancel for `ticket` (see the module doc)."""
    wanted = wanted_cards(ticket, wf, org)
    new: list[NewDelivery] = []
    closes: list[Close] = []
    cancels: list[int] = []
    reasons: dict[int, str] = {}
    covered: set[tuple[str, str]] = set()  # (platform, recipient) with a valid card

    for d in open_deliveries:
        if d.kind not in BUTTON_KINDS or d.platform not in platforms:
            continue
        current = d.state_id == ticket.state_id and d.recipient in wanted
        if d.status == PLANNED:
            if current:
                covered.add((d.platform, d.recipient))
            else:
                cancels.append(d.id)
                reasons[d.id] = "the ticket moved on before the card was sent"
        elif d.status == SENT and d.live and d.close_due_at is None:
            if current and wanted[d.recipient] == d.actions:
                covered.add((d.platform, d.recipient))
            else:
                closes.append(Close(d.id, ""))
                reasons[d.id] = "the card's buttons no longer match the ticket"

    for username in wanted:
        new += addressed(
            ticket,
            org,
            username,
            platforms,
            kind=PENDING,
            key=f"{ticket.id}:{ticket.version}:{username}",
            skip={p for p, who in covered if who == username},
        )

    for event in events:
        recipients: list[tuple[str, str, str]] = []  # (username, kind, note)
        if event.event == "CcNotified":
            for username in event.payload.get("recipients", ()):
                recipients.append((str(username), CC, ""))
        elif (note := _notice_note(event, ticket, wf, org)) is not None:
            recipients.append((ticket.creator, NOTICE, note))
        for username, kind, note in recipients:
            new += addressed(
                ticket,
                org,
                username,
                platforms,
                kind=kind,
                key=f"{event.id}:{username}",
                actor=str(event.payload.get("actor", "")),
                note=note,
            )
    return Plan(tuple(new), tuple(closes), tuple(cancels), reasons)
