"""Tests for metricpower.scenario.expr: the rule-condition language."""

import builtins
import pickle
import random
import re
from pathlib import Path

import numpy as np
import pytest

import metricpower.scenario.expr as expr
from metricpower.scenario.expr import ExprError, Vocabulary, compile_condition

VOCAB = Vocabulary(
    variables=frozenset({"score", "income", "urban", "pet_owner", "days_clean"}),
    enums={"tier": ["AAA", "AA", "A", "B", "C", "D"]},
    functions={"count": ("behaviour", "num"), "on_list": ("list",), "friends_mean": ("num",)},
    domains={"behaviour": {"jaywalking", "littering", "café"}, "list": {"blacklist"}},
)
WHERE = "rules[3].when"


class FakeCtx:
    """Five citizens; records every function call."""

    xp = np

    def __init__(self):
        self.arrays = {
            "score": np.array([500.0, 650.0, 700.0, 849.0, 900.0]),
            "income": np.array([10.0, 20.0, 30.0, 40.0, 50.0]),
            "urban": np.array([True, False, True, False, True]),
            "pet_owner": np.array([False, False, True, True, False]),
            "days_clean": np.array([0, 1, 2, 3, 4]),
            "tier": np.array([0, 1, 3, 4, 5]),  # AAA, AA, B, C, D
        }
        self.calls = []

    def var(self, name):
        return self.arrays[name]

    def call(self, name, args):
        self.calls.append((name, args))
        if name == "count":
            return np.array([0, 1, 2, 3, 4]) * args[1]
        if name == "on_list":
            return np.array([False, True, False, False, True])
        return args[0] + 1.0


def run(text):
    ctx = FakeCtx()
    return compile_condition(text, VOCAB, WHERE)(ctx), ctx


def check(text, expected):
    result, _ = run(text)
    np.testing.assert_array_equal(result, np.array(expected))


# --- evaluation ---------------------------------------------------------------------


def test_arithmetic():
    check("score * 2 - income / 10 > 1300", [False, False, True, True, True])
    check("-score + 1000 >= 300", [True, True, True, False, False])
    check("(score + income) / 2 == 365", [False, False, True, False, False])
    check("score - 100 - 50 < 500", [True, False, False, False, False])  # left to right


def test_chained_comparison():
    check("600 <= score < 850", [False, True, True, True, False])
    check("income / 10 <= days_clean + 2 < 5", [True, True, True, False, False])
    check("10 < income <= 40 != 30", [False, True, True, True, False])  # 40 != 30


def test_chain_evaluates_each_operand_once():
    result, ctx = run("0 < friends_mean(score) < 800")
    np.testing.assert_array_equal(result, [True, True, True, False, False])
    assert len(ctx.calls) == 1


def test_boolean_operators():
    check("urban and not pet_owner", [True, False, False, False, True])
    check("pet_owner or score > 880", [False, False, True, True, True])
    check("not (urban or pet_owner)", [False, True, False, False, False])
    check("urban and score > 600 and income < 50", [False, False, True, False, False])
    check("urban or pet_owner and score < 0", [True, False, True, False, True])  # and first


def test_enum_by_label_and_order():
    check('tier == "B"', [False, False, True, False, False])
    check('tier != "AAA"', [False, True, True, True, True])
    check('tier >= "C"', [False, False, False, True, True])  # C or worse
    check('tier < "A"', [True, True, False, False, False])  # better than A
    check('"AA" >= tier', [True, True, False, False, False])  # label on the left
    check('"AA" <= tier <= "C"', [False, True, True, True, False])


def test_enum_membership():
    check('tier in ("AAA", "C")', [True, False, False, True, False])
    check('tier not in ["AAA", "AA", "D"]', [False, False, True, True, False])
    check('tier in ("B",)', [False, False, True, False, False])


def test_function_with_domain_and_num_arguments():
    result, ctx = run('count("jaywalking", days_clean + 1) > 5')
    np.testing.assert_array_equal(result, [False, False, True, True, True])
    ((name, args),) = ctx.calls
    assert name == "count"
    assert args[0] == "jaywalking" and isinstance(args[0], str)
    np.testing.assert_array_equal(args[1], [1, 2, 3, 4, 5])


def test_function_scalar_argument_and_boolean_result():
    result, ctx = run('on_list("blacklist") and friends_mean(2) > 2.5')
    np.testing.assert_array_equal(result, [False, True, False, False, True])
    assert ctx.calls == [("on_list", ("blacklist",)), ("friends_mean", (2,))]


def test_constants_are_returned_as_scalars_and_broadcast():
    assert run("True")[0] is True
    assert run("False")[0] is False
    assert not run("1 > 2")[0]
    check("True and urban", [True, False, True, False, True])
    check("urban or False", [True, False, True, False, True])
    check("not False", True)


def test_bare_boolean_variable():
    result, ctx = run("urban")
    assert result is ctx.arrays["urban"]


def test_multiline_inside_parentheses():
    check("(urban\n and pet_owner)", [False, False, True, False, False])


# --- introspection ------------------------------------------------------------------


def test_introspection():
    condition = compile_condition(
        'tier >= "B" and count("littering", income) > 1 or on_list("blacklist")', VOCAB, WHERE
    )
    assert condition.text.startswith('tier >= "B"')
    assert condition.variables == {"tier", "income"}
    assert condition.functions == {"count", "on_list"}
    plain = compile_condition("600 <= score < 850", VOCAB, WHERE)
    assert plain.variables == {"score"} and plain.functions == frozenset()


# --- rejection ----------------------------------------------------------------------


def rejected(text, where=WHERE):
    with pytest.raises(ExprError) as info:
        compile_condition(text, VOCAB, where)
    error = info.value
    assert error.where == where and str(error).startswith(f"{where}: ")
    assert error.text == text
    return error


@pytest.mark.parametrize(
    ("text", "mentions", "col"),
    [
        ("scor > 600", ["unknown name 'scor'", "score", "tier", "urban"], 1),
        ("urban and bonus(1)", ["unknown function 'bonus'", "count", "on_list"], 11),
        ("score.__class__", ["attribute"], 1),
        ("().__class__.__bases__[0].__subclasses__()", ["attribute"], 1),
        ("__class__ > 1", ["__"], 1),
        ("__builtins__(1)", ["__"], 1),
        ("(lambda: True)()", ["lambda"], 2),
        ("[score > 1 for s in score]", ["comprehension"], 1),
        ("urban and friends_mean((s for s in score)) > 1", ["generator"], 24),
        ('f"{score}" == "x"', ["f-string"], 1),
        ("(s := score) > 1", [":="], 2),
        ("urban if pet_owner else True", ["conditional"], 1),
        ('count("jaywalking", n=1) > 1', ["keyword"], 21),
        ('count("jaywalking") > 1', ["count()", "2 argument", "found 1"], 1),
        ("on_list()", ["on_list()", "1 argument", "found 0"], 1),
        ('tier == "E"', ["'E'", "'AAA'", "'D'"], 9),
        ('tier in ("A", "Z")', ["'Z'", "'AAA'"], 15),
        ('count("swimming", 1) > 0', ["'swimming'", "'jaywalking'", "'littering'"], 7),
        ('count(score, 1) > 0', ["string literal", "'jaywalking'"], 7),
        ('friends_mean("x") > 0', ["expected a number", "string"], 14),
        ("score + 1", ["true/false", "number"], 1),
        ("tier", ["true/false", "'tier'"], 1),
        ("urban and 3", ["true/false", "number"], 11),
        ("score ** 2 > 1", ["`**`"], 1),
        ("score // 2 > 1", ["`//`"], 1),
        ("score % 2 == 0", ["`%`"], 1),
        ("urban & pet_owner", ["`&`"], 1),
        ("~urban", ["`~`"], 1),
        ("urban is True", ["`is`"], 1),
        ("score[0] > 1", ["subscript"], 1),
        ("{1: 2}", ["dict"], 1),
        ("{urban}", ["set"], 1),
        ("friends_mean(*score) > 1", ["starred"], 14),
        ("score in (1, 2)", ["enum variable"], 1),
        ("tier > 2", ["label", "'AAA'"], 8),
        ('"A" == "B"', ["string", "enum"], 1),
        ("None", ["None"], 1),
        ("score / 0 > 1", ["division by zero"], 1),
        ("count > 1", ["function", "count(...)"], 1),
        ("(urban\n and foo)", ["unknown name 'foo'"], 13),  # columns run across lines
        ('count("café", 1) > 0 and foo', ["unknown name 'foo'"], 26),  # characters, not bytes
    ],
)
def test_rejected(text, mentions, col):
    error = rejected(text)
    for part in mentions:
        assert part in error.message
    assert error.col == col
    assert f"(column {col} of {text!r})" in str(error)


def test_import_os_system_is_refused_and_never_runs(tmp_path):
    target = tmp_path / "pwned_xyz"
    text = f"__import__('os').system('touch {target}')"
    error = rejected(text)
    assert "attribute" in error.message and error.col == 1
    with pytest.raises(ExprError):
        compile_condition(f"__import__('os').system('touch {target}') == 0", VOCAB, WHERE)
    assert not target.exists()
    assert "__" in rejected("__import__('os')").message


def test_syntax_error_reports_column():
    error = rejected("score > > 1")
    assert "syntax" in error.message and error.col == 9
    assert rejected("urban and (score > 1").col == 11  # '(' was never closed
    assert rejected("score >").col == 8  # at the end


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text(text):
    error = rejected(text)
    assert "empty" in error.message and error.col is None
    assert "column" not in str(error)


def test_too_long_text():
    text = " or ".join(["urban"] * 600)[:3000]
    assert len(text) == 3000
    error = rejected(text)
    assert "3000" in error.message and "2000" in error.message and error.col is None


def test_too_deep_nesting():
    error = rejected("not " * 200 + "urban")
    assert "nested" in error.message


def test_not_a_string():
    with pytest.raises(ExprError, match="must be a string"):
        compile_condition(True, VOCAB, WHERE)


def test_error_format_and_pickle():
    error = ExprError('rule "friends_low"', "x > 1", 1, "unknown name 'x'")
    assert str(error) == "rule \"friends_low\": unknown name 'x' (column 1 of 'x > 1')"
    assert str(ExprError("w", "", None, "empty condition")) == "w: empty condition"
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.where, copy.text, copy.col, copy.message, str(copy)) == (
        error.where, error.text, error.col, error.message, str(error))


def test_vocabulary_rejects_unknown_argument_kind():
    with pytest.raises(ValueError, match="unknown argument kind 'colour'"):
        Vocabulary(functions={"paint": ("colour",)})


def test_random_token_soup_only_raises_expr_error():
    """Accepted text evaluates; everything else is an ExprError, never another exception."""
    tokens = ["score", "urban", "tier", "count", "on_list", "friends_mean", "(", ")", "[", "]",
              "{", "}", ",", ":", "'A'", "'jaywalking'", "'blacklist'", "1", "0", "2.5", "True",
              "None", "+", "-", "*", "/", "**", "<", "<=", "==", "!=", "in", "not", "and", "or",
              "is", "lambda", "if", "else", "for", ".", "__class__", "=", ":=", "\n", "#", "~",
              "f'", "\\", "..."]
    rng = random.Random(1)
    accepted = 0
    for _ in range(3000):
        text = " ".join(rng.choice(tokens) for _ in range(rng.randint(1, 10)))
        try:
            condition = compile_condition(text, VOCAB, WHERE)
        except ExprError:
            continue
        condition(FakeCtx())
        accepted += 1
    assert accepted > 10


# --- no eval ------------------------------------------------------------------------


def test_source_has_no_eval_exec_or_compile():
    source = Path(expr.__file__).read_text()
    assert not re.search(r"\b(eval|exec|compile)\s*\(", source)
    assert "__import__" not in source and "builtins" not in source


def test_no_code_objects_are_made_at_compile_or_run_time(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec called")

    real_compile = builtins.compile

    def ast_only(source, filename, mode, flags=0, *args, **kwargs):
        assert flags & expr.ast.PyCF_ONLY_AST, "compile() asked for a code object"
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", ast_only)
    condition = compile_condition('tier in ("A", "B") or count("littering", score) > 1',
                                  VOCAB, WHERE)
    assert condition(FakeCtx()).shape == (5,)
