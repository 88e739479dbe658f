"""An ensemble's folder, written as members finish, so that memory does not grow with the
number of members and a killed ensemble can be resumed:

- ``plan.json`` — what is run (kind, arms with their parameters and scenarios, seeds);
- ``members/NNNNN/`` — each member's run directory;
- ``parts/NNNNN.parquet`` — each member's rows of the tidy table;
- ``manifest.jsonl`` — one line per finished member, appended after its part is in place,
  with where its time went (population build, simulation, writing, rows);
- ``results.parquet`` — the tidy table ``member, seed, [arm, parameters…], metric, value``
  of every member, assembled from the parts in member order when all have finished;
- ``summary.parquet``, ``effects.parquet`` and ``report.html`` — see `results`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from metricpower.ensembles.plan import Member, Plan
from metricpower.runs import OutputError

#: Numbers in metrics.json that are settings, not outcomes.
SETTINGS = {"citizens", "days", "seed", "initial_score"}


class Store:
    def __init__(self, out: str | Path, plan: Plan):
        self.out, self.plan = Path(out), plan

    # ------------------------------------------------------------ opening
    def open(self, resume: bool) -> set[int]:
        """Create the folder (or, with `resume`, continue the one there); returns the
        members already finished."""
        plan_file = self.out / "plan.json"
        wanted = json.dumps(self.plan.describe(), sort_keys=True)
        if self.out.exists():
            if not plan_file.is_file():
                raise OutputError(f"{self.out}: exists and is not an ensemble folder; choose "
                                  "another --out")
            if not resume:
                raise OutputError(f"{self.out}: an ensemble folder is already there; "
                                  "--resume continues it, or choose another --out")
            if json.loads(plan_file.read_text()) != json.loads(wanted):
                raise OutputError(f"{self.out}: holds a different plan (scenario, arms or "
                                  "seeds); --resume continues only the same one")
            return self.finished()
        try:
            (self.out / "parts").mkdir(parents=True)
            (self.out / "members").mkdir()
        except OSError as err:
            raise OutputError(f"{self.out}: cannot create the ensemble folder "
                              f"({err.strerror})") from None
        self._atomic(plan_file, wanted.encode())
        (self.out / "manifest.jsonl").touch()
        return set()

    def finished(self) -> set[int]:
        done = set()
        for line in (self.out / "manifest.jsonl").read_text().splitlines():
            try:
                m = json.loads(line)["member"]
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a kill: that member runs again
            if (self.out / "parts" / f"{m:05d}.parquet").is_file():
                done.add(m)
        return done

    # ------------------------------------------------------------ one member
    def schema(self) -> pa.Schema:
        fields = [pa.field("member", pa.int32()), pa.field("seed", pa.int64())]
        if self.plan.kind != "ensemble":
            fields.append(pa.field("arm", pa.string()))
            fields += [pa.field(p, _type([a.params.get(p) for a in self.plan.arms]))
                       for p in self.plan.params]
        return pa.schema([*fields, pa.field("metric", pa.string()),
                          pa.field("value", pa.float64())])

    def record(self, member: Member, rows: list[tuple[str, float]],
               seconds: dict[str, float]) -> None:
        rows = [(k, v) for k, v in rows if k not in SETTINGS]
        n = len(rows)
        schema = self.schema()
        arm = self.plan.arms[member.arm]
        cols = {"member": [member.member] * n, "seed": [member.seed] * n}
        if self.plan.kind != "ensemble":
            cols["arm"] = [arm.label] * n
            for p in self.plan.params:
                value = arm.params.get(p)
                if schema.field(p).type == pa.string() and value is not None:
                    value = json.dumps(value) if not isinstance(value, str) else value
                cols[p] = [value] * n
        cols["metric"] = [k for k, _ in rows]
        cols["value"] = [v for _, v in rows]
        part = self.out / "parts" / f"{member.member:05d}.parquet"
        tmp = part.with_name(f".{part.name}.tmp")
        pq.write_table(pa.table(cols, schema=schema), tmp)
        os.replace(tmp, part)
        with open(self.out / "manifest.jsonl", "a") as f:
            f.write(json.dumps({"member": member.member, "seed": member.seed,
                                "arm": arm.label, "seconds": seconds}) + "\n")
            f.flush()
            os.fsync(f.fileno())

    # ------------------------------------------------------------ the table
    def assemble(self, members: list[Member]) -> Path:
        """results.parquet from the parts, one part in memory at a time."""
        target = self.out / "results.parquet"
        tmp = target.with_name(".results.parquet.tmp")
        with pq.ParquetWriter(tmp, self.schema()) as writer:
            for m in sorted(members, key=lambda m: m.member):
                writer.write_table(pq.read_table(self.out / "parts" / f"{m.member:05d}.parquet",
                                                 schema=self.schema()))
        os.replace(tmp, target)
        return target

    def _atomic(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


def _type(values: list) -> pa.DataType:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pa.bool_()
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.int64()
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pa.float64()
    return pa.string()
