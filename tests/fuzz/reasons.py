"""The callback fuzz's documented refusals (REASONS): every reason the adapters answer, as
patterns, per endpoint. An answer other than 200 must be one of its endpoint's (`Fuzzer.check`)."""

from __future__ import annotations

import re

from tests.fuzz.support import REPLAY_WINDOW

# ---------------------------------------------------------------- documented refusals (REASONS)
# Every reason the adapters answer (bot/wecom/callback.py and crypto.py, bot/dingtalk/events.py,
# robot.py, card_callback.py, crypto.py and the routes), as patterns.

TRUNCATED = r"the body ended before its declared length"  # the sender went away mid-body
# aiohttp's own refusal of a request line over its limit (8190 bytes), before the app sees it
LINE_TOO_LONG = r"Got more than \d+ bytes when reading: .*"
_SIZE = (
    r"(the body|the decrypted message|the decrypted event|the card callback content) is larger than \d+ bytes"
)
WECOM_REASONS = tuple(
    re.compile(p)
    for p in (
        TRUNCATED,
        LINE_TOO_LONG,
        r"the query string is not percent-encoded UTF-8",
        r"query parameter missing: [a-z_, ]+",
        r"timestamp is not an integer",
        rf"timestamp is more than {REPLAY_WINDOW} s away from our clock",
        _SIZE,
        r"(the body|the decrypted message) is not UTF-8",
        r"(the body|the decrypted message) carries a DOCTYPE or ENTITY declaration",
        r"(the body|the decrypted message) is not well-formed XML",
        r"Encrypt is missing",
        r"ToUserName is not our CorpID",
        r"the message's ToUserName is not our CorpID",
        r"MsgType is missing",
        r"event without [A-Za-z, ]+",
        r"message without MsgId",
        r"CreateTime is not an integer",
        r"msg_signature does not match",
        r"Encrypt is not base64",
        r"Encrypt is not a whole number of 32-byte AES blocks",
        r"the message is for another receive id \(CorpID\)",
        r"Encrypt does not decrypt to a WeCom message",
    )
)
_JSON = r"(the body|the decrypted event|the card callback content)"
DINGTALK_JSON_REASONS = (
    TRUNCATED,
    rf"{_JSON} is not UTF-8",
    rf"{_JSON} is not valid JSON",
    rf"{_JSON} is nested too deeply",
    rf"{_JSON} is not a JSON object",
    rf"{_JSON} carries an invalid \\u escape \(a lone surrogate\)",
    _SIZE,
)
EVENT_REASONS = tuple(
    re.compile(p)
    for p in (
        *DINGTALK_JSON_REASONS,
        LINE_TOO_LONG,
        r"the query string is not percent-encoded UTF-8",
        r"query parameter missing: [a-z_, ]+",
        r"encrypt is missing",
        r"signature does not match",
        r"encrypt is not base64",
        r"encrypt is not a whole number of 32-byte blocks",
        r"encrypt has bad padding",
        r"encrypt is too short",
        r"encrypt has a bad length",
        r"the event is for another app \(owner key\)",
        r"the event is not UTF-8",
        r"the decrypted event has no EventType",
        r"the event's [A-Za-z]+ is not a string",
        r"the event is for another corp \(CorpId\)",
    )
)
ROBOT_REASONS = tuple(
    re.compile(p)
    for p in (
        *DINGTALK_JSON_REASONS,
        r"header missing: [a-z, ]+",
        r"the timestamp header is not an integer \(ms\)",
        r"sign does not match",
        r"timestamp is more than \d+ s away from our clock",
        r"the message is for another robot \(robotCode\)",
        r"the message is for a robot of another corp \(chatbotCorpId\)",
        r"the sender is from another corp \(senderCorpId\)",
        r"message without msgId",
        r"message without msgtype",
        r"(content\.)?[A-Za-z]+ is not a string",
        r"atUsers\[\]\.[A-Za-z]+ is not a string",
        r"[A-Za-z]+ is not a time in ms",
        r"[A-Za-z]+ is not a boolean",
        r"atUsers is not a list",
        r"atUsers holds something that is not an object",
    )
)
CARD_REASONS = tuple(
    re.compile(p)
    for p in (
        *DINGTALK_JSON_REASONS,
        r"header missing: [a-z, -]+",
        r"x-ddpaas-signature-timestamp is not an integer \(ms\)",
        r"card callback signature does not match",
        r"x-ddpaas-signature-timestamp is more than \d+ s away from our clock",
        r"type is not actionCallback",
        r"[A-Za-z]+ is not a string",
        r"card callback without [A-Za-z, ]+",
        r"the click is from another corp \(corpId\)",
        r"the card callback content has no cardPrivateData",
        r"cardPrivateData\.actionIds is not a list of strings",
        r"cardPrivateData\.params is not an object",
        r"the click carries no action \(params\.action or actionIds\)",
    )
)
