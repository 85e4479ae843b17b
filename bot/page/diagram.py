"""A workflow drawn as an SVG flow chart, the ticket's current state highlighted. Pure and
deterministic: the same workflow and states give the same bytes.

Layout (layered, top to bottom):

- ranks: from the start state along the transitions (and their condition branches). A depth-first
  walk in transition order marks the edges that go back to a state on the current path (驳回 loops);
  every other edge goes down, and a state's rank is the longest path to it from the start over
  those edges. (Plain breadth-first ranks would put e.g. 总经理审批 and 人事备案 on one row when a
  condition skips the former, and draw the 同意 between them sideways.) States the start cannot
  reach come after the reachable ones; end states come last, on one row;
- within a rank, states keep the order they were first reached in (breadth first), then are
  placed by the mean position of the states above that lead to them;
- an edge to the next rank is a curve from the bottom of one box to the top of the other; an edge
  that skips ranks runs down a lane on the left, an edge going back (or sideways) up a lane on the
  right, their horizontal parts in the gaps between rows so they never cross a box; several
  transitions between the same two states are one arrow with their names joined by " / ".

Reject transitions are drawn dashed in red. The current state is filled blue (and carries
``aria-current="step"``); states the ticket has passed through are green with a check mark.
Every text is escaped; names too long for a box are shortened with "…" (the full name is in the
box's <title>).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from core.workflow import Attribute, State, StateType, Workflow

FONT = 13
BOX_H = 36
BOX_MIN_W = 96
BOX_MAX_W = 176
LABEL_MAX_W = 132
PAD = 12
H_GAP = 28
V_GAP = 60
LANE = 12
MARGIN = 16
TRACKS = (9, 15, 21)  # distances from a row of the horizontal parts of routed edges

COLOR_LINE = "#8a9099"
COLOR_REJECT = "#d4380d"
COLOR_BOX = "#c9cdd4"
COLOR_CURRENT = "#1677ff"
COLOR_PASSED = "#389e0d"
FONT_FAMILY = "-apple-system,BlinkMacSystemFont,'PingFang SC','Microsoft YaHei','Noto Sans CJK SC',sans-serif"


def text_width(text: str, size: float = FONT) -> float:
    """An estimate of the rendered width: wide (CJK) characters 1 em, others 0.6 em."""
    return sum(size if unicodedata.east_asian_width(ch) in ("W", "F") else size * 0.6 for ch in text)


def shorten(text: str, width: float, size: float = FONT) -> str:
    """`text`, cut with "…" so that it fits `width`."""
    if text_width(text, size) <= width:
        return text
    out = ""
    for ch in text:
        if text_width(out + ch + "…", size) > width:
            break
        out += ch
    return out + "…"


def _n(x: float) -> str:
    """A coordinate: at most one decimal, no trailing zeros."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def _e(text: str) -> str:
    """Escaped for XML/HTML, characters that neither may carry (controls, surrogates) replaced."""
    return html.escape(_INVALID.sub("\ufffd", text), quote=True)


@dataclass(slots=True)
class _Edge:
    source: int
    target: int
    names: list[str] = field(default_factory=list)
    reject: bool = True  # every transition on it rejects

    @property
    def label(self) -> str:
        return " / ".join(dict.fromkeys(self.names))

    @property
    def shown(self) -> str:
        return shorten(self.label, LABEL_MAX_W, FONT - 1)


@dataclass(frozen=True, slots=True)
class _Box:
    state: State
    x: float
    y: float
    w: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def bottom(self) -> float:
        return self.y + BOX_H


def _edges(wf: Workflow, known: Collection[int]) -> list[_Edge]:
    """One edge per (source, target) pair, in transition order; condition branches included."""
    edges: dict[tuple[int, int], _Edge] = {}
    for t in sorted(wf.transitions, key=lambda t: t.id):
        targets = [(t.destination_state_id, t.name)]
        targets += [(c.target_state_id, f"{t.name}（{c.expression.source}）") for c in t.conditions]
        for target, name in targets:
            if t.source_state_id not in known or target not in known:
                continue
            edge = edges.setdefault((t.source_state_id, target), _Edge(t.source_state_id, target))
            edge.names.append(name)
            edge.reject = edge.reject and t.attribute == Attribute.REJECT
    return list(edges.values())


def _ranks(wf: Workflow, states: list[State], edges: list[_Edge]) -> tuple[dict[int, int], dict[int, int]]:
    """(state id -> rank, state id -> breadth-first discovery order)."""
    out: dict[int, list[int]] = {s.id: [] for s in states}
    for e in edges:
        if e.source != e.target:
            out[e.source].append(e.target)
    start = next((s.id for s in states if s.type == StateType.START), states[0].id)

    seen = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in out[node]:
            if nxt not in seen:
                seen[nxt] = len(seen)
                queue.append(nxt)

    # depth-first, in transition order: an edge to a state on the current path goes back
    back: set[tuple[int, int]] = set()
    on_path: set[int] = set()
    done: set[int] = set()
    stack: list[tuple[int, int]] = [(start, 0)]
    on_path.add(start)
    while stack:
        node, i = stack[-1]
        if i < len(out[node]):
            stack[-1] = (node, i + 1)
            nxt = out[node][i]
            if nxt in on_path:
                back.add((node, nxt))
            elif nxt not in done:
                on_path.add(nxt)
                stack.append((nxt, 0))
        else:
            stack.pop()
            on_path.discard(node)
            done.add(node)

    # longest path over the forward edges (a DAG once the back edges are left out)
    rank = {start: 0}
    indegree = {n: 0 for n in seen}
    for n in seen:
        for nxt in out[n]:
            if (n, nxt) not in back:
                indegree[nxt] += 1
    ready = deque(sorted((n for n in seen if indegree[n] == 0), key=lambda n: seen[n]))
    while ready:
        node = ready.popleft()
        for nxt in out[node]:
            if (node, nxt) in back:
                continue
            rank[nxt] = max(rank.get(nxt, 0), rank.get(node, 0) + 1)
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)

    ends = {s.id for s in states if s.type == StateType.END}
    middle = [r for n, r in rank.items() if n not in ends]
    last = max(middle, default=0)
    unreached = [s.id for s in states if s.id not in seen and s.id not in ends]
    for n in unreached:
        rank[n] = last + 1
        seen[n] = len(seen)
    if unreached:
        last += 1
    for s in states:
        if s.id in ends:
            rank[s.id] = last + 1
            seen.setdefault(s.id, len(seen))
    return rank, seen


def _rows(
    states: list[State], edges: list[_Edge], rank: dict[int, int], order: dict[int, int]
) -> list[list[int]]:
    rows: list[list[int]] = [[] for _ in range(max(rank.values()) + 1)]
    for s in sorted(states, key=lambda s: (order[s.id], s.order_id, s.id)):
        rows[rank[s.id]].append(s.id)
    rows = [r for r in rows if r]
    # one barycentre pass, top down: a state sits near the states above that lead to it
    position = {n: float(i) for row in rows for i, n in enumerate(row)}
    for r in range(1, len(rows)):
        above = set(rows[r - 1])
        keys: dict[int, tuple[float, int]] = {}
        for i, n in enumerate(rows[r]):
            parents = [position[e.source] for e in edges if e.target == n and e.source in above]
            keys[n] = (sum(parents) / len(parents) if parents else float(i), i)
        rows[r].sort(key=lambda n: keys[n])
        for i, n in enumerate(rows[r]):
            position[n] = float(i)
    return rows


def flow_svg(wf: Workflow, current_state_id: int | None = None, passed: Iterable[int] = ()) -> str:
    """The workflow as an SVG element (a string), `current_state_id` highlighted and the `passed`
    states marked."""
    states = sorted(wf.states, key=lambda s: (s.order_id, s.id))
    if not states:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0" role="img"></svg>'
    by_id = {s.id: s for s in states}
    passed_ids = set(passed) - {current_state_id}
    edges = _edges(wf, by_id)
    rank, order = _ranks(wf, states, edges)
    rows = _rows(states, edges, rank, order)
    row_of = {n: r for r, row in enumerate(rows) for n in row}

    def caption(s: State) -> str:
        return ("✓ " if s.id in passed_ids else "") + s.name

    widest = max(text_width(caption(s)) for s in states) + 2 * PAD
    box_w = min(max(widest, BOX_MIN_W), BOX_MAX_W)

    direct: list[_Edge] = []
    skips: list[_Edge] = []
    backs: list[_Edge] = []
    loops: list[_Edge] = []
    for e in edges:
        rs, rt = row_of[e.source], row_of[e.target]
        if e.source == e.target:
            loops.append(e)
        elif rt == rs + 1:
            direct.append(e)
        elif rt > rs + 1:
            skips.append(e)
        else:
            backs.append(e)

    label_room = max((text_width(e.shown, FONT - 1) for e in skips), default=0.0)
    left = MARGIN + LANE * len(skips) + (label_room + 8 if skips else 0)
    content_w = max(len(row) * box_w + (len(row) - 1) * H_GAP for row in rows)
    right_room = max((text_width(e.shown, FONT - 1) for e in backs + loops), default=0.0)
    right_lanes = LANE * len(backs) + (24 if loops else 0)
    top = MARGIN + (TRACKS[-1] + 4 if any(row_of[e.source] == 0 for e in backs) else 0)
    bottom_pad = MARGIN + (TRACKS[-1] + 4 if any(row_of[e.target] == len(rows) - 1 for e in backs) else 0)

    boxes: dict[int, _Box] = {}
    for r, row in enumerate(rows):
        row_w = len(row) * box_w + (len(row) - 1) * H_GAP
        x0 = left + (content_w - row_w) / 2
        for i, n in enumerate(row):
            boxes[n] = _Box(by_id[n], x0 + i * (box_w + H_GAP), top + r * (BOX_H + V_GAP), box_w)

    width = left + content_w + MARGIN + right_lanes + (right_room + 8 if backs or loops else 0)
    height = top + len(rows) * BOX_H + (len(rows) - 1) * V_GAP + bottom_pad

    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="flow" role="img" aria-label="{_e(wf.name)} 流程图" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" width="{_n(width)}" height="{_n(height)}" '
        f'font-family="{_e(FONT_FAMILY)}" font-size="{FONT}">',
        "<defs>",
        *(
            f'<marker id="tb-arrow-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="{color}"/></marker>'
            for name, color in (("line", COLOR_LINE), ("reject", COLOR_REJECT))
        ),
        "</defs>",
    ]

    def stroke(e: _Edge) -> str:
        if e.reject:
            return f'stroke="{COLOR_REJECT}" stroke-dasharray="5 3" marker-end="url(#tb-arrow-reject)"'
        return f'stroke="{COLOR_LINE}" marker-end="url(#tb-arrow-line)"'

    def label(x: float, y: float, text: str, anchor: str, color: str) -> str:
        return (
            f'<text x="{_n(x)}" y="{_n(y)}" dy=".35em" text-anchor="{anchor}" font-size="{FONT - 1}" '
            f'fill="{color}" stroke="#fff" stroke-width="3" paint-order="stroke">{_e(text)}</text>'
        )

    def edge_group(e: _Edge, d: str, text: str) -> str:
        title = f"{by_id[e.source].name} → {by_id[e.target].name}：{e.label}"
        return (
            f'<g class="edge" data-from="{e.source}" data-to="{e.target}"><title>{_e(title)}</title>'
            f'<path d="{d}" fill="none" stroke-width="1.4" {stroke(e)}/>{text}</g>'
        )

    # ports: several edges leaving (or entering) one side of a box are spread along it
    outs: dict[int, list[_Edge]] = {}
    ins: dict[int, list[_Edge]] = {}
    for e in direct:
        outs.setdefault(e.source, []).append(e)
        ins.setdefault(e.target, []).append(e)
    for group in outs.values():
        group.sort(key=lambda e: (boxes[e.target].cx, e.target))
    for group in ins.values():
        group.sort(key=lambda e: (boxes[e.source].cx, e.source))

    def port(b: _Box, i: int, n: int) -> float:
        span = b.w * 0.5
        return b.cx if n == 1 else b.x + b.w * 0.25 + span * i / (n - 1)

    for e in direct:
        s, t = boxes[e.source], boxes[e.target]
        os_, is_ = outs[e.source], ins[e.target]
        x1, y1 = port(s, os_.index(e), len(os_)), s.bottom
        x2, y2 = port(t, is_.index(e), len(is_)), t.y - 1
        mid = (y1 + y2) / 2
        d = f"M{_n(x1)},{_n(y1)} C{_n(x1)},{_n(mid)} {_n(x2)},{_n(mid)} {_n(x2)},{_n(y2)}"
        color = COLOR_REJECT if e.reject else "#4e5969"
        parts.append(edge_group(e, d, label((x1 + x2) / 2, mid, e.shown, "middle", color)))

    side: dict[tuple[int, str], int] = {}  # (state, port) -> edges already using it

    def lane_port(b: _Box, where: str, base: float, step: float) -> float:
        k = side.get((b.state.id, where), 0)
        side[(b.state.id, where)] = k + 1
        return b.x + b.w * (base + step * (k % 3))

    for i, e in enumerate(skips):
        s, t = boxes[e.source], boxes[e.target]
        lane = MARGIN + label_room + 8 + LANE * i + LANE / 2
        track = TRACKS[i % len(TRACKS)]
        x1 = lane_port(s, "bottom-left", 0.12, 0.07)
        x2 = lane_port(t, "top-left", 0.12, 0.07)
        ya, yb = s.bottom + track, t.y - track
        d = (
            f"M{_n(x1)},{_n(s.bottom)} L{_n(x1)},{_n(ya)} L{_n(lane)},{_n(ya)} "
            f"L{_n(lane)},{_n(yb)} L{_n(x2)},{_n(yb)} L{_n(x2)},{_n(t.y - 1)}"
        )
        color = COLOR_REJECT if e.reject else "#4e5969"
        parts.append(edge_group(e, d, label(lane - 4, (ya + yb) / 2, e.shown, "end", color)))

    lane_base = left + content_w + MARGIN / 2
    for i, e in enumerate(backs):
        s, t = boxes[e.source], boxes[e.target]
        lane = lane_base + LANE * i + LANE / 2
        track = TRACKS[i % len(TRACKS)]
        x1 = lane_port(s, "top-right", 0.88, -0.07)
        x2 = lane_port(t, "bottom-right", 0.88, -0.07)
        ya, yb = s.y - track, t.bottom + track
        d = (
            f"M{_n(x1)},{_n(s.y)} L{_n(x1)},{_n(ya)} L{_n(lane)},{_n(ya)} "
            f"L{_n(lane)},{_n(yb)} L{_n(x2)},{_n(yb)} L{_n(x2)},{_n(t.bottom + 1)}"
        )
        color = COLOR_REJECT if e.reject else "#4e5969"
        parts.append(edge_group(e, d, label(lane + 4, (ya + yb) / 2, e.shown, "start", color)))

    for e in loops:
        b = boxes[e.source]
        x, y1, y2 = b.x + b.w, b.y + 10, b.bottom - 10
        d = f"M{_n(x)},{_n(y1)} C{_n(x + 22)},{_n(y1 - 6)} {_n(x + 22)},{_n(y2 + 6)} {_n(x + 1)},{_n(y2)}"
        color = COLOR_REJECT if e.reject else "#4e5969"
        parts.append(edge_group(e, d, label(x + 24, b.y + BOX_H / 2, e.shown, "start", color)))

    for n in (n for row in rows for n in row):
        b = boxes[n]
        st = b.state
        status = "current" if st.id == current_state_id else "passed" if st.id in passed_ids else "todo"
        fill, line, ink, weight = {
            "current": (COLOR_CURRENT, COLOR_CURRENT, "#fff", "bold"),
            "passed": ("#f0f9eb", COLOR_PASSED, "#237804", "normal"),
            "todo": ("#fff", COLOR_BOX, "#1d2129", "normal"),
        }[status]
        radius = BOX_H / 2 if st.type in (StateType.START, StateType.END) else 6
        current = ' aria-current="step"' if status == "current" else ""
        text = shorten(caption(st), b.w - 2 * PAD)
        parts.append(
            f'<g class="state" data-state-id="{st.id}" data-status="{status}"{current}>'
            f"<title>{_e(st.name)}</title>"
            f'<rect x="{_n(b.x)}" y="{_n(b.y)}" width="{_n(b.w)}" height="{BOX_H}" rx="{_n(radius)}" '
            f'fill="{fill}" stroke="{line}" stroke-width="{2 if status == "current" else 1.2}"/>'
            f'<text x="{_n(b.cx)}" y="{_n(b.y + BOX_H / 2)}" dy=".35em" text-anchor="middle" '
            f'fill="{ink}" font-weight="{weight}">{_e(text)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
