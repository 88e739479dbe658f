"""Population seeds, shared populations, ensembles, sweeps, paired comparisons, resume,
executors and the ensemble report."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import scenario
from typer.testing import CliRunner

import metricpower as mp
from metricpower.cli import app
from metricpower.compare import NotComparable
from metricpower.ensembles import LocalPool, Results, ensemble, sweep
from metricpower.ensembles.plan import load_grid, override
from metricpower.ensembles.stats import paired, t_interval
from metricpower.scenario import ScenarioError

ROOT = Path(__file__).resolve().parents[1]
TINY = {"citizens": 600, "days": 20}


def digest(a) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


# ---------------------------------------------------------------- population seed
#: Computed with the code before `population_seed` existed (commit 0f952aa): the default
#: (population_seed = seed) must build the same population (the policy has changed since,
#: so outcomes are compared between the default and an explicit population seed instead).
GOLDEN = {3: {"conduct": "09919095e2979a6b", "income": "bd5b886288a23514"},
          11: {"conduct": "35424a180ac9da9d", "income": "de6f646c479f39b4"}}


@pytest.mark.parametrize("seed", sorted(GOLDEN))
def test_default_population_seed_reproduces_earlier_runs(seed):
    run = mp.simulate(scenario(citizens=2000, days=40, seed=seed))
    assert run.scenario.run.population_seed is None
    c = run.tables["citizens"]
    got = {"conduct": digest(c["conduct"].to_numpy()), "income": digest(c["income"].to_numpy())}
    assert got == GOLDEN[seed]
    explicit = mp.simulate(scenario("essay", {"run": {"population_seed": seed}}, citizens=2000,
                                    days=40, seed=seed))
    for col in ("friends", "score", "sanctions"):
        assert explicit.tables["citizens"][col].equals(c[col]), col
    assert explicit.metrics["penalties"]["total"] == run.metrics["penalties"]["total"]


def test_population_seed_fixes_the_population_and_seed_the_day():
    fixed = {"run": {"population_seed": 5}}
    a = mp.simulate(scenario("essay", fixed, citizens=800, days=20, seed=1))
    b = mp.simulate(scenario("essay", fixed, citizens=800, days=20, seed=2))
    c = mp.simulate(scenario(citizens=800, days=20, seed=1))
    ca, cb, cc = (r.tables["citizens"] for r in (a, b, c))
    for col in ("conduct", "income", "region"):
        assert ca[col].equals(cb[col]), col
    # the same network at the start (the runs then change it: association avoidance)
    na, nb = (mp.build_population(r.scenario).network for r in (a, b))
    assert np.array_equal(na.indices, nb.indices)
    assert not ca["conduct"].equals(cc["conduct"])
    assert not ca["score"].equals(cb["score"])  # other seed, other days


def test_one_population_many_runs_gives_the_same_runs():
    sc = scenario(citizens=800, days=25)  # association avoidance on: the network changes
    assert sc.responses.association.enabled
    pop = mp.build_population(sc)
    before = pop.network.indices.copy()
    shared = [mp.simulate(sc, population=pop) for _ in range(2)]
    alone = mp.simulate(sc)
    assert np.array_equal(pop.network.indices, before)
    for run in shared:
        for name in ("citizens", "daily", "ties"):
            assert run.tables[name].equals(alone.tables[name]), name
    other_seed = mp.simulate(sc.model_copy(update={"run": sc.run.model_copy(
        update={"seed": 9, "population_seed": sc.run.seed})}), population=pop)
    assert other_seed.tables["citizens"]["conduct"].equals(alone.tables["citizens"]["conduct"])
    with pytest.raises(ValueError, match="population"):
        mp.simulate(scenario(citizens=801, days=5), population=pop)


# ---------------------------------------------------------------- compare in compare.py
def test_compare_sides_and_settings(tmp_path):
    a = mp.simulate(scenario(citizens=500, days=10, seed=4))
    a.write(tmp_path / "a", report=False)
    # a run directory against a preset: the preset follows the run's settings
    c = mp.compare(str(tmp_path / "a"), "null")
    assert c.b.scenario.run == a.scenario.run and c.name_a == "a"
    assert c.effects["sanctions_total"]["b"] == 0
    with pytest.raises(NotComparable, match="run directory"):
        mp.compare(str(tmp_path / "a"), "null", seed=3)
    with pytest.raises(ScenarioError, match="not a run directory"):
        mp.compare("no-such-thing", "null")
    with pytest.raises(NotComparable, match="both be `null`"):
        mp.compare(None, "null")


# ---------------------------------------------------------------- statistics
def test_t_interval_covers_95_percent_and_a_z_interval_would_not():
    """Power: 4,000 samples of n = 4 from N(3, 2): the coverage of a correct 95% interval
    lies within 0.95 ± 0.011 (3 binomial sd); a z-interval (the error planted) covers
    about 0.86 and fails the same check."""
    rng = np.random.default_rng(0)
    reps, n = 4000, 4
    x = rng.normal(3.0, 2.0, size=(reps, n))
    frame = pl.DataFrame({"rep": np.repeat(np.arange(reps), n), "value": x.ravel()})
    ci = t_interval(frame, ["rep"])
    covered = ((ci["lo"] <= 3.0) & (ci["hi"] >= 3.0)).mean()
    tol = 3 * np.sqrt(0.95 * 0.05 / reps)
    assert abs(covered - 0.95) < tol
    half_z = 1.96 * ci["sd"] / np.sqrt(n)
    z_cov = (((ci["mean"] - half_z) <= 3.0) & ((ci["mean"] + half_z) >= 3.0)).mean()
    assert abs(z_cov - 0.95) > tol


def test_paired_differences_pair_by_seed():
    t = pl.DataFrame({"arm": ["b", "b", "b", "x", "x", "x"], "seed": [1, 2, 3, 1, 2, 3],
                      "metric": ["m"] * 6, "value": [10.0, 20.0, 30.0, 12.0, 22.1, 31.9]})
    e = paired(t, "b", ["arm"])
    assert e["n"].to_list() == [3]
    assert e["mean"][0] == pytest.approx(2.0) and e["sd"][0] == pytest.approx(0.1)
    # unpaired, the interval would span the seeds' spread (sd 10) and include 0
    assert e["lo"][0] > 0


# ---------------------------------------------------------------- grids
def test_grid_keys_become_overrides_and_bad_keys_are_refused(tmp_path):
    assert override("rules.jaywalking.points", -9) == {
        "rules": [{"name": "jaywalking", "points": -9}]}
    assert override("responses.deterrence.enabled", False) == {
        "responses": {"deterrence": {"enabled": False}}}
    arms, labels, base, seeds = load_grid(ROOT / "examples" / "sweep.toml")
    assert len(arms) == 8 and base == 0 and seeds == 4
    assert arms[0] == {"rules.jaywalking.points": -5,
                       "sensors.camera.false_match_by_group.minority_women": 30.0,
                       "responses.deterrence.enabled": True}
    arms, labels, base, _ = load_grid(ROOT / "examples" / "arms.toml")
    assert labels[base] == "as in the essay" and arms[0] == {}
    bad = tmp_path / "bad.toml"
    bad.write_text('[grid]\n"rules.jaywalkng.points" = [-1, -2]\n')
    res = CliRunner().invoke(app, ["sweep", "essay", "--grid", str(bad), "--citizens", "300",
                                   "--days", "3", "--out", str(tmp_path / "s")])
    assert res.exit_code == 2, res.output
    assert "bad.toml" in res.output and "jaywalkng" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "s").exists()
    bad.write_text('[grid]\n"rules.jaywalking.points" = -1\n')
    res = CliRunner().invoke(app, ["sweep", "essay", "--grid", str(bad)])
    assert res.exit_code == 2 and "non-empty list" in res.output


# ---------------------------------------------------------------- ensembles and sweeps
@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "s"
    sc = scenario(**TINY)
    return sweep(sc, {"rules.jaywalking.points": [-5, -30],
                      "responses.deterrence.enabled": [True]}, seeds=3, out=out,
                 executor=LocalPool(2))


def test_ensemble_table_is_every_members_metrics(tmp_path):
    res = ensemble(scenario(**TINY), seeds=3, out=tmp_path / "e", executor=LocalPool(1))
    t = res.table()
    assert t.columns == ["member", "seed", "metric", "value"]
    assert sorted(set(t["member"])) == [0, 1, 2]
    assert sorted(set(t["seed"])) == [7, 8, 9]
    for member, run_dir in enumerate(res.members()):
        metrics = json.loads((run_dir / "metrics.json").read_text())
        row = t.filter((pl.col("member") == member) & (pl.col("metric") == "penalties.total"))
        assert row["value"].to_list() == [float(metrics["penalties"]["total"])]
        assert metrics["seed"] == 7 + member
    s = res.summary().filter(pl.col("metric") == "penalties.total")
    values = t.filter(pl.col("metric") == "penalties.total")["value"].to_numpy()
    assert s["mean"][0] == pytest.approx(values.mean())
    assert s["hi"][0] - s["mean"][0] == pytest.approx(
        4.302653 * values.std(ddof=1) / np.sqrt(3), rel=1e-5)
    # different seeds, different populations
    conducts = {digest(pl.read_parquet(d / "citizens.parquet")["conduct"].to_numpy())
                for d in res.members()}
    assert len(conducts) == 3


def test_resume_rewrites_a_member_written_but_not_recorded(tmp_path):
    """A kill between a member's run folder and its manifest line leaves a complete run
    that the ensemble has not counted: --resume writes it again (the folder is the
    ensemble's own), but never replaces a member folder holding something it did not
    write."""
    from metricpower.runs import OutputError

    out = tmp_path / "e"
    first = ensemble(scenario(**TINY), seeds=3, out=out, executor=LocalPool(1))
    table = first.table()
    lines = (out / "manifest.jsonl").read_text().splitlines()
    (out / "manifest.jsonl").write_text("\n".join(lines[:2]) + "\n")
    (out / "parts" / "00002.parquet").unlink()
    (out / "results.parquet").unlink()
    assert (out / "members" / "00002" / "manifest.json").is_file()
    resumed = ensemble(scenario(**TINY), seeds=3, out=out, executor=LocalPool(1),
                       resume=True)
    assert resumed.table().equals(table)
    assert len(mp.load_run(out / "members" / "00002").tables["citizens"]) == TINY["citizens"]
    (out / "manifest.jsonl").write_text("\n".join(lines[:2]) + "\n")
    (out / "parts" / "00002.parquet").unlink()
    (out / "members" / "00002" / "thesis.txt").write_text("not the program's")
    with pytest.raises(OutputError, match="thesis.txt"):
        ensemble(scenario(**TINY), seeds=3, out=out, executor=LocalPool(1), resume=True)
    assert (out / "members" / "00002" / "thesis.txt").read_text() == "not the program's"


def test_sweep_arms_share_seeds_and_populations(small_sweep):
    t = small_sweep.table()
    assert t.columns == ["member", "seed", "arm", "rules.jaywalking.points",
                         "responses.deterrence.enabled", "metric", "value"]
    assert t.schema["rules.jaywalking.points"] == pl.Int64
    members = small_sweep.members()
    assert len(members) == 6
    for s in range(3):  # member m is arm m // 3 on seed m % 3
        a = pl.read_parquet(members[s] / "citizens.parquet")
        b = pl.read_parquet(members[3 + s] / "citizens.parquet")
        assert a["conduct"].equals(b["conduct"]) and a["friends"].equals(b["friends"])
    e = small_sweep.effects().filter(pl.col("metric") == "penalties.total")
    assert e["n"].to_list() == [3] and e["arm"].to_list() == [small_sweep.arms[1]]
    by_seed = t.filter(pl.col("metric") == "penalties.total").sort("member")["value"]
    diffs = by_seed[3:].to_numpy() - by_seed[:3].to_numpy()
    assert e["mean"][0] == pytest.approx(diffs.mean())
    sens = small_sweep.sensitivity()
    assert set(sens["parameter"]) == {"rules.jaywalking.points"}  # the only one that varies


def test_report_and_plot_are_self_contained(small_sweep):
    html = (small_sweep.out / "report.html").read_text()
    assert "<script" not in html and "src=\"http" not in html
    assert html.count("src=\"data:image/png;base64,") >= 2
    assert "Forest plot" in html and "Which parameters move" in html and "95%" in html
    fig = small_sweep.plot()
    assert len([ax for ax in fig.axes if ax.get_visible()]) == len(small_sweep.headline())
    assert "mean" in small_sweep.summary().columns


def test_cli_ensemble_and_compare_with_seeds(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["ensemble", "essay", "--seeds", "2", "--citizens", "400",
                              "--days", "10", "--workers", "1", "--out", str(tmp_path / "e")])
    assert res.exit_code == 0, res.output
    assert "95%" in res.output and (tmp_path / "e" / "results.parquet").is_file()
    # Headline metrics under the reader's names, not metrics.json's keys.
    assert "penalties.tot" not in res.output and "sanctions_tot" not in res.output
    assert "sanctions" in res.output
    res = runner.invoke(app, ["ensemble", "essay", "--seeds", "2", "--citizens", "400",
                              "--days", "10", "--out", str(tmp_path / "e")])
    assert res.exit_code == 2 and "--resume" in res.output
    res = runner.invoke(app, ["compare", "essay", "null", "--seeds", "3", "--citizens", "500",
                              "--days", "15", "--workers", "2", "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert "sanctions applied" in res.output and "sanctions total" not in res.output
    results = Results(tmp_path / "c")
    e = results.effects()
    # null sanctions nobody: the paired effect on sanctions is A's own count, seed by seed
    own = results.summary().filter((pl.col("arm") == "essay")
                                   & (pl.col("metric") == "sanctions_total"))
    eff = e.filter(pl.col("metric") == "effects.sanctions_total")
    assert eff["mean"][0] == pytest.approx(own["mean"][0]) and eff["n"][0] == 3
    assert eff["lo"][0] == pytest.approx(own["lo"][0])
    html = (tmp_path / "c" / "report.html").read_text()
    assert "paired difference" in html and "95%" in html


def test_ray_is_named_when_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    res = CliRunner().invoke(app, ["ensemble", "essay", "--seeds", "2", "--ray",
                                   "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "metricpower[ray]" in res.output


def test_ray_gives_the_pools_table(tmp_path, small_sweep):
    from metricpower.ensembles import RayExecutor

    again = sweep(scenario(**TINY), {"rules.jaywalking.points": [-5, -30],
                                     "responses.deterrence.enabled": [True]}, seeds=3,
                  out=tmp_path / "ray", executor=RayExecutor(workers=2), report=False)
    assert again.table().equals(small_sweep.table())


def test_members_side_by_side_give_the_table_of_members_alone(tmp_path, small_sweep):
    """The sweep's members ran side by side (two tasks, each arm's members of a task in
    one engine); run one by one (`batch=0`), every member's metrics are the same."""
    alone = sweep(scenario(**TINY), {"rules.jaywalking.points": [-5, -30],
                                     "responses.deterrence.enabled": [True]}, seeds=3,
                  out=tmp_path / "alone", executor=LocalPool(2), report=False, batch=0)
    assert alone.table().equals(small_sweep.table())

    def shares(res) -> list[float]:
        """Each member's engine time: members side by side share theirs equally."""
        lines = (res.out / "manifest.jsonl").read_text().splitlines()
        return [json.loads(x)["seconds"]["simulate"] for x in lines]

    assert len(set(shares(small_sweep))) < 6 and len(set(shares(alone))) == 6


# ---------------------------------------------------------------- kill and resume
def test_a_killed_sweep_resumes_to_the_same_table(tmp_path, small_sweep):
    """Each member alone (`--batch 0`), one task a seed, one worker: the sweep is killed
    when the first seed's members have finished. (Side by side, the members a worker
    runs finish together; the manifest records members however they ran.)"""
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\n"rules.jaywalking.points" = [-5, -30]\n'
                    '"responses.deterrence.enabled" = [true]\n')
    out = tmp_path / "killed"
    args = [str(Path(sys.executable).parent / "metricpower"), "sweep", "essay", "--grid", str(grid),
            "--seeds", "3", "--seed", "7", "--citizens", str(TINY["citizens"]), "--days",
            str(TINY["days"]), "--workers", "1", "--batch", "0", "--out", str(out)]
    proc = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.is_file() and len(manifest.read_text().splitlines()) >= 2:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(manifest.read_text().splitlines())
    assert 2 <= finished < 6 and not (out / "results.parquet").exists()
    res = CliRunner().invoke(app, [*args[1:], "--resume"])
    assert res.exit_code == 0, res.output
    assert len(manifest.read_text().splitlines()) == 6
    assert pl.read_parquet(out / "results.parquet").equals(small_sweep.table())


# ---------------------------------------------------------------- the pool's start
@pytest.mark.parametrize("command", [
    ["ensemble", "essay", "--seeds", "2"],
    ["sweep", "essay", "--grid", str(ROOT / "examples" / "sweep.toml")],
    ["compare", "essay", "null", "--seeds", "2"],
])
def test_pool_commands_start_the_fork_server_before_importing_the_ensembles(tmp_path,
                                                                          command):
    """The fork server's imports take seconds; started before the command imports the
    ensembles package they run beside its imports. Here `start` only records whether that
    package was loaded; the command then stops on an --out that is a file."""
    (tmp_path / "file").write_text("mine")
    code = ("import sys\nimport metricpower.forkserver as f\nseen = []\n"
            "f.start = lambda: seen.append('metricpower.ensembles' in sys.modules)\n"
            "from metricpower.cli import app\n"
            f"try:\n    app({[*command, '--workers', '2', '--out', str(tmp_path / 'file')]!r})\n"
            "except SystemExit as e:\n    print(seen, e.code)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["[False]", "2"], out.stdout + out.stderr
    assert (tmp_path / "file").read_text() == "mine"
