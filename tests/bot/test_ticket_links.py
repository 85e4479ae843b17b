"""Signed ticket-page links and OAuth states (bot.page.links): pure, on a fake clock."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime, timedelta

import pytest

from bot.page.links import STATE_TTL, LinkCheck, LinkSigner
from config.errors import SettingsError
from config.settings import describe, format_help, load_settings
from tests.fakes import FakeClock

SECRET = b"0123456789abcdef-test-only-secret"
PUBLIC = "https://bot.example.com/"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def signer(clock: FakeClock, secret: bytes = SECRET, hours: int = 24) -> LinkSigner:
    return LinkSigner(secret, PUBLIC, timedelta(hours=hours), clock)


def parts(link: str) -> tuple[int, dict[str, str]]:
    url = urllib.parse.urlsplit(link)
    assert link.startswith("https://bot.example.com/tickets/")
    ticket_id = int(link.rsplit("/tickets/", 1)[1].split("?")[0])
    return ticket_id, dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))


def test_a_link_names_the_ticket_the_viewer_and_the_expiry_and_verifies() -> None:
    clock = FakeClock(START)
    links = signer(clock)
    ticket_id, q = parts(links.link(12, "wangqiang"))
    assert ticket_id == 12 and q["u"] == "wangqiang"
    assert int(q["e"]) == int((START + timedelta(hours=24)).timestamp())
    assert len(q["s"]) == 43 and "=" not in q["s"]  # base64url without padding
    got = links.verify(12, q["u"], q["e"], q["s"])
    assert got.ok and got.username == "wangqiang" and got.expires == int(q["e"])


def test_a_link_expires_on_the_clock() -> None:
    clock = FakeClock(START)
    links = signer(clock, hours=2)
    _, q = parts(links.link(12, "wangqiang"))
    clock.advance(hours=2, seconds=-1)
    assert links.verify(12, q["u"], q["e"], q["s"]).ok
    clock.advance(seconds=1)
    expired = links.verify(12, q["u"], q["e"], q["s"])
    assert expired.check == LinkCheck.EXPIRED and not expired.ok


@pytest.mark.parametrize(
    ("ticket_id", "field", "value"),
    [
        (13, None, None),  # another ticket
        (12, "u", "liuyang"),  # another person
        (12, "u", "wangqiang "),
        (12, "e", "{e_plus}"),  # a later expiry
        (12, "e", "0{e}"),
        (12, "s", "{s_flipped}"),  # one character of the signature
        (12, "s", "{s_other}"),  # another secret's signature
        (12, "s", "{s}="),
        (12, "e", "soon"),
        (12, "u", ""),
        (12, "u", "x" * 201),
        (0, None, None),
        (2**63, None, None),
    ],
)
def test_a_tampered_link_gives_no_access(ticket_id: int, field: str | None, value: str | None) -> None:
    clock = FakeClock(START)
    links = signer(clock)
    _, q = parts(links.link(12, "wangqiang"))
    other = signer(clock, secret=b"another-secret-of-16-bytes-or-more")
    _, q_other = parts(other.link(12, "wangqiang"))
    flipped = ("A" if q["s"][5] != "A" else "B").join((q["s"][:5], q["s"][6:]))
    subs = {
        "e": q["e"],
        "e_plus": str(int(q["e"]) + 3600),
        "s": q["s"],
        "s_flipped": flipped,
        "s_other": q_other["s"],
    }
    if field is not None and value is not None:
        q[field] = value.format(**subs)
    got = links.verify(ticket_id, q["u"], q["e"], q["s"])
    assert got.check == LinkCheck.BAD and not got.ok and got.username == ""


def test_no_link_at_all_is_told_apart_from_a_bad_one() -> None:
    links = signer(FakeClock(START))
    assert links.verify(12, None, None, None).check == LinkCheck.MISSING
    assert links.verify(12, "wangqiang", None, None).check == LinkCheck.BAD
    assert links.verify(12, None, "1", "x").check == LinkCheck.BAD


def test_usernames_with_any_character_round_trip_and_stay_distinct() -> None:
    links = signer(FakeClock(START))
    for name in ("zhang san", "a+b@corp", "名字", 'q"&<>', "a,b"):
        _, q = parts(links.link(7, name))
        assert links.verify(7, q["u"], q["e"], q["s"]).username == name
    # the signed message is unambiguous: shifting text between fields breaks the signature
    _, q = parts(links.link(7, "ab"))
    assert not links.verify(7, "a", "b" + q["e"], q["s"]).ok


def test_the_secret_is_never_shown_and_must_be_long_enough() -> None:
    links = signer(FakeClock(START))
    assert SECRET.decode() not in repr(links)
    with pytest.raises(ValueError):
        LinkSigner(b"short", PUBLIC, timedelta(hours=1), FakeClock(START))


def test_oauth_state_is_alphanumeric_short_lived_and_bound_to_the_ticket() -> None:
    clock = FakeClock(START)
    links = signer(clock)
    state = links.oauth_state(12)
    assert state.isalnum() and len(state) <= 128
    assert links.verify_state(12, state) == LinkCheck.OK
    assert links.verify_state(13, state) == LinkCheck.BAD
    assert links.verify_state(12, state[:-1] + ("0" if state[-1] != "0" else "1")) == LinkCheck.BAD
    assert links.verify_state(12, None) == LinkCheck.BAD
    assert links.verify_state(12, "") == LinkCheck.BAD
    assert (
        signer(clock, secret=b"another-secret-of-16-bytes-or-more").verify_state(12, state) == LinkCheck.BAD
    )
    clock.advance(seconds=STATE_TTL.total_seconds())
    assert links.verify_state(12, state) == LinkCheck.EXPIRED


def test_a_link_is_not_a_state_nor_a_state_a_link() -> None:
    links = signer(FakeClock(START))
    _, q = parts(links.link(12, "wangqiang"))
    assert links.verify_state(12, f"{q['e']}z{q['s']}") == LinkCheck.BAD
    state = links.oauth_state(12)
    expires, sig = state.split("z")
    assert links.verify(12, "wangqiang", expires, sig).check == LinkCheck.BAD


# ---------------------------------------------------------------- the settings


def test_link_settings_defaults_and_values() -> None:
    default = load_settings(env={})
    assert (default.link_secret, default.link_ttl_hours) == ("", 24)
    assert default.wecom_oauth_base == "https://open.weixin.qq.com" and default.frame_ancestors == ()
    got = load_settings(
        env={
            "TICKETBOT_LINK_SECRET": "a-long-enough-link-secret",
            "TICKETBOT_LINK_TTL_HOURS": "720",
            "TICKETBOT_WECOM_OAUTH_BASE": "http://127.0.0.1:8081/",
            "TICKETBOT_FRAME_ANCESTORS": " http://127.0.0.1:8081  https://*.example.com/ http://[::1]:81 ",
        }
    )
    assert got.link_ttl_hours == 720 and got.wecom_oauth_base == "http://127.0.0.1:8081"
    assert got.frame_ancestors == ("http://127.0.0.1:8081", "https://*.example.com", "http://[::1]:81")
    assert "a-long-enough-link-secret" not in repr(got) and "link_secret='***'" in repr(got)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TICKETBOT_LINK_SECRET": "short-secret"}, "TICKETBOT_LINK_SECRET: too short (12 characters)"),
        ({"TICKETBOT_LINK_TTL_HOURS": "0"}, "TICKETBOT_LINK_TTL_HOURS: '0' is not a number of hours"),
        ({"TICKETBOT_LINK_TTL_HOURS": "721"}, "TICKETBOT_LINK_TTL_HOURS: '721' is not a number of hours"),
        ({"TICKETBOT_WECOM_OAUTH_BASE": "open.weixin.qq.com"}, "TICKETBOT_WECOM_OAUTH_BASE: 'open.weixin"),
        ({"TICKETBOT_FRAME_ANCESTORS": "'none'"}, "TICKETBOT_FRAME_ANCESTORS: ''none'' is not an origin"),
        (
            {"TICKETBOT_FRAME_ANCESTORS": "http://a.b/path"},
            "TICKETBOT_FRAME_ANCESTORS: 'http://a.b/path' is not",
        ),
        ({"TICKETBOT_FRAME_ANCESTORS": "http://a.b;script-src"}, "TICKETBOT_FRAME_ANCESTORS: 'http://a.b;"),
    ],
)
def test_bad_link_settings_are_refused(env: dict[str, str], expected: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(env=env)
    assert any(e.startswith(expected) for e in info.value.errors), info.value.errors
    assert not any("short-secret" in e for e in info.value.errors)  # a secret is never echoed


def test_link_settings_are_documented() -> None:
    docs = {d.name: d for d in describe()}
    for name in ("LINK_SECRET", "LINK_TTL_HOURS", "WECOM_OAUTH_BASE", "FRAME_ANCESTORS"):
        assert f"TICKETBOT_{name}" in docs and f"TICKETBOT_{name}" in format_help()
    assert docs["TICKETBOT_LINK_TTL_HOURS"].default == "24"
    assert docs["TICKETBOT_WECOM_OAUTH_BASE"].default == "https://open.weixin.qq.com"
