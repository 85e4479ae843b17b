"""bot.dingtalk inbound parsing: event pushes, robot messages, card clicks (pure, no event loop)."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.dingtalk.card_callback import (
    CardClick,
    card_signature,
    click_dedupe_key,
    parse_card_callback,
    verify_card_signature,
)
from bot.dingtalk.crypto import CallbackRefused, DingTalkCrypto
from bot.dingtalk.events import (
    MAX_BODY_BYTES,
    DingTalkEvent,
    parse_event,
    parse_event_plaintext,
    parse_query,
    reply_success,
)
from bot.dingtalk.robot import (
    AtUser,
    RobotMessage,
    parse_robot_message,
    robot_sign,
    strip_bot_mention,
    verify_robot_sign,
)

VECTOR: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "dingtalk.json").read_text(encoding="utf-8")
)["vectors"][0]
CRYPTO = DingTalkCrypto(VECTOR["token"], VECTOR["encoding_aes_key"], VECTOR["owner_key"])
CORP = "ding6ccabc44d2c8d38b"
TS, NONCE = "1700000000123", "nOnCe42"

ROBOT_CODE = "dingrobot0001"
APP_SECRET = "robot-secret-XYZ"
API_SECRET = "card-api-secret"
NOW_MS = 1_700_000_000_000
HOUR_MS = 3_600_000
# Computed outside Python: printf '1700000000000\nrobot-secret-XYZ' | openssl dgst -sha256 \
#   -hmac robot-secret-XYZ -binary | base64   (and likewise for the card signature over the timestamp)
KNOWN_ROBOT_SIGN = "PX0BBzC/LV29QsgicOLpYVjw6WBkwSCVDLYx290ljhI="
KNOWN_CARD_SIGN = "w5yasVoE0C5W/x7zrNW8ReAk8FfqvWC8eTrZdsewFR4="
SECRETS = (VECTOR["token"], VECTOR["encoding_aes_key"], APP_SECRET, API_SECRET)


def sha1_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    joined = "".join(sorted([token, timestamp, nonce, encrypt]))
    return hashlib.sha1(joined.encode(), usedforsecurity=False).hexdigest()


def push(
    plaintext: str,
    *,
    crypto: DingTalkCrypto = CRYPTO,
    token: str = VECTOR["token"],
    sig_name: str = "signature",
    ts_name: str = "timestamp",
    nonce: str = NONCE,
) -> tuple[str, bytes]:
    """A raw query string and body for an event push, signed with `token`."""
    encrypt = crypto.encrypt(plaintext)
    sig = sha1_signature(token, TS, nonce, encrypt)
    query = f"{sig_name}={sig}&{ts_name}={TS}&nonce={urllib.parse.quote(nonce, safe='')}"
    return query, json.dumps({"encrypt": encrypt}).encode()


def refusal(exc: pytest.ExceptionInfo[CallbackRefused]) -> tuple[int, str]:
    assert not any(secret in exc.value.reason for secret in SECRETS)
    return exc.value.status, exc.value.reason


def vector_body() -> bytes:
    return json.dumps({"encrypt": VECTOR["encrypt"]}).encode()


# ---- query decoding


def test_parse_query_decodes_percent_only_and_keeps_plus() -> None:
    assert parse_query("a=x+y%2Bz&b=%E4%B8%AD&c=&d") == {"a": "x+y+z", "b": "中", "c": "", "d": ""}
    assert parse_query("a=1&a=2") == {"a": "1"}
    assert parse_query("") == {}
    with pytest.raises(CallbackRefused) as info:
        parse_query("a=%FF%FE")
    assert refusal(info) == (400, "the query string is not percent-encoded UTF-8")


@given(st.text())
def test_parse_query_round_trips_any_value(value: str) -> None:
    for safe in ("", "+"):  # '+' sent literally or as %2B: the same value either way
        assert parse_query("v=" + urllib.parse.quote(value, safe=safe)) == {"v": value}


# ---- event subscription: the official vector


@pytest.mark.parametrize("sig_name", ["signature", "msg_signature"])
@pytest.mark.parametrize("ts_name", ["timestamp", "timeStamp"])
def test_the_official_vector_under_both_query_spellings(sig_name: str, ts_name: str) -> None:
    query = f"{sig_name}={VECTOR['signature']}&{ts_name}={VECTOR['timestamp']}&nonce={VECTOR['nonce']}"
    event = parse_event(CRYPTO, query, vector_body())
    canonical = json.dumps({"EventType": "check_url"}, sort_keys=True, separators=(",", ":"))
    assert event == DingTalkEvent(
        dedupe_key="evt:sha256:" + hashlib.sha256(canonical.encode()).hexdigest(),
        event_type="check_url",
        payload={"EventType": "check_url"},
        raw=VECTOR["expected_plaintext"],
    )
    assert event.is_check_url and event.platform == "dingtalk"
    assert parse_event_plaintext(event.raw) == event


def test_a_literal_plus_in_the_query_stays_a_plus() -> None:
    query, body = push(
        json.dumps({"EventType": "user_add_org", "TimeStamp": "1", "CorpId": CORP}), nonce="ab+c/d="
    )
    literal = query.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=")
    assert "+" in literal
    for raw in (query, literal):
        assert parse_event(CRYPTO, raw, body).event_type == "user_add_org"
    form = dict(urllib.parse.parse_qsl(literal))  # what request.query would give: '+' -> ' '
    assert form["nonce"] == "ab c/d="
    as_form = "&".join(f"{k}={urllib.parse.quote(v, safe='')}" for k, v in form.items())
    with pytest.raises(CallbackRefused) as info:
        parse_event(CRYPTO, as_form, body)
    assert refusal(info) == (403, "signature does not match")


# ---- event subscription: refusals


def test_a_tampered_signature_is_403() -> None:
    query = f"signature={'0' * 40}&timestamp={VECTOR['timestamp']}&nonce={VECTOR['nonce']}"
    with pytest.raises(CallbackRefused) as info:
        parse_event(CRYPTO, query, vector_body())
    assert refusal(info) == (403, "signature does not match")
    query, body = push('{"EventType":"x"}', token="not-our-token")
    with pytest.raises(CallbackRefused) as info:
        parse_event(CRYPTO, query, body)
    assert info.value.status == 403


def test_another_owner_key_is_403() -> None:
    other = DingTalkCrypto(VECTOR["token"], VECTOR["encoding_aes_key"], "dingotherapp")
    query, body = push('{"EventType":"user_add_org"}', crypto=other)
    with pytest.raises(CallbackRefused) as info:
        parse_event(CRYPTO, query, body)
    assert refusal(info) == (403, "the event is for another app (owner key)")


def test_a_payload_for_another_corp_is_403_when_we_name_ours() -> None:
    query, body = push('{"EventType":"user_add_org","CorpId":"dingelsewhere"}')
    assert parse_event(CRYPTO, query, body).corp_id == "dingelsewhere"
    with pytest.raises(CallbackRefused) as info:
        parse_event(CRYPTO, query, body, corp_id=CORP)
    assert refusal(info) == (403, "the event is for another corp (CorpId)")
    query, body = push(json.dumps({"EventType": "bpms_task_change", "corpId": CORP}))  # camel case too
    assert parse_event(CRYPTO, query, body, corp_id=CORP).corp_id == CORP


GOOD_QUERY = f"signature={VECTOR['signature']}&timestamp={VECTOR['timestamp']}&nonce={VECTOR['nonce']}"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"garbage", "the body is not valid JSON"),
        (b"", "the body is not valid JSON"),
        (b'["encrypt"]', "the body is not a JSON object"),
        (b"{}", "encrypt is missing"),
        (b'{"encrypt": ""}', "encrypt is missing"),
        (b'{"encrypt": 42}', "encrypt is missing"),
        (b'{"encrypt": NaN}', "the body is not valid JSON"),
        (b"\xff\xfe{\x00}\x00", "the body is not UTF-8"),
        (b"[" * 60000, "the body is nested too deeply"),
        (b'{"encrypt": "\\ud800"}', "the body carries an invalid \\u escape (a lone surrogate)"),
        (b'{"encrypt": "' + b"A" * MAX_BODY_BYTES + b'"}', f"the body is larger than {MAX_BODY_BYTES} bytes"),
    ],
)
def test_malformed_bodies_are_400(body: bytes, reason: str) -> None:
    with pytest.raises(CallbackRefused) as info:
        parse_event(CRYPTO, GOOD_QUERY, body)
    assert refusal(info) == (400, reason)


def test_the_size_cap_is_configurable_and_inclusive() -> None:
    body = vector_body()
    assert parse_event(CRYPTO, GOOD_QUERY, body, max_bytes=len(body)).is_check_url
    with pytest.raises(CallbackRefused) as info:
        parse_event(CRYPTO, GOOD_QUERY, body, max_bytes=len(body) - 1)
    assert refusal(info) == (400, f"the body is larger than {len(body) - 1} bytes")


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("", "query parameter missing: signature, timestamp, nonce"),
        (f"timeStamp={TS}", "query parameter missing: signature, nonce"),
        (f"msg_signature={'a' * 40}&nonce=n&timestamp=", "query parameter missing: timestamp"),
    ],
)
def test_missing_query_parameters_are_400(query: str, reason: str) -> None:
    with pytest.raises(CallbackRefused) as info:
        parse_event(CRYPTO, query, vector_body())
    assert refusal(info) == (400, reason)


def test_encrypt_that_does_not_decrypt_is_400() -> None:
    for encrypt in ("bm90IGEgbWVzc2FnZQ==", "%%%", "A" * 64):
        sig = sha1_signature(VECTOR["token"], TS, NONCE, encrypt)
        body = json.dumps({"encrypt": encrypt}).encode()
        with pytest.raises(CallbackRefused) as info:
            parse_event(CRYPTO, f"signature={sig}&timestamp={TS}&nonce={NONCE}", body)
        assert info.value.status == 400


@pytest.mark.parametrize(
    ("plaintext", "reason"),
    [
        ("not json", "the decrypted event is not valid JSON"),
        ('["EventType"]', "the decrypted event is not a JSON object"),
        ('{"TimeStamp":"1"}', "the decrypted event has no EventType"),
        ('{"EventType":""}', "the decrypted event has no EventType"),
        (
            '{"EventType":"x","eventId":"\\udc00"}',
            "the decrypted event carries an invalid \\u escape (a lone surrogate)",
        ),
        ('{"EventType":["x"]}', "the event's EventType is not a string"),
        ('{"EventType":"x","CorpId":{"a":1}}', "the event's CorpId is not a string"),
    ],
)
def test_unusable_decrypted_events_are_400(plaintext: str, reason: str) -> None:
    with pytest.raises(CallbackRefused) as info:
        parse_event(CRYPTO, *push(plaintext))
    assert refusal(info) == (400, reason)


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_any_body_is_parsed_or_refused_never_crashes(body: bytes) -> None:
    status = 200
    try:
        parse_event(CRYPTO, GOOD_QUERY, body)
    except CallbackRefused as exc:
        status = exc.status
    assert status in (400, 403)  # no vector of garbage carries a valid signature


# ---- event subscription: fields and dedupe keys


def test_event_fields_and_the_event_id_key() -> None:
    plain = json.dumps(
        {
            "EventType": "official_account_user_data_apply_result",
            "EventTime": 1663143335567,
            "CorpId": CORP,
            "eventId": "c7c7120f2c07419ebdba0318c8",
            "userId": "u1",
        }
    )
    event = parse_event(CRYPTO, *push(plain), corp_id=CORP)
    assert (event.event_type, event.event_id, event.corp_id, event.time_stamp) == (
        "official_account_user_data_apply_result",
        "c7c7120f2c07419ebdba0318c8",
        CORP,
        "1663143335567",
    )
    assert event.dedupe_key == "evt:id:c7c7120f2c07419ebdba0318c8"
    assert event.payload["userId"] == "u1" and event.raw == plain and not event.is_check_url
    assert parse_event_plaintext('{"EventType":"x","EventId":"E1"}').dedupe_key == "evt:id:E1"


def test_events_without_an_id_are_keyed_by_their_canonical_content() -> None:
    a = parse_event_plaintext('{"EventType":"user_add_org","TimeStamp":"1700000000000","UserId":["u1"]}')
    reordered = parse_event_plaintext(
        '{ "UserId": [ "u1" ], "TimeStamp": "1700000000000", "EventType": "user_add_org" }'
    )
    later = parse_event_plaintext('{"EventType":"user_add_org","TimeStamp":"1700000000001","UserId":["u1"]}')
    other_user = parse_event_plaintext(
        '{"EventType":"user_add_org","TimeStamp":"1700000000000","UserId":["u2"]}'
    )
    assert a.dedupe_key.startswith("evt:sha256:") and a.time_stamp == "1700000000000"
    assert a.dedupe_key == reordered.dedupe_key
    assert len({a.dedupe_key, later.dedupe_key, other_user.dedupe_key}) == 3


def test_event_ids_cannot_collide_with_content_keys_and_stay_bounded() -> None:
    forged = parse_event_plaintext('{"EventType":"x","eventId":"sha256:abc"}')
    assert forged.dedupe_key == "evt:id:sha256:abc"  # never "evt:sha256:..."
    long_a = parse_event_plaintext(json.dumps({"EventType": "x", "eventId": "e" * 1000 + "a"}))
    long_b = parse_event_plaintext(json.dumps({"EventType": "x", "eventId": "e" * 1000 + "b"}))
    assert len(long_a.dedupe_key) <= 512 and len(long_b.dedupe_key) <= 512
    assert long_a.dedupe_key != long_b.dedupe_key


# ---- the success reply


def test_reply_success_decrypts_to_success_with_a_valid_signature() -> None:
    reply = reply_success(CRYPTO, timestamp=VECTOR["timestamp"], nonce=VECTOR["nonce"])
    assert set(reply) == {"msg_signature", "timeStamp", "nonce", "encrypt"}
    assert (reply["timeStamp"], reply["nonce"]) == (VECTOR["timestamp"], VECTOR["nonce"])
    expected_sig = sha1_signature(VECTOR["token"], VECTOR["timestamp"], VECTOR["nonce"], reply["encrypt"])
    assert reply["msg_signature"] == expected_sig
    assert (
        CRYPTO.verify_and_decrypt(
            reply["msg_signature"], reply["timeStamp"], reply["nonce"], reply["encrypt"]
        )
        == "success"
    )
    assert len(base64.b64decode(reply["encrypt"])) % 32 == 0
    fixed = reply_success(CRYPTO, timestamp="1", nonce="n", random16=b"0123456789abcdef")
    assert fixed == reply_success(CRYPTO, timestamp="1", nonce="n", random16=b"0123456789abcdef")
    assert reply_success(CRYPTO, timestamp="1", nonce="n") != fixed  # a fresh random prefix


# ---- robot sign


def robot_headers(timestamp: str = str(NOW_MS), sign: str = KNOWN_ROBOT_SIGN) -> dict[str, str]:
    return {"Content-Type": "application/json", "timestamp": timestamp, "sign": sign}


def test_robot_sign_matches_an_independently_computed_hmac() -> None:
    assert robot_sign(str(NOW_MS), APP_SECRET) == KNOWN_ROBOT_SIGN
    verify_robot_sign(robot_headers(), APP_SECRET, NOW_MS)
    verify_robot_sign({"Timestamp": str(NOW_MS), "SIGN": KNOWN_ROBOT_SIGN}, APP_SECRET, NOW_MS)


@pytest.mark.parametrize("offset", [0, HOUR_MS, -HOUR_MS, 1, -1])
def test_robot_sign_inside_the_hour_is_accepted(offset: int) -> None:
    ts = str(NOW_MS + offset)
    verify_robot_sign(robot_headers(ts, robot_sign(ts, APP_SECRET)), APP_SECRET, NOW_MS)


@pytest.mark.parametrize("offset", [HOUR_MS + 1, -HOUR_MS - 1, 10 * HOUR_MS])
def test_robot_sign_more_than_an_hour_off_is_403(offset: int) -> None:
    ts = str(NOW_MS + offset)
    with pytest.raises(CallbackRefused) as info:
        verify_robot_sign(robot_headers(ts, robot_sign(ts, APP_SECRET)), APP_SECRET, NOW_MS)
    assert refusal(info) == (403, "timestamp is more than 3600 s away from our clock")


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({}, 400, "header missing: timestamp, sign"),
        ({"timestamp": str(NOW_MS)}, 400, "header missing: sign"),
        ({"sign": KNOWN_ROBOT_SIGN}, 400, "header missing: timestamp"),
        (
            {"timestamp": "17e11", "sign": KNOWN_ROBOT_SIGN},
            400,
            "the timestamp header is not an integer (ms)",
        ),
        ({"timestamp": "١٧", "sign": KNOWN_ROBOT_SIGN}, 400, "the timestamp header is not an integer (ms)"),
        ({"timestamp": str(NOW_MS), "sign": "not base64!"}, 403, "sign does not match"),
        (
            {"timestamp": str(NOW_MS), "sign": base64.b64encode(b"x" * 32).decode()},
            403,
            "sign does not match",
        ),
        ({"timestamp": str(NOW_MS + 1), "sign": KNOWN_ROBOT_SIGN}, 403, "sign does not match"),
    ],
)
def test_robot_sign_refusals(headers: dict[str, str], status: int, reason: str) -> None:
    with pytest.raises(CallbackRefused) as info:
        verify_robot_sign(headers, APP_SECRET, NOW_MS)
    assert refusal(info) == (status, reason)


def test_robot_sign_with_another_secret_is_403() -> None:
    with pytest.raises(CallbackRefused) as info:
        verify_robot_sign(robot_headers(), "another-secret", NOW_MS)
    assert info.value.status == 403


# ---- robot messages


def robot_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "conversationId": "cidSingle==",
        "chatbotCorpId": CORP,
        "chatbotUserId": "$:LWCP_v1:$bot",
        "msgId": "msgABC123",
        "senderNick": "张三",
        "isAdmin": False,
        "senderStaffId": "zhangsan",
        "sessionWebhookExpiredTime": NOW_MS + 90 * 60 * 1000,
        "createAt": NOW_MS - 500,
        "senderCorpId": CORP,
        "conversationType": "1",
        "senderId": "$:LWCP_v1:$zs",
        "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=s1",
        "text": {"content": "请假 两天"},
        "robotCode": ROBOT_CODE,
        "msgtype": "text",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def robot(body: dict[str, Any], **kwargs: Any) -> RobotMessage:
    kwargs.setdefault("robot_code", ROBOT_CODE)
    return parse_robot_message(json.dumps(body, ensure_ascii=False).encode(), **kwargs)


def test_a_single_chat_text_message() -> None:
    raw = json.dumps(robot_body(), ensure_ascii=False)
    msg = parse_robot_message(raw.encode(), robot_code=ROBOT_CODE, corp_id=CORP)
    assert msg == RobotMessage(
        dedupe_key="msg:msgABC123",
        msg_id="msgABC123",
        msg_type="text",
        text="请假 两天",
        create_at=NOW_MS - 500,
        conversation_type="1",
        conversation_id="cidSingle==",
        sender_id="$:LWCP_v1:$zs",
        sender_staff_id="zhangsan",
        sender_nick="张三",
        sender_corp_id=CORP,
        chatbot_corp_id=CORP,
        chatbot_user_id="$:LWCP_v1:$bot",
        robot_code=ROBOT_CODE,
        session_webhook="https://oapi.dingtalk.com/robot/sendBySession?session=s1",
        session_webhook_expired_time=NOW_MS + 90 * 60 * 1000,
        raw=raw,
    )
    assert msg.platform == "dingtalk" and not msg.is_group and msg.is_known_type
    assert msg.can_reply_by_webhook(NOW_MS) and not msg.can_reply_by_webhook(NOW_MS + 91 * 60 * 1000)
    assert parse_robot_message(msg.raw.encode(), robot_code=ROBOT_CODE, corp_id=CORP) == msg


def test_text_comes_from_text_content_or_a_top_level_content() -> None:
    assert robot(robot_body(text={"content": " 你好 "})).text == " 你好 "
    assert robot(robot_body(text=None, content="顶层")).text == "顶层"
    assert robot(robot_body(text={"content": "内层"}, content="顶层")).text == "内层"
    assert robot(robot_body(text=None)).text == ""


def test_rich_text_is_the_concatenation_of_its_text_parts() -> None:
    body = robot_body(
        msgtype="richText",
        text=None,
        content={
            "richText": [
                {"text": "报修："},
                {"pictureDownloadCode": "pdc", "downloadCode": "dc", "type": "picture"},
                {"text": "打印机卡纸", "type": "text"},
                "junk",
            ]
        },
    )
    msg = robot(body)
    assert (msg.msg_type, msg.text) == ("richText", "报修：打印机卡纸")


def test_media_messages_have_no_text_but_a_download_code() -> None:
    pic = robot(
        robot_body(msgtype="picture", text=None, content={"downloadCode": "dc1", "pictureDownloadCode": "p"})
    )
    assert (pic.text, pic.download_code, pic.file_name) == ("", "dc1", "")
    f = robot(robot_body(msgtype="file", text=None, content={"downloadCode": "dc2", "fileName": "报告.pdf"}))
    assert (f.text, f.download_code, f.file_name) == ("", "dc2", "报告.pdf")
    audio = robot(
        robot_body(msgtype="audio", text=None, content={"downloadCode": "a", "recognition": "请假"})
    )
    assert audio.text == "" and audio.is_known_type


def test_an_unknown_msgtype_is_parsed_with_empty_text() -> None:
    msg = robot(robot_body(msgtype="interactiveCard", content={"x": 1}))
    assert (msg.msg_type, msg.text, msg.is_known_type) == ("interactiveCard", "", False)


def group(text: str, **overrides: Any) -> RobotMessage:
    body = robot_body(
        conversationType="2",
        conversationId="cidGroup==",
        conversationTitle="IT 服务群",
        isInAtList=True,
        atUsers=[{"dingtalkId": "$:LWCP_v1:$bot"}],
        text={"content": text},
    )
    body.update(overrides)
    return robot(body)


def test_group_messages_lose_the_leading_mention_of_the_robot() -> None:
    msg = group(" 请假 两天")  # DingTalk's usual form: the mention removed, its space left
    assert (msg.text, msg.is_group, msg.is_in_at_list) == ("请假 两天", True, True)
    assert msg.at_users == (AtUser("$:LWCP_v1:$bot"),) and msg.conversation_title == "IT 服务群"
    assert group("@工单助手 请假 两天").text == "请假 两天"  # the robot is the only one mentioned
    assert group("@工单助手\u2005请假").text == "请假"  # DingTalk's four-per-em space after a mention


def test_a_mention_of_someone_else_is_kept() -> None:
    at_two = [{"dingtalkId": "$:LWCP_v1:$bot"}, {"dingtalkId": "$:LWCP_v1:$ls", "staffId": "lisi"}]
    msg = group("@李四 请审批", atUsers=at_two)
    assert msg.text == "@李四 请审批"
    assert msg.at_users[1] == AtUser("$:LWCP_v1:$ls", "lisi")
    named = robot(
        robot_body(
            conversationType="2", isInAtList=True, atUsers=at_two, text={"content": "@工单 助手 @李四 请审批"}
        ),
        bot_names=("工单", "工单 助手"),
    )
    assert named.text == "@李四 请审批"  # the longest matching robot name wins
    assert robot(robot_body(text={"content": " @李四 hi"})).text == " @李四 hi"  # single chat: verbatim


def test_strip_bot_mention_needs_a_word_boundary() -> None:
    assert strip_bot_mention("@工单助手们 好", bot_names=("工单助手",)) == "@工单助手们 好"
    assert strip_bot_mention("@工单助手", bot_names=("工单助手",)) == ""
    assert strip_bot_mention("  hi  ", only_bot_mentioned=True) == "hi  "


def test_a_message_for_another_robot_is_403() -> None:
    for body in (robot_body(robotCode="dingotherrobot"), robot_body(robotCode=None)):
        with pytest.raises(CallbackRefused) as info:
            robot(body)
        assert refusal(info) == (403, "the message is for another robot (robotCode)")
        assert info.value.msg_id == "msgABC123"


def test_corp_checks_when_our_corp_is_given() -> None:
    with pytest.raises(CallbackRefused) as info:
        robot(robot_body(chatbotCorpId="dingother"), corp_id=CORP)
    assert refusal(info) == (403, "the message is for a robot of another corp (chatbotCorpId)")
    with pytest.raises(CallbackRefused) as info:
        robot(robot_body(chatbotCorpId=None), corp_id=CORP)
    assert info.value.status == 403
    with pytest.raises(CallbackRefused) as info:
        robot(robot_body(senderCorpId="dingother"), corp_id=CORP)
    assert refusal(info) == (403, "the sender is from another corp (senderCorpId)")
    assert robot(robot_body(senderCorpId=None), corp_id=CORP).sender_corp_id == ""
    assert robot(robot_body(chatbotCorpId="dingother")).chatbot_corp_id == "dingother"  # no corp given


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"nope", "the body is not valid JSON"),
        (b"[]", "the body is not a JSON object"),
        (json.dumps(robot_body(msgId=None)).encode(), "message without msgId"),
        (json.dumps(robot_body(msgtype=None)).encode(), "message without msgtype"),
        (json.dumps(robot_body(createAt="yesterday")).encode(), "createAt is not a time in ms"),
        (json.dumps(robot_body(createAt=-1)).encode(), "createAt is not a time in ms"),
        (
            json.dumps(robot_body(sessionWebhookExpiredTime=True)).encode(),
            "sessionWebhookExpiredTime is not a time in ms",
        ),
        (json.dumps(robot_body(isInAtList="yes")).encode(), "isInAtList is not a boolean"),
        (json.dumps(robot_body(atUsers={"a": 1})).encode(), "atUsers is not a list"),
        (json.dumps(robot_body(atUsers=["x"])).encode(), "atUsers holds something that is not an object"),
        (json.dumps(robot_body(senderStaffId=["x"])).encode(), "senderStaffId is not a string"),
        (b"{" + b'"a":1,' * 20000 + b"}", f"the body is larger than {MAX_BODY_BYTES} bytes"),
    ],
)
def test_malformed_robot_messages_are_400(body: bytes, reason: str) -> None:
    with pytest.raises(CallbackRefused) as info:
        parse_robot_message(body, robot_code=ROBOT_CODE)
    assert refusal(info) == (400, reason)


def test_robot_numbers_as_strings_are_accepted() -> None:
    msg = robot(robot_body(createAt=str(NOW_MS), conversationType=2, isInAtList="true"))
    assert (msg.create_at, msg.conversation_type, msg.is_in_at_list) == (NOW_MS, "2", True)


# Text that json.dumps writes with \u escapes, lone surrogates included.
TEXT = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=20)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
ROBOT_KEYS = st.sampled_from(
    [
        "msgId",
        "msgtype",
        "text",
        "content",
        "createAt",
        "conversationType",
        "isInAtList",
        "atUsers",
        "sessionWebhookExpiredTime",
        "chatbotUserId",
        "senderStaffId",
    ]
)


@settings(max_examples=300)
@given(st.dictionaries(ROBOT_KEYS, JSON, max_size=6))
def test_any_robot_body_is_parsed_or_refused_never_crashes(fields: dict[str, Any]) -> None:
    body = json.dumps({**robot_body(conversationType="2"), **fields}).encode()  # \u escapes
    try:
        msg = parse_robot_message(body, robot_code=ROBOT_CODE)
    except CallbackRefused as exc:
        status = exc.status
    else:
        status = 200
        assert isinstance(msg.text, str) and msg.dedupe_key == f"msg:{msg.msg_id}"
    assert status in (200, 400)


# ---- card callback signature


def card_headers(timestamp: str = str(NOW_MS), signature: str = KNOWN_CARD_SIGN) -> dict[str, str]:
    return {"x-ddpaas-signature-timestamp": timestamp, "x-ddpaas-signature": signature}


def test_card_signature_matches_an_independently_computed_hmac() -> None:
    assert card_signature(str(NOW_MS), API_SECRET) == KNOWN_CARD_SIGN
    verify_card_signature(card_headers(), API_SECRET, NOW_MS)
    verify_card_signature(
        {"X-Ddpaas-Signature-Timestamp": str(NOW_MS), "X-DDPaaS-Signature": KNOWN_CARD_SIGN},
        API_SECRET,
        NOW_MS,
    )
    verify_card_signature(card_headers(), API_SECRET, NOW_MS + 10 * HOUR_MS)  # no window configured


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({}, 400, "header missing: x-ddpaas-signature-timestamp, x-ddpaas-signature"),
        ({"x-ddpaas-signature": KNOWN_CARD_SIGN}, 400, "header missing: x-ddpaas-signature-timestamp"),
        (card_headers(signature=""), 400, "header missing: x-ddpaas-signature"),
        (card_headers(signature="%%%"), 403, "card callback signature does not match"),
        (card_headers(timestamp=str(NOW_MS + 1)), 403, "card callback signature does not match"),
        (
            card_headers(signature=card_signature(str(NOW_MS), "other")),
            403,
            "card callback signature does not match",
        ),
    ],
)
def test_card_signature_refusals(headers: dict[str, str], status: int, reason: str) -> None:
    with pytest.raises(CallbackRefused) as info:
        verify_card_signature(headers, API_SECRET, NOW_MS)
    assert refusal(info) == (status, reason)


def test_card_signature_window() -> None:
    window = 5 * 60 * 1000
    for now in (NOW_MS + window, NOW_MS - window):
        verify_card_signature(card_headers(), API_SECRET, now, window_ms=window)
    for now in (NOW_MS + window + 1, NOW_MS - window - 1):
        with pytest.raises(CallbackRefused) as info:
            verify_card_signature(card_headers(), API_SECRET, now, window_ms=window)
        assert refusal(info) == (403, "x-ddpaas-signature-timestamp is more than 300 s away from our clock")
    odd = card_headers("soon", card_signature("soon", API_SECRET))
    for window_ms in (None, window):  # never an opaque timestamp: it must be ms (and ASCII)
        with pytest.raises(CallbackRefused) as info:
            verify_card_signature(odd, API_SECRET, NOW_MS, window_ms=window_ms)
        assert refusal(info) == (400, "x-ddpaas-signature-timestamp is not an integer (ms)")
    with pytest.raises(CallbackRefused) as info:  # a non-ASCII timestamp: 400, never a 500
        verify_card_signature(card_headers("１２３", "x"), API_SECRET, NOW_MS)
    assert refusal(info)[0] == 400


# ---- card callback parsing

ACTION = "t:123:s:102:a:transition:x:152:n:3f"


def click_body(
    *, action_ids: Any = ("agree",), params: Any = None, content: Any = None, **overrides: Any
) -> dict[str, Any]:
    if content is None:
        private = {"actionIds": list(action_ids), "params": {"action": ACTION} if params is None else params}
        content = json.dumps({"cardPrivateData": private})
    body: dict[str, Any] = {
        "type": "actionCallback",
        "outTrackId": "tb:t123:u:lisi:v3",
        "corpId": CORP,
        "userId": "lisi",
        "content": content,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def click(body: dict[str, Any], **kwargs: Any) -> CardClick:
    return parse_card_callback(json.dumps(body).encode(), **kwargs)


def test_a_button_click() -> None:
    raw = json.dumps(click_body())
    got = parse_card_callback(raw.encode(), corp_id=CORP)
    content = click_body()["content"]
    canonical = f'{{"cardPrivateData":{{"actionIds":["agree"],"params":{{"action":"{ACTION}"}}}}}}'
    assert got == CardClick(
        dedupe_key=f"click:tb%3At123%3Au%3Alisi%3Av3:lisi:{hashlib.sha1(canonical.encode(), usedforsecurity=False).hexdigest()}",
        out_track_id="tb:t123:u:lisi:v3",
        user_id="lisi",
        corp_id=CORP,
        action_ids=("agree",),
        params={"action": ACTION},
        action_key=ACTION,
        content=content,
        raw=raw,
    )
    assert got.platform == "dingtalk"
    assert parse_card_callback(got.raw.encode(), corp_id=CORP) == got


def test_the_action_key_falls_back_to_the_first_action_id() -> None:
    assert click(click_body(action_ids=["", "reject"], params={})).action_key == "reject"
    assert click(click_body(action_ids=["reject"], params={"action": ""})).action_key == "reject"
    assert (
        click(click_body(action_ids=[], params={"action": ACTION, "remark": "ok"})).params["remark"] == "ok"
    )
    assert (
        click(
            click_body(content=json.dumps({"cardPrivateData": {"actionIds": ["a"], "params": None}}))
        ).params
        == {}
    )


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (click_body(type="other"), 400, "type is not actionCallback"),
        (click_body(type=None), 400, "type is not actionCallback"),
        (click_body(outTrackId=None), 400, "card callback without outTrackId"),
        (click_body(userId="", outTrackId=""), 400, "card callback without outTrackId, userId"),
        (click_body(content=""), 400, "card callback without content"),
        (click_body(content={"cardPrivateData": {}}), 400, "card callback without content"),
        (click_body(content="{not json"), 400, "the card callback content is not valid JSON"),
        (click_body(content="[]"), 400, "the card callback content is not a JSON object"),
        (click_body(content="{}"), 400, "the card callback content has no cardPrivateData"),
        (click_body(action_ids=[1]), 400, "cardPrivateData.actionIds is not a list of strings"),
        (click_body(params=["action"]), 400, "cardPrivateData.params is not an object"),
        (
            click_body(action_ids=[], params={}),
            400,
            "the click carries no action (params.action or actionIds)",
        ),
        (
            click_body(action_ids=[], params={"action": 7}),
            400,
            "the click carries no action (params.action or actionIds)",
        ),
        (click_body(corpId="dingother"), 403, "the click is from another corp (corpId)"),
    ],
)
def test_unusable_card_callbacks_are_refused(body: dict[str, Any], status: int, reason: str) -> None:
    with pytest.raises(CallbackRefused) as info:
        click(body, corp_id=CORP)
    assert refusal(info) == (status, reason)


def test_lone_surrogates_in_ids_are_400_not_a_crash() -> None:
    for body in (
        b'{"type":"actionCallback","outTrackId":"\\ud800","userId":"u","content":"{}"}',
        json.dumps(click_body(content='{"cardPrivateData":{"actionIds":["\\udfff"]}}')).encode(),
    ):
        with pytest.raises(CallbackRefused) as info:
            parse_card_callback(body)
        assert info.value.status == 400
    with pytest.raises(CallbackRefused) as info:
        parse_robot_message(
            b'{"msgId":"\\ud800","robotCode":"%s"}' % ROBOT_CODE.encode(), robot_code=ROBOT_CODE
        )
    assert info.value.status == 400
    with pytest.raises(CallbackRefused) as info:
        parse_event_plaintext('{"EventType":"x"}\ud800')  # a str that no UTF-8 could carry
    assert refusal(info) == (400, "the decrypted event is not UTF-8")


def test_card_callback_size_cap() -> None:
    body = json.dumps(click_body(params={"action": ACTION, "remark": "x" * MAX_BODY_BYTES})).encode()
    with pytest.raises(CallbackRefused) as info:
        parse_card_callback(body)
    assert refusal(info) == (400, f"the body is larger than {MAX_BODY_BYTES} bytes")


PRIVATE = st.fixed_dictionaries(
    {
        "actionIds": st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=3),
        "params": st.dictionaries(st.text(max_size=8), st.text(max_size=12) | st.integers(), max_size=3),
    }
)


@given(PRIVATE, PRIVATE)
def test_clicks_of_different_buttons_never_collide(a: dict[str, Any], b: dict[str, Any]) -> None:
    ka = click(click_body(content=json.dumps({"cardPrivateData": a}))).dedupe_key
    kb = click(click_body(content=json.dumps({"cardPrivateData": b}))).dedupe_key
    assert (ka == kb) == (a == b)


@given(PRIVATE, st.text(min_size=1, max_size=600), st.text(min_size=1, max_size=40))
def test_an_exact_replay_collides_and_keys_stay_bounded(
    private: dict[str, Any], track: str, user: str
) -> None:
    raw = json.dumps(
        click_body(content=json.dumps({"cardPrivateData": private}), outTrackId=track, userId=user)
    )
    first, replay = parse_card_callback(raw.encode()), parse_card_callback(raw.encode())
    assert first.dedupe_key == replay.dedupe_key and len(first.dedupe_key) <= 512
    assert first.dedupe_key.startswith("click:")


def test_a_reserialised_click_collides() -> None:
    compact = json.dumps({"cardPrivateData": {"params": {"action": ACTION}, "actionIds": ["agree"]}})
    spaced = json.dumps({"cardPrivateData": {"actionIds": ["agree"], "params": {"action": ACTION}}}, indent=2)
    assert click(click_body(content=compact)).dedupe_key == click(click_body(content=spaced)).dedupe_key


def test_ids_with_colons_cannot_forge_another_clicks_key() -> None:
    content = json.loads(click_body()["content"])
    assert click_dedupe_key("a:b", "c", content) != click_dedupe_key("a", "b:c", content)
    assert click_dedupe_key("a%3Ab", "c", content) != click_dedupe_key("a:b", "c", content)
    other_user = click(click_body(userId="wangwu")).dedupe_key
    other_card = click(click_body(outTrackId="tb:t124:u:lisi:v1")).dedupe_key
    assert len({click(click_body()).dedupe_key, other_user, other_card}) == 3


@settings(max_examples=200)
@given(st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode()))
def test_any_card_body_is_parsed_or_refused_never_crashes(body: bytes) -> None:
    status = 200
    try:
        parse_card_callback(body)
    except CallbackRefused as exc:
        status = exc.status
    assert status in (200, 400)
