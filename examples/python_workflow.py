"""The Python workflow, end to end: load a preset, change a rule, run it and its no-policy
baseline on the same citizens, compare them, look at one figure, explain one citizen, and
write both run directories (which `metricpower serve RUNS` then shows in the browser).

    python examples/python_workflow.py [RUNS]      # default RUNS: runs/example

Small on purpose (3,000 citizens, 120 days): it runs in seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from metricpower.compare import compare, null_of
from metricpower.explain import history
from metricpower.runs import simulate
from metricpower.scenario import load_preset


def main(runs: Path) -> dict:
    # 1. a preset with overrides: jaywalking costs four times as many points
    scenario = load_preset("essay", {"run": {"citizens": 3_000, "days": 120, "seed": 3},
                                     "rules": [{"name": "jaywalking", "points": -20}]})
    policy = simulate(scenario)
    baseline = simulate(null_of(scenario))     # same citizens, network and seed; no policy

    # 2. the policy's effect, with everything else held equal (common random numbers)
    result = compare(policy, baseline, "jaywalking -20", "no policy")
    sanctions = result.effects["sanctions_total"]["difference"]
    chilled = result.effects["lawful_acts_chilled"]
    print(f"sanctions caused: {sanctions:,}; lawful acts chilled: {chilled:,}")

    # 3. a figure from the report (in a notebook, `policy.plot(...)` shows it inline)
    figure = policy.plot("tier-shares")
    runs.mkdir(parents=True, exist_ok=True)
    figure.save(runs / "tier-shares.svg")

    # 4. the citizen who lost most, as the system recorded them
    scores = policy.tables["citizens"]["score"].to_pylist()
    worst = min(range(len(scores)), key=scores.__getitem__)
    Console(width=120).print(history(policy, worst))

    # 5. run directories, each with its report; and the comparison report
    policy.write(runs / "jaywalking-20")
    baseline.write(runs / "null")
    result.write(runs / "compare-jaywalking-20-vs-null")
    return {"sanctions": sanctions, "chilled": chilled, "worst": worst}


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/example"))
