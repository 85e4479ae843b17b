"""Safe condition expressions for transitions: parsed once at load time, never eval'ed.

A condition reads like loonflow's: ``{days} > 3``, ``{leave_type} == 'sick' and {days} >= 1``.
Field references are written in braces. `compile_expression` swaps each ``{name}`` for a private
placeholder, parses the result with `ast.parse(..., mode="eval")` and converts the parse tree into
a small immutable tree of our own, accepting only a whitelist of constructs:

- literals: int, float, str, True/False/None (also spelt true/false/null), lists and tuples;
- ``and``, ``or``, ``not``, unary ``-`` and ``+``;
- ``+ - * / %``;
- ``== != < <= > >= in not in`` (chains such as ``1 <= {days} < 5`` included).

Anything else (calls, attributes, subscripts, lambdas, comprehensions, ``:=``, ``*``-unpacking,
f-strings, ``**``, ``//``, bit operators, ``is``, conditional expressions, bare identifiers...)
is refused with a `ConditionError` naming the construct and the offending text. Nothing is ever
passed to eval, exec or compile; `evaluate` interprets the tree with its own walker.

Evaluation never raises on data. The rules:

- a field missing from the values is None;
- a str that parses as a number (``'5'``, ``' 2.5 '``, ``'-1e3'``) is converted to that number when
  the other operand is a number (int or float, not bool), so ``'5' > 3`` is True and
  ``'5' == 5`` is True; the same holds for unary minus/plus and for the items of ``in``;
- a comparison that cannot be made (``None > 3``, ``'abc' > 3``, ``[1] < 'a'``) is False;
- ``x in c`` / ``x not in c`` are False when ``c`` is not a container (str, list, tuple, set, dict)
  or when ``c`` is a str and ``x`` is not;
- arithmetic that cannot be done (division or modulo by zero, ``None + 1``, ``'a' * 3``, an
  overflow) makes the whole expression False; booleans are not numbers for arithmetic. Only
  ``+`` works on str + str and list + list; ``*`` and ``%`` are numeric only (no repetition,
  no string formatting);
- ``and`` / ``or`` short-circuit like Python's, so ``{ok} or 1 / 0 > 1`` is True when ok is truthy;
- the result is ``bool(value)``.

Dates kept as ISO strings (``'2024-05-01'``) compare correctly as strings.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import CoreError

MAX_SOURCE_LENGTH = 1000
MAX_DEPTH = 32
_SHOW = 80  # characters of source echoed in messages
_FEW_NAMES = 12  # list the known fields when there are at most this many

_PLACEHOLDER_PREFIX = "__tbf_"
_PLACEHOLDER_RE = re.compile(r" ?(__tbf_\d+__) ?")
_FIELD_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NUMBER_RE = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*\Z")
_INT_RE = re.compile(r"\s*[+-]?[0-9]+\s*\Z")
_LITERAL_NAMES: Mapping[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "True": True,
    "False": False,
    "None": None,
}


class ConditionError(CoreError):
    """An expression is malformed, uses a construct outside the whitelist, or names an unknown field."""


@dataclass(frozen=True, slots=True)
class Expression:
    source: str
    names: frozenset[str]
    tree: Any  # the validated parse tree; opaque to callers


# --- the tree `evaluate` interprets (immutable, hashable) -------------------------------------------


@dataclass(frozen=True, slots=True)
class _Node:
    pass


@dataclass(frozen=True, slots=True)
class _Const(_Node):
    value: Any  # int, float, str, bool or None


@dataclass(frozen=True, slots=True)
class _Field(_Node):
    name: str


@dataclass(frozen=True, slots=True)
class _Seq(_Node):
    items: tuple[_Node, ...]
    is_tuple: bool


@dataclass(frozen=True, slots=True)
class _Unary(_Node):
    op: str  # "not", "-", "+"
    operand: _Node


@dataclass(frozen=True, slots=True)
class _Bool(_Node):
    op: str  # "and", "or"
    values: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Bin(_Node):
    op: str  # "+", "-", "*", "/", "%"
    left: _Node
    right: _Node


@dataclass(frozen=True, slots=True)
class _Cmp(_Node):
    left: _Node
    ops: tuple[str, ...]  # "==", "!=", "<", "<=", ">", ">=", "in", "not in"
    comparators: tuple[_Node, ...]


# --- compiling ----------------------------------------------------------------------------------


def _clip(text: str, limit: int = _SHOW) -> str:
    """Shorten text for a message: control characters and runs of whitespace become one space."""
    text = " ".join("".join(c if c.isprintable() else " " for c in text[: limit * 4]).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def compile_expression(source: str, known_names: frozenset[str]) -> Expression:
    """Parse and validate `source`; raise ConditionError if it is not a safe, well-formed condition."""
    if not isinstance(source, str):
        raise ConditionError(f"a condition must be a string, got {type(source).__name__}")
    if len(source) > MAX_SOURCE_LENGTH:
        raise ConditionError(
            f"condition '{_clip(source)}' is too long ({len(source)} characters, at most {MAX_SOURCE_LENGTH})"
        )
    if not source.strip():
        raise ConditionError("condition is empty")
    if _PLACEHOLDER_PREFIX in source:
        raise ConditionError(
            f"condition '{_clip(source)}' contains the reserved text '{_PLACEHOLDER_PREFIX}'"
        )
    text, placeholders = _substitute(source, known_names)
    text = text.strip()  # ast.parse would see leading blanks as an indent
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. invalid escape sequences become syntax errors
            parsed = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        msg = _clip(_unplace(str(exc.msg), placeholders), 120)
        raise ConditionError(f"condition '{_clip(source)}' is not a valid expression: {msg}") from None
    except (ValueError, RecursionError, MemoryError, OverflowError):
        raise ConditionError(f"condition '{_clip(source)}' is not a valid expression") from None
    converter = _Converter(source, text, placeholders)
    tree = converter.convert(parsed.body, 1)
    return Expression(source=source, names=frozenset(converter.names), tree=tree)


def _substitute(source: str, known_names: frozenset[str]) -> tuple[str, dict[str, str]]:
    """Replace each ``{name}`` outside string literals by a placeholder identifier.

    Returns the new text and the mapping placeholder -> field name.
    """
    out: list[str] = []
    by_name: dict[str, str] = {}
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c in "'\"":
            quote = c * 3 if source.startswith(c * 3, i) else c
            j = i + len(quote)
            while j < n and not source.startswith(quote, j):
                j += 2 if source[j] == "\\" else 1
            if j >= n:
                raise ConditionError(f"condition '{_clip(source)}' has an unterminated string")
            j += len(quote)
            out.append(source[i:j])
            i = j
        elif c == "{":
            j = source.find("}", i + 1)
            if j < 0:
                raise ConditionError(f"condition '{_clip(source)}' has an unbalanced '{{'")
            inner = source[i + 1 : j].strip()
            if not _FIELD_NAME_RE.match(inner):
                ref = _clip(source[i : j + 1], 40)
                raise ConditionError(
                    f"condition '{_clip(source)}' has an invalid field reference '{ref}': "
                    "write a field key in braces, such as {days}"
                )
            if inner not in known_names:
                raise ConditionError(_unknown_field(inner, source, known_names))
            placeholder = by_name.setdefault(inner, f"{_PLACEHOLDER_PREFIX}{len(by_name)}__")
            out.append(f" {placeholder} ")  # spaces keep `{a}{b}` from fusing into one name
            i = j + 1
        elif c == "}":
            raise ConditionError(f"condition '{_clip(source)}' has an unbalanced '}}'")
        elif c == "#":
            raise ConditionError(
                f"condition '{_clip(source)}' contains a comment ('#'), which is not allowed"
            )
        elif c in "\r\n\t\f\v":
            out.append(" ")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out), {p: name for name, p in by_name.items()}


def _unknown_field(name: str, source: str, known: frozenset[str]) -> str:
    msg = f"unknown field '{_clip(name, 40)}' in condition '{_clip(source)}'"
    if not known:
        return msg + "; the workflow defines no fields"
    if len(known) <= _FEW_NAMES:
        return msg + "; known fields: " + ", ".join(sorted(known))
    return msg


def _unplace(text: str, placeholders: Mapping[str, str]) -> str:
    def back(m: re.Match[str]) -> str:
        name = placeholders.get(m.group(1))
        return "{" + name + "}" if name is not None else m.group(0)

    return _PLACEHOLDER_RE.sub(back, text)


_BOOL_OPS: Mapping[type[ast.boolop], str] = {ast.And: "and", ast.Or: "or"}
_UNARY_OPS: Mapping[type[ast.unaryop], str] = {ast.Not: "not", ast.USub: "-", ast.UAdd: "+"}
_BIN_OPS: Mapping[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Mod: "%",
}
_CMP_OPS: Mapping[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}
_REFUSED_OPS: Mapping[type[ast.AST], str] = {
    ast.Pow: "the power operator (**)",
    ast.FloorDiv: "floor division (//)",
    ast.MatMult: "the matrix operator (@)",
    ast.LShift: "a bit shift (<<)",
    ast.RShift: "a bit shift (>>)",
    ast.BitAnd: "a bitwise operator (&)",
    ast.BitOr: "a bitwise operator (|)",
    ast.BitXor: "a bitwise operator (^)",
    ast.Invert: "a bitwise operator (~)",
    ast.Is: "an identity test (is)",
    ast.IsNot: "an identity test (is not)",
}
_REFUSED_NODES: Mapping[type[ast.AST], str] = {
    ast.Call: "a function call",
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripting",
    ast.Slice: "a slice",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.NamedExpr: "an assignment expression (:=)",
    ast.Starred: "unpacking (*)",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.IfExp: "a conditional expression (x if c else y)",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


class _Converter:
    """Turn a whitelisted Python parse tree into our own nodes; refuse everything else."""

    def __init__(self, source: str, text: str, placeholders: Mapping[str, str]) -> None:
        self.source = source
        self.text = text
        self.placeholders = placeholders
        self.names: set[str] = set()

    def _segment(self, node: ast.AST) -> str:
        seg = ast.get_source_segment(self.text, node)
        if not seg:
            return ""
        return _clip(" ".join(_unplace(seg, self.placeholders).split()), 60)

    def _refuse(self, what: str, node: ast.AST) -> ConditionError:
        seg = self._segment(node)
        where = f" in '{seg}'" if seg else ""
        return ConditionError(f"condition '{_clip(self.source)}' uses {what}{where}, which is not allowed")

    def convert(self, node: ast.expr, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            raise ConditionError(
                f"condition '{_clip(self.source)}' is nested too deeply (at most {MAX_DEPTH})"
            )
        d = depth + 1
        if isinstance(node, ast.Constant):
            return _Const(self._constant(node))
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.List | ast.Tuple):
            return _Seq(tuple(self.convert(e, d) for e in node.elts), isinstance(node, ast.Tuple))
        if isinstance(node, ast.BoolOp):
            return _Bool(_BOOL_OPS[type(node.op)], tuple(self.convert(v, d) for v in node.values))
        if isinstance(node, ast.UnaryOp):
            uop = _UNARY_OPS.get(type(node.op))
            if uop is None:
                raise self._refuse(_REFUSED_OPS.get(type(node.op), type(node.op).__name__), node)
            return _Unary(uop, self.convert(node.operand, d))
        if isinstance(node, ast.BinOp):
            bop = _BIN_OPS.get(type(node.op))
            if bop is None:
                raise self._refuse(_REFUSED_OPS.get(type(node.op), type(node.op).__name__), node)
            return _Bin(bop, self.convert(node.left, d), self.convert(node.right, d))
        if isinstance(node, ast.Compare):
            ops: list[str] = []
            for op in node.ops:
                cop = _CMP_OPS.get(type(op))
                if cop is None:
                    raise self._refuse(_REFUSED_OPS.get(type(op), type(op).__name__), node)
                ops.append(cop)
            return _Cmp(
                self.convert(node.left, d), tuple(ops), tuple(self.convert(c, d) for c in node.comparators)
            )
        what = _REFUSED_NODES.get(type(node), f"the construct {type(node).__name__}")
        raise self._refuse(what, node)

    def _constant(self, node: ast.Constant) -> Any:
        value = node.value
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, float):
            return value
        if isinstance(value, bytes):
            raise self._refuse("a bytes literal", node)
        if isinstance(value, complex):
            raise self._refuse("a complex number", node)
        raise self._refuse(f"the literal {type(value).__name__}", node)

    def _name(self, node: ast.Name) -> _Node:
        field = self.placeholders.get(node.id)
        if field is not None:
            self.names.add(field)
            return _Field(field)
        if node.id in _LITERAL_NAMES:
            return _Const(_LITERAL_NAMES[node.id])
        name = _clip(node.id, 40)
        raise ConditionError(
            f"condition '{_clip(self.source)}' uses the bare name '{name}': "
            f"write field references in braces, such as {{{name}}}, and strings in quotes"
        )


# --- evaluating ---------------------------------------------------------------------------------


class _Abort(Exception):
    """Arithmetic that cannot be done: the whole expression is False."""


def evaluate(expression: Expression, values: Mapping[str, Any]) -> bool:
    """Evaluate a compiled condition against field values; never raises on data (see module doc)."""
    tree = expression.tree
    if not isinstance(tree, _Node):
        raise ConditionError(f"condition '{_clip(expression.source)}' was not built by compile_expression")
    try:
        return _truthy(_eval(tree, values))
    except _Abort:
        return False


def _eval(node: _Node, values: Mapping[str, Any]) -> Any:
    if isinstance(node, _Const):
        return node.value
    if isinstance(node, _Field):
        try:
            return values.get(node.name)
        except Exception:
            return None
    if isinstance(node, _Seq):
        items = [_eval(item, values) for item in node.items]
        return tuple(items) if node.is_tuple else items
    if isinstance(node, _Bool):
        result: Any = None
        for sub in node.values:
            result = _eval(sub, values)
            if _truthy(result) == (node.op == "or"):
                return result
        return result
    if isinstance(node, _Unary):
        operand = _eval(node.operand, values)
        if node.op == "not":
            return not _truthy(operand)
        number = _as_number(operand)
        if number is None:
            raise _Abort
        return -number if node.op == "-" else +number
    if isinstance(node, _Bin):
        return _arith(node.op, _eval(node.left, values), _eval(node.right, values))
    if isinstance(node, _Cmp):
        left = _eval(node.left, values)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, values)
            if not _compare(op, left, right):
                return False
            left = right
        return True
    raise _Abort  # unreachable for trees built by compile_expression


def _truthy(value: Any) -> bool:
    try:
        return bool(value)
    except Exception:
        return False


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_number(text: str) -> int | float | None:
    if len(text) > 100 or not _NUMBER_RE.match(text):
        return None
    try:
        return int(text) if _INT_RE.match(text) else float(text)
    except (ValueError, OverflowError):
        return None


def _as_number(value: Any) -> int | float | None:
    if _is_number(value):
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        return _parse_number(value)
    return None


def _coerce_pair(a: Any, b: Any) -> tuple[Any, Any]:
    """Read a numeric str as a number when the other side is a number."""
    if _is_number(a) and isinstance(b, str):
        nb = _parse_number(b)
        if nb is not None:
            return a, nb
    elif _is_number(b) and isinstance(a, str):
        na = _parse_number(a)
        if na is not None:
            return na, b
    return a, b


def _arith(op: str, a: Any, b: Any) -> Any:
    a, b = _coerce_pair(a, b)
    numeric = _is_number(a) and _is_number(b)
    try:
        if op == "+":
            if numeric or (type(a) is type(b) and isinstance(a, str | list | tuple)):
                result = a + b
            else:
                raise _Abort
        elif not numeric:
            raise _Abort
        elif op == "-":
            result = a - b
        elif op == "*":
            result = a * b
        elif op == "/":
            result = a / b
        else:
            result = a % b
    except _Abort:
        raise
    except Exception:  # ZeroDivisionError, OverflowError, ...
        raise _Abort from None
    return result


def _equal(a: Any, b: Any) -> bool:
    a, b = _coerce_pair(a, b)
    try:
        return bool(a == b)
    except Exception:
        return False


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "in" or op == "not in":
        return _contains(a, b, negate=op == "not in")
    if op == "==":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    a, b = _coerce_pair(a, b)
    try:
        if op == "<":
            return bool(a < b)
        if op == "<=":
            return bool(a <= b)
        if op == ">":
            return bool(a > b)
        return bool(a >= b)
    except Exception:  # incompatible types: the comparison is False
        return False


def _contains(item: Any, container: Any, *, negate: bool) -> bool:
    try:
        if isinstance(container, str):
            if not isinstance(item, str):
                return False
            found = item in container
        elif isinstance(container, list | tuple | set | frozenset | dict):
            found = any(_equal(item, x) for x in container)
        else:
            return False
    except Exception:
        return False
    return found != negate
