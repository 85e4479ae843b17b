"""The callback fuzz's bodies cut short: a valid request of a callback whose sender goes away
mid-body (`CutShort`; sent as deployed by `Fuzzer.send_cut_short`): refused, nothing stored."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from hypothesis import strategies as st

from tests.fuzz.dingtalk_card import CardOuter, build_card_outer
from tests.fuzz.dingtalk_events import EventOuter, build_event_outer
from tests.fuzz.dingtalk_robot import RobotOuter, build_robot_outer
from tests.fuzz.reasons import CARD_REASONS, EVENT_REASONS, ROBOT_REASONS
from tests.fuzz.runner import Built, Endpoint, Fuzzer
from tests.fuzz.strategies import Param, SignedHeaders
from tests.fuzz.wecom_cases import WeComOuter, build_wecom_outer

# ---------------------------------------------------------------- bodies cut short by the sender

CutRoute = Literal["wecom", "events", "robot", "card"]


@dataclass(frozen=True)
class CutShort:
    route: CutRoute
    share: float  # of the body delivered before the sender goes away


def cut_short_cases(routes: list[CutRoute]) -> st.SearchStrategy[CutShort]:
    return st.builds(CutShort, st.sampled_from(routes), st.floats(0.0, 0.999))


def build_cut_short(fuzzer: Fuzzer, case: CutShort) -> Built:
    """A valid request of `case.route` whose sender goes away mid-body: refused, nothing stored."""
    good = Param("good")
    headers = SignedHeaders("good", "good", "")
    if case.route == "wecom":
        wecom = WeComOuter("POST", good, good, False, good, good, "good", b"", 0, "text/xml", "")
        built = build_wecom_outer(fuzzer, wecom)
    elif case.route == "events":
        built = build_event_outer(
            fuzzer, EventOuter(False, good, good, good, "good", b"", 0, "application/json", "")
        )
    elif case.route == "robot":
        built = build_robot_outer(fuzzer, RobotOuter(headers, "good", b"", 0, "application/json"))
    else:
        built = build_card_outer(fuzzer, CardOuter(headers, "good", b"", 0, "application/json"))
    cut = int(case.share * len(built.sent.body))
    return Built(dataclasses.replace(built.sent, cut=cut), False)


ANY_DINGTALK = Endpoint("dingtalk", EVENT_REASONS + ROBOT_REASONS + CARD_REASONS)
