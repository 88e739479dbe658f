"""The ledger: one record per score change, never edited.
A reversal (an appeal upheld) is a new record whose `reverses` names the entry it undoes.

Each record says when, who, which rule, on what evidence (behaviour, sensor) and how
many points — and beside it the hidden truth the system never saw (was the act benign?
was the citizen even there?). Initial score + sum of a citizen's points = final score.
At large N only a seeded sample of citizens' records is kept; aggregates cover everyone.
An engine holding several members keeps one ledger, numbering each member's entries
from 0 as its own run would; `part` is one member's.
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
                 sensors: list[str], member: np.ndarray | None = None):
        self.kept = kept  # bool per citizen: their records are kept
        #: The member of each citizen, where the ledger holds several members' records.
        self.member = member
        self.names = {"rule": rules, "behaviour": behaviours, "sensor": sensors}
        # The kept records column by column, in arrays grown by half as records come: an
        # append copies its rows in, and the table is a slice (thousands of appended pieces
        # cost more to join up at the end than the run takes to write them).
        self._columns = [np.empty(0, dtype) for dtype in DTYPES]
        self._rows = 0
        # Entries are numbered over everyone, kept or not (per member).
        self.next_entry = 0 if member is None else np.zeros(int(member.max()) + 1, np.int64)

    def append(self, day: int, citizen: np.ndarray, rule: int | np.ndarray,
               points: np.ndarray | int, behaviour: np.ndarray | int = -1,
               sensor: np.ndarray | int = -1, benign: np.ndarray | bool = False,
               misattributed: np.ndarray | bool = False,
               reverses: np.ndarray | int = -1) -> np.ndarray:
        """Record score changes; returns their entry numbers."""
        if self.member is None:
            entry = np.arange(self.next_entry, self.next_entry + len(citizen), dtype=np.int64)
            self.next_entry += len(citizen)
        else:
            entry = self._numbered(self.member[citizen])
        if not len(citizen):
            return entry
        keep = self.kept[citizen]
        if not keep.any():
            return entry
        start = self._rows
        end = start + int(keep.sum())
        if end > len(self._columns[0]):
            size = max(end, len(self._columns[0]) * 3 // 2, 1024)
            self._columns = [np.concatenate([col[:start], np.empty(size - start, col.dtype)])
                             for col in self._columns]
        cols = (entry, day, citizen, rule, behaviour, sensor, points, benign, misattributed,
                reverses)
        for col, value, dtype in zip(self._columns, cols, DTYPES, strict=True):
            arr = np.asarray(value, dtype=dtype)
            col[start:end] = arr[keep] if arr.ndim else arr
        self._rows = end
        return entry

    def _numbered(self, member: np.ndarray) -> np.ndarray:
        """Entry numbers for new records of these members, each member's in order."""
        order = np.argsort(member, kind="stable")
        counts = np.bincount(member, minlength=len(self.next_entry))
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        entry = np.empty(len(member), np.int64)
        entry[order] = (np.arange(len(member)) - np.repeat(first, counts)
                        + np.repeat(self.next_entry, counts))
        self.next_entry += counts
        return entry

    def part(self, start: int, end: int, member: int) -> Ledger:
        """The records of member `member`, whose citizens are `start` to `end`, with its
        citizens numbered from 0 (the ledger itself where it holds one member)."""
        if self.member is None:
            return self
        out = Ledger(self.kept[start:end], *self.names.values())
        citizen = self._columns[COLUMNS.index("citizen")][:self._rows]
        mine = (citizen >= start) & (citizen < end)
        out._columns = [col[:self._rows][mine] for col in self._columns]
        out._columns[COLUMNS.index("citizen")] -= start
        out._rows = int(mine.sum())
        out.next_entry = int(self.next_entry[member])
        return out

    def __len__(self) -> int:
        return self._rows

    def __getstate__(self) -> dict:
        """A checkpoint holds the records, not the room left to grow."""
        return self.__dict__ | {"_columns": [col[:self._rows] for col in self._columns]}

    def columns(self) -> dict[str, np.ndarray]:
        return {c: col[:self._rows].copy()
                for c, col in zip(COLUMNS, self._columns, strict=True)}

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
