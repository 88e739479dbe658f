"""Scenario files and rule conditions for fuzzing: valid, mutated and hostile.

Each generator takes a `random.Random`, so that Hypothesis drives it in the test suite
(`st.randoms()`, shrinkable and replayable) and `tests/fuzz_campaign.py` drives it from
plain seeds for the long campaign of `make fuzz`. A case is (kind, text): `kind` says how
it was made ("valid", "mutated", "hostile"); what a case must do is the same for all:
exit 0, or exit 2 with one message naming the file (never a traceback or a signal).
"""

from __future__ import annotations

import random
import re
import traceback
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from metricpower.cli import app
from metricpower.runs import load_run
from metricpower.scenario import preset_text
from metricpower.scenario.schema import RESULTS, TIER_TYPE, VARIABLES

#: Small runs: what `validate` passes must also run at this size without crashing.
RUN_SIZE = {"citizens": 200, "days": 4}

HOSTILE_VALUES = [
    "nan", "inf", "-inf", "+inf", "-nan", "1e999", "-1e999", "1e308", "5e-324", "0", "-0",
    "-1", "1", "2", "0.5", "1e6", "1e9", "1e12", "2147483647", "2147483648", "-2147483649",
    "3000000000", "-3000000000", "9223372036854775807", "99999999999999999999999", "1e-300",
    "true", "false", '""', '"x"', '".."', '"/tmp/x"', '"[bold]x[/bold]"', '"[/]"',
    "\"<script>alert(1)</script>\"", '"<meta http-equiv=refresh content=0>"', '"$\\\\frac$"',
    '"\\u0000"', '"a\\nb"', "{}", "{ a = 1 }", "{ name = { a = 1 } }", "[]", "[1, 2]",
    '["a", ["b"]]', "[[[[[[1]]]]]]", "[{ a = 1 }]", "1979-05-27", "07:32:00",
    '"unlimited"', '"*"', '["*"]', "[{ name = 1 }]",
]
VARIABLE_NAMES = sorted(VARIABLES)
FUNCTIONS = ("count", "on_list", "friends_mean", "friends_min", "friends_sum")
BEHAVIOURS = ("crime", "jaywalking", "game_purchase", "no_such_behaviour")
LISTS = ("blacklist", "redlist", "no_such_list")
TIERS = ("AAA", "AA", "A", "B", "C", "D", "Z")
CAPACITIES = ("0", "20", "1e7", '"unlimited"')
NUMBERS = ("0", "1", "2", "30", "365", "3650", "3651", "0.5", "-1", "1e999", "3000000000",
           "3000000", "2147483647", "9007199254740993", "1e300", "1e-300", "True", "False")


def expression(rng: random.Random, depth: int = 0) -> str:
    """A condition from the language's grammar, with its edges: hostile numbers, wrong
    argument kinds, unknown names, forbidden syntax now and then."""
    leaf = depth >= 4 or rng.random() < 0.3
    if leaf:
        choice = rng.random()
        if choice < 0.35:
            return rng.choice(VARIABLE_NAMES)
        if choice < 0.6:
            return rng.choice(NUMBERS)
        if choice < 0.7:
            return f"tier {rng.choice(['==', '>=', '<', '!='])} '{rng.choice(TIERS)}'"
        if choice < 0.95:
            f = rng.choice(FUNCTIONS)
            if f == "count":
                days = rng.choice(["30", "1", "365", "0", "1e999", "day", "2.5", "3651"])
                return f"count('{rng.choice(BEHAVIOURS)}', {days})"
            if f == "on_list":
                return f"on_list('{rng.choice(LISTS)}')"
            return f"{f}({expression(rng, depth + 1)})"
        return rng.choice(["x", "__import__('os')", "score.real", "score[0]", "'a'", "(1, 2)",
                           "lambda: 1", "f'{score}'", "score ** 2", "score // 2", "~score",
                           "score if flagged else 1", "{1}", "print(1)", "tier in ('A', 'B')",
                           "tier not in ['Z']", "count('crime')", "on_list(score)"])
    choice = rng.random()
    a, b = expression(rng, depth + 1), expression(rng, depth + 1)
    if choice < 0.3:
        return f"({a} {rng.choice(['+', '-', '*', '/'])} {b})"
    if choice < 0.6:
        ops = ["<", "<=", ">", ">=", "==", "!="]
        if rng.random() < 0.2:
            return f"{a} {rng.choice(ops)} {b} {rng.choice(ops)} {expression(rng, depth + 1)}"
        return f"{a} {rng.choice(ops)} {b}"
    if choice < 0.8:
        return f"({a} {rng.choice(['and', 'or'])} {b})"
    if choice < 0.9:
        return f"not {a}"
    return f"-{a}"


def typed_expression(rng: random.Random, lists: bool, depth: int = 0) -> str:
    """A condition that is well-typed by construction (true/false-valued, dividing only
    by nonzero numbers or income), with extreme but allowed numbers."""
    def number(d: int) -> str:
        roll = rng.random()
        if d >= 3 or roll < 0.4:
            return rng.choice(["score", "income", "days_clean", "day", "count('crime', 30)",
                               "friends_mean(score)", "friends_min(income)",
                               "friends_sum(flagged)", "3", "-2.5", "1000", "9007199254740992",
                               "3000000000", "1e-300"])
        op = rng.choice(["+", "-", "*", "/"])
        right = rng.choice(["7", "income", "0.001", "1e9"]) if op == "/" else number(d + 1)
        return f"({number(d + 1)} {op} {right})"

    roll = rng.random()
    if depth >= 3 or roll < 0.5:
        atoms = [f"{number(0)} {rng.choice(['<', '<=', '>', '>=', '==', '!='])} {number(0)}",
                 "flagged", "urban", "not pet_owner", f"tier >= '{rng.choice(TIERS[:6])}'",
                 "tier in ('A', 'B')", "has_child"]
        if lists:
            atoms.append("on_list('blacklist')")
        return rng.choice(atoms)
    a, b = (typed_expression(rng, lists, depth + 1) for _ in range(2))
    return f"({a} {rng.choice(['and', 'or'])} {b})" if roll < 0.85 else f"not ({a})"


def _valid(rng: random.Random) -> str:
    """A scenario that names a preset and changes things within their documented ranges
    (conditions from the grammar may still be refused: that is fine, cleanly)."""
    preset = rng.choice(["essay", "null"])
    lines = [f'preset = "{preset}"', f'name = "fuzz{rng.randrange(100)}"',
             "[run]", f"citizens = {RUN_SIZE['citizens']}", f"days = {RUN_SIZE['days']}",
             f"seed = {rng.randrange(2**32)}"]
    if rng.random() < 0.3:
        lines.append(f"ledger_sample = {rng.choice(['1e-9', '0.5', '1.0', '0.01'])}")
    lines += ["[network]", f"mean_degree = {rng.choice([0, 1, 4, 10, 50])}",
              f"community_size = {rng.choice([2, 3, 50, 1000, 2_000_000_000])}",
              f"homophily = {rng.random():.3f}"]
    lines += ["[population]", f"initial_score = {rng.choice([0, 1000, -5, 1_000_000_000])}",
              f"income_sigma = {rng.choice([0, 0.5, 3])}",
              f"urban_income_premium = {rng.choice([-5, 0, 0.4, 5])}"]
    for name in rng.sample(BEHAVIOURS[:3], rng.randrange(4)):
        lines += ["[[behaviours]]", f'name = "{name}"',
                  f"rate = {rng.choice([0, 1e-6, 0.01, 1, 100])}",
                  f"benign_share = {rng.random():.3f}"]
    if rng.random() < 0.5:
        lines += ["[[sensors]]", 'name = "camera"',
                  f"false_match_rate = {rng.choice([0, 1e-5, 0.001, 0.02])}",
                  f"false_match_by_group = {{ minority_women = {rng.choice([0, 1, 1000])} }}"]
    for k in range(rng.randrange(3)):
        kind = rng.choice(["event", "periodic", "restoration"])
        points = rng.choice([-1_000_000, -50, -1, 1, 5, 1_000_000])
        points = abs(points) if kind == "restoration" else points
        lines += ["[[rules]]", f'name = "fuzz_rule_{k}"', f'kind = "{kind}"',
                  f"points = {points}"]
        if kind == "event":
            lines.append(f'behaviour = "{rng.choice(BEHAVIOURS[:3])}"')
        if kind != "restoration" or rng.random() < 0.3:
            when = typed_expression(rng, preset == "essay") if rng.random() < 0.8 \
                else expression(rng)
            lines.append(f"when = {_toml_string(when)}")
        lines.append(f"every = {rng.choice([1, 7, 30, 32000])}")
    if rng.random() < 0.5:
        lines += ["[responses.appeals]", f"enabled = {rng.choice(['true', 'false'])}",
                  f"capacity_per_100k = {rng.choice(CAPACITIES)}",
                  f"probability = {rng.choice([0, 0.05, 1000])}",
                  f"points_elasticity = {rng.choice([-10, 0, 10])}"]
    if rng.random() < 0.3:
        lines += ["[responses.deterrence]", f"enabled = {rng.choice(['true', 'false'])}",
                  f"default = {rng.choice([0, 1, 1000])}"]
    return "\n".join(lines) + "\n"


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_ASSIGNMENT = re.compile(r"^(\s*[A-Za-z0-9_.\- ]+?\s*=\s*)(.+)$")


def _mutated(rng: random.Random) -> str:
    """The essay (or null) preset's own text, changed in one to four places."""
    text = preset_text(rng.choice(["essay", "essay", "null"]))
    lines = text.splitlines()
    lines[:0] = [f"[run]\ncitizens = {RUN_SIZE['citizens']}\ndays = {RUN_SIZE['days']}"] \
        if not any(line.startswith("[run]") for line in lines) else []
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(lines))
        op = rng.random()
        match = _ASSIGNMENT.match(lines[i])
        if op < 0.5 and match:
            lines[i] = match[1] + rng.choice(HOSTILE_VALUES)
        elif op < 0.6 and match:
            lines[i] = match[1] + _toml_string(expression(rng))
        elif op < 0.7:
            del lines[i]
        elif op < 0.78:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif op < 0.85:
            lines.insert(i, rng.choice(["[[rules]]", "[[tiers]]", "[run]", "[responses]",
                                        "[responses.appeals]", "[[sensors]]", "drop = 1",
                                        'drop = { rules = ["nope"] }', "[a.b.c]", "= 1",
                                        "name = 'x'", "[[behaviours]]\nname = {}"]))
        elif op < 0.92:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            cut = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:cut] + rng.choice(["", "\x00", "\ufeff", "\\", '"', "[", "{",
                                                    "é", "#"])
    text = "\n".join(lines) + "\n"
    # Keep the runs small whatever the mutation did to [run].
    return re.sub(r"(?m)^citizens = 100000$", f"citizens = {RUN_SIZE['citizens']}",
                  re.sub(r"(?m)^days = 365$", f"days = {RUN_SIZE['days']}", text))


def _hostile(rng: random.Random) -> str | bytes:
    """Files built to hurt the reader: deep nesting, long dotted keys, binary junk, huge
    numbers, names that are paths or markup."""
    depth = rng.choice([21, 100, 3000])
    pick = rng.randrange(12)
    if pick == 0:
        return "a = " + "[" * depth + "]" * depth + "\n"
    if pick == 1:
        return "a = " + "{b = " * depth + "1" + "}" * depth + "\n"
    if pick == 2:
        return "a" + ".a" * depth + " = 1\n"
    if pick == 3:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
    if pick == 4:
        return ""
    if pick == 5:
        return "\ufeffpreset = \"essay\"\n"
    if pick == 6:
        name = rng.choice(["..", "", ".", "/tmp/x", "a/b", "[bold]", "<b>", "x" * 200, "\t",
                           "C:evil", "ok-name"])
        return f'preset = "essay"\nname = {_toml_string(name)}\n[run]\ncitizens = 200\n' \
               "days = 3\n"
    if pick == 7:
        when = expression(rng)
        return ('preset = "essay"\n[run]\ncitizens = 200\ndays = 3\n[[consequences]]\n'
                f'name = "fuzz"\neffect = "publish"\nwhen = {_toml_string(when)}\n')
    if pick == 8:
        return "x = [\n" + "[\n" * depth
    if pick == 9:
        return 'preset = "essay"\n' + "".join(f"k{i}.k{i} = {i}\n" for i in range(3000))
    if pick == 10:
        return ('preset = "essay"\n[run]\ncitizens = 200\ndays = 3\n' +
                "".join(f'[[behaviours]]\nname = "b{i}"\nrate = 0.01\n' for i in
                        range(rng.choice([10, 200, 2000]))))
    return ('preset = "essay"\n[[tiers]]\nname = "<meta http-equiv=refresh content=0>"\n'
            "[run]\ncitizens = 200\ndays = 3\n")


def scenario_case(rng: random.Random) -> tuple[str, str | bytes]:
    roll = rng.random()
    if roll < 0.35:
        return "valid", _valid(rng)
    if roll < 0.85:
        return "mutated", _mutated(rng)
    return "hostile", _hostile(rng)


class TypedContext:
    """What the engine gives a condition, with its types (schema.VARIABLES, RESULTS) and
    extreme values: int32 scores at both ends, zero days, friendless citizens."""

    xp = np

    def __init__(self, rng: random.Random, n: int = 6):
        self.arrays = {}
        for name, dtype in VARIABLES.items():
            if dtype == "bool":
                self.arrays[name] = np.array([rng.random() < 0.5 for _ in range(n)])
            elif dtype == "int32":
                self.arrays[name] = np.array([-(2**31), 2**31 - 1, 0, 1, -1, 1000][:n],
                                             dtype=np.int32)
            elif dtype == "float32":
                self.arrays[name] = np.array([1e-30, 1e30, 1.0, 0.5, 2.0, 3.0][:n],
                                             dtype=np.float32)
        self.arrays["tier"] = np.arange(n, dtype=TIER_TYPE) % 6
        self.day = 0

    def var(self, name):
        return self.day if name == "day" else self.arrays[name]

    def call(self, name, args):
        n = len(self.arrays["score"])
        if name == "count":
            return np.array([0, 2**31 - 1, 3, 0, 1, 2][:n], dtype=RESULTS[name])
        if name == "on_list":
            return np.zeros(n, dtype=bool)
        values = np.broadcast_to(np.asarray(args[0], dtype=np.float64), (n,))
        if name == "friends_min":
            return np.where(np.arange(n) == 0, np.inf, values)
        if name == "friends_mean":
            return np.where(np.arange(n) == 0, np.nan, values)
        return values * 2


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def check_case(kind: str, text: str | bytes, folder: Path, report: bool = False) -> str:
    """Validate the case's file, run it small when it validates, and return the outcome:
    "clean error: <the message>", "valid run", "run refused" (validated, then refused
    cleanly, e.g. for memory), or "FAILURE: …" saying what broke."""
    runner = CliRunner()
    path = folder / "case.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    before = _files(folder)
    out = folder / "out"

    def failure(step: str, result) -> str | None:
        if result.exit_code not in (0, 2) or (
                result.exception is not None and not isinstance(result.exception, SystemExit)):
            tb = "".join(traceback.format_exception(result.exception)) \
                if result.exception else ""
            return f"FAILURE: {step} exit {result.exit_code}: {result.output[-300:]}{tb[-1500:]}"
        if "Traceback" in result.output:
            return f"FAILURE: {step} printed a traceback"
        if result.exit_code == 2 and not result.output.startswith("error: "):
            return f"FAILURE: {step} exit 2 without one error message: {result.output[:300]}"
        return None

    checked = runner.invoke(app, ["validate", str(path)])
    if problem := failure("validate", checked):
        return problem
    if checked.exit_code == 2:
        if not checked.output.startswith(f"error: {path}"):
            return f"FAILURE: validate's error does not name the file: {checked.output[:300]}"
        refused = runner.invoke(app, ["run", str(path), "--out", str(out), "--no-report"])
        if problem := failure("run of an invalid file", refused):
            return problem
        if refused.exit_code != 2 or _files(folder) != before:
            return "FAILURE: run of an invalid file was not refused, or wrote something"
        return "clean error: " + " ".join(checked.output.split())
    args = ["run", str(path), "--citizens", str(RUN_SIZE["citizens"]), "--days",
            str(RUN_SIZE["days"]), "--out", str(out)]
    ran = runner.invoke(app, args if report else [*args, "--no-report"])
    if problem := failure("run", ran):
        return problem
    if ran.exit_code == 2:
        return "run refused" if _files(folder) == before else \
            "FAILURE: a refused run wrote something"
    try:
        load_run(out)
    except Exception as err:  # the run it just wrote must read back
        return f"FAILURE: load_run of a fresh run: {err!r}"
    return "valid run"
