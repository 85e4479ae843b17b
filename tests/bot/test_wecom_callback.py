"""bot.wecom.callback: pure functions over raw query strings and body bytes (no event loop)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

import pytest

from bot.wecom.callback import InboundEvent, parse_message, parse_post, parse_query, safe_xml, verify_url
from bot.wecom.crypto import CallbackRefused, WeComCrypto
from emulator.wecom import encrypt_callback, template_card_event_xml, text_message_xml
from emulator.wecom_crypto import WeComCipher, signature

CORP = "wwcorp0123456789"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CRYPTO = WeComCrypto(TOKEN, AES_KEY, CORP)
TS, NONCE = "1409659813", "1372623149"

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    "<xml><ToUserName>x</ToUserName><Encrypt>&lol3;</Encrypt></xml>"
)


def raw_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{k}={urllib.parse.quote(v, safe='')}" for k, v in params.items())


def post(plaintext: str, *, corp_id: str = CORP, token: str = TOKEN) -> tuple[dict[str, str], bytes]:
    params, body = encrypt_callback(
        plaintext, token=token, aes_key=AES_KEY, corp_id=corp_id, timestamp=TS, nonce=NONCE
    )
    return parse_query(raw_query(params)), body.encode()


def text_msg(msg_id: int = 1234567890123456, content: str = "请假 两天") -> str:
    return text_message_xml(
        corp_id=CORP,
        from_user="zhangsan",
        content=content,
        msg_id=msg_id,
        agent_id=1000002,
        create_time=1700000000,
    )


def card_click(event_key: str = "approve:42", task_id: str = "t42", create_time: int = 1700000001) -> str:
    return template_card_event_xml(
        corp_id=CORP,
        from_user="lisi",
        create_time=create_time,
        event_key=event_key,
        task_id=task_id,
        response_code="rc-1",
        agent_id=1000002,
    )


def refusal(exc: pytest.ExceptionInfo[CallbackRefused]) -> tuple[int, str]:
    return exc.value.status, exc.value.reason


# ---- query decoding


def test_parse_query_decodes_percent_only_and_keeps_plus() -> None:
    assert parse_query("a=x+y%2Bz&b=%E4%B8%AD&c=&d") == {"a": "x+y+z", "b": "中", "c": "", "d": ""}
    assert parse_query("a=1&a=2") == {"a": "1"}
    assert parse_query("") == {}


def test_parse_query_refuses_bad_percent_encoding() -> None:
    with pytest.raises(CallbackRefused) as info:
        parse_query("a=%FF%FE")
    assert info.value.status == 400


def test_url_verification_with_a_literal_plus_in_echostr() -> None:
    cipher = WeComCipher(AES_KEY)
    echostr = next(e for e in (cipher.encrypt("echo-8675309", CORP) for _ in range(200)) if "+" in e)
    sig = signature(TOKEN, TS, NONCE, echostr)
    literal = f"msg_signature={sig}&timestamp={TS}&nonce={NONCE}&echostr={echostr}"  # '+' not encoded
    assert verify_url(CRYPTO, parse_query(literal)) == "echo-8675309"
    encoded = raw_query({"msg_signature": sig, "timestamp": TS, "nonce": NONCE, "echostr": echostr})
    assert verify_url(CRYPTO, parse_query(encoded)) == "echo-8675309"
    as_form = dict(urllib.parse.parse_qsl(literal))  # what request.query would give: '+' -> ' '
    with pytest.raises(CallbackRefused):
        verify_url(CRYPTO, as_form)


def test_url_verification_refusals() -> None:
    echostr = WeComCipher(AES_KEY).encrypt("hello", CORP)
    good = {
        "msg_signature": signature(TOKEN, TS, NONCE, echostr),
        "timestamp": TS,
        "nonce": NONCE,
        "echostr": echostr,
    }
    with pytest.raises(CallbackRefused) as info:
        verify_url(CRYPTO, {**good, "msg_signature": "0" * 40})
    assert info.value.status == 403
    with pytest.raises(CallbackRefused) as info:
        verify_url(CRYPTO, {k: v for k, v in good.items() if k != "echostr"})
    assert refusal(info) == (400, "query parameter missing: echostr")
    other = WeComCipher(AES_KEY).encrypt("hello", "wwsomeoneelse")
    with pytest.raises(CallbackRefused) as info:
        verify_url(CRYPTO, {**good, "echostr": other, "msg_signature": signature(TOKEN, TS, NONCE, other)})
    assert info.value.status == 403


def test_replay_window() -> None:
    echostr = WeComCipher(AES_KEY).encrypt("hi", CORP)
    query = {
        "msg_signature": signature(TOKEN, TS, NONCE, echostr),
        "timestamp": TS,
        "nonce": NONCE,
        "echostr": echostr,
    }
    assert verify_url(CRYPTO, query, now=int(TS) + 299, replay_window=300) == "hi"
    assert verify_url(CRYPTO, query, now=int(TS) + 10**6, replay_window=0) == "hi"
    with pytest.raises(CallbackRefused) as info:
        verify_url(CRYPTO, query, now=int(TS) + 301, replay_window=300)
    assert info.value.status == 403


# ---- POST parsing and dedupe keys


def test_text_message() -> None:
    query, body = post(text_msg(content="  请假 两天\n"))
    event = parse_post(CRYPTO, query, body, CORP)
    assert event == InboundEvent(
        dedupe_key="msg:1234567890123456",
        msg_type="text",
        from_user="zhangsan",
        create_time=1700000000,
        content="  请假 两天\n",
        msg_id="1234567890123456",
        agent_id="1000002",
        raw=text_msg(content="  请假 两天\n"),
    )
    assert event.platform == "wecom"
    assert parse_message(event.raw, CORP) == event


def test_plain_event_key_is_user_time_and_event() -> None:
    xml = (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[wangwu]]></FromUserName>"
        "<CreateTime>1700000005</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[enter_agent]]></Event><EventKey><![CDATA[]]></EventKey><AgentID>1000002</AgentID></xml>"
    )
    query, body = post(xml)
    event = parse_post(CRYPTO, query, body, CORP)
    assert event.dedupe_key == "evt:wangwu:1700000005:enter_agent"
    assert (event.msg_type, event.event, event.msg_id) == ("event", "enter_agent", "")


def test_card_click_key_adds_event_key_and_task_id() -> None:
    event = parse_post(CRYPTO, *post(card_click()), CORP)
    assert event.dedupe_key == "evt:lisi:1700000001:template_card_event:approve:42:t42"
    assert (event.event_key, event.task_id, event.response_code) == ("approve:42", "t42", "rc-1")
    other_button = parse_post(CRYPTO, *post(card_click(event_key="reject:42")), CORP)
    other_card = parse_post(CRYPTO, *post(card_click(task_id="t43")), CORP)
    assert len({event.dedupe_key, other_button.dedupe_key, other_card.dedupe_key}) == 3


def test_overlong_keys_are_hashed_but_stay_distinct() -> None:
    a = parse_post(CRYPTO, *post(card_click(event_key="k" * 1000 + "a")), CORP)
    b = parse_post(CRYPTO, *post(card_click(event_key="k" * 1000 + "b")), CORP)
    assert len(a.dedupe_key) <= 512 and len(b.dedupe_key) <= 512 and a.dedupe_key != b.dedupe_key


def test_bad_signature_is_403() -> None:
    query, body = post(text_msg(), token="not-our-token")
    with pytest.raises(CallbackRefused) as info:
        parse_post(CRYPTO, query, body, CORP)
    assert refusal(info) == (403, "msg_signature does not match")


def test_wrong_corp_id_is_403() -> None:
    query, body = post(text_msg(), corp_id="wwanothercorp")
    with pytest.raises(CallbackRefused) as info:
        parse_post(CRYPTO, query, body, CORP)
    assert info.value.status == 403


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"garbage", "the body is not well-formed XML"),
        (b"<xml><ToUserName>x</ToUserName>", "the body is not well-formed XML"),
        (b"<xml><AgentID>1</AgentID></xml>", "Encrypt is missing"),
        (b"\xff\xfe<\x00x\x00", "the body is not UTF-8"),
        (b"<xml>" + b"a" * (64 * 1024) + b"</xml>", "the body is larger than 65536 bytes"),
        (BILLION_LAUGHS.encode(), "the body carries a DOCTYPE or ENTITY declaration"),
        (
            b'<!doctype xml SYSTEM "file:///etc/passwd"><xml/>',
            "the body carries a DOCTYPE or ENTITY declaration",
        ),
        (b"<xml><!ENTITY x 'y'></xml>", "the body carries a DOCTYPE or ENTITY declaration"),
    ],
)
def test_malformed_bodies_are_400(body: bytes, reason: str) -> None:
    query, _ = post(text_msg())
    with pytest.raises(CallbackRefused) as info:
        parse_post(CRYPTO, query, body, CORP)
    assert refusal(info) == (400, reason)


def test_missing_query_parameters_are_400() -> None:
    _, body = post(text_msg())
    with pytest.raises(CallbackRefused) as info:
        parse_post(CRYPTO, {"timestamp": TS}, body, CORP)
    assert refusal(info) == (400, "query parameter missing: msg_signature, nonce")


def test_encrypt_that_is_not_a_wecom_message_is_400() -> None:
    encrypt = "bm90IGEgbWVzc2FnZQ=="
    query = {"msg_signature": signature(TOKEN, TS, NONCE, encrypt), "timestamp": TS, "nonce": NONCE}
    body = f"<xml><ToUserName>{CORP}</ToUserName><Encrypt>{encrypt}</Encrypt></xml>".encode()
    with pytest.raises(CallbackRefused) as info:
        parse_post(CRYPTO, query, body, CORP)
    assert info.value.status == 400


def test_billion_laughs_inside_the_encrypted_message_is_400() -> None:
    query, body = post(BILLION_LAUGHS.replace("<Encrypt>&lol3;</Encrypt>", "<MsgType>&lol3;</MsgType>"))
    with pytest.raises(CallbackRefused) as info:
        parse_post(CRYPTO, query, body, CORP)
    assert refusal(info) == (400, "the decrypted message carries a DOCTYPE or ENTITY declaration")


@pytest.mark.parametrize(
    ("inner", "reason"),
    [
        ("not xml at all", "the decrypted message is not well-formed XML"),
        (f"<xml><ToUserName>{CORP}</ToUserName><MsgId>1</MsgId></xml>", "MsgType is missing"),
        ("<xml><MsgType>text</MsgType><Content>x</Content></xml>", "message without MsgId"),
        ("<xml><MsgType>event</MsgType><Event>click</Event></xml>", "event without FromUserName, CreateTime"),
        (
            "<xml><MsgType>event</MsgType><Event>template_card_event</Event><FromUserName>u</FromUserName>"
            "<CreateTime>1</CreateTime><TaskId>t</TaskId></xml>",
            "event without EventKey",
        ),
    ],
)
def test_unusable_inner_messages_are_400(inner: str, reason: str) -> None:
    with pytest.raises(CallbackRefused) as info:
        parse_post(CRYPTO, *post(inner), CORP)
    assert refusal(info) == (400, reason)


def test_inner_to_user_for_another_corp_is_403() -> None:
    with pytest.raises(CallbackRefused) as info:
        parse_message(text_msg().replace(CORP, "wwother"), CORP)
    assert info.value.status == 403 and info.value.msg_id == "1234567890123456"


def test_the_parser_itself_refuses_a_dtd_the_text_check_missed(monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    import bot.wecom.callback as callback

    monkeypatch.setattr(callback, "_DTD_RE", re.compile("(?!x)x"))
    with pytest.raises(CallbackRefused) as info:
        safe_xml(BILLION_LAUGHS, "the body")
    assert refusal(info) == (400, "the body carries a DOCTYPE or ENTITY declaration")
