"""What the work-order sidebar needs, wired by the composition root (bot/workorder_wiring.py).
Platform-neutral: the WeCom pieces (OAuth, the JS-SDK signer) come in as the ports below."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from bot.page.oauth import PageOAuth
from bot.sidebar.session import SidebarSessions
from core.ports import Clock, Directory, TicketQueries, WorkflowCatalog
from core.service import TicketService
from core.workorder import ChatRecords, Customers, WorkOrders

# wx.agentConfig's parameters (corpid, agentid, timestamp, nonceStr, signature) for a page URL
SignPage = Callable[[str], Awaitable[Mapping[str, object]]]
# pull what the chat archive has that is not kept yet (best effort, before messages are shown)
Refresh = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Sidebar:
    service: TicketService
    queries: TicketQueries
    catalog: WorkflowCatalog
    directory: Directory
    customers: Customers
    records: ChatRecords
    work_orders: WorkOrders
    sessions: SidebarSessions
    clock: Clock
    public_url: str
    oauth: PageOAuth | None = None
    sign_page: SignPage | None = None
    refresh: Refresh | None = None
    script_urls: tuple[str, ...] = ()
    frame_ancestors: tuple[str, ...] = ()

    @property
    def page_url(self) -> str:
        return f"{self.public_url.rstrip('/')}/sidebar/workorder"
