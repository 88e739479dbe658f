"""The examples run as a user would run them, and do what they say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from metricpower.runs import load_run

EXAMPLES = Path(__file__).parents[1] / "examples"


def test_python_workflow_example_runs(tmp_path):
    out = tmp_path / "runs"
    res = subprocess.run([sys.executable, str(EXAMPLES / "python_workflow.py"), str(out)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "sanctions caused:" in res.stdout and "score changes" in res.stdout
    policy = load_run(out / "jaywalking-20")
    assert {r.name: r.points for r in policy.scenario.rules}["jaywalking"] == -20
    assert load_run(out / "null").scenario.rules == []
    assert (out / "jaywalking-20" / "report.html").stat().st_size > 10_000
    assert (out / "compare-jaywalking-20-vs-null" / "comparison.html").is_file()
    assert (out / "tier-shares.svg").read_text().startswith("<svg")
