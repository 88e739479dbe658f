"""Rule conditions: a small, safe expression language compiled to whole-array closures.

A condition is one Python-like expression over per-citizen arrays, for example::

    600 <= score < 850 and not urban
    tier >= "C" or on_list("blacklist")
    count("jaywalking", 30) > 2 and tier in ("B", "C")
    friends_mean(score) - score > 50

The text is parsed with :func:`ast.parse` and only this subset is accepted:

- numbers (``3``, ``2.5``), ``True`` and ``False``;
- names of the vocabulary's variables (``score``, ``urban``, ...);
- arithmetic ``+ - * /`` and unary ``-``, done in float64 whatever the operands' types
  (scores are int32 and flags bool at run time: ``score * 3000000`` cannot wrap around);
  numbers written must be finite and at most 2**53 in size, unary ``-`` takes no
  true/false value, and only a value that is never zero may divide (a nonzero number,
  or a variable the vocabulary declares nonzero: ``100 / day`` is refused);
- comparisons ``< <= > >= == !=``, chains included (``600 <= score < 850``);
- ``and``, ``or``, ``not`` (element-wise) and parentheses;
- enum variables (``tier``) compared with one of their labels, ``tier == "A"``;
  the order comparisons go by position in the label list, so with tiers listed best
  first ``tier >= "C"`` means C or worse; or tested with ``tier in ("A", "B")`` /
  ``not in`` against a tuple or list of labels;
- calls of the vocabulary's functions with exactly their positional arguments, each
  either a number-valued expression or a string literal from the function's domain
  (``count("jaywalking", 30)``, where "jaywalking" must be a known behaviour).

As in Python, a condition may span several lines only inside parentheses. Columns in
error messages count characters from the start of the text, 1-based.

The whole condition must be true/false-valued: a comparison, a boolean operation, a
variable, a function call, ``True`` or ``False`` (``score + 1`` alone is refused).
Everything else (attributes, subscripts, lambdas, comprehensions, f-strings, ``:=``,
``x if c else y``, ``**``, ``//``, ``%``, bitwise operators, ``is``, keyword arguments,
dict and set literals, names starting with ``__``) is refused with an :class:`ExprError`
naming where the condition came from and the column of the offending part. Nothing the
user writes is ever evaluated as Python: the syntax tree is checked node by node and
turned into closures that call only the array namespace ``ctx.xp`` and ``ctx.var`` /
``ctx.call``.
"""

from __future__ import annotations

import ast
import io
import operator
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

#: Longest condition text accepted, in characters.
MAX_LENGTH = 2000
#: Deepest nesting of sub-expressions accepted.
MAX_DEPTH = 100
#: Largest number a condition may write: beyond it float64 no longer holds every integer.
MAX_CONSTANT = 2.0**53

_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
               ast.Div: operator.truediv}
_COMPARISONS = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
                ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne}
_OPERATOR_SYMBOLS = {ast.Pow: "**", ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@",
                     ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<",
                     ast.RShift: ">>", ast.Invert: "~", ast.UAdd: "+",
                     ast.Is: "is", ast.IsNot: "is not"}
_FORBIDDEN = {
    ast.Attribute: "attribute access (a.b)",
    ast.Subscript: "subscripts (a[i])",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.JoinedStr: "f-strings",
    ast.NamedExpr: "assignment expressions (:=)",
    ast.IfExp: "conditional expressions (a if c else b)",
    ast.Dict: "dict literals",
    ast.Set: "set literals",
    ast.Starred: "starred arguments (*a)",
    ast.Tuple: "tuples (allowed only after `in`)",
    ast.List: "lists (allowed only after `in`)",
}


class ExprError(ValueError):
    """A condition that cannot be accepted.

    ``where`` says where it came from (``"rules[3].when"``), ``text`` is the expression,
    ``col`` the 1-based column of the problem (None when it concerns the whole text) and
    ``message`` what was expected or found.
    """

    def __init__(self, where: str, text: str, col: int | None, message: str):
        self.where, self.text, self.col, self.message = where, text, col, message
        column = "" if col is None else f" (column {col} of {text!r})"
        super().__init__(f"{where}: {message}{column}")

    def __reduce__(self):
        return type(self), (self.where, self.text, self.col, self.message)


@dataclass(frozen=True)
class Vocabulary:
    """What a condition may refer to.

    ``variables``: names usable as bare variables. ``enums``: variable -> ordered labels
    (``ctx.var`` returns their indices). ``functions``: name -> argument kinds, each
    ``"num"`` or a domain name. ``domains``: domain name -> allowed string literals.
    ``types``: variable or function -> "bool" or "num", the kind of value it gives at
    run time (others may give either). ``nonzero``: variables never zero, which may
    divide.
    """

    variables: frozenset[str] = frozenset()
    enums: Mapping[str, Sequence[str]] = field(default_factory=dict)
    functions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    domains: Mapping[str, Collection[str]] = field(default_factory=dict)
    types: Mapping[str, str] = field(default_factory=dict)
    nonzero: frozenset[str] = frozenset()

    def __post_init__(self):
        for name, kinds in self.functions.items():
            for kind in kinds:
                if kind != "num" and kind not in self.domains:
                    raise ValueError(f"function {name!r}: unknown argument kind {kind!r}")


@dataclass(frozen=True)
class Condition:
    """A compiled condition: call it with a context to get a boolean array (or scalar)."""

    text: str
    variables: frozenset[str]
    functions: frozenset[str]
    _evaluate: Callable[[Any], Any] = field(repr=False, compare=False)

    def __call__(self, ctx):
        return self._evaluate(ctx)


def compile_condition(text: str, vocab: Vocabulary, where: str) -> Condition:
    """Check ``text`` against ``vocab`` and compile it; raise :class:`ExprError` if refused."""
    if not isinstance(text, str):
        raise ExprError(where, repr(text), None,
                        f"a condition must be a string, found {type(text).__name__}")
    if not text.strip():
        raise ExprError(where, text, None, "empty condition")
    if len(text) > MAX_LENGTH:
        raise ExprError(where, text, None,
                        f"condition is {len(text)} characters long; at most {MAX_LENGTH}")
    try:
        with warnings.catch_warnings():  # e.g. invalid escapes: refused later, or harmless
            warnings.simplefilter("ignore")
            tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        raise ExprError(where, text, _syntax_error_column(text, e),
                        f"syntax error: {e.msg}") from None
    except ValueError as e:  # e.g. null bytes, on some Python versions
        raise ExprError(where, text, None, f"syntax error: {e}") from None
    compiler = _Compiler(text, vocab, where)
    part = compiler.expr(tree.body)
    if part.kind not in ("bool", "any"):
        compiler.fail(tree.body, "a condition must be true/false-valued (a comparison such as "
                                 f"`score > 600`, or and/or/not); found {_describe(part)}")
    return Condition(text, frozenset(compiler.variables), frozenset(compiler.functions),
                     part.evaluate)


@dataclass(frozen=True)
class _Part:
    """A checked sub-expression.

    ``kind`` is "bool" (surely true/false), "num" (surely a number), "any" (a variable or
    function result, either), "enum" (an enum variable, named by ``enum``) or "str" (a
    string literal, usable only where its neighbour gives it a meaning). ``value`` holds
    literals (None otherwise); ``evaluate`` maps a context to the value (None for "str").
    """

    kind: str
    evaluate: Callable[[Any], Any] | None
    value: Any = None
    enum: str = ""
    nonzero: bool = False  # surely never zero (may divide)


def _constant(kind: str, value) -> _Part:
    return _Part(kind, lambda ctx: value, value, nonzero=value != 0)


def _wide(xp, value):
    """Integers and flags as float64: arithmetic on scores (int32) and flags (bool) can
    neither wrap around nor turn `+` into `or`; float64 holds every integer up to 2**53."""
    if isinstance(value, bool | int):
        return float(value)
    if isinstance(value, float):
        return value
    return xp.astype(value, xp.float64)


def _describe(part: _Part) -> str:
    return {"num": "a number", "str": "a string", "enum": f"the enum variable {part.enum!r}",
            "bool": "a true/false value", "any": "a value"}[part.kind]


def _array(xp, value):
    """Python scalars as 0-d arrays, so that array-API functions accept them."""
    return xp.asarray(value) if isinstance(value, bool | int | float) else value


def _logical(conjunction: bool, values):
    """Combine evaluated operands with ``xp.logical_and`` (or ``xp.logical_or``)."""

    def evaluate(ctx):
        xp = ctx.xp
        combine = xp.logical_and if conjunction else xp.logical_or
        result = _array(xp, values[0](ctx))
        for value in values[1:]:
            result = combine(result, _array(xp, value(ctx)))
        return result

    return evaluate


def _syntax_error_column(text: str, error: SyntaxError) -> int | None:
    if error.lineno is None or error.offset is None:
        return None
    lines = io.StringIO(text, newline="").readlines()
    line = lines[error.lineno - 1] if error.lineno <= len(lines) else ""
    offset = error.offset if error.offset > 0 else len(line.rstrip("\r\n")) + 1
    return sum(len(before) for before in lines[: error.lineno - 1]) + offset


class _Compiler:
    """Walks one syntax tree, checking each node and building its closure."""

    def __init__(self, text: str, vocab: Vocabulary, where: str):
        self.text, self.vocab, self.where = text, vocab, where
        self.lines = io.StringIO(text, newline="").readlines()
        self.variables: set[str] = set()
        self.functions: set[str] = set()
        self.depth = 0

    def fail(self, node: ast.AST, message: str) -> NoReturn:
        """Raise an ExprError pointing at ``node`` (ast columns are UTF-8 byte offsets)."""
        line = self.lines[node.lineno - 1]
        chars = len(line.encode()[: node.col_offset].decode())
        col = sum(len(before) for before in self.lines[: node.lineno - 1]) + chars + 1
        raise ExprError(self.where, self.text, col, message)

    def expr(self, node: ast.AST) -> _Part:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                self.fail(node, f"expression nested more than {MAX_DEPTH} levels deep")
            return self._dispatch(node)
        finally:
            self.depth -= 1

    def _dispatch(self, node: ast.AST) -> _Part:
        match node:
            case ast.Constant(value=bool(value)):
                return _constant("bool", value)
            case ast.Constant(value=int(value) | float(value)):
                return self._checked(node, value)
            case ast.Constant(value=str(value)):
                return _Part("str", None, value)
            case ast.Name():
                return self._name(node)
            case ast.BoolOp():
                operands = [self._boolean(value).evaluate for value in node.values]
                return _Part("bool", _logical(isinstance(node.op, ast.And), operands))
            case ast.UnaryOp(op=ast.Not()):
                operand = self._boolean(node.operand).evaluate
                return _Part("bool", lambda ctx: ctx.xp.logical_not(_array(ctx.xp, operand(ctx))))
            case ast.UnaryOp(op=ast.USub()):
                return self._negative(node)
            case ast.BinOp(op=ast.Add() | ast.Sub() | ast.Mult() | ast.Div()):
                return self._arithmetic(node)
            case ast.Compare():
                return self._comparison(node)
            case ast.Call():
                return self._call(node)
            case ast.Constant():
                self.fail(node, f"the literal {node.value!r} not allowed")
            case ast.BinOp() | ast.UnaryOp():
                self.fail(node, f"operator `{_OPERATOR_SYMBOLS[type(node.op)]}` not allowed; "
                                "allowed: `+ - * /`, unary `-` and `not`")
        self.fail(node, f"{_FORBIDDEN.get(type(node), type(node).__name__)} not allowed")

    def _checked(self, node: ast.AST, value) -> _Part:
        """A numeric constant, refused unless finite and at most MAX_CONSTANT in size."""
        if not abs(value) <= MAX_CONSTANT:  # also false for NaN
            self.fail(node, f"the number {value!r} is out of range; numbers must be finite "
                            f"and at most {MAX_CONSTANT:.0f} in size")
        return _constant("num", value)

    def _boolean(self, node: ast.AST) -> _Part:
        part = self.expr(node)
        if part.kind not in ("bool", "any"):
            self.fail(node, f"expected a true/false value, found {_describe(part)}")
        return part

    def _number(self, node: ast.AST) -> _Part:
        part = self.expr(node)
        if part.kind not in ("num", "bool", "any"):
            self.fail(node, f"expected a number, found {_describe(part)}")
        return part

    def _name(self, node: ast.Name) -> _Part:
        name = node.id
        if name.startswith("__"):
            self.fail(node, f"names starting with '__' not allowed: {name!r}")
        if name in self.vocab.enums:
            self.variables.add(name)
            return _Part("enum", lambda ctx: ctx.var(name), enum=name)
        if name in self.vocab.variables:
            self.variables.add(name)
            return _Part(self.vocab.types.get(name, "any"), lambda ctx: ctx.var(name),
                         nonzero=name in self.vocab.nonzero)
        if name in self.vocab.functions:
            self.fail(node, f"{name!r} is a function; call it as {name}(...)")
        allowed = ", ".join(sorted({*self.vocab.variables, *self.vocab.enums}))
        self.fail(node, f"unknown name {name!r}; allowed names: {allowed}")

    def _negative(self, node: ast.UnaryOp) -> _Part:
        operand = self._number(node.operand)
        if operand.kind == "bool":
            self.fail(node, "unary `-` of a true/false value; write `not` to negate it")
        if operand.value is not None:
            return self._checked(node, -operand.value)
        evaluate = operand.evaluate
        return _Part("num", lambda ctx: -_wide(ctx.xp, evaluate(ctx)),
                     nonzero=operand.nonzero)

    def _arithmetic(self, node: ast.BinOp) -> _Part:
        left, right = self._number(node.left), self._number(node.right)
        apply = _ARITHMETIC[type(node.op)]
        division = isinstance(node.op, ast.Div)
        if division and right.value is not None and right.value == 0:
            self.fail(node, "division by zero")
        if division and not right.nonzero:
            self.fail(node.right, "division by a value that can be zero (on some day, for "
                                  "some citizen); divide by a number other than 0, or by "
                                  f"{' or '.join(sorted(self.vocab.nonzero)) or 'a number'}")
        if left.value is not None and right.value is not None:
            return self._checked(node, apply(left.value, right.value))
        a, b = left.evaluate, right.evaluate
        nonzero = (left.nonzero and right.nonzero and isinstance(node.op, ast.Mult | ast.Div))
        return _Part("num", lambda ctx: apply(_wide(ctx.xp, a(ctx)), _wide(ctx.xp, b(ctx))),
                     nonzero=nonzero)

    def _label_index(self, enum: str, node: ast.AST) -> int:
        labels = list(self.vocab.enums[enum])
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            self.fail(node, f"the enum variable {enum!r} can only be compared with one of its "
                            f"labels: {', '.join(map(repr, labels))}")
        if node.value not in labels:
            self.fail(node, f"unknown label {node.value!r} for {enum!r}; allowed labels: "
                            f"{', '.join(map(repr, labels))}")
        return labels.index(node.value)

    def _comparison(self, node: ast.Compare) -> _Part:
        if any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
            if len(node.ops) > 1:
                self.fail(node, "`in` cannot be chained with other comparisons")
            return self._membership(node)
        operands = [node.left, *node.comparators]
        parts = [self.expr(operand) for operand in operands]
        # One (compare, i, left label, right label) per pair of neighbours: operands i and
        # i + 1, with a label's index standing in for a string compared with an enum.
        pairs = []
        for i, op in enumerate(node.ops):
            if type(op) not in _COMPARISONS:
                self.fail(node, f"operator `{_OPERATOR_SYMBOLS[type(op)]}` not allowed; "
                                "use `==` or `!=`")
            left, right = parts[i], parts[i + 1]
            left_label = right_label = None
            if left.kind == "enum":
                right_label = self._label_index(left.enum, operands[i + 1])
            elif right.kind == "enum":
                left_label = self._label_index(right.enum, operands[i])
            else:
                for part, operand in ((left, operands[i]), (right, operands[i + 1])):
                    if part.kind == "str":
                        self.fail(operand, "a string can only be compared with an enum "
                                           f"variable ({', '.join(sorted(self.vocab.enums))})")
            pairs.append((_COMPARISONS[type(op)], i, left_label, right_label))
        evaluators = [part.evaluate for part in parts]

        def evaluate(ctx):
            values = [None if f is None else f(ctx) for f in evaluators]
            result = None
            for compare, i, left_label, right_label in pairs:
                a = values[i] if left_label is None else left_label
                b = values[i + 1] if right_label is None else right_label
                test = compare(a, b)
                result = test if result is None else ctx.xp.logical_and(
                    _array(ctx.xp, result), _array(ctx.xp, test))
            return result

        return _Part("bool", evaluate)

    def _membership(self, node: ast.Compare) -> _Part:
        left = self.expr(node.left)
        if left.kind != "enum":
            self.fail(node.left, "`in` needs an enum variable on the left "
                                 f"({', '.join(sorted(self.vocab.enums))}); found "
                                 f"{_describe(left)}")
        labels = node.comparators[0]
        if not isinstance(labels, ast.Tuple | ast.List) or not labels.elts:
            self.fail(labels, "`in` needs a non-empty tuple or list of labels, "
                              'e.g. ("A", "B")')
        indices = sorted({self._label_index(left.enum, label) for label in labels.elts})
        codes = left.evaluate
        negate = isinstance(node.ops[0], ast.NotIn)

        def evaluate(ctx):
            xp, values = ctx.xp, codes(ctx)
            result = values == indices[0]
            for index in indices[1:]:
                result = xp.logical_or(result, values == index)
            return xp.logical_not(result) if negate else result

        return _Part("bool", evaluate)

    def _call(self, node: ast.Call) -> _Part:
        if not isinstance(node.func, ast.Name):
            self.expr(node.func)  # refuses attributes, subscripts, lambdas, ...
            self.fail(node.func, "only the vocabulary's functions can be called")
        name = node.func.id
        if name.startswith("__"):
            self.fail(node.func, f"names starting with '__' not allowed: {name!r}")
        if name not in self.vocab.functions:
            allowed = ", ".join(sorted(self.vocab.functions)) or "(none)"
            self.fail(node.func, f"unknown function {name!r}; allowed functions: {allowed}")
        if node.keywords:
            self.fail(node.keywords[0], f"keyword arguments not allowed in {name}(...)")
        kinds = self.vocab.functions[name]
        if len(node.args) != len(kinds):
            self.fail(node, f"{name}() takes {len(kinds)} argument(s) ({', '.join(kinds)}); "
                            f"found {len(node.args)}")
        args = [self._argument(name, kind, arg) for kind, arg in zip(kinds, node.args, strict=True)]
        self.functions.add(name)

        def evaluate(ctx):
            return ctx.call(name, tuple(arg if isinstance(arg, str) else arg(ctx)
                                        for arg in args))

        return _Part(self.vocab.types.get(name, "any"), evaluate)

    def _argument(self, function: str, kind: str, node: ast.AST):
        """A "num" argument's evaluator, or a domain argument's string."""
        if kind == "num":
            return self._number(node).evaluate
        allowed = ", ".join(map(repr, sorted(self.vocab.domains[kind]))) or "(none)"
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            self.fail(node, f"{function}() expects a string literal naming a {kind}; "
                            f"allowed: {allowed}")
        if node.value not in self.vocab.domains[kind]:
            self.fail(node, f"unknown {kind} {node.value!r} in {function}(); allowed: {allowed}")
        return node.value
