"""Scenario files: bad input gets one clear message and exit 2; presets, merge and drop.

Every bad scenario is run through both `metricpower validate FILE` and
`metricpower run FILE --out DIR`. Each must exit with status 2, print one line that
names the file, the key path and (where the key is written in the file) its line, say
what was expected and what was found, show no traceback, and write nothing.

The expected line is marked in each case's TOML with a `#<` comment, so the table below
states it once, next to the line it means.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metricpower.cli import app
from metricpower.scenario import ScenarioError, load_preset, load_scenario, preset_text
from metricpower.scenario.load import _line_of, merge

runner = CliRunner()

#: A small but complete scenario (no preset), used by the cases that edit a whole file.
MINIMAL = """\
name = "tiny"
description = "A small complete scenario for tests."

[run]
citizens = 1000
days = 30
seed = 3

[population]
initial_score = 1000
regions = [
    { name = "north", share = 0.5, urban = 0.8 },
    { name = "south", share = 0.5, urban = 0.2 },
]
groups = [
    { name = "a", share = 0.5 },
    { name = "b", share = 0.5 },
]

[network]
mean_degree = 6

[[sensors]]
name = "camera"
kind = "camera"
coverage = { urban = 0.7, rural = 0.2 }
false_match_rate = 0.0001

[[behaviours]]
name = "jaywalking"
rate = 0.01
public = true
sensors = ["camera"]

[[behaviours]]
name = "littering"
rate = 0.005
public = true
sensors = ["camera"]

[[rules]]
name = "jaywalking"
kind = "event"
behaviour = "jaywalking"
points = -5

[[rules]]
name = "habitual"
kind = "periodic"
when = "count('littering', 30) > 2"
points = -10

[[tiers]]
name = "good"
min = 990

[[tiers]]
name = "middling"
min = 900
max = 989

[[tiers]]
name = "bad"
max = 899

[[lists]]
name = "blacklist"
enter = "tier == 'bad'"
min_days = 10

[[services]]
name = "flights"
demand = 0.01

[[consequences]]
name = "flight_ban"
effect = "deny"
service = "flights"
when = "on_list('blacklist')"
"""


def edit(old: str, new: str, text: str = MINIMAL) -> str:
    """MINIMAL with `old` (which must occur exactly once) replaced by `new`."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def cond(expression: str) -> str:
    """MINIMAL with the periodic rule's condition replaced (and its line marked)."""
    return edit("when = \"count('littering', 30) > 2\"", f'when = "{expression}"  #<')


def preset_file(body: str) -> str:
    return 'preset = "essay"\n\n' + body


INJECTED = "INJECTED"  # replaced by a path under tmp_path: a file the attack would create

# (id, TOML text or None for a missing file, expected key path or None, substrings that
#  must appear: what was expected and what was found). The expected line is marked `#<`.
CASES = [
    # ---- wrong types
    ("citizens-not-int",
     preset_file('[run]\ncitizens = "many"  #<\n'),
     "run.citizens", ["valid integer", "'many'"]),
    ("rate-not-number",
     edit("rate = 0.01\n", 'rate = "often"  #<\n'),
     "behaviours[0].rate", ["valid number", "'often'"]),
    ("sensors-not-list",
     edit('sensors = ["camera"]\n\n[[behaviours]]\nname = "littering"',
          'sensors = "camera"  #<\n\n[[behaviours]]\nname = "littering"'),
     "behaviours[0].sensors", ["valid list", "'camera'"]),
    ("condition-not-string",
     edit("when = \"on_list('blacklist')\"", "when = 5  #<"),
     "consequences[0].when", ["valid string", "5"]),
    ("kind-not-allowed",
     edit('kind = "periodic"', 'kind = "monthly"  #<'),
     "rules[1].kind", ["'event', 'periodic' or 'restoration'", "'monthly'"]),
    # ---- unknown keys
    ("unknown-top-level-key",
     edit('name = "tiny"\n', 'name = "tiny"\ncolour = "red"  #<\n'),
     "colour", ["unknown key 'colour'", "expected one of", "population"]),
    ("unknown-table",
     edit("[network]\n", "[netwrok]  #<\n"),
     "netwrok", ["unknown key 'netwrok'", "network"]),
    ("unknown-nested-key",
     preset_file('[[sensors]]\nname = "camera"\ncolour = "red"  #<\n'),
     "sensors[0].colour", ["unknown key 'colour'", "false_match_rate", "'camera'"]),
    ("unknown-inline-key",
     edit("coverage = { urban = 0.7, rural = 0.2 }",
          "coverage = { urban = 0.7, rural = 0.2, suburban = 0.5 }  #<"),
     "sensors[0].coverage.suburban", ["unknown key 'suburban'", "urban, rural"]),
    # ---- unknown names referenced
    ("unknown-behaviour-in-rule",
     edit('behaviour = "jaywalking"', 'behaviour = "jaywalkin"  #<'),
     "rules[0].behaviour", ["unknown behaviour 'jaywalkin'", "'jaywalking', 'littering'"]),
    ("unknown-sensor-in-behaviour",
     preset_file('[[behaviours]]\nname = "jaywalking"\nsensors = ["drone"]  #<\n'),
     "behaviours[0].sensors", ["unknown sensor 'drone'", "'camera'"]),
    ("unknown-service-in-consequence",
     edit('service = "flights"', 'service = "ferries"  #<'),
     "consequences[0].service", ["unknown service 'ferries'", "'flights'"]),
    ("unknown-group-in-false-matches",
     edit("false_match_rate = 0.0001\n",
          "false_match_rate = 0.0001\nfalse_match_by_group = { c = 2.0 }  #<\n"),
     "sensors[0].false_match_by_group", ["unknown group 'c'", "'a', 'b'"]),
    ("unknown-behaviour-in-count",
     cond("count('loitering', 30) > 2"),
     "rules[1].when", ["loitering"]),
    ("dropped-behaviour-still-used",
     # The rule that names it lives in the preset: the message says where.
     preset_file('drop = { behaviours = ["jaywalking"] }\n'),
     "rules[4].behaviour", ["unknown behaviour 'jaywalking'", "the rule named 'jaywalking'",
                            "preset 'essay', line"]),
    # ---- tiers
    ("tiers-overlap",
     edit("min = 900\nmax = 989", "min = 900\nmax = 995  #<"),
     "tiers[1].max", ["overlap", "'middling' ends at 995", "'good' starts at 990"]),
    ("tiers-gap",
     edit("min = 900\nmax = 989", "min = 900\nmax = 979  #<"),
     "tiers[1].max", ["gap", "979", "expected 989"]),
    ("best-tier-with-max",
     edit('name = "good"\nmin = 990\n', 'name = "good"\nmin = 990\nmax = 2000  #<\n'),
     "tiers[0].max", ["open upwards", "2000"]),
    ("preset-tiers-overlap",
     preset_file('[[tiers]]\nname = "AA"\nmax = 1060  #<\n'),
     "tiers[0].max", ["overlap", "'AA' ends at 1060", "'AAA' starts at 1050"]),
    # ---- ranges
    ("probability-above-one",
     edit("coverage = { urban = 0.7, rural = 0.2 }",
          "coverage = { urban = 1.5, rural = 0.2 }  #<"),
     "sensors[0].coverage.urban", ["less than or equal to 1", "1.5"]),
    ("probability-below-zero",
     preset_file('[[behaviours]]\nname = "crime"\nbenign_share = -0.1  #<\n'),
     "behaviours[0].benign_share", ["greater than or equal to 0", "-0.1"]),
    ("negative-citizens",
     edit("citizens = 1000", "citizens = -5  #<"),
     "run.citizens", ["greater than or equal to 1", "-5"]),
    ("negative-mean-degree",
     edit("mean_degree = 6", "mean_degree = -2  #<"),
     "network.mean_degree", ["greater than or equal to 0", "-2"]),
    ("shares-not-summing-to-one",
     edit('regions = [\n    { name = "north", share = 0.5,',
          'regions = [  #<\n    { name = "north", share = 0.4,'),
     "population.regions", ["add up to 1", "0.9"]),
    # ---- rule conditions: bad expressions and injection attempts
    ("expression-unknown-name",
     cond("wealth > 2"),
     "rules[1].when", ["unknown name 'wealth'", "score", "'habitual'"]),
    ("expression-injection",
     cond(f"__import__('os').system('touch {INJECTED}')"),
     "rules[1].when", ["not allowed", "__import__"]),
    ("expression-dunder-attribute",
     cond("().__class__.__bases__"),
     "rules[1].when", ["not allowed", "__class__"]),
    ("expression-lambda",
     cond("(lambda: True)()"),
     "rules[1].when", ["lambda not allowed", "(lambda: True)()"]),
    ("expression-attribute",
     cond("score.real > 2"),
     "rules[1].when", ["attribute access", "score.real > 2"]),
    ("expression-comprehension",
     cond("[x for x in (1, 2)]"),
     "rules[1].when", ["comprehensions not allowed", "[x for x in (1, 2)]"]),
    ("expression-syntax",
     cond("score >"),
     "rules[1].when", ["syntax error"]),
    ("count-window-zero",
     cond("count('littering', 0) > 2"),
     "rules[1].when", ["window of 1 to 3650", "found 0"]),
    ("count-window-fraction",
     cond("count('littering', 2.5) > 2"),
     "rules[1].when", ["window of 1 to 3650", "found 2.5"]),
    # ---- files, presets, drop
    ("unknown-preset",
     'preset = "utopia"  #<\n', "preset", ["unknown preset 'utopia'", "'essay', 'null'"]),
    ("invalid-toml",
     edit("days = 30", "days = = 30  #<"), None, ["not valid TOML"]),
    ("missing-file", None, None, ["no such file"]),
    ("duplicate-behaviour-names",
     edit('name = "littering"', 'name = "jaywalking"  #<'),
     "behaviours[1].name", ["duplicate name 'jaywalking'"]),
    ("drop-nonexistent-name",
     preset_file('drop = { rules = ["association"] }  #<\n'),
     "drop.rules", ["no rules entry named 'association'", "'jaywalking'"]),
    ("drop-unknown-array",
     preset_file('drop = { people = ["x"] }  #<\n'),
     "drop.people", ["expected one of", "'rules'", "'people'"]),
    ("missing-population",
     edit(MINIMAL[MINIMAL.index("[population]"):MINIMAL.index("[network]")], ""),
     "population", ["required key 'population' is missing"]),
    ("event-rule-without-behaviour",
     edit('[[rules]]\nname = "jaywalking"\nkind = "event"\nbehaviour = "jaywalking"\n',
          '[[rules]]  #<\nname = "jaywalking"\nkind = "event"\n'),
     "rules[0]", ["event rule needs `behaviour`"]),
    ("periodic-rule-without-when",
     edit("[[rules]]\nname = \"habitual\"\nkind = \"periodic\"\nwhen = \"count('littering', "
          "30) > 2\"\n", '[[rules]]  #<\nname = "habitual"\nkind = "periodic"\n'),
     "rules[1]", ["periodic rule needs `when`"]),
    ("deny-without-service",
     edit('[[consequences]]\nname = "flight_ban"\neffect = "deny"\nservice = "flights"\n',
          '[[consequences]]  #<\nname = "flight_ban"\neffect = "deny"\n'),
     "consequences[0]", ["needs `service`"]),
    ("required-key-missing",
     edit('[[behaviours]]\nname = "littering"\nrate = 0.005\n',
          '[[behaviours]]  #<\nname = "littering"\n'),
     "behaviours[1].rate", ["required key 'rate' is missing"]),
    ("unknown-trait",
     preset_file('[[behaviours]]\nname = "crime"\ndrivers = { wealth = 1.0 }  #<\n'),
     "behaviours[0].drivers", ["unknown trait", "wealth", "conduct"]),
]

# Cases where the reported line must be absent (the key is not written in the file).
NO_LINE = {"missing-file", "missing-population", "dropped-behaviour-still-used"}


def expected_line(text: str | None) -> int | None:
    if text is None:
        return None
    marked = [n for n, line in enumerate(text.splitlines(), 1) if "#<" in line]
    assert len(marked) <= 1
    return marked[0] if marked else None


def test_at_least_twenty_distinct_bad_scenarios():
    assert len({c[0] for c in CASES}) == len(CASES) >= 20
    assert len({c[1] for c in CASES}) == len(CASES)  # no two cases are the same file


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_scenario(tmp_path, case, command):
    name, text, key, substrings = case
    path = tmp_path / "bad.toml"
    marker = tmp_path / "pwned"
    if text is not None:
        path.write_text(text.replace(INJECTED, str(marker)))
    out_dir = tmp_path / "out"
    before = sorted(p.name for p in tmp_path.iterdir())
    args = ["validate", str(path)] if command == "validate" else \
        ["run", str(path), "--out", str(out_dir)]
    result = runner.invoke(app, args)

    output = result.output
    assert result.exit_code == 2, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    assert output.strip().count("\n") == 0, f"expected one line, got:\n{output}"
    assert output.startswith(f"error: {path}"), output
    line = expected_line(text)
    if line is not None:
        assert f"{path}, line {line}" in output, output
    elif name in NO_LINE:
        assert not re.search(rf"{re.escape(str(path))}, line \d+", output), output
    if key is not None:
        assert f"key {key}" in output, output
    for s in substrings:
        assert s in output, f"{s!r} not in {output!r}"
    # Nothing was written or run.
    assert not out_dir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not marker.exists()


def test_bad_scenario_from_the_real_command(tmp_path):
    """One case through the installed entry point: exit status 2 and stderr, for real."""
    import subprocess
    import sys

    path = tmp_path / "bad.toml"
    path.write_text(edit("citizens = 1000", "citizens = -5"))
    exe = Path(sys.executable).with_name("metricpower")
    proc = subprocess.run([str(exe), "run", str(path), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"error: {path}, line 5, key run.citizens")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_error_keeps_its_parts():
    with pytest.raises(ScenarioError) as info:
        load_preset("essay", overrides={"run": {"days": 0}})
    err = info.value
    assert (err.file, err.key, err.line) == ("preset 'essay'", "run.days", None)
    assert "greater than or equal to 1" in err.message and "found 0" in err.message
    assert "command-line option" in str(err)


def test_command_line_override_named_as_such(tmp_path):
    result = runner.invoke(app, ["run", "--preset", "essay", "--citizens", "-5",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "key run.citizens" in result.output and "command-line option" in result.output
    assert "-5" in result.output
    assert not (tmp_path / "out").exists()


def test_folder_given_as_scenario(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {tmp_path}") and "folder" in result.output


# ---------------------------------------------------------------- unwritable output


def _good_file(tmp_path: Path) -> Path:
    path = tmp_path / "good.toml"
    path.write_text(edit("citizens = 1000", "citizens = 200"))
    return path


@pytest.mark.parametrize("where", ["under-a-file", "is-a-file"])
def test_unwritable_output_folder(tmp_path, where):
    """An --out that cannot be a folder: exit 2 and a message before any simulation.

    Permission bits are not used here because the tests may run as root, whom chmod
    does not stop; a path through a regular file fails for everyone (the next test
    covers a read-only folder)."""
    scenario = _good_file(tmp_path)
    blocker = tmp_path / "blocker.txt"
    blocker.write_text("keep me")
    target = blocker / "out" if where == "under-a-file" else blocker
    before = sorted(p.name for p in tmp_path.iterdir())
    result = runner.invoke(app, ["run", str(scenario), "--out", str(target), "--no-report"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.output.startswith(f"error: {target}"), result.output
    assert "blocker.txt is a file" in result.output
    assert result.output.strip().count("\n") == 0
    assert blocker.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_read_only_output_folder(tmp_path, monkeypatch):
    """A folder the user may not write to. Root ignores permission bits, so the check's
    question (os.access) is answered 'no' for the locked folder, as it is for a user."""
    scenario = _good_file(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, *a, **k: (
        False if Path(path) == locked else real_access(path, mode, *a, **k)))
    result = runner.invoke(app, ["run", str(scenario), "--out", str(locked / "out"),
                                 "--no-report"])
    assert result.exit_code == 2, result.output
    assert "not writable" in result.output
    assert list(locked.iterdir()) == []


# ---------------------------------------------------------------- happy paths


def test_minimal_scenario_is_valid(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(MINIMAL)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output and "'tiny'" in result.output
    sc = load_scenario(path)
    assert [r.name for r in sc.rules] == ["jaywalking", "habitual"]


def test_presets_lists_one_line_each():
    result = runner.invoke(app, ["presets"])
    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert [line.split()[0] for line in lines] == ["essay", "null"], result.output


@pytest.mark.parametrize("name", ["essay", "null"])
def test_presets_show_round_trips_through_validate(tmp_path, name):
    result = runner.invoke(app, ["presets", "show", name])
    assert result.exit_code == 0
    assert result.output == preset_text(name)
    path = tmp_path / f"{name}.toml"
    path.write_text(result.output)
    check = runner.invoke(app, ["validate", str(path)])
    assert check.exit_code == 0, check.output
    assert load_scenario(path) == load_preset(name)


def test_presets_show_unknown():
    result = runner.invoke(app, ["presets", "show", "utopia"])
    assert result.exit_code == 2
    assert "unknown preset" in result.output and "essay" in result.output


def test_override_file_changes_one_rule(tmp_path):
    path = tmp_path / "harsh.toml"
    path.write_text(preset_file('name = "harsh"\n\n[[rules]]\nname = "jaywalking"\n'
                                "points = -50\n"))
    assert runner.invoke(app, ["validate", str(path)]).exit_code == 0
    harsh, essay = load_scenario(path), load_preset("essay")
    changed = {r.name: r for r in harsh.rules}["jaywalking"]
    original = {r.name: r for r in essay.rules}["jaywalking"]
    assert changed.points == -50 and original.points == -5
    # The rest of the entry is kept (merged key by key), and so is everything else.
    assert changed.model_copy(update={"points": -5}) == original
    assert [r for r in harsh.rules if r.name != "jaywalking"] == \
        [r for r in essay.rules if r.name != "jaywalking"]
    assert harsh.model_copy(update={"name": "essay", "rules": essay.rules}) == essay


def test_merge_semantics():
    base = {"run": {"citizens": 10, "days": 5},
            "population": {"regions": [{"name": "a", "share": 1.0}]},
            "rules": [{"name": "x", "points": -1, "kind": "event"}, {"name": "y", "points": 2}]}
    over = {"run": {"days": 7},
            "population": {"regions": [{"name": "b", "share": 1.0}]},
            "rules": [{"name": "y", "points": 3}, {"name": "z", "points": -4}]}
    merged = merge(base, over)
    assert merged["run"] == {"citizens": 10, "days": 7}             # tables: key by key
    assert merged["population"]["regions"] == [{"name": "b", "share": 1.0}]  # replaced
    assert merged["rules"] == [{"name": "x", "points": -1, "kind": "event"},
                               {"name": "y", "points": 3},          # updated in place
                               {"name": "z", "points": -4}]         # new name appended
    assert base["rules"][1] == {"name": "y", "points": 2}           # inputs untouched


def test_drop_semantics(tmp_path):
    path = tmp_path / "no-friends.toml"
    path.write_text(preset_file(
        'drop = { rules = ["low_scoring_friends", "blacklisted_friend"], lists = ["redlist"],'
        ' consequences = ["fast_travel", "cheap_credit"] }\n'))
    sc, essay = load_scenario(path), load_preset("essay")
    assert [r.name for r in sc.rules] == [r.name for r in essay.rules
                                         if r.name not in ("low_scoring_friends",
                                                           "blacklisted_friend")]
    assert [s.name for s in sc.lists] == ["blacklist"]
    assert len(sc.consequences) == len(essay.consequences) - 2
    # Dropping a list that consequences still use is an error naming one of them.
    broken = tmp_path / "broken.toml"
    broken.write_text(preset_file('drop = { lists = ["redlist"] }\n'))
    with pytest.raises(ScenarioError, match="unknown list 'redlist'.*fast_travel|"
                                            "fast_travel.*unknown list 'redlist'"):
        load_scenario(broken)
    everything = tmp_path / "bare.toml"
    everything.write_text(preset_file('drop = { rules = "*" }\n'))
    assert load_scenario(everything).rules == []


def test_null_preset_and_files_based_on_it(tmp_path):
    null, essay = load_preset("null"), load_preset("essay")
    assert null.rules == [] and null.lists == [] and null.consequences == []
    # the same behaviours, but what only the listed do cannot happen without lists
    same = [b for b in essay.behaviours if not (b.when and "on_list(" in b.when)]
    assert [b for b in null.behaviours if b.name in {x.name for x in same}] == same
    assert all(b.when == "False" for b in null.behaviours if b not in same)
    assert null.population == essay.population
    # A file may build on a preset that itself builds on another.
    path = tmp_path / "mine.toml"
    path.write_text('preset = "null"\n\n[run]\ndays = 10\n')
    sc = load_scenario(path)
    assert sc.run.days == 10 and sc.rules == [] and sc.behaviours == null.behaviours


# ---------------------------------------------------------------- line numbers

LINES = """\
name = "x"                                      # 1
[run]                                           # 2
days = 3                                        # 3
[population]                                    # 4
regions = [                                     # 5
    { name = "a", share = 0.5 },                # 6
    { name = "b", share = 0.5 },                # 7
]                                               # 8
conduct.alpha = 2                               # 9
[population.gamer]                              # 10
alpha = 1                                       # 11
[[rules]]                                       # 12
name = "r0"                                     # 13
description = '''                               # 14
[[rules]]                                       # 15
'''                                             # 16
[[rules]]                                       # 17
name = "r1"                                     # 18
coverage = { urban = 2 }                        # 19
"""


@pytest.mark.parametrize("key, line", [
    ("name", 1), ("run", 2), ("run.days", 3), ("run.seed", 2),
    ("population.regions", 5), ("population.regions[1]", 7),
    ("population.regions[1].share", 7), ("population.conduct.alpha", 9),
    ("population.conduct", 9), ("population.gamer.alpha", 11), ("population.gamer", 10),
    ("rules[0]", 12), ("rules[0].name", 13), ("rules[1].name", 18), ("rules[1]", 17),
    ("rules[1].coverage.urban", 19), ("rules[1].points", 17), ("nothing", None),
    ("rules[2].name", None), ("", None),
])
def test_line_of(key, line):
    assert _line_of(key, LINES) == line


def test_line_numbers_of_the_essay_preset():
    """Every rule's `points` line in the shipped preset is found where it is."""
    text = preset_text("essay")
    lines = text.splitlines()
    for i, _rule in enumerate(tomllib.loads(text)["rules"]):
        n = _line_of(f"rules[{i}].points", text)
        assert n is not None and lines[n - 1].lstrip().startswith("points"), (i, n)


def test_scenario_error_survives_pickling():
    """Workers of an ensemble hand errors back to the parent by pickling them."""
    import pickle

    from metricpower.scenario import ScenarioError

    err = ScenarioError("a.toml", "expected a number, found 'x'", key="run.days", line=3,
                        note="set in preset 'essay'")
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) and (back.key, back.line) == ("run.days", 3)
