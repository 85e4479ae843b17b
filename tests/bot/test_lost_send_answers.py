"""A card send whose answer was lost (a timeout, or a worker killed before recording it) is sent
again with the same task id / outTrackId; the platform refuses the id as used. Both senders read
that refusal as "the earlier attempt went through": the send counts as done, whatever the
delivery's attempt count (a claim taken over after a crash has none recorded)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.cards.model import Button, ButtonStyle, Card, CardKind
from bot.dingtalk.client import error_for as dingtalk_error
from bot.dingtalk.sender import DingTalkSender
from bot.notify.ports import SendFailed
from bot.wecom.client import TaskIdUsed
from bot.wecom.client import error_for as wecom_error
from bot.wecom.sender import WeComSender
from tests.bot.test_notify_plan import delivery

CARD = Card(
    CardKind.PENDING,
    "请假申请",
    buttons=(Button("同意", "k1", ButtonStyle.PRIMARY),),
    ticket_id=7,
    state_id=2,
    version=1,
)


class RefusingWeCom:
    def __init__(self, errcode: int) -> None:
        self.errcode = errcode
        self.calls = 0

    async def send_template_card(self, to: str, card: dict[str, Any]) -> Any:
        self.calls += 1
        raise wecom_error(self.errcode, "refused")


class RefusingDingTalk:
    def __init__(self, code: str) -> None:
        self.code = code
        self.calls = 0

    async def create_and_deliver_card(self, *args: Any, **kw: Any) -> None:
        self.calls += 1
        raise dingtalk_error(self.code, "refused", status=400)


def test_the_wecom_client_names_a_used_task_id() -> None:
    assert isinstance(wecom_error(42035, "task_id used"), TaskIdUsed)


@pytest.mark.parametrize("attempts", [0, 3])
async def test_wecom_a_used_task_id_counts_as_sent(attempts: int) -> None:
    client = RefusingWeCom(42035)
    sender = WeComSender(client, agent_id=1000002)  # type: ignore[arg-type]
    d = delivery(5, "wangqiang", status="pending", attempts=attempts, task_id=None, msg_id="")
    ref = await sender.send_card(d, CARD)
    assert client.calls == 1
    assert (ref.msg_id, ref.response_code, ref.code_ttl) == ("", "", None)
    assert ref.task_id is not None and ref.task_id.startswith("tb_7_500_u")


async def test_wecom_other_refusals_still_fail_the_send() -> None:
    sender = WeComSender(RefusingWeCom(81013), agent_id=1000002)  # type: ignore[arg-type]
    with pytest.raises(SendFailed, match="81013"):
        await sender.send_card(delivery(5, "wangqiang", status="pending", task_id=None), CARD)


@pytest.mark.parametrize("attempts", [0, 3])
async def test_dingtalk_a_duplicate_out_track_id_counts_as_sent(attempts: int) -> None:
    client = RefusingDingTalk("InvalidParameter.outTrackId.duplicate")
    sender = DingTalkSender(client, template_id="tpl", callback_route_key="route")  # type: ignore[arg-type]
    d = delivery(5, "wangqiang", platform="dingtalk", status="pending", attempts=attempts, task_id=None)
    ref = await sender.send_card(d, CARD)
    assert client.calls == 1
    assert ref.task_id is not None and ref.msg_id == ref.task_id


async def test_dingtalk_other_refusals_still_fail_the_send() -> None:
    sender = DingTalkSender(
        RefusingDingTalk("InvalidParameter.cardData"),  # type: ignore[arg-type]
        template_id="tpl",
        callback_route_key="route",
    )
    with pytest.raises(SendFailed):
        await sender.send_card(delivery(5, "wangqiang", platform="dingtalk", status="pending"), CARD)
