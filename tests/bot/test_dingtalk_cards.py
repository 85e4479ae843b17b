"""DingTalk end to end through the real app and the DingTalk emulator (SQLite and PostgreSQL):
a robot message creates a ticket (reply through the session webhook), the handler's interactive
card is created and delivered, a signed card click moves the ticket, every card is updated in
place by its outTrackId, the requester is told; a stale click changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import NOTIFIER, RUNTIME, create_app
from bot.dingtalk.routes import DINGTALK_CALLBACKS
from config.settings import load_settings
from core.ticket import Ticket
from emulator.dingtalk import DingTalkEmulator, send_card_callback, send_robot_message
from emulator.wecom import SystemClock
from store.queries import SqlTicketQueries

CONFIG = Path(__file__).resolve().parents[2] / "config"
APP_KEY = "dingappkey0001"
APP_SECRET = "ding-app-secret-xyz"
ROBOT = "dingrobot0001"
TEMPLATE = "tpl-ticketbot.schema"
CORP = "ding-emulated-corp"
WAIT = 10.0
LEAVE = "发起 请假申请 start_date=2024-05-06 end_date=2024-05-07 days=2 reason=家里有事 proxy=zhaolei"


def emulator_org() -> dict[str, list[dict[str, Any]]]:
    org = yaml.safe_load((CONFIG / "org.yaml").read_text(encoding="utf-8"))
    users = [
        {"userid": u["dingtalk_staff_id"], "name": u["alias"], "dept_id_list": [1]}
        for u in org["users"]
        if u.get("dingtalk_staff_id")
    ]
    users.append({"userid": "outsider01", "name": "路人", "dept_id_list": [1]})
    return {"departments": [{"dept_id": 1, "name": "总部"}], "users": users}


STAFF = {
    u["username"]: u["dingtalk_staff_id"]
    for u in yaml.safe_load((CONFIG / "org.yaml").read_text(encoding="utf-8"))["users"]
    if u.get("dingtalk_staff_id")
}


@dataclass
class Ding:
    emulator: DingTalkEmulator
    client: TestClient[web.Request, web.Application]
    app: web.Application

    async def settle(self) -> None:
        async with asyncio.timeout(WAIT):
            while tasks := set(self.app[DINGTALK_CALLBACKS].tasks):
                await asyncio.gather(*tasks, return_exceptions=True)
            await self.app[NOTIFIER].drain()

    async def say(self, username: str, text: str) -> str:
        before = len(self.emulator.records.webhook_posts)
        body = self.emulator.robot_text_message(text, sender=STAFF.get(username, username))
        got = await send_robot_message(
            self.client.session, str(self.client.make_url("/dingtalk/robot")), body, app_secret=APP_SECRET
        )
        assert got.status == 200, got
        await self.settle()
        new = self.emulator.records.webhook_posts[before:]
        assert len(new) == 1, new
        return new[0].text

    def cards(self, username: str) -> list[str]:
        """outTrackIds of the cards delivered to `username`, oldest first."""
        space = f"dtv1.card//IM_ROBOT.{STAFF[username]}"
        return [c.out_track_id for c in self.emulator.records.cards if c.open_space_id == space]

    def params(self, out_track_id: str) -> dict[str, str]:
        return self.emulator.card_params(out_track_id)

    async def click(self, username: str, out_track_id: str, label: str) -> Any:
        """Click the button labelled `label` as DingTalk does: the signed callback to the URL the
        bot registered; an answer carrying card data updates the card at once (no API call)."""
        params = self.params(out_track_id)
        slot = next(n for n in range(1, 7) if params.get(f"btn{n}_text") == label)
        got = await self.emulator.click_card(
            self.client.session,
            out_track_id,
            STAFF.get(username, username),
            action_id=f"btn{slot}",
            params={"action": params[f"btn{slot}_action"]},
        )
        assert got.status == 200, got
        await self.settle()
        return got


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def make_ding(aiohttp_server: Any, aiohttp_client: Any, database_url: str, **extra: str) -> Ding:
    port = free_port()
    emulator = DingTalkEmulator(APP_KEY, APP_SECRET, ROBOT, SystemClock(), org=emulator_org(), corp_id=CORP)
    server: TestServer = await aiohttp_server(emulator.app(), access_log=None)
    base = str(server.make_url("")).rstrip("/")
    emulator.base_url = base
    env = {
        "TICKETBOT_DINGTALK_APP_KEY": APP_KEY,
        "TICKETBOT_DINGTALK_APP_SECRET": APP_SECRET,
        "TICKETBOT_DINGTALK_ROBOT_CODE": ROBOT,
        "TICKETBOT_DINGTALK_CARD_TEMPLATE_ID": TEMPLATE,
        "TICKETBOT_DINGTALK_API_BASE": base,
        "TICKETBOT_DINGTALK_OAPI_BASE": base,
        "TICKETBOT_PUBLIC_URL": f"http://127.0.0.1:{port}",  # where DingTalk posts card clicks
        **extra,
    }
    settings = load_settings(env=env, database_url=database_url, config_dir=CONFIG)
    app = await create_app(settings)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(
        TestServer(app, host="127.0.0.1", port=port)
    )
    result = Ding(emulator, client, app)
    await result.settle()
    return result


@pytest.fixture
async def ding(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Ding:
    return await make_ding(aiohttp_server, aiohttp_client, database_url)


async def _ticket(d: Ding, ticket_id: int) -> Ticket:
    found = await SqlTicketQueries(d.app[RUNTIME].db).get_ticket(ticket_id)
    assert found is not None
    return found


def _buttons(params: dict[str, str]) -> list[str]:
    return [params[f"btn{n}_text"] for n in range(1, 7) if params.get(f"btn{n}_text")]


async def test_the_card_callback_is_registered_at_start(ding: Ding) -> None:
    (reg,) = ding.emulator.records.callback_registrations
    assert (reg.route_key, reg.url) == ("ticketbot", str(ding.client.make_url("/dingtalk/card")))


async def test_chat_creates_a_ticket_and_the_handler_gets_an_interactive_card(ding: Ding) -> None:
    reply = await ding.say("liuyang", LEAVE)
    assert reply.startswith("已发起工单"), reply
    ticket_id = int(reply.rsplit("/tickets/", 1)[1].split("?")[0])
    (track,) = ding.cards("wangqiang")
    card = ding.emulator.records.card(track)
    assert card.template_id == TEMPLATE and card.callback_route_key == "ticketbot"
    assert card.param_map["link_url"].startswith(
        f"{ding.client.make_url(f'/tickets/{ticket_id}')}?u=wangqiang&"
    )
    params = ding.params(track)
    assert params["status"] == "pending" and _buttons(params) == ["同意", "驳回"]
    rows = {r["key"]: r["value"] for r in json.loads(params["rows"])}
    assert rows["申请人"] == "刘洋" and rows["当前状态"] == "部门领导审批"


async def test_a_click_moves_the_ticket_and_every_card_is_updated_in_place(ding: Ding) -> None:
    reply = await ding.say("liuyang", LEAVE)
    ticket_id = int(reply.rsplit("/tickets/", 1)[1].split("?")[0])
    (track,) = ding.cards("wangqiang")
    got = await ding.click("wangqiang", track, "同意")
    ticket = await _ticket(ding, ticket_id)
    assert ticket.state_id == 104
    # the clicked card was updated by the answer to the click itself, not by an update call
    assert got.json["cardData"]["cardParamMap"]["status"] == "done"
    assert not [
        u for u in ding.emulator.records.card_updates if u.out_track_id == track and u.source == "api"
    ]
    params = ding.params(track)
    assert params["status"] == "done" and params["result_text"].startswith("已同意 · 王强")
    assert _buttons(params) == []
    # the requester's notice and the HR members' 接单 cards
    (notice,) = ding.cards("liuyang")
    assert ding.params(notice)["result_text"] == "已同意 · 王强"
    for hr in ("yangfan", "chenjing"):
        (hr_card,) = ding.cards(hr)
        assert _buttons(ding.params(hr_card)) == ["接单"]


async def test_a_stale_click_changes_nothing(ding: Ding) -> None:
    reply = await ding.say("liuyang", LEAVE)
    ticket_id = int(reply.rsplit("/tickets/", 1)[1].split("?")[0])
    (track,) = ding.cards("wangqiang")
    before_params = ding.params(track)
    await ding.click("wangqiang", track, "同意")
    moved = await _ticket(ding, ticket_id)
    # the same card clicked again (an old render on another device): nothing changes
    got = await send_card_callback(
        ding.client.session,
        str(ding.client.make_url("/dingtalk/card")),
        out_track_id=track,
        user_id=STAFF["wangqiang"],
        corp_id=CORP,
        api_secret=APP_SECRET,
        action_id="btn2",
        params={"action": before_params["btn2_action"]},
    )
    assert got.status == 200
    await ding.settle()
    after = await _ticket(ding, ticket_id)
    assert (after.state_id, after.version) == (moved.state_id, moved.version)
    assert ding.params(track)["result_text"].startswith("已同意 · 王强")


async def test_a_card_payload_edited_to_another_ticket_is_refused_and_logged(
    ding: Ding, caplog: pytest.LogCaptureFixture
) -> None:
    first = await ding.say("liuyang", LEAVE)
    second = await ding.say("liuyang", LEAVE)
    ids = [int(r.rsplit("/tickets/", 1)[1].split("?")[0]) for r in (first, second)]
    card_a, card_b = ding.cards("wangqiang")
    key_a = ding.params(card_a)["btn1_action"]
    assert f"t:{ids[0]}:" in key_a
    edited = key_a.replace(f"t:{ids[0]}:", f"t:{ids[1]}:", 1)  # card A's button aimed at ticket B
    before = [await _ticket(ding, i) for i in ids]
    with caplog.at_level(logging.INFO, logger="ticketbot.clicks"):
        got = await ding.emulator.click_card(
            ding.client.session, card_a, STAFF["wangqiang"], action_id="btn1", params={"action": edited}
        )
        assert got.status == 200
        await ding.settle()
    after = [await _ticket(ding, i) for i in ids]
    assert [(t.state_id, t.version) for t in after] == [(t.state_id, t.version) for t in before]
    assert ding.params(card_a)["status"] != "done" and ding.params(card_b)["status"] != "done"
    (sent,) = ding.emulator.records.robot_sends
    assert sent.user_ids == (STAFF["wangqiang"],) and "按钮已失效" in sent.msg_param["content"]
    assert "card click refused: its key names another ticket than the card clicked" in caplog.messages


async def test_bad_signatures_are_refused_and_change_nothing(ding: Ding) -> None:
    body = ding.emulator.robot_text_message("帮助", sender=STAFF["liuyang"])
    got = await send_robot_message(
        ding.client.session, str(ding.client.make_url("/dingtalk/robot")), body, app_secret="wrong"
    )
    assert got.status == 403
    clicked = await send_card_callback(
        ding.client.session,
        str(ding.client.make_url("/dingtalk/card")),
        out_track_id="tb_1_1",
        user_id=STAFF["wangqiang"],
        corp_id=CORP,
        api_secret="wrong",
        params={"action": "t:1:s:102:a:transition:x:152:n:1"},
    )
    assert clicked.status == 403
    assert ding.emulator.records.webhook_posts == []


async def test_an_unknown_dingtalk_user_gets_a_clear_answer(ding: Ding) -> None:
    assert "通讯录" in await ding.say("outsider01", "帮助")


async def test_a_card_that_cannot_be_delivered_falls_back_to_a_work_notification(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str
) -> None:
    d = await make_ding(aiohttp_server, aiohttp_client, database_url, TICKETBOT_DINGTALK_AGENT_ID="3000001")
    d.emulator.robot_unreachable.add(STAFF["wangqiang"])  # the robot cannot reach him
    reply = await d.say("liuyang", LEAVE)
    ticket_id = int(reply.rsplit("/tickets/", 1)[1].split("?")[0])
    assert [r.success for t in d.cards("wangqiang") for r in d.emulator.records.card(t).deliver_results] == [
        False
    ]
    (notice,) = [n for n in d.emulator.records.work_notices if STAFF["wangqiang"] in n.user_ids]
    assert notice.msg["oa"]["status_bar"]["status_value"] == "待处理"
    assert notice.msg["oa"]["message_url"].startswith(
        f"{d.client.make_url(f'/tickets/{ticket_id}')}?u=wangqiang&"
    )
    # a decision elsewhere (here: by chat) changes the notification's status bar
    assert (await d.say("wangqiang", f"同意 {ticket_id}")).startswith("已同意工单")
    (bar,) = d.emulator.records.status_bar_updates
    assert bar.status_value.startswith("已同意 · 王强")


TOKEN = "dingtalk-callback-token"
AES = "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"


async def test_the_event_subscription_checks_url_and_stores_each_event_once(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str
) -> None:
    from emulator.dingtalk import send_event, verify_callback_url
    from store.inbox import SqlInbox

    d = await make_ding(
        aiohttp_server,
        aiohttp_client,
        database_url,
        TICKETBOT_DINGTALK_TOKEN=TOKEN,
        TICKETBOT_DINGTALK_AES_KEY=AES,
    )
    url = str(d.client.make_url("/dingtalk/events"))
    keys = {"token": TOKEN, "aes_key": AES, "owner_key": APP_KEY}
    for spelling in ("signature", "msg_signature"):
        check = await verify_callback_url(d.client.session, url, spelling=spelling, **keys)  # type: ignore[arg-type]
        assert check.status == 200 and check.plaintext == "success", check
    event = {"EventType": "user_modify_org", "EventId": "ev-1", "CorpId": CORP, "UserId": ["staff0003"]}
    first = await send_event(d.client.session, url, event, token=TOKEN, aes_key=AES, owner_key=APP_KEY)
    again = await send_event(  # DingTalk's re-push
        d.client.session, url, event, token=TOKEN, aes_key=AES, owner_key=APP_KEY
    )
    assert (first.status, first.plaintext) == (again.status, again.plaintext) == (200, "success")
    await d.settle()
    rows = [r for r in await SqlInbox(d.app[RUNTIME].db).statuses() if r[0].startswith("evt:")]
    assert rows == [("evt:id:ev-1", "done", 0)]
    bad = await send_event(d.client.session, url, event, token="wrong", aes_key=AES, owner_key=APP_KEY)
    assert bad.status == 403


async def test_accept_first_cc_and_the_end_of_a_ticket_on_dingtalk(ding: Ding) -> None:
    reply = await ding.say("liuyang", LEAVE)
    ticket_id = int(reply.rsplit("/tickets/", 1)[1].split("?")[0])
    await ding.click("wangqiang", ding.cards("wangqiang")[0], "同意")
    (yang,) = ding.cards("yangfan")
    (chen,) = ding.cards("chenjing")
    chen_before = ding.params(chen)  # what ChenJing's phone still shows a moment later
    await ding.click("yangfan", yang, "接单")
    assert (await _ticket(ding, ticket_id)).accepted_by == "yangfan"
    assert ding.params(yang)["result_text"].startswith("已接单 · 杨帆")
    assert ding.params(chen)["result_text"].startswith("已接单 · 杨帆")  # updated in place by the notifier
    fresh = ding.cards("yangfan")[-1]
    assert fresh != yang and "备案完成" in _buttons(ding.params(fresh))
    got = await ding.emulator.click_card(  # her stale 接单: nothing changes
        ding.client.session,
        chen,
        STAFF["chenjing"],
        action_id="btn1",
        params={"action": chen_before["btn1_action"]},
    )
    assert got.status == 200
    await ding.settle()
    assert (await _ticket(ding, ticket_id)).accepted_by == "yangfan"
    await ding.click("yangfan", fresh, "备案完成")
    assert (await _ticket(ding, ticket_id)).is_ended
    (cc,) = ding.cards("zhaolei")
    assert ding.params(cc)["status"] == "done" and _buttons(ding.params(cc)) == []
    notices = [ding.params(t)["result_text"] for t in ding.cards("liuyang")]
    assert notices == ["已同意 · 王强", "已备案完成 · 杨帆"]


async def test_step_by_step_create_and_urge_on_dingtalk(ding: Ding) -> None:
    first = await ding.say("liuyang", "发起 请假申请")
    replies = [first]
    answers = iter(["年假", "2024-05-06", "2024-05-07", "2", "家里有事"])
    while "已发起工单" not in replies[-1]:
        assert len(replies) < 10, replies
        replies.append(await ding.say("liuyang", next(answers)))
    ticket_id = int(replies[-1].rsplit("/tickets/", 1)[1].split("?")[0])
    assert len(ding.cards("wangqiang")) == 1
    urged = await ding.say("liuyang", f"催办 {ticket_id}")
    assert "已催办" in urged and "王强" in urged, urged
    pending, urge = ding.cards("wangqiang")
    assert ding.params(urge)["subtitle"].startswith("刘洋 催办了此工单")
    assert "分钟后" in await ding.say("liuyang", f"催办 {ticket_id}")
    await ding.click("wangqiang", urge, "同意")
    assert ding.params(pending)["status"] == "done" and ding.params(urge)["status"] == "done"


async def test_a_reply_after_the_session_webhook_expired_goes_through_the_robot(ding: Ding) -> None:
    body = ding.emulator.robot_text_message("帮助", sender=STAFF["liuyang"])
    body["sessionWebhookExpiredTime"] = 1_000  # long gone (ms since the epoch)
    got = await send_robot_message(
        ding.client.session, str(ding.client.make_url("/dingtalk/robot")), body, app_secret=APP_SECRET
    )
    assert got.status == 200
    await ding.settle()
    assert ding.emulator.records.webhook_posts == []
    (sent,) = ding.emulator.records.robot_sends
    assert sent.user_ids == (STAFF["liuyang"],) and sent.msg_key == "sampleText"
    assert "发起" in sent.msg_param["content"]


async def test_the_same_robot_message_twice_is_answered_once(ding: Ding) -> None:
    body = ding.emulator.robot_text_message("待办", sender=STAFF["wangqiang"])
    url = str(ding.client.make_url("/dingtalk/robot"))
    for _ in range(2):
        got = await send_robot_message(ding.client.session, url, body, app_secret=APP_SECRET)
        assert got.status == 200
    await ding.settle()
    assert len(ding.emulator.records.webhook_posts) == 1


async def test_a_click_not_answered_in_time_gets_its_card_updated_by_the_notifier(
    ding: Ding, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.dingtalk.routes as routes

    monkeypatch.setattr(routes, "CLICK_BUDGET", 0.0)  # as if the engine took longer than DingTalk waits
    reply = await ding.say("liuyang", LEAVE)
    ticket_id = int(reply.rsplit("/tickets/", 1)[1].split("?")[0])
    (track,) = ding.cards("wangqiang")
    got = await ding.click("wangqiang", track, "同意")
    assert got.json == {}  # no card data in the answer
    assert (await _ticket(ding, ticket_id)).state_id == 104
    (update,) = [u for u in ding.emulator.records.card_updates if u.out_track_id == track]
    assert update.source == "api" and update.param_map["result_text"].startswith("已同意 · 王强")


async def test_with_a_corp_id_configured_other_corps_are_refused(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str
) -> None:
    d = await make_ding(
        aiohttp_server, aiohttp_client, database_url, TICKETBOT_DINGTALK_CORP_ID="another-corp"
    )
    body = d.emulator.robot_text_message("帮助", sender=STAFF["liuyang"])  # from the emulator's corp
    got = await send_robot_message(
        d.client.session, str(d.client.make_url("/dingtalk/robot")), body, app_secret=APP_SECRET
    )
    assert got.status == 403
    ours = await make_ding(aiohttp_server, aiohttp_client, database_url, TICKETBOT_DINGTALK_CORP_ID=CORP)
    assert "发起" in await ours.say("liuyang", "帮助")


async def test_a_click_the_processing_ends_early_does_not_keep_its_answer_waiting() -> None:
    """The click's HTTP answer waits until the processing offers the card's new data or declines.
    A click by someone not in the directory (or inactive) ends the processing early: it declines
    too, so the answer goes out at once, not after the whole CLICK_BUDGET (found by the callback
    fuzz, tests/fuzz/test_callback_fuzz.py)."""
    from typing import cast

    from bot.dingtalk.answers import ClickAnswers
    from bot.dingtalk.card_callback import parse_card_callback
    from bot.dingtalk.processing import INACTIVE, NOT_IN_DIRECTORY, DingTalkChat, make_dingtalk_processor
    from core.org import User
    from emulator.dingtalk import card_callback_body
    from tests.bot.test_wecom_chat import FakeDirectory

    sent: list[tuple[list[str], str]] = []

    class Client:
        async def robot_batch_send(self, user_ids: list[str], msg_key: str, params: dict[str, str]) -> None:
            sent.append((user_ids, params["content"]))

    answers = ClickAnswers()
    chat = DingTalkChat(
        conversation=cast(Any, None),
        client=cast(Any, Client()),
        directory=FakeDirectory(User("gone", dingtalk_staff_id="staff0099", is_active=False)),
        service=cast(Any, None),  # never reached
        notifier=None,
        clock=SystemClock(),
        answers=answers,
    )
    on_inbound = make_dingtalk_processor(chat)
    for user in ("outsider01", "staff0099"):
        body = card_callback_body(
            out_track_id="track-1",
            user_id=user,
            corp_id=CORP,
            params={"action": "t:1:s:1:a:transition:x:1:n:1"},
        )
        click = parse_card_callback(json.dumps(body).encode())
        waiting = answers.expect(click.dedupe_key)
        await on_inbound(click)
        assert waiting.done() and waiting.result() is None
    assert sent == [(["outsider01"], NOT_IN_DIRECTORY), (["staff0099"], INACTIVE)]


async def test_bodies_cut_short_by_the_sender_are_refused_not_unhandled_errors(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Each DingTalk callback whose sender went away mid-body (the read raises ConnectionResetError,
    as deployed) is refused (400, logged as a refusal), never an "unhandled error" with a stack and a
    500 (found by the callback fuzz, tests/fuzz/test_callback_fuzz.py)."""
    import time

    from bot.http import TRUNCATED
    from emulator.dingtalk import card_callback_signature, robot_sign
    from store.inbox import SqlInbox
    from tests.fakes import cut_short_request

    d = await make_ding(
        aiohttp_server,
        aiohttp_client,
        database_url,
        TICKETBOT_DINGTALK_TOKEN=TOKEN,
        TICKETBOT_DINGTALK_AES_KEY=AES,
    )
    callbacks = d.app[DINGTALK_CALLBACKS]
    ts = str(int(time.time() * 1000))
    requests = [
        (callbacks.handle_event, "/dingtalk/events?signature=a&timestamp=1&nonce=1", {}),
        (callbacks.handle_robot, "/dingtalk/robot", {"timestamp": ts, "sign": robot_sign(ts, APP_SECRET)}),
        (
            callbacks.handle_card,
            "/dingtalk/card",
            {
                "x-ddpaas-signature-timestamp": ts,
                "x-ddpaas-signature": card_callback_signature(ts, APP_SECRET),
            },
        ),
    ]
    for handler, path, headers in requests:
        with caplog.at_level(logging.INFO, logger="ticketbot"):
            answer = await handler(cut_short_request(d.app, path, headers))
        assert isinstance(answer, web.Response) and (answer.status, answer.text) == (400, TRUNCATED), path
    logged = [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("ticketbot.dingtalk")
    ]
    assert logged == [("INFO", "dingtalk callback refused")] * 3
    assert await SqlInbox(d.app[RUNTIME].db).statuses() == []
