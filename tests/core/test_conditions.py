"""Condition expressions: the whitelist, the error messages, and data-proof evaluation."""

from __future__ import annotations

import ast
import contextlib
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.conditions import MAX_DEPTH, ConditionError, Expression, compile_expression, evaluate

KNOWN = frozenset({"days", "leave_type", "a", "b", "c", "start", "tags", "title", "creator"})


def check(source: str, values: dict[str, Any]) -> bool:
    return evaluate(compile_expression(source, KNOWN), values)


# --- compiling --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ("{days} > 3", {"days"}),
        ("{leave_type} == 'sick' and {days} >= 1", {"leave_type", "days"}),
        ("{ days } > 3", {"days"}),
        ("{a} + {b} * {a} > 0", {"a", "b"}),
        ("not {a}", {"a"}),
        ("1 < 2", set()),
        ("'{a}' == 'x'", set()),  # braces inside a string are text, not a field
        ('"{" == "}"', set()),
        ("'''a'''  == 'a'", set()),
        ("{a}\n  and {b}", {"a", "b"}),
        ("{a} in [1, 2, (3, 4)]", {"a"}),
        ("{a} == true or {b} == null or {c} == None", {"a", "b", "c"}),
    ],
)
def test_compile_ok(source: str, names: set[str]) -> None:
    expr = compile_expression(source, KNOWN)
    assert isinstance(expr, Expression)
    assert expr.source == source
    assert expr.names == frozenset(names)


def test_expression_is_hashable_and_comparable() -> None:
    e1 = compile_expression("{days} > 3 and {a} in [1, 2]", KNOWN)
    e2 = compile_expression("{days} > 3 and {a} in [1, 2]", KNOWN)
    assert e1 == e2
    assert hash(e1) == hash(e2)


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        # dangerous constructs
        ("__import__('os')", "function call"),
        ("__import__('os').system('ls')", "not allowed"),
        ("().__class__", "attribute access"),
        ("{a}.__class__", "attribute access in '{a}.__class__'"),
        ("().__class__.__bases__[0].__subclasses__()", "not allowed"),
        ("open('x')", "function call in 'open('x')'"),
        ("[x for x in ()]", "comprehension"),
        ("(x for x in ())", "generator expression"),
        ("lambda: 1", "lambda"),
        ("2**999999", "power operator"),
        ("{a} ** 2", "power operator"),
        ("{a}[0]", "subscripting"),
        ("{a}[1:2]", "subscripting"),
        ("(x := 1)", "assignment expression"),
        ("[*{a}]", "unpacking"),
        ("f'{a}'", "f-string"),
        ("f'x'", "f-string"),
        ("{a} // 2", "floor division"),
        ("{a} & 1", "bitwise"),
        ("{a} | 1", "bitwise"),
        ("{a} ^ 1", "bitwise"),
        ("~{a}", "bitwise"),
        ("{a} << 1", "bit shift"),
        ("{a} @ {b}", "matrix"),
        ("{a} is None", "identity test"),
        ("{a} is not None", "identity test"),
        ("1 if {a} else 2", "conditional expression"),
        ("b'x' == {a}", "bytes literal"),
        ("1j", "complex number"),
        ("...", "ellipsis"),
        ("await {a}", "not"),
        # bare names
        ("days > 3", "bare name 'days'"),
        ("{a} == sick", "bare name 'sick'"),
        ("os", "bare name"),
        ("__builtins__", "bare name"),
        # braces
        ("{a", "unbalanced '{'"),
        ("a}", "unbalanced '}'"),
        ("{a}}", "unbalanced '}'"),
        ("{}", "invalid field reference '{}'"),
        ("{a b}", "invalid field reference"),
        ("{{a}}", "invalid field reference"),
        ("{1a}", "invalid field reference"),
        ("{a.b}", "invalid field reference"),
        ("{a}{b}", "not a valid expression"),
        # syntax
        ("", "empty"),
        ("   \n ", "empty"),
        ("{a} >", "not a valid expression"),
        ("{a} == 'x", "unterminated string"),
        ("{a} = 1", "not a valid expression"),
        ("{a} == 1; 2", "not a valid expression"),
        ("{a} == 1 # comment", "comment"),
        ("'\\d' == {a}", "invalid escape sequence"),
        ("\0", "not a valid expression"),
        ("'__tbf_0__' == {a}", "reserved"),
        # abuse
        ("(" * 300 + "1" + ")" * 300, "not a valid expression"),
        ("[" * 300 + "]" * 300, "not a valid expression"),
        ("not " * 200 + "1", "nested too deeply"),
        ("-" * 999 + "1", "nested too deeply"),
        ("{a}" + " + {a}" * 40, "nested too deeply"),
        ("'" + "x" * 10_000 + "'", "too long (10002 characters, at most 1000)"),
        ("1 " * 600, "too long"),
    ],
)
def test_compile_refuses(source: str, fragment: str) -> None:
    with pytest.raises(ConditionError) as info:
        compile_expression(source, KNOWN)
    message = str(info.value)
    assert fragment in message
    assert len(message) < 400  # messages never echo a huge source


def test_depth_limit_boundary() -> None:
    ok = "not " * (MAX_DEPTH - 3) + "{a}"
    assert compile_expression(ok, KNOWN).names == {"a"}
    with pytest.raises(ConditionError, match="nested too deeply"):
        compile_expression("not " * (MAX_DEPTH + 1) + "{a}", KNOWN)


def test_unknown_field_lists_the_known_ones() -> None:
    with pytest.raises(ConditionError) as info:
        compile_expression("{dayz} > 3", frozenset({"days", "reason"}))
    assert str(info.value) == "unknown field 'dayz' in condition '{dayz} > 3'; known fields: days, reason"


def test_unknown_field_many_known_are_not_listed() -> None:
    known = frozenset(f"f{i}" for i in range(50))
    with pytest.raises(ConditionError) as info:
        compile_expression("{x} > 1", known)
    assert str(info.value) == "unknown field 'x' in condition '{x} > 1'"


def test_unknown_field_no_fields() -> None:
    with pytest.raises(ConditionError, match="defines no fields"):
        compile_expression("{x} > 1", frozenset())


def test_refusal_message_names_construct_and_text() -> None:
    with pytest.raises(ConditionError) as info:
        compile_expression("{days} > 1 and open('x')", KNOWN)
    assert str(info.value) == (
        "condition '{days} > 1 and open('x')' uses a function call in 'open('x')', which is not allowed"
    )


def test_not_a_string() -> None:
    with pytest.raises(ConditionError, match="must be a string"):
        compile_expression(3, KNOWN)  # type: ignore[arg-type]


def test_foreign_tree_is_refused() -> None:
    with pytest.raises(ConditionError):
        evaluate(Expression("1", frozenset(), object()), {})


# --- evaluating -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "values", "expected"),
    [
        ("{days} > 3", {"days": 5}, True),
        ("{days} > 3", {"days": 3}, False),
        ("{days} > 3", {"days": 3.5}, True),
        ("{days} >= 3", {"days": 3}, True),
        ("{days} < 3", {"days": 2}, True),
        ("{days} <= 3", {"days": 4}, False),
        ("{days} != 3", {"days": 4}, True),
        ("{leave_type} == 'sick' and {days} >= 1", {"leave_type": "sick", "days": 1}, True),
        ("{leave_type} == 'sick' and {days} >= 1", {"leave_type": "annual", "days": 1}, False),
        ("{leave_type} == 'sick' or {days} > 10", {"leave_type": "annual", "days": 11}, True),
        ('{leave_type} == "sick"', {"leave_type": "sick"}, True),
        ("1 <= {days} < 5", {"days": 4}, True),
        ("1 <= {days} < 5", {"days": 5}, False),
        ("not {a}", {"a": 0}, True),
        ("not {a}", {"a": "x"}, False),
        ("{a}", {"a": [1]}, True),
        ("{a}", {"a": []}, False),
        ("{a}", {"a": ""}, False),
        ("{a} + {b} == 5", {"a": 2, "b": 3}, True),
        ("{a} - {b} == -1", {"a": 2, "b": 3}, True),
        ("{a} * {b} == 6", {"a": 2, "b": 3}, True),
        ("{a} / {b} == 0.5", {"a": 1, "b": 2}, True),
        ("{a} % 2 == 1", {"a": 7}, True),
        ("-{a} == -2", {"a": 2}, True),
        ("+{a} == 2", {"a": 2}, True),
        ("{a} + 'x' == 'yx'", {"a": "y"}, True),
        ("{a} + [2] == [1, 2]", {"a": [1]}, True),
        # missing fields are None
        ("{a} == null", {}, True),
        ("{a} == None", {}, True),
        ("{a} != null", {}, False),
        ("{a} > 3", {}, False),
        ("not {a}", {}, True),
        # literals
        ("{a} == true", {"a": True}, True),
        ("{a} == True", {"a": True}, True),
        ("{a} == false", {"a": False}, True),
        ("true", {}, True),
        ("false", {}, False),
        ("null", {}, False),
        # numeric strings against numbers
        ("{a} > 3", {"a": "5"}, True),
        ("{a} > 3", {"a": " 5 "}, True),
        ("{a} > 3", {"a": "2.5"}, False),
        ("{a} == 5", {"a": "5"}, True),
        ("{a} == 5", {"a": "5.0"}, True),
        ("{a} != 5", {"a": "5"}, False),
        ("3 < {a}", {"a": "10"}, True),
        ("{a} > 3", {"a": "-1e3"}, False),
        ("{a} + 1 == 6", {"a": "5"}, True),
        ("-{a} == -5", {"a": "5"}, True),
        ("{a} in [1, 2, 3]", {"a": "2"}, True),
        ("{a} == '5'", {"a": 5}, True),
        ("'10' > '9'", {}, False),  # two strings compare as strings
        ("{a} > 3", {"a": "nan"}, False),
        ("{a} > 3", {"a": "inf"}, False),
        ("{a} > 3", {"a": "1_000"}, False),
        # incompatible comparisons are False
        ("{a} > 3", {"a": None}, False),
        ("{a} < 3", {"a": None}, False),
        ("{a} > 3", {"a": "abc"}, False),
        ("{a} < 3", {"a": "abc"}, False),
        ("{a} < 'x'", {"a": [1]}, False),
        ("{a} == 3", {"a": "abc"}, False),
        ("{a} != 3", {"a": "abc"}, True),
        ("{a} > {b}", {"a": {"x": 1}, "b": {"y": 2}}, False),
        ("{a} < {b}", {"a": [1, "x"], "b": [1, 2]}, False),
        # in / not in
        ("{a} in ['x', 'y']", {"a": "x"}, True),
        ("{a} in ('x', 'y')", {"a": "z"}, False),
        ("{a} not in ['x', 'y']", {"a": "z"}, True),
        ("'ick' in {a}", {"a": "sick"}, True),
        ("'x' not in {a}", {"a": "sick"}, True),
        ("'x' in {tags}", {"tags": ["x", "y"]}, True),
        ("'z' in {tags}", {"tags": ["x", "y"]}, False),
        ("'k' in {a}", {"a": {"k": 1}}, True),
        ("1 in {a}", {"a": {1, 2}}, True),
        ("1 in {a}", {"a": "123"}, False),  # a number is never a substring
        ("'x' in {a}", {"a": None}, False),
        ("'x' not in {a}", {"a": None}, False),  # not a container: False both ways
        ("'x' in {a}", {"a": 5}, False),
        ("{a} in {b}", {}, False),
        # arithmetic that cannot be done: the whole expression is False
        ("{a} / 0 > 1", {"a": 1}, False),
        ("not ({a} / 0 > 1)", {"a": 1}, False),
        ("{a} / {b} > 1", {"a": 1, "b": 0}, False),
        ("{a} % {b} == 0", {"a": 1, "b": 0}, False),
        ("{a} / 0 > 1 or true", {"a": 1}, False),
        ("true or {a} / 0 > 1", {"a": 1}, True),  # short-circuit like Python
        ("false and {a} / 0 > 1", {"a": 1}, False),
        ("{a} + 1 > 0", {"a": None}, False),
        ("not ({a} + 1 > 0)", {"a": None}, False),
        ("{a} - 1 > 0", {"a": "abc"}, False),
        ("{a} * 3 == 'xxx'", {"a": "x"}, False),  # no string repetition
        ("{a} % 1 == 'x'", {"a": "%s"}, False),  # no string formatting
        ("{a} + 1 == 2", {"a": True}, False),  # booleans are not numbers
        ("-{a} == 0", {"a": None}, False),
        ("{a} * 1.0 > 0", {"a": 10**400}, False),  # overflow
        ("{a} / {b} > 0", {"a": 10**400, "b": 3}, False),
        # dates as ISO strings
        ("{start} >= '2024-05-01'", {"start": "2024-05-31"}, True),
        ("{start} >= '2024-05-01'", {"start": "2024-04-30"}, False),
        ("{start} < '2024-05-01 09:00:00'", {"start": "2024-05-01 08:59:59"}, True),
        # floats
        ("{a} > 3", {"a": math.nan}, False),
        ("{a} > 3", {"a": math.inf}, True),
    ],
)
def test_evaluate(source: str, values: dict[str, Any], expected: bool) -> None:
    result = check(source, values)
    assert result is expected


def test_evaluate_returns_bool() -> None:
    assert check("{a}", {"a": "yes"}) is True
    assert check("{a} or {b}", {"a": 0, "b": [1]}) is True


def test_evaluate_with_title_and_creator() -> None:
    assert check("{creator} == 'alice' and 'VPN' in {title}", {"creator": "alice", "title": "VPN access"})


class _Hostile:
    def __eq__(self, other: object) -> bool:
        raise RuntimeError("boom")

    def __lt__(self, other: object) -> bool:
        raise RuntimeError("boom")

    def __bool__(self) -> bool:
        raise RuntimeError("boom")

    __hash__ = object.__hash__


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{a} == 1", False),
        ("{a} != 1", True),
        ("{a} < 1", False),
        ("{a}", False),  # a value whose truth cannot be read is falsy
        ("not {a}", True),
        ("{a} in [1]", False),
        ("1 in {b}", False),
        ("{a} + 1 > 0", False),
        ("{a} and true", False),
    ],
)
def test_evaluate_survives_hostile_values(source: str, expected: bool) -> None:
    assert check(source, {"a": _Hostile(), "b": [_Hostile()]}) is expected


# --- properties ---------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200))
def test_any_text_compiles_or_raises_condition_error(source: str) -> None:
    with contextlib.suppress(ConditionError):
        compile_expression(source, KNOWN)


_ALPHABET = "{}abcdays()[]'\"+-*/%<>=!., 0123456789_notandorinTrueFalsenull\\#:;@&|^~"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=60))
def test_expression_like_text_compiles_or_raises_condition_error(source: str) -> None:
    with contextlib.suppress(ConditionError):
        compile_expression(source, KNOWN)


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10)
    | st.sampled_from(["5", " 3 ", "2.5", "-1e3", "abc", "", "2024-05-01", "nan", "inf"])
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)


def _operand() -> st.SearchStrategy[str]:
    return st.sampled_from(
        ["{a}", "{b}", "{c}", "{days}", "0", "1", "3", "2.5", "'x'", "'5'", "''", "null", "true", "[1, 'x']"]
    )


_expressions: st.SearchStrategy[str] = st.recursive(
    _operand(),
    lambda inner: (
        st.builds(
            lambda left, op, right: f"({left} {op} {right})",
            inner,
            st.sampled_from(
                ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "and", "or"]
            ),
            inner,
        )
        | st.builds(lambda e: f"(not {e})", inner)
        | st.builds(lambda e: f"(-{e})", inner)
    ),
    max_leaves=8,
)


@settings(max_examples=500, deadline=None)
@given(_expressions, st.dictionaries(st.sampled_from(["a", "b", "c", "days"]), _values))
def test_evaluate_never_raises(source: str, values: dict[str, Any]) -> None:
    refusal = ""
    try:
        expr = compile_expression(source, KNOWN)
    except ConditionError as exc:
        refusal = str(exc)
    if refusal:  # only too deep a nesting can be refused here
        assert "nested too deeply" in refusal
        return
    assert evaluate(expr, values) in (True, False)


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.sampled_from(["{a}", "{b}", "1", "2", "7"]),
        lambda inner: (
            st.builds(
                lambda left, op, right: f"({left} {op} {right})",
                inner,
                st.sampled_from(["+", "-", "*", "<", "==", "!=", ">=", "and", "or"]),
                inner,
            )
            | st.builds(lambda e: f"(not {e})", inner)
        ),
        max_leaves=8,
    ),
    st.integers(-50, 50),
    st.integers(-50, 50),
)
def test_integers_agree_with_python(source: str, a: int, b: int) -> None:
    """On plain integers (no division, no bool arithmetic) the result matches Python's own."""
    python_source = source.replace("{a}", f"({a})").replace("{b}", f"({b})")
    try:
        expected = eval(python_source, {"__builtins__": {}})  # noqa: S307  (test oracle on generated ints)
    except Exception:
        return
    try:
        expr = compile_expression(source, KNOWN)
    except ConditionError:
        return
    result = evaluate(expr, {"a": a, "b": b})
    if _uses_bool_arithmetic(source, a, b):
        return
    assert result is bool(expected)


def _uses_bool_arithmetic(source: str, a: int, b: int) -> bool:
    """Python allows True + 1; ours makes the whole expression False. Skip those cases."""
    python_source = source.replace("{a}", f"({a})").replace("{b}", f"({b})")
    tree = ast.parse(python_source, mode="eval")
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp):
            for side in (node.left, node.right):
                if isinstance(side, ast.Compare | ast.UnaryOp | ast.BoolOp) and not (
                    isinstance(side, ast.UnaryOp) and isinstance(side.op, ast.USub)
                ):
                    return True
    return False
