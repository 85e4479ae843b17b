"""The callback fuzz's DingTalk card click cases (``/dingtalk/card``): the outer request
(`CardOuter`: the x-ddpaas signature headers, the body) and, validly signed, the click's JSON
(`CardInner`: actions edited to other cards, tickets and transitions, or to junk); their
strategies and builders."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Literal

from hypothesis import strategies as st

from emulator.dingtalk import card_callback_body
from tests.bot import test_dingtalk_cards as dt
from tests.fuzz.runner import Answer, Built, Fuzzer, Sent
from tests.fuzz.strategies import (
    CONTENT_TYPES,
    DROP,
    HUGE_TEXT,
    JSON_JUNK,
    JUNK_TEXT,
    Edit,
    JsonBody,
    SignedHeaders,
    apply,
    edited_keys,
    header_pairs,
    headers,
    json_body,
    mostly,
    signed_headers,
)
from tests.fuzz.world import DING_CLICKERS, USERNAMES, World

# ---------------------------------------------------------------- DingTalk card clicks


def _card_mac(ts: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), ts.strip().encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


@dataclass(frozen=True)
class CardOuter:
    headers: SignedHeaders
    body: JsonBody
    junk: bytes
    cut: int
    content_type: str | None


def card_outer_cases() -> st.SearchStrategy[CardOuter]:
    return st.builds(
        CardOuter,
        headers=signed_headers(),
        body=st.sampled_from(["good"] * 4 + list(JsonBody.__args__)),  # type: ignore[attr-defined]
        junk=st.binary(max_size=80),
        cut=st.integers(0, 300),
        content_type=st.sampled_from(["application/json", *CONTENT_TYPES]),
    )


def _click_body(fuzzer: Fuzzer, track: str, user: str, action: str) -> dict[str, Any]:
    return card_callback_body(
        out_track_id=track,
        user_id=user,
        corp_id=dt.CORP,
        action_id="btn1",
        params={"action": action, "n": fuzzer.uid()},
    )


def build_card_outer(fuzzer: Fuzzer, case: CardOuter) -> Built:
    click = json.dumps(
        _click_body(fuzzer, "track-" + fuzzer.uid(), "outsider01", "t:1:s:1:a:x:x:1:n:1")
    ).encode()
    body, body_ok = json_body(case.body, click, case.junk, case.cut)
    names = ("x-ddpaas-signature-timestamp", "x-ddpaas-signature")
    sign, sign_ok = header_pairs(case.headers, names, _card_mac, dt.APP_SECRET)
    return Built(
        Sent("POST", "/dingtalk/card", "", headers(case.content_type, *sign), body),
        sign_ok and body_ok,
        payload=json.dumps({"kind": "click", "body": click.decode()}),
        check_ack=_card_answer,
        may_change=frozenset({"delivery"}),
    )


def _card_answer(answer: Answer) -> None:
    got = json.loads(answer.text)
    assert answer.content_type == "application/json" and isinstance(got, dict), answer
    assert set(got) <= {"cardData", "cardUpdateOptions"}, got


@dataclass(frozen=True)
class CardInner:
    track: str
    user: str
    action: str
    action_ids: Any
    content: Literal["normal", "junk", "not-json", "not-object", "no-private", "missing", "number", "huge"]
    junk: Any
    edits: tuple[Edit, ...]


def card_inner_cases(world: World) -> st.SearchStrategy[CardInner]:
    action = mostly(edited_keys(world.ding_actions, world.ticket_id, world.state_id), JUNK_TEXT)
    top = st.sampled_from(("type", "outTrackId", "userId", "corpId", "content", "junk"))
    edit = st.builds(
        Edit,
        top,
        st.one_of(st.sampled_from(["actionCallback", "dingother", dt.CORP, DROP]), JSON_JUNK, HUGE_TEXT),
    )
    return st.builds(
        CardInner,
        track=mostly(
            st.sampled_from([world.ding_track, "track-x"]), st.sampled_from(["", "a:b%c"]) | JUNK_TEXT
        ),
        user=mostly(st.sampled_from(DING_CLICKERS), JUNK_TEXT),
        action=action,
        action_ids=mostly(
            st.sampled_from([["btn1"], [], None]), st.sampled_from(["btn1", [1], [""]]) | JSON_JUNK
        ),
        content=st.sampled_from(
            ["normal"] * 14 + ["junk", "not-json", "not-object", "no-private", "missing", "number", "huge"]
        ),
        junk=JSON_JUNK,
        edits=st.one_of(st.just(()), st.just(()), st.lists(edit, min_size=1, max_size=2).map(tuple)),
    ).filter(lambda c: not _card_genuine(world, c))


def _card_genuine(world: World, case: CardInner) -> bool:
    """The seeded ticket's handler clicking one of its buttons (the clicker after the edits)."""
    user = apply({"userId": case.user}, case.edits).get("userId")
    return isinstance(user, str) and world.genuine(USERNAMES.get(user, ""), case.action)


def build_card_inner(fuzzer: Fuzzer, case: CardInner) -> Built:
    private: dict[str, Any] = {
        "actionIds": case.action_ids,
        "params": {"action": case.action, "n": fuzzer.uid()},
    }
    content: Any = {
        "normal": json.dumps({"cardPrivateData": private}, ensure_ascii=False),
        "junk": json.dumps({"cardPrivateData": case.junk}),
        "not-json": "{cardPrivateData: 1",
        "not-object": json.dumps([private]),
        "no-private": json.dumps({"cardPublicData": private}),
        "missing": DROP,
        "number": 42,
        "huge": json.dumps({"cardPrivateData": {**private, "pad": "长" * 22_000}}, ensure_ascii=False),
    }[case.content]
    body = {
        "type": "actionCallback",
        "outTrackId": case.track,
        "corpId": dt.CORP,
        "userId": case.user,
        "content": content,
    }
    body = apply(body, (Edit("content", content), *case.edits))
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    names = ("x-ddpaas-signature-timestamp", "x-ddpaas-signature")
    sign, _ = header_pairs(SignedHeaders("good", "good", ""), names, _card_mac, dt.APP_SECRET)
    return Built(
        Sent("POST", "/dingtalk/card", "", headers("application/json", *sign), raw),
        None,
        payload=json.dumps(
            {"kind": "click", "body": raw.decode("utf-8", "surrogatepass")}, ensure_ascii=False
        ),
        check_ack=_card_answer,
        may_change=frozenset({"delivery"}),
    )
