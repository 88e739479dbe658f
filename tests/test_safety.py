"""Never lose a user's data; refuse hostile input cleanly (issue 12).

Each test here failed on the code before the issue was fixed: run folders that deleted
what they held, names that were paths, values that overflowed or allocated without
bound, files that hung the reader, conditions checked on other types than the engine's,
unescaped names, broken run folders read as runs, and metrics quadratic in behaviours.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import BROWSER_MISSING, require_browser, run_preset
from rich.console import Console
from typer.testing import CliRunner

import metricpower.store as store
from metricpower.cli import app, summary_table
from metricpower.runs import Run, load_run, simulate
from metricpower.scenario import Scenario, ScenarioError, load_preset, load_scenario, preset_text
from metricpower.scenario.expr import compile_condition

runner = CliRunner()
SMALL = ["--citizens", "300", "--days", "5"]


def scenario_file(tmp_path: Path, body: str = "", name: str = "small") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'preset = "essay"\nname = "{name}"\n{body}')
    return path


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------- what may be replaced
def test_out_on_the_current_folder_deletes_nothing(tmp_path, monkeypatch):
    """`--out .` used to delete the current folder's contents, subfolders included."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data.csv").write_text("1,2")
    result = runner.invoke(app, ["run", "--preset", "null", *SMALL, "--out", ".", "--force"])
    assert result.exit_code == 2, result.output
    assert "is not a run" in result.output and "Traceback" not in result.output
    assert listing(tmp_path) == ["notes.txt", "sub"]
    assert (tmp_path / "sub" / "data.csv").read_text() == "1,2"


def test_a_run_holding_a_users_file_is_not_replaced(tmp_path):
    out = tmp_path / "run"
    args = ["run", "--preset", "null", *SMALL, "--no-report", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    (out / "thesis.txt").write_text("keep")
    result = runner.invoke(app, [*args, "--force"])
    assert result.exit_code == 2 and "thesis.txt" in result.output
    assert (out / "thesis.txt").read_text() == "keep"


@pytest.mark.parametrize("name", ["..", "", ".", "/tmp/elsewhere", "a/b", "..\\\\up", ".hidden",
                                  "tab\\there"])
def test_a_scenario_name_is_a_name_not_a_path(tmp_path, name):
    """`name = ".."` deleted the user's folder, `""` every run in runs/, an absolute name
    wrote (after deleting) anywhere."""
    path = scenario_file(tmp_path, name="x")
    path.write_text(path.read_text().replace('name = "x"', f'name = "{name}"'))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}, line 2, key name:" in result.output.replace("\n", "")
    assert "Traceback" not in result.output


def test_default_folder_is_fresh_and_never_overwrites(tmp_path, monkeypatch):
    """A scenario copied from `presets show essay` keeps name "essay": it used to replace
    the `make run` output silently."""
    monkeypatch.chdir(tmp_path)
    path = scenario_file(tmp_path, name="essay")
    first = runner.invoke(app, ["run", str(path), *SMALL, "--no-report", "--seed", "1"])
    assert first.exit_code == 0, first.output
    kept = (tmp_path / "runs" / "essay" / "citizens.parquet").read_bytes()
    for k in (2, 3):
        again = runner.invoke(app, ["run", str(path), *SMALL, "--no-report", "--seed", str(k)])
        assert again.exit_code == 0, again.output
        assert f"runs/essay-{k}" in again.output.replace("\n", "")
    assert listing(tmp_path / "runs") == ["essay", "essay-2", "essay-3"]
    assert (tmp_path / "runs" / "essay" / "citizens.parquet").read_bytes() == kept


def test_makefile_run_owns_one_folder():
    """`make run` must work again and again: it replaces its own folder with --force."""
    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "--out $(OUT) --force" in recipe and "OUT ?= runs/essay" in makefile


def test_replacing_sets_the_old_run_aside_first(tmp_path, monkeypatch):
    """A failure between the renames leaves the old run in place (it used to be deleted
    before the new one was renamed in)."""
    run = run_preset("null", citizens=300, days=5)
    out = tmp_path / "run"
    run.write(out, report=False)
    before = (out / "manifest.json").read_text()
    real_rename = os.rename

    def rename(src, dst):
        if Path(src).name.startswith(".run.tmp-"):
            raise OSError(28, "No space left on device")
        return real_rename(src, dst)

    monkeypatch.setattr(store.os, "rename", rename)
    with pytest.raises(OSError):
        run.write(out, report=False, force=True)
    assert (out / "manifest.json").read_text() == before
    assert listing(tmp_path) == ["run"]  # no temporary or set-aside folder is left
    load_run(out)


def _write_in_child(out: str, mode: str, seed: int, queue) -> None:
    run = run_preset("null", citizens=300, days=5)
    run.metrics["writer"] = seed
    try:
        where = run.write(out, report=False, force=mode == "force",
                          fresh_name=mode == "fresh")
        queue.put(("ok", seed if mode != "fresh" else where.name))
    except store.OutputError as err:
        queue.put(("refused", str(err)))
    except BaseException as err:  # anything else is a failure of the test
        queue.put(("error", repr(err)))


@pytest.mark.parametrize("mode", ["refuse", "force", "fresh"])
def test_concurrent_writers_neither_corrupt_nor_lose(tmp_path, mode):
    """40 of 300 concurrent writes to one --out used to fail, and the last writer won.
    Now: without --force exactly one writer succeeds and the others are told why; with
    it every writer succeeds in turn; the folder is always one complete run. Writers of
    fresh default folders each get their own."""
    run_preset("null", citizens=300, days=5)  # simulated once, before forking
    out = tmp_path / "run"
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_write_in_child, args=(str(out), mode, k, queue))
             for k in range(6)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    kinds = [k for k, _ in results]
    assert "error" not in kinds, results
    if mode == "fresh":
        names = sorted(v for _, v in results)
        assert names == sorted(["run", *(f"run-{k}" for k in range(2, 7))]) == listing(tmp_path)
        for name in names:
            load_run(tmp_path / name)
        return
    if mode == "force":
        assert kinds.count("ok") == 6
    else:
        assert kinds.count("ok") == 1 and kinds.count("refused") == 5, results
        assert all("--force" in msg for k, msg in results if k == "refused")
    final = load_run(out)
    assert final.metrics["writer"] in [v for k, v in results if k == "ok"]
    assert listing(tmp_path) == ["run"]


# ---------------------------------------------------------------- complete runs only
@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    run_preset("essay", citizens=400, days=10).write(out)
    return out


def broken(finished: Path, tmp_path: Path, how: str) -> Path:
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    if how == "no manifest":
        (out / "manifest.json").unlink()
    elif how == "truncated citizens":
        data = (out / "citizens.parquet").read_bytes()
        (out / "citizens.parquet").write_bytes(data[: len(data) // 2])
    elif how == "missing daily":
        (out / "daily.parquet").unlink()
    elif how == "missing ledger":
        (out / "ledger.parquet").unlink()
    elif how == "edited metrics":
        metrics = json.loads((out / "metrics.json").read_text())
        metrics["mean_score"] = 0
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    elif how == "another run's citizens":
        other = tmp_path / "other"
        run_preset("essay", citizens=400, days=10, seed=99).write(other, report=False)
        shutil.copy(other / "citizens.parquet", out / "citizens.parquet")
    elif how == "temporary folder":
        tmp = tmp_path / ".run.tmp-abc123"
        out.rename(tmp)
        return tmp
    return out


BROKEN = ["no manifest", "truncated citizens", "missing daily", "missing ledger",
          "edited metrics", "another run's citizens", "temporary folder"]


@pytest.mark.parametrize("how", BROKEN)
def test_broken_runs_are_refused_by_every_reader(finished, tmp_path, how):
    """Missing or truncated tables gave KeyError, FileNotFoundError or Arrow tracebacks,
    another run's citizens.parquet was accepted, and the hidden temporary folder of a
    killed run was read as a run."""
    out = broken(finished, tmp_path, how)
    with pytest.raises(store.OutputError):
        load_run(out)
    for args in (["explain", str(out), "3"], ["report", str(out)],
                 ["compare", str(out), "null"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith(f"error: {out}"), result.output
        assert "Traceback" not in result.output


def test_a_complete_run_reads_back_and_its_manifest_describes_it(finished):
    run = load_run(finished)
    manifest = json.loads((finished / "manifest.json").read_text())
    assert manifest["program"] == "metricpower" and manifest["seed"] == run.scenario.run.seed
    assert manifest["files"]["citizens.parquet"]["rows"] == run.citizens.num_rows == 400
    assert "report.html" not in manifest["files"]  # a view `report` may rewrite


def test_out_on_a_symlink_is_refused_before_the_simulation(tmp_path, monkeypatch):
    import metricpower.cli as cli

    monkeypatch.setattr(cli, "run_with_progress", lambda sc: pytest.fail("simulated"))
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    result = runner.invoke(app, ["run", "--preset", "null", *SMALL, "--out",
                                 str(tmp_path / "link")])
    assert result.exit_code == 2 and "symbolic link" in result.output


def test_report_out_with_a_missing_parent_is_a_clean_error(finished, tmp_path):
    target = tmp_path / "no" / "such" / "report.html"
    result = runner.invoke(app, ["report", str(finished), "--out", str(target)])
    assert result.exit_code == 2, result.output
    assert "does not exist" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "no").exists()


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import metricpower.report as report

    def boom(*args, **kwargs):
        raise RuntimeError("killed while writing the report")

    monkeypatch.setattr(report, "write_report", boom)
    with pytest.raises(RuntimeError):
        run_preset("null", citizens=300, days=5).write(tmp_path / "run")
    assert listing(tmp_path) == []


# ---------------------------------------------------------------- bounded input
HOSTILE = {
    "points beyond int32": ('[[rules]]\nname = "jaywalking"\npoints = 3000000000\n',
                            "rules[0].points", 5),
    "initial score beyond int32": ("[population]\ninitial_score = -3000000000\n",
                                   "population.initial_score", 4),
    "false-match rate 1e6": ('[[sensors]]\nname = "camera"\nfalse_match_rate = 1e6\n',
                             "sensors[0].false_match_rate", 5),
    "group factor 1e12": ('[[sensors]]\nname = "camera"\n'
                          "false_match_by_group = { minority_women = 1e12 }\n",
                          "sensors[0].false_match_by_group.minority_women", 5),
    "group factor inf": ('[[sensors]]\nname = "camera"\n'
                         "false_match_by_group = { minority_women = inf }\n",
                         "sensors[0].false_match_by_group.minority_women", 5),
    "huge community": ("[network]\ncommunity_size = 100000000000000000000\n",
                       "network.community_size", 4),
    "nan income premium": ("[population]\nurban_income_premium = nan\n",
                           "population.urban_income_premium", 4),
    "appeal capacity inf": ("[responses.appeals]\ncapacity_per_100k = inf\n",
                            "responses.appeals.capacity_per_100k", 4),
    "responses key": ('[responses.appeals]\nenabled = "maybe"\n', "responses.appeals.enabled", 4),
    "ledger sample 0": ("[run]\nledger_sample = 0\n", "run.ledger_sample", 4),
    "rate 1e9": ('[[behaviours]]\nname = "crime"\nrate = 1e9\n', "behaviours[0].rate", 5),
    "overflowing drift": ('[[rules]]\nname = "jaywalking"\npoints = -1000000\n[run]\n'
                          "days = 30000\n", "rules", None),
    "table as a name": ('[[rules]]\nname = { a = 1 }\npoints = 1\n', "rules[0].name", 4),
    "table in drop": ("drop = { rules = [{ a = 1 }] }\n", "drop.rules", 3),
    "nan as a name": ("[[services]]\nname = nan\ndemand = 0.1\n", "services[0].name", 4),
    "score - 3e9 is fine, 100 / day is not": (
        '[[rules]]\nname = "jaywalking"\nwhen = "score - 3000000000 < 0 and 100 / day > 1"\n',
        "rules[0].when", 5),
    "count with 1e999": ('[[rules]]\nname = "jaywalking"\nwhen = "count(\'crime\', 1e999) > 0"\n',
                         "rules[0].when", 5),
    "minus a flag": ('[[rules]]\nname = "jaywalking"\nwhen = "-flagged < 0"\n',
                     "rules[0].when", 5),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_values_are_refused_with_file_key_and_line(tmp_path, case):
    body, key, line = HOSTILE[case]
    path = scenario_file(tmp_path, body)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    text = result.output.replace("\n", "")
    where = f"{path}, line {line}, key {key}" if line else f"{path}, key {key}"
    assert text.startswith(f"error: {where}"), text
    assert "Traceback" not in text


def test_deep_nesting_and_dotted_keys_are_refused_quickly(tmp_path):
    for i, text in enumerate(["a = " + "[" * 5000 + "]" * 5000,
                              "a = " + "{b = " * 5000 + "1" + "}" * 5000,
                              "x" + ".x" * 30000 + " = 1\n",
                              "x = [\n" + "[\n" * 5000 + "]\n" * 5001]):
        path = tmp_path / f"deep{i}.toml"
        path.write_text(text)
        start = time.perf_counter()
        with pytest.raises(ScenarioError, match="nested more than 20 levels"):
            load_scenario(path)
        assert time.perf_counter() - start < 10


def test_devices_pipes_and_huge_files_are_refused_without_reading(tmp_path):
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo)):
        result = runner.invoke(app, ["validate", path])
        assert result.exit_code == 2 and "not a regular file" in result.output
    big = tmp_path / "big.toml"
    with big.open("wb") as f:
        f.truncate(50_000_000)
    result = runner.invoke(app, ["validate", str(big)])
    assert result.exit_code == 2 and "larger than 1,000,000 bytes" in result.output


def test_conditions_run_on_the_engine_types(tmp_path):
    """Conditions were checked on float64 zeros and run on int32 scores: `score * 3000000
    < 0` was true for everyone, `score - 3000000000` an OverflowError."""

    class Ctx:
        xp = np

        def var(self, name):
            return {"score": np.array([1000, 500], np.int32), "day": 0,
                    "income": np.array([1.0, 2.0], np.float32)}[name]

    sc = load_preset("essay")
    vocab = sc.vocabulary()

    def holds(text):
        return compile_condition(text, vocab, "w")(Ctx()).tolist()

    assert holds("score * 3000000 < 0") == [False, False]
    assert holds("score - 3000000000 < -2999999000") == [False, True]
    assert holds("100 / income > 60") == [True, False]
    scored = load_scenario(scenario_file(tmp_path, '[[rules]]\nname = "jaywalking"\n'
                                                   'when = "score * 3000000 > 0"\n'))
    assert "score * 3000000 > 0" in scored.rules[[r.name for r in scored.rules]
                                                 .index("jaywalking")].when


def test_a_tiny_ledger_sample_runs_and_reports(tmp_path):
    """`ledger_sample = 0` crashed the report after the whole run; 0 is refused now, and
    a sample that keeps nobody still writes its report."""
    path = scenario_file(tmp_path, "[run]\nledger_sample = 1e-9\n")
    result = runner.invoke(app, ["run", str(path), *SMALL, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert load_run(tmp_path / "r").ledger.num_rows == 0
    assert (tmp_path / "r" / "report.html").stat().st_size > 10_000


def test_a_run_that_will_not_fit_in_memory_is_refused_before_allocating(monkeypatch):
    import metricpower.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 8 << 30)
    start = time.perf_counter()
    result = runner.invoke(app, ["run", "--preset", "essay", "--citizens", "2000000000",
                                 "--out", "/nonexistent-never-written"])
    assert result.exit_code == 2, result.output
    assert "GiB of memory" in result.output and "8.0 GiB is available" in result.output
    assert time.perf_counter() - start < 30


def test_an_ensemble_that_will_not_fit_is_refused_before_any_member(monkeypatch, tmp_path):
    import metricpower.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 8 << 30)
    out = tmp_path / "ensemble"
    result = runner.invoke(app, ["ensemble", "essay", "--seeds", "2", "--citizens",
                                 "2000000000", "--workers", "1", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "GiB of memory" in result.output and "Traceback" not in result.output
    assert listing(tmp_path) == []


def test_a_failed_comparison_write_keeps_the_earlier_one_whole(tmp_path, monkeypatch):
    import metricpower.report.comparison as comparison_report
    from metricpower.compare import compare

    a, b = run_preset("essay", citizens=300, days=5), run_preset("null", citizens=300, days=5)
    result = compare(a, b)
    result.write(tmp_path / "c")
    before = {p.name: p.read_bytes() for p in (tmp_path / "c").iterdir()}
    assert sorted(before) == ["comparison.html", "comparison.json"]

    # A report that fails while its file is being written (after it was opened).
    monkeypatch.setattr(comparison_report, "render_comparison",
                        lambda comparison: "<html>" + "\ud800")
    with pytest.raises(UnicodeEncodeError):
        result.write(tmp_path / "c")
    assert {p.name: p.read_bytes() for p in (tmp_path / "c").iterdir()} == before


# ---------------------------------------------------------------- escaped names
def test_tier_names_are_escaped_in_the_report():
    """A tier named like a meta refresh redirected the report's reader."""
    from metricpower.report import render_report

    evil = '<meta http-equiv=refresh content="0;url=https://example.org">'
    data = load_preset("essay", {"run": {"citizens": 400, "days": 30}}).model_dump()
    data["tiers"][-1]["name"] = evil  # the worst tier, "D": one of the bottom tiers
    for field, keys in (("rules", ("when",)), ("lists", ("enter", "exit")),
                        ("consequences", ("when",))):
        for item in data[field]:
            for key in keys:
                if item[key]:
                    item[key] = item[key].replace("'D'", repr(evil))
    avoid = data["responses"]["association"]["avoid_tiers"]
    data["responses"]["association"]["avoid_tiers"] = [evil if t == "D" else t for t in avoid]
    run = simulate(Scenario.model_validate(data))
    assert evil in run.metrics["processes"]["intensification"]["bottom_tiers"]
    html = render_report(run)
    assert "<meta http-equiv=refresh" not in html
    assert "&lt;meta http-equiv=refresh" in html


def test_terminal_summary_escapes_markup():
    """A list named with Rich markup crashed the summary after the run was written."""
    run = run_preset("null", citizens=300, days=5)
    metrics = json.loads(json.dumps(run.metrics))
    metrics["list_sizes"] = {"[/]": 3, "[bold]loud[/bold]": 1}
    metrics["tier_shares"] = {"[/red]": 1.0}
    console = Console(record=True, width=200)
    console.print(summary_table(Run(run.scenario, run.tables, metrics)))
    text = console.export_text()
    assert "on the [/] list" in text and "on the [bold]loud[/bold] list" in text
    assert "in tier [/red]" in text


def test_metrics_cost_is_linear_in_behaviours():
    """20,000 behaviours took over 400 s to summarise one day: every behaviour's totals
    scanned the list of all columns. Four times the behaviours must cost far less than
    sixteen times the time (the ratio is what is tested, not a speed)."""
    from metricpower.metrics.intensification import chilling
    from metricpower.metrics.limits import occurrences_by_behaviour

    def cost(k: int) -> float:
        names = [f"b{i}" for i in range(k)]
        daily = pl.DataFrame({f"{p}_{b}": [1, 2] for b in names
                              for p in ("occurrences", "chilled", "chilled_benign")})
        policy = pl.DataFrame({"behaviour": names, "regulated": [True] * k,
                               "penalised": [True] * k, "lawful": [False] * k,
                               "benign_share": [0.1] * k, "rate": [0.01] * k,
                               "requires": [None] * k}, schema_overrides={"requires": pl.String})
        start = time.perf_counter()
        chilling(daily, policy)
        occurrences_by_behaviour(daily, policy)
        return time.perf_counter() - start

    cost(200)  # warm up
    small, large = min(cost(1_000) for _ in range(2)), min(cost(4_000) for _ in range(2))
    assert large / small < 9, (small, large)


# ---------------------------------------------------------------- bare machine
def test_pandas_names_the_extra_when_missing(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas":
            raise ImportError("No module named 'pandas'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(ImportError, match=r"metricpower\[pandas\]"):
        run_preset("null", citizens=300, days=5).pandas("citizens")


def test_missing_browser_skips_here_and_fails_under_ci(monkeypatch, tmp_path):
    missing = str(tmp_path / "no-chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium"):
        require_browser(missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_browser(missing)
    assert "`chromium` package" in BROWSER_MISSING


def test_every_name_is_escaped_in_report_and_terminal(tmp_path):
    """Names of a behaviour, a rule, a list, a region, a service and a consequence that
    are HTML and Rich markup reach the report as text and the terminal as text."""
    from metricpower.report import render_report

    text = preset_text("essay")
    for name in ("crime", "blacklist", "metropolis", "flight_ban", "flights"):
        text = text.replace(f'"{name}"', f'"<i>{name}[/]"').replace(f"'{name}'",
                                                                   f"'<i>{name}[/]'")
    text = text.replace("crime = 0.05", '"<i>crime[/]" = 0.05')
    path = tmp_path / "evil.toml"
    path.write_text(text.replace('name = "essay"', 'name = "evil"'))
    result = runner.invoke(app, ["run", str(path), *SMALL, "--out",
                                 str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "on the <i>blacklist[/] list" in result.output.replace("\n", "")
    run = load_run(tmp_path / "run")
    html = render_report(run)
    assert "<i>" not in html and "&lt;i&gt;blacklist[/]" in html
    explained = runner.invoke(app, ["explain", str(tmp_path / "run"), "1"])
    assert explained.exit_code == 0, explained.output
