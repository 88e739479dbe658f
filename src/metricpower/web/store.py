"""The runs folder as the dashboard sees it: what is in it, paths kept inside it, and runs
read once and kept while their files are unchanged."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset  # noqa: F401  (pq.read_table reads through it: imported at start-up,
import pyarrow.parquet as pq  # not inside the first request that reads a run)

from metricpower.runs import Run
from metricpower.scenario import Scenario, load_scenario
from metricpower.store import verify

#: Files that mark a folder the dashboard lists, and the kind each marks. A run has its
#: scenario and metrics; a comparison its comparison.json; an ensemble or a sweep its
#: plan.json (whose "kind" says which). The dashboard does not look inside a marked
#: folder (an ensemble's members are runs of their own).
MARKERS = (("metrics.json", "run"), ("comparison.json", "comparison"),
           ("plan.json", "ensemble"))
#: Files under the runs folder that may be opened from the dashboard as they are.
VIEWABLE = {".html": "text/html; charset=utf-8", ".json": "application/json",
            ".svg": "image/svg+xml", ".png": "image/png", ".toml": "text/plain; charset=utf-8",
            ".md": "text/plain; charset=utf-8"}


class Refused(Exception):
    """A path outside the runs folder, or one that is not there."""


@dataclass
class Entry:
    name: str           # path relative to the runs folder, with '/'
    kind: str
    scenario: str
    citizens: int | None
    days: int | None
    seed: int | None
    modified: float


@dataclass
class LoadedRun:
    """The parts of a run directory the dashboard shows, read when first needed: the
    scenario, metrics and small tables at once; the citizens table column by column
    (a page reads only the columns it shows); the ledger one citizen at a time."""

    path: Path
    scenario: Scenario
    metrics: dict
    tables: dict
    citizen_count: int
    _columns: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def citizens(self, columns: list[str] | tuple[str, ...] | None = None) -> pa.Table:
        """Columns of the citizens table (all when None), each read from disk once."""
        names = list(columns) if columns is not None else pq.read_schema(
            self.path / "citizens.parquet").names
        with self._lock:
            missing = [c for c in names if c not in self._columns]
            if missing:
                part = pq.read_table(self.path / "citizens.parquet", columns=missing)
                self._columns.update(zip(part.column_names, part.columns, strict=True))
            return pa.table({c: self._columns[c] for c in names})

    def citizen(self, citizen: int) -> dict:
        """One citizen's row, every column."""
        return self.citizens().slice(citizen, 1).to_pylist()[0]

    def run(self, columns: list[str] | tuple[str, ...] | None = None,
            ledger: tuple[str, ...] = ()) -> Run:
        """The run as a Run of the small tables and the citizens' `columns`; with `ledger`,
        those columns of the ledger too (never the whole of it)."""
        tables = {**self.tables, "citizens": self.citizens(columns)}
        if ledger:
            tables["ledger"] = pq.read_table(self.path / "ledger.parquet", columns=list(ledger))
        return Run(self.scenario, tables, self.metrics)

    def ledger_of(self, citizen: int):
        """One citizen's ledger entries, read from disk with a filter (never the whole
        ledger into memory)."""
        path = self.path / "ledger.parquet"
        table = pq.read_table(path, filters=[("citizen", "=", citizen)])
        return table.filter(pc.equal(table["citizen"], citizen))


class RunsFolder:
    def __init__(self, root: str | Path, cache_size: int = 8):
        self.root = Path(root).resolve()
        self._cache: OrderedDict[tuple, LoadedRun] = OrderedDict()
        self._size = cache_size
        self._lock = threading.Lock()

    def inside(self, rel: str) -> Path:
        """`rel` as a path inside the runs folder; Refused when it would leave it (``..``,
        an absolute path, a link pointing out) or names a hidden entry (a run still being
        written lives in a hidden temporary folder)."""
        parts = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
        if any(p.startswith(".") for p in parts):
            raise Refused(f"{rel!r} is not in the runs folder")
        path = self.root.joinpath(*parts).resolve()
        if not path.is_relative_to(self.root):
            raise Refused(f"{rel!r} is outside the runs folder")
        if not path.exists():
            raise Refused(f"{rel!r} is not in the runs folder")
        return path

    def entries(self, depth: int = 3) -> list[Entry]:
        """Every folder (to `depth` levels) holding a marker file, newest first."""
        found: list[Entry] = []

        def visit(folder: Path, level: int) -> None:
            marked = [(m, k) for m, k in MARKERS if (folder / m).is_file()]
            if marked and folder != self.root:
                found.append(self._entry(folder, *marked[0]))
                return
            if level >= depth:
                return
            try:
                children = sorted(p for p in folder.iterdir()
                                  if p.is_dir() and not p.name.startswith("."))
            except OSError:
                return
            for child in children:
                visit(child, level + 1)

        if self.root.is_dir():
            visit(self.root, 0)
        return sorted(found, key=lambda e: -e.modified)

    def _entry(self, folder: Path, marker: str, kind: str) -> Entry:
        name = folder.relative_to(self.root).as_posix()
        sc, n, days, seed = "", None, None, None
        try:
            m = json.loads((folder / marker).read_text())
        except (OSError, ValueError):
            m, kind = {}, f"unreadable {kind}"
        if kind == "run":
            sc, n, days, seed = (m.get("scenario", ""), m.get("citizens"), m.get("days"),
                                 m.get("seed"))
        elif kind == "ensemble" and isinstance(m, dict):
            kind = str(m.get("kind") or "ensemble")
            arms = m.get("arms") or [{}]
            sc = ", ".join(str((a.get("scenario") or {}).get("name", "")) for a in arms[:3])
        return Entry(name, kind, sc, n, days, seed, (folder / marker).stat().st_mtime)

    def run(self, rel: str) -> LoadedRun:
        path = self.inside(rel)
        if not (path / "scenario.toml").is_file() or not (path / "metrics.json").is_file():
            raise Refused(f"{rel!r} is not a run directory")
        key = (path, (path / "metrics.json").stat().st_mtime_ns)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        loaded = _load(path)
        with self._lock:
            self._cache[key] = loaded
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return loaded


def _load(path: Path) -> LoadedRun:
    # Checked against its manifest once, when first read (then cached): a file changed,
    # truncated or missing since the run was written is an error page, not numbers.
    verify(path)
    scenario = load_scenario(path / "scenario.toml")
    metrics = json.loads((path / "metrics.json").read_text())
    tables = {}
    for name in ("daily", "consequences", "services"):
        if (path / f"{name}.parquet").is_file():
            tables[name] = pq.read_table(path / f"{name}.parquet")
    n = pq.ParquetFile(path / "citizens.parquet").metadata.num_rows
    return LoadedRun(path, scenario, metrics, tables, n)


__all__ = ["MARKERS", "VIEWABLE", "Entry", "LoadedRun", "Refused",
           "RunsFolder"]
