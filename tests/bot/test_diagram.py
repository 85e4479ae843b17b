"""The flow diagram (bot.page.diagram): pure, deterministic, escaped, every state and transition
drawn, the current state highlighted."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.page.diagram import flow_svg
from config.loader import load_config
from core.conditions import compile_expression
from core.workflow import Attribute, Condition, State, StateType, Transition, Workflow
from tests.core.builders import END, OPS, START, TL, workflow

CONFIG = Path(__file__).resolve().parents[2] / "config"
SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - markup this test suite produced itself


def states(root: ET.Element) -> dict[int, ET.Element]:
    return {int(g.get("data-state-id", "0")): g for g in root.iter(f"{SVG}g") if g.get("class") == "state"}


def edges(root: ET.Element) -> dict[tuple[int, int], ET.Element]:
    return {
        (int(g.get("data-from", "0")), int(g.get("data-to", "0"))): g
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "edge"
    }


def title(g: ET.Element) -> str:
    node = g.find(f"{SVG}title")
    assert node is not None
    return node.text or ""


def box_y(g: ET.Element) -> float:
    rect = g.find(f"{SVG}rect")
    assert rect is not None
    return float(rect.get("y", "0"))


def shipped() -> list[Workflow]:
    return list(load_config(CONFIG).workflows)


@pytest.mark.parametrize("wf", shipped(), ids=lambda wf: wf.name)
def test_every_state_and_transition_of_the_shipped_workflows_is_drawn(wf: Workflow) -> None:
    current = next(s.id for s in wf.states if s.type == StateType.NORMAL)
    root = parse(flow_svg(wf, current, [wf.start_state().id]))
    drawn = states(root)
    assert set(drawn) == {s.id for s in wf.states}
    for s in wf.states:
        assert title(drawn[s.id]) == s.name
    lines = edges(root)
    for t in wf.transitions:
        targets = [t.destination_state_id, *(c.target_state_id for c in t.conditions)]
        for target in targets:
            assert t.name in title(lines[(t.source_state_id, target)])
    assert [sid for sid, g in drawn.items() if g.get("data-status") == "current"] == [current]
    assert drawn[current].get("aria-current") == "step"
    assert drawn[wf.start_state().id].get("data-status") == "passed"


def test_the_current_state_is_highlighted_and_passed_states_marked() -> None:
    root = parse(flow_svg(workflow(), OPS, [START, TL, OPS]))
    drawn = states(root)
    assert {sid: g.get("data-status") for sid, g in drawn.items()} == {
        START: "passed",
        TL: "passed",
        OPS: "current",
        END: "todo",
    }
    rect = drawn[OPS].find(f"{SVG}rect")
    assert rect is not None and rect.get("fill") == "#1677ff"
    assert sum(1 for g in drawn.values() if g.get("aria-current")) == 1
    label = drawn[TL].find(f"{SVG}text")
    assert label is not None and (label.text or "").startswith("✓")


def test_no_state_is_highlighted_for_an_unknown_current_state() -> None:
    root = parse(flow_svg(workflow(), 12345))
    assert all(g.get("data-status") == "todo" for g in states(root).values())


def test_layout_runs_from_the_start_down_with_end_states_last() -> None:
    wf = workflow()
    drawn = states(parse(flow_svg(wf, TL)))
    assert box_y(drawn[START]) < box_y(drawn[TL]) < box_y(drawn[OPS]) < box_y(drawn[END])
    # an end state reachable straight from the start still comes last
    short = replace(wf, transitions=(*wf.transitions, Transition(99, "作废", START, END, Attribute.OTHER)))
    drawn = states(parse(flow_svg(short, TL)))
    assert box_y(drawn[END]) > box_y(drawn[OPS])
    # 提交 goes to OPS, or to TL when a condition holds (TL then goes on to OPS): TL is drawn
    # between the start and OPS (longest path), not beside OPS (breadth first)
    branch = Condition(compile_expression("{days} > 3", frozenset({"days"})), TL)
    skipping = replace(
        wf,
        transitions=tuple(
            replace(t, destination_state_id=OPS, conditions=(branch,)) if t.id == 10 else t
            for t in wf.transitions
        ),
    )
    drawn = states(parse(flow_svg(skipping, START)))
    assert box_y(drawn[START]) < box_y(drawn[TL]) < box_y(drawn[OPS]) < box_y(drawn[END])


def test_loops_back_edges_and_unreachable_states_are_drawn() -> None:
    wf = workflow()  # 保存 loops on the start state; 拒绝 / 退回 go back to it
    lonely = State(50, "孤立状态")
    wf = replace(wf, states=(*wf.states, lonely))
    root = parse(flow_svg(wf, START))
    lines = edges(root)
    assert "保存" in title(lines[(START, START)])
    back = lines[(TL, START)]
    path = back.find(f"{SVG}path")
    assert path is not None and path.get("stroke-dasharray")  # a reject is dashed
    assert 50 in states(root)


def test_several_transitions_between_two_states_share_one_arrow() -> None:
    wf = workflow()
    wf = replace(wf, transitions=(*wf.transitions, Transition(40, "超时归档", OPS, END, Attribute.OTHER)))
    lines = edges(parse(flow_svg(wf, OPS)))
    assert title(lines[(OPS, END)]).endswith("完成 / 超时归档")


def test_every_text_is_escaped() -> None:
    evil = "<script>alert(\"x\")</script> & 'q'"
    wf = workflow()
    wf = replace(
        wf,
        name=evil,
        states=tuple(replace(s, name=evil) if s.id == TL else s for s in wf.states),
        transitions=tuple(replace(t, name=evil) if t.id == 20 else t for t in wf.transitions),
    )
    svg = flow_svg(wf, TL)
    assert "<script>" not in svg and 'alert("x")' not in svg
    root = parse(svg)  # still well-formed
    assert title(states(root)[TL]) == evil
    assert evil in title(edges(root)[(TL, OPS)])
    assert root.get("aria-label", "").startswith(evil)


def test_long_names_are_shortened_with_the_full_name_in_the_title() -> None:
    long_name = "非常非常非常非常非常非常非常非常长的状态名称"
    wf = replace(
        workflow(), states=tuple(replace(s, name=long_name) if s.id == OPS else s for s in workflow().states)
    )
    drawn = states(parse(flow_svg(wf, OPS)))
    text = drawn[OPS].find(f"{SVG}text")
    assert text is not None and (text.text or "").endswith("…") and len(text.text or "") < len(long_name)
    assert title(drawn[OPS]) == long_name


def test_the_output_is_deterministic() -> None:
    wf = workflow()
    once = flow_svg(wf, TL, [START])
    assert flow_svg(wf, TL, [START]) == once
    shuffled = replace(wf, states=tuple(reversed(wf.states)), transitions=tuple(reversed(wf.transitions)))
    assert flow_svg(shuffled, TL, [START]) == once


@st.composite
def random_workflows(draw: st.DrawFn) -> Workflow:
    n = draw(st.integers(min_value=2, max_value=9))
    ids = list(range(100, 100 + n))
    kinds = [StateType.START] + [
        draw(st.sampled_from([StateType.NORMAL, StateType.NORMAL, StateType.END])) for _ in ids[1:]
    ]
    names = st.text(min_size=0, max_size=30)
    wf_states = tuple(
        State(i, draw(names), type=k, order_id=draw(st.integers(0, 3)))
        for i, k in zip(ids, kinds, strict=True)
    )
    pairs = draw(st.lists(st.tuples(st.sampled_from(ids), st.sampled_from(ids)), max_size=20))
    transitions = tuple(
        Transition(500 + j, draw(names), a, b, draw(st.sampled_from(list(Attribute))))
        for j, (a, b) in enumerate(pairs)
    )
    return Workflow(1, draw(names), wf_states, transitions)


@settings(max_examples=150, deadline=None)
@given(random_workflows(), st.data())
def test_any_workflow_gives_a_well_formed_diagram_with_every_state_and_transition(
    wf: Workflow, data: st.DataObject
) -> None:
    current = data.draw(st.sampled_from([s.id for s in wf.states]))
    root = parse(flow_svg(wf, current, [s.id for s in wf.states[:2]]))
    assert set(states(root)) == {s.id for s in wf.states}
    assert set(edges(root)) == {(t.source_state_id, t.destination_state_id) for t in wf.transitions}
    assert [g.get("data-state-id") for g in states(root).values() if g.get("data-status") == "current"] == [
        str(current)
    ]
