"""Checkpoints and `metricpower resume`: a run killed at any day and resumed writes the
tables an uninterrupted run writes, cell for cell (fingerprints of tests/golden_tables.py);
a damaged checkpoint is refused, never silently replaced by a fresh start."""

from __future__ import annotations

import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from golden_tables import fingerprint
from typer.testing import CliRunner

from metricpower.checkpoints import CHECKPOINT, Checkpoints, dumps, partial_folder, read
from metricpower.cli import app
from metricpower.engine import Engine
from metricpower.engine.responses import RESPONSES
from metricpower.engine.stages.base import Stage
from metricpower.population import make_citizens, make_network
from metricpower.runs import _tables, load_run, simulate
from metricpower.scenario import load_preset

runner = CliRunner()
#: The essay preset switches every response on; appeals and prediction are its stages
#: that only some policies have.
SCENARIO = {"run": {"citizens": 2000, "days": 120, "seed": 7}}
#: Kill days, drawn once (seeded) from the days a kill can find a checkpoint behind it.
KILL_AT = sorted(np.random.default_rng(12).choice(np.arange(10, 90), 3, replace=False))


@pytest.fixture(scope="module")
def uninterrupted():
    return fingerprint(simulate(load_preset("essay", overrides=SCENARIO)).tables)


def _run_args(out: Path) -> list[str]:
    rs = SCENARIO["run"]
    return ["run", "--preset", "essay", "--citizens", str(rs["citizens"]), "--days",
            str(rs["days"]), "--seed", str(rs["seed"]), "--checkpoint-every", "10",
            "--no-report", "--out", str(out)]


def _kill_when_checkpointed(out: Path, day: int) -> int:
    """Start `metricpower run` and kill -9 it once its checkpoint shows `day` or later;
    returns the checkpoint's day."""
    exe = Path(sys.executable).parent / "metricpower"
    proc = subprocess.Popen([str(exe), *_run_args(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    path = partial_folder(out) / CHECKPOINT
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if path.exists() and read(path)[0]["day"] >= day:
                proc.send_signal(signal.SIGKILL)
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.002)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return read(path)[0]["day"]


@pytest.mark.parametrize("day", KILL_AT)
def test_resume_after_kill_gives_the_uninterrupted_tables(tmp_path, uninterrupted, day):
    out = tmp_path / "essay"
    saved = _kill_when_checkpointed(out, day)
    assert saved >= day and not out.exists()
    result = runner.invoke(app, ["resume", str(out)])
    assert result.exit_code == 0, result.output
    assert fingerprint(load_run(out).tables) == uninterrupted
    assert not partial_folder(out).exists()  # the in-progress folder is cleaned up


def _engine(scenario) -> Engine:
    citizens = make_citizens(scenario)
    return Engine(scenario, citizens, make_network(scenario, citizens))


def _checkpointed(scenario, day: int) -> bytes:
    """The pickled checkpoint of a run at the end of `day`."""
    engine = _engine(scenario)
    for d in range(day + 1):
        engine.step(d)
    return dumps(engine.checkpoint(day))


def _resumed(scenario, blob: bytes, drop: tuple[type, str] | None = None) -> dict:
    """Tables of a run resumed in a new engine from `blob`, less the attribute `drop`
    (as if its class had not declared it)."""
    saved = pickle.loads(blob)
    engine = _engine(scenario)
    if drop is not None:
        cls, name = drop
        owner = [saved["engine"]] if cls is Engine else [
            saved["stages"][s.name] for s in engine.stages if type(s) is cls]
        for carried in owner:
            del carried[name]
    engine.run(start=engine.resume(saved))
    return fingerprint(_tables(engine.member(0)))


#: A run where, by day 69, every part of the state has something in it (predictions
#: judged, moves to the bottom, refusals by others, ties changed, appeals waiting, people
#: on the court list: its grounds made more frequent than the preset's documented inflow).
PROBE = {"run": {"citizens": 1500, "days": 90, "seed": 3}, "bottom_tier": "B",
         "behaviours": [{"name": "civil_fraud", "rate": 0.0002}],
         "responses": {"appeals": {"decision_days": 3},
                       "prediction": {"every": 10, "horizon": 20},
                       "labelling": {"services": ["internet", "utilities"], "refusal": 0.9}}}


def test_every_declared_state_is_needed_and_enough():
    """A resume from the middle of a run gives the run's tables; dropping any one
    declared attribute (of the engine or of any stage) from the checkpoint changes them:
    each declaration carries state, and together they carry all of it."""
    sc = load_preset("essay", overrides=PROBE)
    whole = fingerprint(simulate(sc).tables)
    blob = _checkpointed(sc, 69)
    assert _resumed(sc, blob) == whole
    carriers = [Engine, *Stage.__subclasses__(), *RESPONSES.values()]
    declared = [(cls, name) for cls in carriers for name in cls.__dict__.get("carries", ())]
    assert len(declared) >= 15
    for cls, name in declared:
        kept = cls.carries
        cls.carries = tuple(a for a in kept if a != name)
        try:
            assert _resumed(sc, blob, (cls, name)) != whole, \
                f"{cls.__name__}.{name} changes nothing"
        finally:
            cls.carries = kept


def _interrupted(tmp_path: Path) -> Path:
    """A run that wrote its checkpoints and was not finished (as after a kill)."""
    sc = load_preset("essay", overrides={"run": {"citizens": 500, "days": 12}})
    out = tmp_path / "essay"
    simulate(sc, checkpoints=Checkpoints.begin(sc, out, report=False, every=5))
    assert read(partial_folder(out) / CHECKPOINT)[0]["day"] == 9
    return out


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:len(b) // 2], "truncated"),
    (lambda b: b[:-100] + bytes(100), "corrupt"),
    (lambda b: b[:30] + b"{" + b[31:], "header is damaged"),
    (lambda b: b"", "not a metricpower checkpoint"),
    # The format before the stages kept their state per member (engine/members.py): its
    # state would load, then fail.
    (lambda b: b.replace(b"checkpoint 3\n", b"checkpoint 2\n", 1),
     "written in checkpoint format 2, this program reads format 3"),
])
def test_a_damaged_checkpoint_is_refused(tmp_path, damage, message):
    out = _interrupted(tmp_path)
    path = partial_folder(out) / CHECKPOINT
    path.write_bytes(damage(path.read_bytes()))
    before = path.read_bytes()
    result = runner.invoke(app, ["resume", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    # Nothing written, nothing restarted: the damaged checkpoint is left for the user.
    assert not out.exists() and path.read_bytes() == before


def test_resume_accepts_the_in_progress_folder_and_refuses_what_is_not_one(tmp_path):
    out = _interrupted(tmp_path)
    result = runner.invoke(app, ["run", "--preset", "essay", "--citizens", "500", "--out",
                                 str(out)])
    assert result.exit_code == 2 and "interrupted run" in result.output
    result = runner.invoke(app, ["resume", str(partial_folder(out))])
    assert result.exit_code == 0, result.output
    assert load_run(out).daily.num_rows == 12
    result = runner.invoke(app, ["resume", str(out)])
    assert result.exit_code == 2 and "no interrupted run" in result.output


def test_a_checkpoint_of_another_scenario_is_refused(tmp_path):
    out = _interrupted(tmp_path)
    toml = partial_folder(out) / "scenario.toml"
    text = toml.read_text()
    assert re.search(r"^seed = \d+$", text, re.M)
    toml.write_text(re.sub(r"^seed = \d+$", "seed = 99999", text, flags=re.M))
    result = runner.invoke(app, ["resume", str(out)])
    assert result.exit_code == 2, result.output
    assert "another scenario" in result.output and not out.exists()
