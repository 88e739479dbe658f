"""The command line end to end: `run` writes a run directory that `load_run`, DuckDB,
Polars and `explain` can read. One small run (essay preset, 2,000 citizens, 30 days)
is shared by the tests of this module."""

from __future__ import annotations

import json
import re

import duckdb
import numpy as np
import pyarrow.compute as pc
import pytest
from conftest import same_table
from rich.text import Text
from typer.testing import CliRunner

from metricpower.cli import app
from metricpower.explain import truth
from metricpower.runs import TABLES, load_run, simulate
from metricpower.scenario import load_preset, load_scenario

runner = CliRunner()
ARGS = ["--citizens", "2000", "--days", "30", "--no-report"]
FILES = ["scenario.toml", *(f"{name}.parquet" for name in TABLES), "metrics.json"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "essay-run"
    result = runner.invoke(app, ["run", *ARGS, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_run_writes_the_run_directory(run_dir):
    out, output = run_dir
    for name in FILES:
        assert (out / name).is_file(), name
    # Written all at once: no temporary folder is left beside it.
    assert [p.name for p in out.parent.iterdir()] == [out.name]
    # The summary table.
    assert "essay: 2,000 citizens, 30 days" in output
    for row in ("mean score", "penalties", "misattributed", "sanctions applied"):
        assert row in output, row
    assert f"run directory: {out}" in output.replace("\n", "")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["citizens"] == 2000 and metrics["days"] == 30
    assert set(metrics["tier_shares"]) == {t.name for t in load_preset("essay").tiers}
    assert abs(sum(metrics["tier_shares"].values()) - 1) < 1e-9


def test_written_scenario_is_the_resolved_one(run_dir):
    out, _ = run_dir
    expected = load_preset("essay", overrides={"run": {"citizens": 2000, "days": 30}})
    assert load_scenario(out / "scenario.toml") == expected
    assert runner.invoke(app, ["validate", str(out / "scenario.toml")]).exit_code == 0


def test_load_run_returns_the_same_tables(run_dir):
    out, _ = run_dir
    loaded = load_run(out)
    again = simulate(loaded.scenario)  # same scenario and seed: the same run
    assert set(loaded.tables) == set(TABLES)
    for name in TABLES:
        assert same_table(loaded.tables[name], again.tables[name]), name
    assert loaded.metrics["ledger"]["entries"] == loaded.tables["ledger"].num_rows
    assert loaded.tables["citizens"].num_rows == 2000
    assert loaded.tables["daily"].num_rows == 30


def test_duckdb_and_polars_read_the_parquet_in_place(run_dir):
    out, _ = run_dir
    ledger = load_run(out).tables["ledger"]
    rows, total, citizens = duckdb.sql(
        f"SELECT count(*), sum(points), count(DISTINCT citizen) "
        f"FROM '{out / 'ledger.parquet'}'").fetchone()
    assert rows == ledger.num_rows > 0
    assert total == pc.sum(ledger["points"]).as_py()
    assert citizens == len(pc.unique(ledger["citizen"]))
    by_rule = dict(duckdb.sql(f"SELECT rule, count(*) FROM '{out / 'ledger.parquet'}' "
                              "GROUP BY rule").fetchall())
    assert sum(by_rule.values()) == rows and "jaywalking" in by_rule
    import polars as pl

    citizens_df = pl.read_parquet(out / "citizens.parquet")
    assert citizens_df.height == 2000 and "score" in citizens_df.columns


def test_only_categorical_columns_are_dictionary_encoded(run_dir):
    """Parquet's default would try a dictionary on every column, which made a member's
    writing of its tables some 60% slower (`store.write_table`); the categories keep
    theirs, and the tables still read back whole (the tests above)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out, _ = run_dir
    for name in ("citizens", "ledger", "tiers"):
        meta = pq.ParquetFile(out / f"{name}.parquet").metadata
        schema = meta.schema.to_arrow_schema()
        encoded = {meta.row_group(0).column(i).path_in_schema:
                   meta.row_group(0).column(i).has_dictionary_page
                   for i in range(meta.num_columns)}
        categorical = {f.name for f in schema if pa.types.is_dictionary(f.type)}
        assert categorical and len(categorical) < len(encoded), name
        assert encoded == {c: c in categorical for c in encoded}, name


def _citizen_with(ledger, column: str | None = None) -> int:
    """A citizen with several ledger entries (one of them `column`, when given)."""
    rows = ledger if column is None else ledger.filter(ledger[column])
    ids, counts = np.unique(rows["citizen"].to_numpy(), return_counts=True)
    assert len(ids), f"no ledger entry with {column}"
    return int(ids[np.argmax(counts)])


@pytest.mark.parametrize("column", [None, "benign"])
def test_explain_prints_the_citizens_changes(run_dir, column):
    out, _ = run_dir
    loaded = load_run(out)
    ledger = loaded.tables["ledger"]
    citizen = _citizen_with(ledger, column)
    mine = ledger.filter(pc.equal(ledger["citizen"], citizen))
    result = runner.invoke(app, ["explain", str(out), str(citizen)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = result.output
    assert re.search(rf"citizen\s+{citizen}\s", text)
    score = loaded.tables["citizens"]["score"][citizen].as_py()
    assert f"→ {score}" in text
    assert f"{mine.num_rows} score changes" in text
    for rule in set(mine["rule"].cast("string").to_pylist()):
        assert rule in text, rule
    assert "hidden truth" in text and "hidden true conduct" in text
    # Beside each change, the hidden truth the system never saw (benign, misattributed).
    rules = {r.name: r for r in loaded.scenario.rules}
    for e in mine.to_pylist():
        label = Text.from_markup(truth(rules[e["rule"]].kind, e["benign"],
                                       e["misattributed"])).plain
        assert label in text, label
    if column == "benign":
        assert mine.filter(mine["benign"]).num_rows > 0
        assert "benign" in text


def test_explain_shows_misattribution(tmp_path):
    """A run where cameras make many false matches: explain says so for the charged."""
    out = tmp_path / "run"
    scenario = tmp_path / "fm.toml"
    scenario.write_text('preset = "essay"\n[[sensors]]\nname = "camera"\n'
                        "false_match_rate = 0.002\n")
    result = runner.invoke(app, ["run", str(scenario), "--out", str(out), *ARGS])
    assert result.exit_code == 0, result.output
    citizen = _citizen_with(load_run(out).tables["ledger"], "misattributed")
    result = runner.invoke(app, ["explain", str(out), str(citizen)], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert Text.from_markup(truth("event", False, True)).plain in result.output
    assert "misattributed" in result.output


@pytest.mark.parametrize("citizen", ["2000", "999999"])
def test_explain_bad_id(run_dir, citizen):
    out, _ = run_dir
    result = runner.invoke(app, ["explain", str(out), citizen])
    assert result.exit_code == 2
    assert f"citizen {citizen} is not in this run" in result.output
    assert "0 to 1999" in result.output
    assert "Traceback" not in result.output


def test_explain_not_a_run_directory(tmp_path):
    result = runner.invoke(app, ["explain", str(tmp_path), "0"])
    assert result.exit_code == 2
    assert "not a run directory" in result.output and str(tmp_path) in result.output


def test_run_keeps_a_folder_that_is_not_a_run(tmp_path):
    """The issue's first loss: `--out` on a folder holding a thesis deleted it."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "thesis.txt").write_text("years of work")
    result = runner.invoke(app, ["run", "--citizens", "300", "--days", "5", "--no-report",
                                 "--out", str(out), "--force"])
    assert result.exit_code == 2, result.output
    assert "is not a run" in result.output and "thesis.txt" in result.output
    assert (out / "thesis.txt").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_run_replaces_an_earlier_run_only_with_force(tmp_path):
    out = tmp_path / "run"
    args = ["run", "--citizens", "300", "--days", "5", "--no-report", "--out", str(out)]
    assert runner.invoke(app, [*args, "--seed", "1"]).exit_code == 0
    first = (out / "citizens.parquet").read_bytes()
    refused = runner.invoke(app, [*args, "--seed", "2"])
    assert refused.exit_code == 2 and "--force" in refused.output
    assert (out / "citizens.parquet").read_bytes() == first
    replaced = runner.invoke(app, [*args, "--seed", "2", "--force"])
    assert replaced.exit_code == 0, replaced.output
    assert (out / "citizens.parquet").read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing set aside left


def test_run_refuses_a_file_and_a_preset_together(tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text('preset = "essay"\n')
    result = runner.invoke(app, ["run", str(scenario), "--preset", "null",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "not both" in result.output
    assert not (tmp_path / "out").exists()


def test_the_command_line_starts_without_the_report_and_ensemble_modules():
    """`metricpower --help` or a scenario error should not wait for modules the command
    does not use (seconds of imports): they load when a command uses them, while
    `metricpower.simulate` and friends still resolve, and `metricpower.compare` stays the
    function even once its submodule of the same name is imported."""
    import subprocess
    import sys

    probe = ("import sys, metricpower.cli, metricpower as m\n"
             "heavy = [k for k in ('metricpower.report.run', 'metricpower.ensembles', "
             "'metricpower.compare', 'metricpower.metrics', 'scipy.stats', 'polars') "
             "if k in sys.modules]\n"
             "assert not heavy, heavy\n"
             "import metricpower.compare\n"
             "from metricpower.compare import Comparison\n"
             "assert callable(m.simulate) and m.Results and callable(m.compare), m.compare\n"
             "from metricpower import compare\n"
             "assert callable(compare), compare\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # the submodule `metricpower.compare` imported first leaves `compare` the function
    probe = ("import metricpower.compare\nfrom metricpower.compare import NotComparable\n"
             "import metricpower as m\nassert callable(m.compare), m.compare\n"
             "import sys\nassert m.compare is sys.modules['metricpower.compare'].compare\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
