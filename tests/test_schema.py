"""The results schema: every run table is exactly what it declares, the metrics read only
declared columns and split by group and region on a real run, family names cannot
collide, and docs/metrics.md lists the columns the schema declares."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
from conftest import responses_off, run_preset

from metricpower.ledger.schema import (
    CITIZENS,
    DAILY,
    RESULTS,
    Column,
    Family,
    Fixed,
    Table,
    UndeclaredColumn,
    check_unambiguous,
    reading,
    with_docs,
)
from metricpower.metrics import measure, summary
from metricpower.runs import TABLES, Run

DOCS = Path(__file__).parent.parent / "docs" / "metrics.md"


def _fresh(run: Run, **tables) -> Run:
    """The run as a new object (metrics are cached per object), tables replaced."""
    return Run(run.scenario, run.tables | tables, {})


def empty_splits(run: Run, tables: dict) -> list[str]:
    """The metric tables with a `by` column that lack a row for some group (by = "group")
    or region (by = "region"), and the summary's `_by_group` / `_by_region` numbers that
    do not name every group or region."""
    sc = run.scenario
    who = {"group": {g.name for g in sc.population.groups},
           "region": {r.name for r in sc.population.regions}}
    bad = []
    for name, df in tables.items():
        if "by" not in df.columns or name == "persistence" and df.height == 0:
            continue
        for level, names in who.items():
            if set(df.filter(df["by"] == level)["who"]) != names:
                bad.append(f"{name} by {level}")
    for process, numbers in summary(run, tables).items():
        for key, value in numbers.items():
            for level, names in who.items():
                if key.endswith(f"_by_{level}") and set(value or {}) != names:
                    bad.append(f"summary {process}.{key}")
    return bad


def test_metrics_on_a_real_run_read_declared_columns_and_split_every_way(essay_run):
    run = _fresh(essay_run)
    with reading() as seen:
        tables = measure(run)  # an undeclared read raises UndeclaredColumn here
    assert {("citizens", "occurrences"), ("citizens", "observed")} <= seen
    assert not empty_splits(run, tables)
    det = tables["detection_rate"]
    by_group = det.filter(det["by"] == "group")
    assert by_group["rate"].null_count() == 0
    # The groups' acts add up to the daily total: the split is of the same acts.
    assert by_group["occurrences"].sum() == det.filter(det["by"] == "all")["occurrences"][0]


def test_the_split_check_catches_the_old_drift(essay_run):
    """With the citizens' acts under the name the daily table never declared (`acts`, as
    before), detection by group and region comes out empty and the check says so."""
    cit = essay_run.tables["citizens"]
    drifted = cit.rename_columns(["acts" if c == "occurrences" else c
                                  for c in cit.column_names])
    run = _fresh(essay_run, citizens=drifted)
    bad = empty_splits(run, measure(run))
    assert "detection_rate by group" in bad and "detection_rate by region" in bad
    assert "summary visibility.detection_rate_by_group" in bad


def test_an_undeclared_read_raises():
    df = pa.table({"acts": [1]})
    with pytest.raises(UndeclaredColumn, match="citizens: no column 'acts'"):
        CITIZENS["acts"]
    with pytest.raises(UndeclaredColumn):
        CITIZENS.has(df, "acts")
    with pytest.raises(UndeclaredColumn, match="no column family 'acts'"):
        DAILY["acts", "jaywalking"]
    assert DAILY["occurrences", "jaywalking"] == "occurrences_jaywalking"


@pytest.mark.parametrize("preset,overrides", [("essay", None), ("null", None),
                                              ("essay", responses_off())])
def test_every_run_table_is_what_the_schema_declares(preset, overrides):
    run = run_preset(preset, overrides)
    assert TABLES == tuple(RESULTS)
    for name in TABLES:
        RESULTS[name].check(run.tables[name], run.scenario)
    appeals = "appeals_filed" in run.tables["daily"].column_names
    assert appeals == run.scenario.responses.appeals.enabled
    assert ("ties_dropped" in run.tables["daily"].column_names) == \
        run.scenario.responses.association.enabled


def test_a_column_off_the_declaration_stops_the_build(essay_run):
    sc = essay_run.scenario
    good = {c: essay_run.tables["citizens"][c] for c in essay_run.tables["citizens"].column_names}
    assert CITIZENS.build(good, sc).equals(essay_run.tables["citizens"])
    with pytest.raises(UndeclaredColumn, match="acts"):
        CITIZENS.build(good | {"acts": good["occurrences"]}, sc)
    with pytest.raises(ValueError, match="not recorded.*'score'"):
        CITIZENS.build({k: v for k, v in good.items() if k != "score"}, sc)
    with pytest.raises(TypeError, match="citizens.score: declared int32, found int64"):
        CITIZENS.build(good | {"score": np.zeros(len(good["score"]), np.int64)}, sc)
    with pytest.raises(ValueError, match="citizens.score: 1 missing values"):
        CITIZENS.build(good | {"score": pa.array([None] + good["score"].to_pylist()[1:],
                                                 pa.int32())}, sc)
    with pytest.raises(ValueError, match="daily: columns"):
        DAILY.check(essay_run.tables["daily"].drop_columns(["penalties"]), sc)


def test_family_names_cannot_collide():
    for table in RESULTS.values():
        check_unambiguous(table)
    # Entities whose names hold the separator and a family's word still get their own
    # columns: `chilled_benign_x` could have been both `x`'s and `benign_x`'s.
    names = ["x", "benign_x", "benign", "occurrences", "chilled_x"]
    sc = SimpleNamespace(
        behaviours=[SimpleNamespace(name=n) for n in names],
        lists=[SimpleNamespace(name=n) for n in names], tiers=[SimpleNamespace(name="A")],
        consequences=[SimpleNamespace(name=n) for n in names],
        services=[SimpleNamespace(name=n) for n in names],
        responses=SimpleNamespace(labelling=SimpleNamespace(services=names),
                                  **{k: SimpleNamespace(enabled=True)
                                     for k in ("appeals", "prediction", "association")}))
    cols = [n for n, _ in DAILY.expected(sc)]
    assert len(cols) == len(set(cols))
    # A planted overlap of prefixes is refused.
    bad = Table("bad", "day", "planted", (
        Family("behaviour", (Column("chilled", pa.int64(), "acts", "x"),
                             Column("chilled_benign", pa.int64(), "acts", "x"))),))
    with pytest.raises(ValueError, match="starts with 'chilled_'"):
        check_unambiguous(bad)
    fixed = Table("bad", "day", "planted", (
        Fixed((Column("chilled_benign", pa.int64(), "acts", "x"),)),
        Family("behaviour", (Column("chilled", pa.int64(), "acts", "x"),))))
    with pytest.raises(ValueError, match="column 'chilled_benign' starts with family"):
        check_unambiguous(fixed)
    with pytest.raises(ValueError, match="'tier' declared twice"):
        Table("bad", "day", "planted", tuple(
            Family(per, (Column("tier", pa.int64(), "citizens", "x"),))
            for per in ("tier", "list")))


def test_summary_totals_are_the_declared_daily_counts(essay_run):
    totals = essay_run.metrics["processes"]["totals"]
    daily = essay_run.tables["daily"]
    flows = [c.name for c in DAILY.fixed() if c.flow and c.name in daily.column_names]
    assert set(totals) == set(flows) | {"days", "citizens"}
    for name in flows:
        assert totals[name] == sum(daily[name].to_pylist())
    assert totals["occurrences"] > totals["observed"] > 0


def test_docs_list_the_declared_columns():
    text = DOCS.read_text()
    assert with_docs(text) == text, ("docs/metrics.md is out of date: run `python -c "
                                     "'from metricpower.ledger.schema import write_docs; "
                                     "write_docs()'`")
    for table in RESULTS.values():
        assert f"### `{table.name}.parquet`" in text
        for col in table.fixed():
            assert f"| `{col.name}` |" in text


def test_a_written_run_reads_back_as_declared(essay_run, tmp_path):
    from metricpower.runs import load_run

    back = load_run(essay_run.write(tmp_path / "essay", report=False))
    for name in TABLES:
        RESULTS[name].check(back.tables[name], back.scenario)
        assert back.tables[name].equals(essay_run.tables[name]), name
