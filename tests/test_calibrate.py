"""`metricpower calibrate`: specs are checked like scenarios, a tiny study runs, writes its
report and tables, resumes after an interruption, and its fitted values can be saved
into a preset. The tiny spec (tests/calibration/tiny.toml) runs the court list preset on
1,000 citizens for 300 days, so a trial takes about a second."""

from __future__ import annotations

import csv
import datetime as dt
import math
import shutil
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import metricpower.calibrate as cal_module
from metricpower.calibrate import (
    CalibrationError,
    Simulated,
    calibrate,
    load_spec,
    loss,
    save,
    simulate_at,
    write_outputs,
)
from metricpower.cli import app
from metricpower.scenario import load_preset
from metricpower.scenario.load import resolve

TINY = Path(__file__).parent / "calibration" / "tiny.toml"
runner = CliRunner()


def spec_file(tmp_path, text: str, csv_text: str | None = None) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    shutil.copy(TINY.with_suffix(".csv"), tmp_path / "tiny.csv")
    if csv_text is not None:
        (tmp_path / "tiny.csv").write_text(csv_text)
    return path


def test_shipped_spec_loads_with_at_most_five_parameters():
    spec, targets = load_spec("court_blacklist")
    assert len(spec.parameters) <= 5
    held = {t.quantity for t in targets if t.date > spec.fit_until}
    assert {"people_listed", "flights_blocked", "trains_blocked"} <= held
    assert all(t.source for t in targets)
    assert spec.fit_until.isoformat() == "2017-12-31"


@pytest.mark.parametrize(("edit", "key", "words"), [
    (lambda t: t + "".join(f'\n[[parameters]]\nkey = "services.holidays.demand"\nlow = {k}\n'
                           f"high = 1\n" for k in (0.1, 0.2, 0.3, 0.4)),
     "parameters", "at most 5"),
    (lambda t: t.replace('key = "services.flights.demand"', 'key = "services.flights.demnd"'),
     "parameters[1].key", "no key"),
    (lambda t: t.replace("low = 0.001\n", "low = 0.1\n"), "parameters[1]", "below high"),
    (lambda t: t.replace('objective = ["people_listed", "flights_blocked"]',
                         'objective = ["people_listed", "moods"]'), "objective", "moods"),
])
def test_bad_specs_name_the_key(tmp_path, edit, key, words):
    path = spec_file(tmp_path, edit(TINY.read_text()))
    with pytest.raises(CalibrationError) as info:
        load_spec(path)
    assert info.value.key == key and words in info.value.message, info.value


def test_bad_target_rows_name_the_line(tmp_path):
    rows = TINY.with_suffix(".csv").read_text().splitlines()
    rows[3] = "2014-03-31,flights_blocked,lots,made up"
    path = spec_file(tmp_path, TINY.read_text(), "\n".join(rows) + "\n")
    with pytest.raises(CalibrationError) as info:
        load_spec(path)
    assert info.value.line == 4 and "positive number" in info.value.message


def test_missing_optuna_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(CalibrationError) as info:
        cal_module._optuna()
    assert "metricpower[calibrate]" in info.value.message
    monkeypatch.setitem(sys.modules, "cmaes", None)
    with pytest.raises(CalibrationError) as info:
        cal_module._sampler(None, {}, 1)
    assert "cmaes" in info.value.message and "metricpower[calibrate]" in info.value.message


def test_loss_is_zero_on_the_figures_and_weighs_sampling_error():
    spec, targets = load_spec(TINY)
    scenario = load_preset(spec.preset, spec.overrides)
    factor = scenario.run.represents / scenario.run.citizens
    runs = {q: np.zeros(scenario.run.days) for q in spec.quantities}
    for t in targets:
        runs[t.quantity][scenario.day_of(t.date):] = t.value / factor
    exact = Simulated(scenario, [runs])
    assert loss(spec, targets, exact) == pytest.approx(0.0, abs=1e-12)
    fitted = [t for t in targets if t.date <= spec.fit_until]
    off = {q: v * 1.2 for q, v in runs.items()}
    expected = np.mean([(0.2 * t.value) ** 2 / ((0.05 * t.value) ** 2 + factor * t.value)
                        for t in fitted])
    assert loss(spec, targets, Simulated(scenario, [off])) == pytest.approx(expected)


def test_increments_show_a_rate_the_held_out_years_did_not_keep():
    """Per-day increments between published dates: a simulated series that keeps the
    fitted rate against figures that sped up after the fitted dates shows a ratio of 1 on
    the fitted periods and below 1 on the held-out one, by exactly how much."""
    spec, targets = load_spec(TINY)
    scenario = load_preset(spec.preset, spec.overrides)
    factor = scenario.run.represents / scenario.run.citizens
    days = np.arange(scenario.run.days)
    flights = sorted((t.date, t.value) for t in targets if t.quantity == "flights_blocked")
    (fit_date, fit_value), (late_date, late_value) = flights
    per_day = fit_value / (fit_date - scenario.run.start).days
    runs = {q: np.zeros(scenario.run.days) for q in spec.quantities}
    runs["flights_blocked"] = days * per_day / factor  # the fitted rate, kept to the end
    cal = cal_module.Calibration(spec, targets, {}, {}, 0, 0.0, Simulated(scenario, [runs]),
                                 {}, 0.0)
    rows = [r for r in cal.increments() if r["quantity"] == "flights_blocked"]
    assert [r["held_out"] for r in rows] == [False, True]
    assert rows[0]["ratio"] == pytest.approx(1.0, rel=1e-3)
    observed_late = (late_value - fit_value) / (late_date - fit_date).days
    assert rows[1]["observed_per_day"] == pytest.approx(observed_late)
    assert rows[1]["ratio"] == pytest.approx(per_day / observed_late, rel=1e-3)
    assert rows[1]["ratio"] < 0.5  # the made-up figures more than double their pace
    # Only cumulative quantities of the objective: the list is a level in the tiny spec.
    assert {r["quantity"] for r in cal.increments()} == {"flights_blocked"}


def test_replicates_share_seeds_across_trials():
    spec, _ = load_spec(TINY)
    values = {"behaviours.refuses_to_pay.rate": 0.0005, "services.flights.demand": 0.01}
    settings = {"citizens": 1000, "replicates": 2, "seed": 3}
    a, b = simulate_at(spec, values, settings), simulate_at(spec, values, settings)
    for q in spec.quantities:
        assert np.array_equal(a.mean(q), b.mean(q))
    # The replicates differ from each other (different seeds), not between trials.
    assert not np.array_equal(a.runs[0]["people_listed"], a.runs[1]["people_listed"])
    # More demand for flights: more blocked flights, on the same draws of who is listed.
    more = simulate_at(spec, values | {"services.flights.demand": 0.03}, settings)
    assert np.array_equal(more.mean("people_listed"), a.mean("people_listed"))
    assert more.mean("flights_blocked")[-1] > 2 * a.mean("flights_blocked")[-1]


def test_tiny_calibration_resumes_after_interruption_and_writes_its_report(
        tmp_path, monkeypatch):
    import optuna

    out = tmp_path / "cal"
    calls = {"n": 0}
    real = cal_module.simulate_at

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(cal_module, "simulate_at", interrupted)
    with pytest.raises(KeyboardInterrupt):
        calibrate(str(TINY), out, trials=3, replicates=1, citizens=1000)
    storage = f"sqlite:///{out / 'study.db'}"
    study = optuna.load_study(study_name="court_blacklist", storage=storage)
    first = study.trials[0]
    assert first.state == optuna.trial.TrialState.COMPLETE
    # The first trial is the preset's own values (with the spec's overrides).
    assert first.params["behaviours.refuses_to_pay.rate"] == pytest.approx(0.0005)
    monkeypatch.setattr(cal_module, "simulate_at", real)

    # Resumed through the command line: the finished trial is kept, two more run.
    result = runner.invoke(app, ["calibrate", str(TINY), "--out", str(out), "--trials", "3",
                                 "--replicates", "1", "--citizens", "1000"])
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="court_blacklist", storage=storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 3 and study.trials[0].params == first.params
    assert study.trials[0].value == first.value

    html = (out / "calibration.html").read_text()
    assert "Observed against simulated" in html and "Fitted values" in html
    assert "Between published dates" in html
    assert html.count("data:image/png;base64,") == 2  # one figure per quantity
    assert "<script" not in html and "http://" not in html and "https://" not in html
    rows = list(csv.DictReader((out / "calibration.csv").open()))
    assert len(rows) == 5 and {r["fitted"] for r in rows} == {"True", "False"}
    for r in rows:
        observed, simulated = float(r["observed"]), float(r["simulated"])
        assert float(r["error"]) == pytest.approx((simulated - observed) / observed)
        assert float(r["low"]) <= simulated <= float(r["high"])

    # Other settings cannot resume this study.
    again = runner.invoke(app, ["calibrate", str(TINY), "--out", str(out), "--trials", "3",
                                "--replicates", "2", "--citizens", "1000"])
    assert again.exit_code == 2 and "give the same settings" in again.output


def test_save_writes_fitted_values_into_the_preset(tmp_path):
    out = tmp_path / "cal"
    result = calibrate(str(TINY), out, trials=1, replicates=1, citizens=1000)
    write_outputs(result, out)
    folder = tmp_path / "presets"
    folder.mkdir()
    preset = Path(str(load_preset.__globals__["resources"].files(
        "metricpower.scenario.presets"))) / "court_blacklist.toml"
    shutil.copy(preset, folder)
    before = (folder / "court_blacklist.toml").read_text()
    paths = save(result, folder)
    text = paths[0].read_text()
    data = tomllib.loads(text)
    rate = next(b["rate"] for b in data["behaviours"] if b["name"] == "refuses_to_pay")
    demand = next(s["demand"] for s in data["services"] if s["name"] == "flights")
    assert rate == float(f"{result.best['behaviours.refuses_to_pay.rate']:.4g}")
    assert demand == float(f"{result.best['services.flights.demand']:.4g}")
    # Only the fitted lines changed, and the file still validates as a scenario.
    changed = [(a, b) for a, b in zip(before.splitlines(), text.splitlines(), strict=True)
               if a != b]
    assert len(changed) == 2 and all("# fitted" in b for _, b in changed)
    resolve(data, str(paths[0]), text)
    held = list(csv.DictReader(paths[1].open()))
    assert [r["date"] for r in held] == ["2014-07-20", "2014-07-20"]
    assert all(math.isfinite(float(r["error"])) for r in held)


def test_a_counts_interval_in_the_table_stops_at_zero():
    """A count of a handful of sampled people scaled to a country has a sampling interval
    of ±1.96 standard errors reaching below 0; the table cuts it at 0, the true count's
    floor, and leaves an interval clear of 0 as it was."""
    spec, targets = load_spec(TINY)
    scenario = load_preset(spec.preset, spec.overrides)
    runs = {q: np.zeros(scenario.run.days) for q in spec.quantities}
    for t in targets:  # one sampled event or citizen at each figure, 10,000 at the last
        runs[t.quantity][scenario.day_of(t.date):] = 1.0
    last = max(t.date for t in targets)
    for q in runs:
        runs[q][scenario.day_of(last):] = 10_000.0
    sim = Simulated(scenario, [runs])
    cal = cal_module.Calibration(spec, targets, {}, {}, 0, 0.0, sim, {}, 0.0)
    rows = cal.table()
    small = [r for r in rows if r["simulated"] == pytest.approx(sim.factor)]
    assert small and all(r["low"] == 0.0 for r in small)
    # Uncut, those would have gone below 0: 1.96 standard errors exceed the count.
    assert all(r["simulated"] - 1.96 * sim.factor < 0 for r in small)
    big = [r for r in rows if r["simulated"] == pytest.approx(10_000 * sim.factor)]
    assert big
    for r in big:
        q = r["quantity"]
        se = sim.se(q, spec.quantities[q].kind, dt.date.fromisoformat(r["date"]))
        assert r["low"] == pytest.approx(r["simulated"] - 1.96 * se) and r["low"] > 0


def test_replicates_side_by_side_give_the_series_of_each_alone():
    # A trial's replicates run as one batch per worker; each replicate's series is its
    # run alone, and the replicates keep their order (the mean adds them in it).
    from concurrent.futures import ProcessPoolExecutor

    spec, _ = load_spec(TINY)
    values = {"behaviours.refuses_to_pay.rate": 0.0005, "services.flights.demand": 0.01}
    settings = {"citizens": 1000, "replicates": 3, "seed": 3}
    base = spec.with_values(values)
    alone = [cal_module.series([load_preset(spec.preset, cal_module.merge(
        base, {"run": {"citizens": 1000, "seed": 3 + r}}))], spec.quantities)[0]
        for r in range(3)]
    batched = simulate_at(spec, values, settings)
    with ProcessPoolExecutor(2) as pool:
        split = simulate_at(spec, values, settings, pool, workers=2)
    for sim in (batched, split):
        assert len(sim.runs) == 3
        for mine, own in zip(sim.runs, alone, strict=True):
            for q in spec.quantities:
                assert np.array_equal(mine[q], own[q]), q
    assert not np.array_equal(alone[0]["people_listed"], alone[1]["people_listed"])


def test_the_shipped_held_out_table_is_what_the_preset_gives():
    # The held-out table shipped beside the preset, against the preset's fitted values
    # run now (3 seeds × 50,000 citizens × 2,130 days, as the calibration ran them): the
    # table a researcher cites is what the program gives. One event more or less in one
    # seed moves a flights figure by 9,400, so the comparison is exact.
    spec, targets = load_spec("court_blacklist")
    preset = load_preset(spec.preset, spec.overrides)
    current = preset.model_dump()
    best = {p.key: cal_module._value(current, p.key) for p in spec.parameters}
    settings = {"citizens": preset.run.citizens, "replicates": 3, "seed": 1}
    sim = simulate_at(spec, best, settings)
    folder = Path(str(load_preset.__globals__["resources"].files(
        "metricpower.scenario.presets")))
    shipped = list(csv.DictReader((folder / "court_blacklist.holdout.csv").open()))
    assert len(shipped) == sum(t.date > spec.fit_until for t in targets) > 10
    for row in shipped:
        date = dt.date.fromisoformat(row["date"])
        assert float(row["simulated"]) == pytest.approx(sim.at(row["quantity"], date),
                                                        abs=1.0), row
