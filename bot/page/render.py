"""The ticket page as HTML, from plain data (bot.page.view builds it). Pure: no I/O, no clock.

Mobile first (one column, large touch targets, the diagram scaled to the screen), inline CSS, no
JavaScript: every action is a plain form POST that carries the viewer's signed link (u, e, s) and
the state the page showed in hidden fields. Every text is escaped here; `PageView.diagram` is SVG
markup that bot.page.diagram escaped already.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

STYLE = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.55 -apple-system,BlinkMacSystemFont,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",
sans-serif;color:#1d2129;background:#f2f3f5;-webkit-text-size-adjust:100%}
main{max-width:720px;margin:0 auto;padding:12px}
section,.head{background:#fff;border-radius:10px;padding:14px 16px;margin:0 0 12px}
h1{font-size:18px;line-height:1.35;margin:0 0 6px;word-break:break-word}
h2{font-size:15px;margin:0 0 10px;color:#4e5969}
.sub,.muted{color:#86909c;font-size:13px}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;background:#e8f3ff;color:#1677ff;font-size:13px}
.badge.ended{background:#f2f3f5;color:#4e5969}
.state{margin-top:6px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:6px 14px;margin:0}
dt{color:#86909c}
dd{margin:0;word-break:break-word;white-space:pre-wrap}
.diagram{overflow-x:auto;text-align:center}
.diagram svg{max-width:100%;height:auto}
ol{list-style:none;margin:0;padding:0}
li{border-left:2px solid #e5e6eb;padding:0 0 12px 12px;margin-left:4px}
li:last-child{padding-bottom:0}
li .what{font-weight:600}
li .note{white-space:pre-wrap;word-break:break-word;margin-top:2px}
.flash{padding:10px 14px;border-radius:8px;margin:0 0 12px;word-break:break-word}
.flash.ok{background:#e8ffea;color:#009a29}
.flash.error{background:#ffece8;color:#cb2634}
label{display:block;font-size:14px;color:#4e5969;margin:10px 0 4px}
label.check{display:inline-block;margin:4px 14px 4px 0;color:#1d2129}
input[type=text],input[type=number],input[type=date],input[type=datetime-local],select,textarea{width:100%;
padding:9px 10px;border:1px solid #c9cdd4;border-radius:6px;font:inherit;background:#fff;color:inherit}
textarea{min-height:64px;resize:vertical}
.buttons{display:flex;flex-wrap:wrap;gap:8px;margin-top:12px}
button{flex:1 1 auto;min-width:88px;min-height:42px;padding:8px 14px;border-radius:6px;border:1px solid #c9cdd4;
background:#fff;font:inherit;color:#1d2129}
button.primary{background:#1677ff;border-color:#1677ff;color:#fff}
button.danger{border-color:#f53f3f;color:#f53f3f}
details{border-top:1px solid #f2f3f5;padding:10px 0 0;margin-top:12px}
summary{color:#1677ff;font-size:14px}
.alert{background:#fff7e8;color:#d25f00;border-radius:6px;padding:8px 10px;margin-top:10px;font-size:14px}
.req{color:#f53f3f}
footer{text-align:center;color:#86909c;font-size:12px;padding:4px 0 16px}
"""


_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def e(text: object) -> str:
    """Escaped for HTML, characters HTML may not carry (controls, surrogates) replaced."""
    return html.escape(_INVALID.sub("\ufffd", str(text)), quote=True)


@dataclass(frozen=True, slots=True)
class FieldRow:
    label: str
    value: str


@dataclass(frozen=True, slots=True)
class LogRow:
    who: str
    action: str
    state: str
    suggestion: str
    at: str


@dataclass(frozen=True, slots=True)
class Input:
    """One field the viewer fills in with a decision: `kind` is text, textarea, number, date,
    datetime-local, select, checkboxes or bool; `value` the current value(s) as text."""

    key: str
    label: str
    kind: str
    value: tuple[str, ...] = ()
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    placeholder: str = ""
    step: str = ""
    hint: str = ""


@dataclass(frozen=True, slots=True)
class Button:
    action: str  # "transition:152", "accept", "add_node_end"
    label: str
    style: str = ""  # "primary", "danger" or ""
    validate: bool = True  # False: the browser submits even with required inputs empty


@dataclass(frozen=True, slots=True)
class Actions:
    decisions: tuple[Button, ...] = ()
    inputs: tuple[Input, ...] = ()
    alerts: tuple[str, ...] = ()
    deliver: str = ""  # the deliver button's name ("转交" / "强制转交"), "" when not offered
    add_node: bool = False
    retreat: bool = False
    close: bool = False
    comment: bool = False

    @property
    def empty(self) -> bool:
        return not (
            self.decisions or self.deliver or self.add_node or self.retreat or self.close or self.comment
        )


@dataclass(frozen=True, slots=True)
class PageView:
    ticket_id: int
    title: str
    sn: str
    workflow: str
    state: str
    status: str  # 进行中, 已结束, ...
    ended: bool
    handlers: str
    fields: tuple[FieldRow, ...]
    diagram: str  # SVG markup (already escaped by bot.page.diagram)
    logs: tuple[LogRow, ...]
    actions: Actions
    viewer: str
    auth: Mapping[str, str] = field(default_factory=dict)  # the signed link's u, e, s
    state_id: int = 0  # the state the page shows: actions are pinned to it
    expires: str = ""
    flash: str = ""
    flash_ok: bool = True
    form_action: str = ""  # where the forms post, relative to the page's URL; "" : "{ticket_id}/act"


def _document(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{e(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def _hidden(view: PageView) -> str:
    pairs = [*view.auth.items(), ("state", str(view.state_id))]
    return "".join(f'<input type="hidden" name="{e(k)}" value="{e(v)}">' for k, v in pairs)


def _form(view: PageView, inner: str) -> str:
    # a relative action keeps any path prefix of the public URL: "12/act" from ".../tickets/12", and
    # "act" on the page an action answered in place (its URL is ".../tickets/12/act")
    action = view.form_action or f"{view.ticket_id}/act"
    return f'<form method="post" action="{e(action)}">{_hidden(view)}{inner}</form>'


def _suggestion(label: str = "处理意见（选填）", *, required: bool = False) -> str:
    need = " required" if required else ""
    return f'<label>{e(label)}</label><textarea name="suggestion" maxlength="2000"{need}></textarea>'


def _input(item: Input) -> str:
    name = f"f.{item.key}"
    star = ' <span class="req">*</span>' if item.required else ""
    req = " required" if item.required else ""
    head = f"<label>{e(item.label)}{star}</label>"
    hint = f'<div class="muted">{e(item.hint)}</div>' if item.hint else ""
    current = item.value[0] if item.value else ""
    placeholder = f' placeholder="{e(item.placeholder)}"' if item.placeholder else ""
    if item.kind == "textarea":
        return f'{head}<textarea name="{e(name)}"{placeholder}{req}>{e(current)}</textarea>{hint}'
    if item.kind in ("select", "bool"):
        options = [("", "（请选择）" if item.required else "（不填）"), *item.choices]
        opts = "".join(
            f'<option value="{e(v)}"{" selected" if v == current and v else ""}>{e(label)}</option>'
            for v, label in options
        )
        return f'{head}<select name="{e(name)}"{req}>{opts}</select>{hint}'
    if item.kind == "checkboxes":
        boxes = "".join(
            f'<label class="check"><input type="checkbox" name="{e(name)}" value="{e(v)}"'
            f"{' checked' if v in item.value else ''}> {e(label)}</label>"
            for v, label in item.choices
        )
        return f"{head}<div>{boxes}</div>{hint}"
    step = f' step="{e(item.step)}"' if item.step else ""
    return (
        f'{head}<input type="{e(item.kind)}" name="{e(name)}" value="{e(current)}"{placeholder}{step}{req}>'
        f"{hint}"
    )


def _actions(view: PageView) -> str:
    a = view.actions
    if a.empty:
        return ""
    parts = ["<section><h2>处理</h2>"]
    if a.decisions:
        buttons = "".join(_button(b) for b in a.decisions)
        alerts = "".join(f'<div class="alert">{e(text)}</div>' for text in a.alerts)
        inputs = "".join(_input(i) for i in a.inputs)
        parts.append(_form(view, f'{inputs}{_suggestion()}{alerts}<div class="buttons">{buttons}</div>'))
    if a.deliver:
        parts.append(_person_form(view, a.deliver, "deliver", "转交给谁"))
    if a.add_node:
        parts.append(_person_form(view, "加签", "add_node", "请谁加签（征询意见）"))
    if a.retreat:
        parts.append(_simple_form(view, "撤回", "retreat", "撤回原因（选填）"))
    if a.close:
        parts.append(_simple_form(view, "关闭", "close", "关闭原因（选填）"))
    if a.comment:
        inner = (
            _suggestion("评论内容", required=True)
            + '<div class="buttons"><button type="submit" name="action" value="comment">评论</button></div>'
        )
        parts.append(f"<details><summary>评论</summary>{_form(view, inner)}</details>")
    parts.append("</section>")
    return "".join(parts)


def _button(b: Button) -> str:
    style = f' class="{e(b.style)}"' if b.style else ""
    novalidate = "" if b.validate else " formnovalidate"
    return (
        f'<button type="submit" name="action" value="{e(b.action)}"{style}{novalidate}>{e(b.label)}</button>'
    )


def _person_form(view: PageView, label: str, action: str, ask: str) -> str:
    inner = (
        f'<label>{e(ask)} <span class="req">*</span></label>'
        '<input type="text" name="target" required maxlength="200" placeholder="用户名或姓名" '
        'autocomplete="off">'
        + _suggestion("说明（选填）")
        + f'<div class="buttons"><button type="submit" name="action" value="{e(action)}">{e(label)}</button></div>'
    )
    return f"<details><summary>{e(label)}</summary>{_form(view, inner)}</details>"


def _simple_form(view: PageView, label: str, action: str, ask: str) -> str:
    inner = _suggestion(ask) + (
        f'<div class="buttons"><button type="submit" name="action" value="{e(action)}" class="danger">'
        f"{e(label)}</button></div>"
    )
    return f"<details><summary>{e(label)}</summary>{_form(view, inner)}</details>"


def page(view: PageView) -> str:
    """The whole ticket page."""
    parts: list[str] = []
    if view.flash:
        kind = "ok" if view.flash_ok else "error"
        role = "status" if view.flash_ok else "alert"
        parts.append(f'<div class="flash {kind}" role="{role}">{e(view.flash)}</div>')
    badge = "badge ended" if view.ended else "badge"
    status = f" · {e(view.status)}" if view.status else ""
    handlers = f'<div class="sub">当前处理人：{e(view.handlers)}</div>' if view.handlers else ""
    parts.append(
        f'<div class="head"><h1>{e(view.title)}</h1>'
        f'<div class="sub">{e(view.sn)} · {e(view.workflow)}</div>'
        f'<div class="state"><span class="{badge}">{e(view.state)}</span>'
        f'<span class="muted">{status}</span></div>{handlers}</div>'
    )
    parts.append(_actions(view))
    rows = "".join(f"<dt>{e(f.label)}</dt><dd>{e(f.value)}</dd>" for f in view.fields)
    parts.append(f"<section><h2>工单信息</h2><dl>{rows}</dl></section>")
    parts.append(f'<section><h2>流程</h2><div class="diagram">{view.diagram}</div></section>')
    if view.logs:
        items = "".join(
            f'<li><div><span class="what">{e(log.who)}</span> {e(log.action)}'
            f' <span class="muted">· {e(log.state)}</span></div>'
            + (f'<div class="note">{e(log.suggestion)}</div>' if log.suggestion else "")
            + f'<div class="muted">{e(log.at)}</div></li>'
            for log in view.logs
        )
        parts.append(f"<section><h2>处理记录（北京时间）</h2><ol>{items}</ol></section>")
    until = f" · 链接有效至 {e(view.expires)}" if view.expires else ""
    parts.append(f"<footer>当前查看人：{e(view.viewer)}{until}</footer>")
    return _document(f"{view.sn} {view.title}", "".join(parts))


def message_page(title: str, message: str, hint: str = "") -> str:
    """A page that only says something (no access, expired link, unknown ticket, ...)."""
    extra = f'<p class="muted">{e(hint)}</p>' if hint else ""
    return _document(title, f"<section><h1>{e(title)}</h1><p>{e(message)}</p>{extra}</section>")
