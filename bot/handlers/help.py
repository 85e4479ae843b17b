"""Help, language choice and the reply to a message that is not a command. Pure text builders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

from bot.handlers.commands import CommandName, Unknown, UnknownReason

Lang: TypeAlias = Literal["zh", "en"]

# (example, what it does) per command and language; every example parses to its command.
EXAMPLES: Final[Mapping[Lang, Mapping[CommandName, tuple[str, str]]]] = MappingProxyType(
    {
        "zh": MappingProxyType(
            {
                "help": ("帮助", "显示本菜单"),
                "workflows": ("流程", "我能发起哪些流程"),
                "create": (
                    '发起 请假申请 days=2 reason="家里有事" 抄送=wangqiang',
                    "发起工单（流程编号或名称，可带 字段=值 和 抄送=人）",
                ),
                "todo": ("待办", "待我处理的工单（可加页码：待办 2）"),
                "mine": ("我的工单", "我发起的工单"),
                "show": ("查看 123", "查看工单（编号、#编号或流水号）"),
                "urge": ("催办 123 请尽快处理", "催办：提醒当前处理人"),
                "comment": ("评论 123 已补充材料", "评论"),
                "withdraw": ("撤回 123 信息填错了", "撤回我发起的工单"),
                "approve": ("同意 123 没问题", "同意"),
                "reject": ("拒绝 123 材料不全", "拒绝"),
                "cancel": ("取消", "退出当前的分步填写"),
            }
        ),
        "en": MappingProxyType(
            {
                "help": ("help", "show this menu"),
                "workflows": ("workflows", "the workflows you can start"),
                "create": (
                    'create 1 days=2 reason="family matter" cc=wangqiang',
                    "start a ticket (workflow id or name, key=value fields, cc=people)",
                ),
                "todo": ("todo", "tickets waiting for you (page: todo 2)"),
                "mine": ("my tickets", "tickets you started"),
                "show": ("show 123", "show a ticket (id, #id or serial number)"),
                "urge": ("urge 123 please hurry", "remind the current handlers"),
                "comment": ("comment 123 documents attached", "add a comment"),
                "withdraw": ("withdraw 123 wrong dates", "withdraw a ticket you started"),
                "approve": ("approve 123 looks good", "approve"),
                "reject": ("reject 123 missing receipt", "reject"),
                "cancel": ("cancel", "leave the current step-by-step dialogue"),
            }
        ),
    }
)

_REASONS: Final[Mapping[Lang, Mapping[UnknownReason, str]]] = MappingProxyType(
    {
        "zh": MappingProxyType(
            {
                "unknown command": "没有看懂这条消息。",
                "too long": "消息太长了（最多 2000 字）。",
                "missing ticket": "请写上工单编号。",
                "bad ticket": "工单编号不对：应为数字、#数字或流水号。",
                "missing text": "请写上评论内容。",
                "bad page": "页码应为正整数。",
                "unexpected text": "这个命令后面不需要别的内容。",
                "unclosed quote": "引号没有配对。",
                "bad field": "字段应写成 字段名=值（字段名为英文字母、数字、下划线）。",
                "duplicate field": "同一个字段写了两次。",
                "unquoted space": '含空格的值请用引号括起来，例如 reason="家里 有事"。',
            }
        ),
        "en": MappingProxyType(
            {
                "unknown command": "Sorry, I did not understand that.",
                "too long": "That message is too long (2000 characters at most).",
                "missing ticket": "Please add the ticket number.",
                "bad ticket": "That is not a ticket number: use a number, #number or a serial number.",
                "missing text": "Please add the comment text.",
                "bad page": "The page must be a positive number.",
                "unexpected text": "That command takes nothing after it.",
                "unclosed quote": "A quote is not closed.",
                "bad field": "Write fields as key=value (key: letters, digits, underscore).",
                "duplicate field": "The same field is given twice.",
                "unquoted space": 'Quote a value that contains spaces, e.g. reason="family matter".',
            }
        ),
    }
)


def _is_cjk(ch: str) -> bool:
    return (
        "\u3000" <= ch <= "\u303f"  # CJK symbols and punctuation
        or "\u3400" <= ch <= "\u4dbf"
        or "\u4e00" <= ch <= "\u9fff"
        or "\uf900" <= ch <= "\ufaff"
        or "\uff00" <= ch <= "\uffef"  # full-width forms
        or "\U00020000" <= ch <= "\U0003ffff"
    )


def reply_language(text: str) -> Lang:
    """Chinese if the message has any CJK character, else English."""
    return "zh" if any(_is_cjk(ch) for ch in text) else "en"


NOTES: Final[Mapping[Lang, tuple[str, str]]] = MappingProxyType(
    {
        "zh": (
            "分步填写：发起时缺少必填字段，我会逐项询问。直接回复这一项的值，或用 字段=值 一次填多项；"
            "回复“跳过”跳过选填项，“取消”放弃，“帮助”看本菜单（不影响填写）；30 分钟不回复自动作废。"
            "值恰好像命令时，请用引号括起来。",
            "抄送：发起时加 抄送=用户名或姓名，多人用逗号分隔，例如 抄送=wangqiang,李娜；抄送人会收到通知。",
        ),
        "en": (
            "Step by step: if a create lacks required fields, I ask for them one at a time. Reply with "
            'the value, or key=value to fill several at once; "skip" skips an optional field, "cancel" '
            'gives up, "help" shows this menu (the draft stays); a draft is dropped after 30 minutes '
            "without a reply. Quote a value that looks like a command.",
            "CC: add cc=usernames or names, comma-separated, to a create, e.g. cc=wangqiang,李娜; "
            "they are notified.",
        ),
    }
)


LINK_NOTE: Final[Mapping[Lang, str]] = MappingProxyType(
    {
        "zh": "关联聊天记录：发送“关联 工单号”（如 关联 1470000000000000001），之后转发或发给我的消息都会关联到"
        "该客服工单，发“完成”结束（30 分钟没有新消息自动结束）。",
        "en": 'Link chat records: send "link <order no>" (e.g. link 1470000000000000001); what you forward or '
        'send me next is linked to that work order until you send "done" (or 30 minutes pass without a message).',
    }
)


def help_text(lang: Lang, workflows: Sequence[tuple[int, str]], *, dialogue: bool = False) -> str:
    """Every command with an example, how CC (and, with `dialogue`, step-by-step filling) works,
    then the workflows one can start (id and name)."""
    zh = lang == "zh"
    steps, cc = NOTES[lang]
    lines = ["可以这样跟我说：" if zh else "You can say:"]
    lines += [f"• {example} — {what}" for example, what in EXAMPLES[lang].values()]
    lines.append("")
    if dialogue:
        lines.append(steps)
    lines += [cc, LINK_NOTE[lang], ""]
    if workflows:
        lines.append("可发起的流程：" if zh else "Workflows you can start:")
        lines += [f"  {wid}. {name}" for wid, name in workflows]
    else:
        lines.append("暂时没有可发起的流程。" if zh else "There are no workflows you can start.")
    return "\n".join(lines)


def unknown_reply(intent: Unknown, lang: Lang) -> str:
    """Why the message was not understood, the closest command with an example, and where help is."""
    parts = [_REASONS[lang][intent.reason]]
    if intent.suggestion is not None:
        example, _ = EXAMPLES[lang][intent.suggestion]
        parts.append(f"你是不是想说：{example}" if lang == "zh" else f"Did you mean: {example}")
    parts.append("发送“帮助”查看全部命令。" if lang == "zh" else 'Send "help" for all commands.')
    return "\n".join(parts)
