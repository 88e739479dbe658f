"""The GPU path without a GPU: what can be checked on a CPU.

- A machine without CuPy is told, with the extra to install, and nothing is written.
- The CuPy backend's own logic (scatter-multiply by multiplicity passes, runs of equal
  keys by cumulative sums, ranks, the device network cache) runs on a stand-in that is
  NumPy under CuPy's names, and gives the NumPy backend's tables exactly. Only the CUDA
  kernel for reductions over friends is replaced (by the CPU kernel it copies); it is
  left to the GPU run of benchmarks/gpu.py.
- The agreement check of benchmarks/gpu.py passes CPU against CPU on independent seeds
  and fails when one rule's points change by 30% (late repayment, -10 to -13: less than
  the third the issue asks to detect): p about 8e-7 against the Bonferroni threshold
  of 2e-4 over 50 tests, while CPU against CPU gives a worst p of about 0.003.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from golden_tables import fingerprint
from test_array_api import SMALL, VALIDITY
from typer.testing import CliRunner

import metricpower.memory
from metricpower.cli import app
from metricpower.engine import Engine, gpu
from metricpower.engine.backend import NumpyBackend
from metricpower.population import kernels, make_citizens, make_network
from metricpower.runs import _tables
from metricpower.scenario import load_preset

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
import gpu as bench  # noqa: E402  (benchmarks/gpu.py)


def test_gpu_backend_without_cupy_exits_2_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy fails, as without it
    target = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--preset", "essay", "--citizens", "200",
                                      "--days", "2", "--backend", "gpu", "--out", str(target)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "run.backend" in message and "metricpower[gpu]" in message
    assert "Traceback" not in result.output
    assert not target.exists()


def test_unknown_backend_is_a_scenario_error(tmp_path):
    result = CliRunner().invoke(app, ["run", "--preset", "essay", "--citizens", "200",
                                      "--days", "2", "--backend", "tpu",
                                      "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "backend" in result.output
    assert "Traceback" not in result.output


def _stand_in():
    """NumPy under the names the CuPy backend uses; the friend kernel is the CPU's."""

    def raw_kernel(source, name):
        assert "friend_reduce" in source and name == "friend_reduce"

        def launch(grid, block, args):
            indptr, indices, padded, out, n, minimum = args
            out[:] = kernels.reduce(indptr, indices, padded, bool(minimum), 1 << 22)

        return launch

    cupy = SimpleNamespace(**{k: getattr(np, k) for k in (
        "asarray", "unique", "bincount", "concatenate", "ones", "flatnonzero", "cumsum",
        "argsort", "empty", "int32", "int64", "float64")},
        ndarray=np.ndarray, asnumpy=np.asarray, RawKernel=raw_kernel)
    cupyx = SimpleNamespace(scatter_add=np.add.at, scatter_min=np.minimum.at)
    return cupy, cupyx


@pytest.mark.parametrize("overrides", [SMALL, VALIDITY], ids=["essay", "validity"])
def test_cupy_backend_logic_gives_the_numpy_tables(monkeypatch, overrides):
    monkeypatch.setattr(gpu, "load_cupy", _stand_in)
    tables = []
    for backend in (NumpyBackend(), gpu.CupyBackend()):
        sc = load_preset("essay", overrides)
        citizens = make_citizens(sc)
        engine = Engine(sc, citizens, make_network(sc, citizens), backend)
        engine.run()
        engine.host()
        tables.append(fingerprint(_tables(engine.member(0))))
        # Income feedback multiplied repeated citizens, and ties changed (the network
        # cache was renewed): the parts of the backend the comparison must cover.
        assert sum(r["ties_dropped"] for r in engine.daily) > 0
        assert int(engine.state.sanctions.sum()) > 0
        assert not np.array_equal(engine.state.income, citizens.income)
    assert tables[0] == tables[1]


def test_cupy_primitives_equal_numpy_on_repeats(monkeypatch):
    monkeypatch.setattr(gpu, "load_cupy", _stand_in)
    gpu_backend, ref = gpu.CupyBackend(), NumpyBackend()
    rng = np.random.default_rng(4)
    index = rng.integers(0, 30, 500)
    a = rng.random(30).astype(np.float32) + 0.5
    b = a.copy()
    gpu_backend.scatter_multiply(a, index, np.float32(0.97))
    ref.scatter_multiply(b, index, np.float32(0.97))
    assert np.array_equal(a, b)
    keys = np.sort(index)
    size = rng.integers(1, 9, 500)
    assert np.array_equal(gpu_backend.cumsum_within(keys, size), ref.cumsum_within(keys, size))
    assert np.array_equal(gpu_backend.rank_within(index), ref.rank_within(index))


#: Seeds a side: with 6, a rule's points planted a third higher reached p = 7e-7 on one
#: set of draws and 7e-4 on another (above the Bonferroni threshold, 2e-4), as the
#: spread between six seeds varies; with 8 the planted change is beyond doubt.
K = 8


@pytest.fixture(scope="module")
def side_a():
    return [bench.run_once(bench.essay(12_000, 90, s), "cpu") for s in range(1, K + 1)]


def test_agreement_check_passes_on_independent_cpu_runs(side_a):
    side_b = [bench.run_once(bench.essay(12_000, 90, s), "cpu")
              for s in range(K + 1, 2 * K + 1)]
    result = bench.agreement(side_a, side_b)
    assert result["tests"] > 40 and result["agree"], result["worst"]


def test_agreement_check_sees_a_rule_whose_points_change_by_under_a_third(side_a):
    side_b = [bench.run_once(bench.essay(12_000, 90, s, plant="late_repayment"), "cpu")
              for s in range(K + 1, 2 * K + 1)]
    result = bench.agreement(side_a, side_b)
    assert not result["agree"]
    assert result["worst"]["metric"] == "points:late_repayment"


def test_a_size_is_tried_only_where_the_account_says_it_fits():
    # The account of a real CPU run of the essay preset; an H200 machine's memories.
    cpu = bench.footprint.measure(50_000, 3)
    have = {"device": 141e9, "host": 120e9}
    per = bench.needs(1, cpu)
    assert per["device"] > cpu["on_gpu"]["device"] and per["host"] >= cpu["setup_peak"]
    assert bench.fits(100_000_000, cpu, have) is None
    reason = bench.fits(1_400_000_000, cpu, have)
    assert reason.startswith("not tried") and "GB on the" in reason
    largest = bench.largest_fitting(cpu, have)
    assert 100_000_000 <= largest < 1_400_000_000
    assert bench.fits(largest, cpu, have) is None
    assert bench.fits(largest + 10_000_000, cpu, have) is not None
    # Without a figure for the host's memory, only the device bounds.
    assert bench.largest_fitting(cpu, {"device": 141e9, "host": None}) > largest
    table = bench.markdown({"device": {"name": "H200"}, "machine": "m", "footprint_cpu": cpu,
                            "scale": [{"citizens": 1_400_000_000, "skipped": reason}]})
    assert reason in table and "| 1,400,000,000 |" in table and "Bytes per citizen" in table


def test_the_gpu_script_keeps_every_figure_it_can(tmp_path, monkeypatch):
    # benchmarks/gpu.py's main on a stand-in device: an agreement check that breaks is
    # recorded and the sizes still run; the country is reported as not fitting, the
    # largest population that fits is added; a size past the deadline is not started.
    cpu = bench.footprint.measure(20_000, 3)
    ran = []

    def scale_run(n, days, left):
        ran.append(n)
        return {"citizens": n, "build_s": 1.0, "days_done": days, "seconds": 2.0,
                "citizen_days_per_s": n * days / 2.0, "peak_device_bytes": 10**9}

    def broken(*args):
        raise RuntimeError("a CUDA kernel failed")

    monkeypatch.setattr(bench.footprint, "measure", lambda n, days: cpu)
    monkeypatch.setattr(bench, "device", lambda: {"name": "stand-in", "memory_bytes": 141e9})
    monkeypatch.setattr(metricpower.memory, "available_bytes", lambda: 120e9)
    monkeypatch.setattr(bench, "agreement_runs", broken)
    monkeypatch.setattr(bench, "scale_run", scale_run)
    with pytest.raises(SystemExit, match="a CUDA kernel failed"):
        bench.main(["--sizes", "100000000", "1400000000", "--days", "3",
                    "--out", str(tmp_path)])
    result = json.loads((tmp_path / "gpu.json").read_text())
    assert result["agreement"] == {"failed": "RuntimeError: a CUDA kernel failed"}
    largest = bench.largest_fitting(cpu, {"device": 141e9, "host": 120e9})
    assert ran == [100_000_000, largest]
    rows = {r["citizens"]: r for r in result["scale"]}
    assert rows[1_400_000_000]["skipped"].startswith("not tried: would need")
    table = (tmp_path / "gpu.md").read_text()
    assert "Agreement check failed" in table and f"| {largest:,} |" in table
    # Past the deadline, sizes that fit are not started.
    ran.clear()
    with pytest.raises(SystemExit):
        bench.main(["--sizes", "100000000", "--deadline-s", "0", "--out", str(tmp_path)])
    result = json.loads((tmp_path / "gpu.json").read_text())
    assert ran == [] and result["scale"] == [{"citizens": 100_000_000,
                                              "skipped": "not tried: out of time"}]
