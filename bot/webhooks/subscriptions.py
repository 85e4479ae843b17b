"""Who receives work_order_change webhooks, from the API apps of apps.yaml.

An app with a ``webhook_url`` (and so a ``webhook_secret``: config.apps refuses one without the
other) subscribes to the work orders of every workflow it may use: those its ``workflows`` lists
(or all) and those whose ``permissions.api_apps`` name it. Work orders are the tickets of
workflows whose label has ``workorder_template_type`` (core.workorder_changes.is_work_order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from config.apps import ApiApp
from core.webhook_calls import Subscription, WebhookRoutes
from core.workflow import Workflow
from core.workorder_changes import is_work_order


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """Where and how one app's webhooks are sent now."""

    url: str
    secret: str = field(repr=False)


def webhook_routes(apps: Sequence[ApiApp], workflows: Sequence[Workflow], corp_id: str = "") -> WebhookRoutes:
    """The subscriptions of `apps` to the work orders of `workflows` (for the ticket store)."""
    orders = [wf for wf in workflows if is_work_order(wf)]
    subscriptions = tuple(
        Subscription(app.name, app.webhook_url, frozenset(wf.id for wf in orders if app.allows(wf)))
        for app in apps
        if app.webhook_url and app.webhook_secret
    )
    return WebhookRoutes(
        subscriptions=tuple(s for s in subscriptions if s.workflow_ids),
        workorder_workflow_ids=frozenset(wf.id for wf in orders),
        corp_id=corp_id,
    )


def webhook_targets(apps: Sequence[ApiApp]) -> dict[str, WebhookTarget]:
    """app name -> its webhook URL and secret (for the sender), for the apps that have one."""
    return {
        app.name: WebhookTarget(app.webhook_url, app.webhook_secret)
        for app in apps
        if app.webhook_url and app.webhook_secret
    }
