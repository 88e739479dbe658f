"""The ledger: one record per score change, never edited.
A reversal (an appeal upheld) is a new record whose `reverses` names the entry it undoes.

Each record says when, who, which rule, on what evidence (behaviour, sensor) and how
many points — and beside it the hidden truth the system never saw (was the act benign?
was the citizen even there?). Initial score + sum of a citizen's points = final score.
At large N only a seeded sample of citizens' records is kept; aggregates cover everyone.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from metricpower.ledger.schema import LEDGER

COLUMNS = tuple(c.name for c in LEDGER.fixed())
#: How each column is held while the run goes on (names as codes; -1 where none applies).
DTYPES = (np.int64, np.int16, np.int64, np.int16, np.int16, np.int16, np.int32, bool, bool,
          np.int64)


class Ledger:
    def __init__(self, kept: np.ndarray, rules: list[str], behaviours: list[str],
                 sensors: list[str]):
        self.kept = kept  # bool per citizen: their records are kept
        self.names = {"rule": rules, "behaviour": behaviours, "sensor": sensors}
        self._chunks: list[tuple[np.ndarray, ...]] = []
        self.next_entry = 0  # entries are numbered over everyone, kept or not

    def append(self, day: int, citizen: np.ndarray, rule: int | np.ndarray,
               points: np.ndarray | int, behaviour: np.ndarray | int = -1,
               sensor: np.ndarray | int = -1, benign: np.ndarray | bool = False,
               misattributed: np.ndarray | bool = False,
               reverses: np.ndarray | int = -1) -> np.ndarray:
        """Record score changes; returns their entry numbers."""
        entry = np.arange(self.next_entry, self.next_entry + len(citizen), dtype=np.int64)
        if not len(citizen):
            return entry
        self.next_entry += len(citizen)
        keep = self.kept[citizen]
        if not keep.any():
            return entry
        k = int(keep.sum())
        cols = (entry, day, citizen, rule, behaviour, sensor, points, benign, misattributed,
                reverses)
        chunk = []
        for value, dtype in zip(cols, DTYPES, strict=True):
            arr = np.asarray(value, dtype=dtype)
            chunk.append(arr[keep] if arr.ndim else np.full(k, arr, dtype=dtype))
        self._chunks.append(tuple(chunk))
        return entry

    def __len__(self) -> int:
        return sum(len(c[0]) for c in self._chunks)

    def columns(self) -> dict[str, np.ndarray]:
        if not self._chunks:
            return {c: np.zeros(0, d) for c, d in zip(COLUMNS, DTYPES, strict=True)}
        return {c: np.concatenate(parts)
                for c, parts in zip(COLUMNS, zip(*self._chunks, strict=True), strict=True)}

    def table(self) -> pa.Table:
        """The records as Arrow, names as dictionary columns (null where none applies)."""
        cols = self.columns()
        arrays = {}
        for name in COLUMNS:
            values = cols[name]
            if name in self.names:
                arrays[name] = pa.DictionaryArray.from_arrays(
                    pa.array(values.astype(np.int32), mask=values < 0),
                    pa.array(self.names[name], pa.string()))
            else:
                arrays[name] = pa.array(values)
        return pa.table(arrays)
