"""Fingerprints of a run's tables, to pin the engine's output exactly (tests/golden/), and
its metrics.json, to pin what the metrics make of them.

Each column is hashed on its values (dictionary columns on their decoded names, floats
on their exact bits, nulls marked), so a restructured engine must reproduce every table
cell for cell; row counts and column names are kept beside the hashes so that a failure
says which table and which column moved. The metrics are kept whole (JSON keeps a float's
every bit), so a failure names the metric that moved.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from metricpower.runs import TABLES, simulate
from metricpower.scenario import load_preset

#: The pinned runs: the essay preset as it ships (every response on), and a longer one
#: where persistence at the bottom (checked 180 days after entry), prediction judgements
#: and an unlimited appeal office with a sampled ledger come into play.
GOLDEN_RUNS = {
    "essay_3000x60": {"run": {"citizens": 3000, "days": 60, "seed": 1}},
    "essay_1200x260_variant": {
        "bottom_tier": "B",
        "run": {"citizens": 1200, "days": 260, "seed": 5, "ledger_sample": 0.5},
        "responses": {"appeals": {"capacity_per_100k": "unlimited", "decision_days": 3},
                      "prediction": {"every": 20, "horizon": 40}},
    },
}


def column_hash(column: pa.ChunkedArray) -> str:
    array = column.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    h = hashlib.sha256(str(array.type).encode())
    valid = np.asarray(array.is_valid())
    h.update(valid.tobytes())
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        h.update("\x00".join("" if v is None else v for v in array.to_pylist()).encode())
    else:
        values = array.fill_null(False if pa.types.is_boolean(array.type) else 0)
        h.update(np.ascontiguousarray(values.to_numpy(zero_copy_only=False)).tobytes())
    return h.hexdigest()[:16]


def fingerprint(tables: dict[str, pa.Table]) -> dict:
    return {name: {"rows": tables[name].num_rows,
                   "columns": {c: column_hash(tables[name].column(c))
                               for c in tables[name].column_names}}
            for name in TABLES if name in tables}


def golden_run(name: str):
    return simulate(load_preset("essay", overrides=GOLDEN_RUNS[name]))


if __name__ == "__main__":  # rewrite the golden files: only when a change is intended
    import json
    from pathlib import Path

    for name in GOLDEN_RUNS:
        run = golden_run(name)
        path = Path(__file__).parent / "golden" / f"{name}.json"
        path.write_text(json.dumps(fingerprint(run.tables), indent=1) + "\n")
        print("wrote", path)
        path = path.with_suffix(".metrics.json")
        path.write_text(json.dumps(run.metrics, indent=1) + "\n")
        print("wrote", path)
