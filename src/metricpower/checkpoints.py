"""Checkpoints of a run in progress, so that a run killed at any day can be resumed and
finish with the tables an uninterrupted run would have written.

While a run goes on, its in-progress folder sits beside the destination
(``runs/.NAME.partial/`` for ``runs/NAME``) and holds:

- ``scenario.toml`` — the resolved scenario (the run is rebuilt from it);
- ``run.json`` — where the run goes and how it is written;
- ``checkpoint.pkl`` — the engine's whole state at the end of a day (`Engine.checkpoint`):
  a line naming the format, a JSON header (day, scenario hash, version, size, CRC-32 of
  the state), then the state, pickled. Each checkpoint replaces the last by a rename, so a kill
  leaves either the old one or the new one, whole.

The folder is removed when the run is written. A checkpoint is read only if its header
and checksum match; it is this program's own state (pickle), not a file to accept from
others.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import pickle
import time
import types
import zlib
from pathlib import Path

from metricpower.engine import Engine
from metricpower.scenario import Scenario, load_scenario, to_toml
from metricpower.store import program_version

#: The format's number goes up when the state's layout changes within a version (2: the
#: ledger keeps its records in growing columns), so an older checkpoint is refused by name.
FORMAT = 3
MAGIC = f"metricpower checkpoint {FORMAT}\n".encode()
CHECKPOINT, SCENARIO, RUN = "checkpoint.pkl", "scenario.toml", "run.json"
#: The most of a run's time that automatic checkpoints may take; and the least time
#: between two (a run shorter than that is quicker to run again than to checkpoint).
BUDGET, LEAST_SECONDS = 0.02, 10.0


class CheckpointError(Exception):
    """A run cannot be checkpointed or resumed."""


def partial_folder(out: Path) -> Path:
    """The in-progress folder of a run whose destination is `out`."""
    return out.parent / f".{out.name}.partial"


def _atomic_write(path: Path, *parts: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        for part in parts:  # written in turn: no copy of a large state joined up
            f.write(part)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


class Checkpoints:
    """A run's in-progress folder. `every` days between checkpoints, or None: as often
    as keeps their measured cost within `BUDGET` of the run's time (the wait after each
    is at least its cost / BUDGET, and `LEAST_SECONDS`)."""

    def __init__(self, folder: Path, scenario: Scenario, out: Path, report: bool,
                 every: int | None):
        self.folder, self.scenario, self.out = folder, scenario, out
        self.report, self.every = report, every
        self.scenario_hash = hashlib.sha256(to_toml(scenario).encode()).hexdigest()
        self.saved: dict | None = None  # the state to resume from, if any
        self.written = 0
        self._cost = 0.0  # seconds the last checkpoint took
        self._since = time.perf_counter()

    @classmethod
    def begin(cls, scenario: Scenario, out: Path, report: bool = True,
              every: int | None = None) -> Checkpoints:
        """Open the in-progress folder of a new run (refused if one is already there)."""
        folder = partial_folder(out)
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            folder.mkdir()
        except FileExistsError:
            raise CheckpointError(
                f"{out}: an interrupted run of this destination is in {folder}; "
                f"`metricpower resume {out}` finishes it (delete that folder to start "
                f"afresh)") from None
        except OSError as err:
            raise CheckpointError(f"{folder}: cannot write checkpoints here "
                                  f"({err.strerror})") from None
        _atomic_write(folder / SCENARIO, to_toml(scenario).encode())
        _atomic_write(folder / RUN, json.dumps(
            {"out": str(out.resolve()), "report": report, "every": every}).encode())
        return cls(folder, scenario, out, report, every)

    @classmethod
    def reopen(cls, run: Path) -> Checkpoints:
        """The interrupted run `run` (its destination or its in-progress folder), with
        the state of its last checkpoint (none if it was killed before the first)."""
        folder = run if (run / RUN).is_file() else partial_folder(run)
        if not (folder / RUN).is_file():
            raise CheckpointError(f"{run}: no interrupted run to resume (no {folder / RUN})")
        try:
            options = json.loads((folder / RUN).read_text())
            out, report, every = Path(options["out"]), options["report"], options["every"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise CheckpointError(f"{folder / RUN}: unreadable ({err})") from None
        scenario = load_scenario(folder / SCENARIO)
        self = cls(folder, scenario, out, bool(report), every)
        if (folder / CHECKPOINT).exists():
            self.saved = self._load()
        return self

    def _load(self) -> dict:
        path = self.folder / CHECKPOINT
        try:
            header, payload = read(path)
        except OSError as err:
            raise CheckpointError(f"{path}: cannot read the checkpoint ({err.strerror})") \
                from None
        problem = None
        if header.get("scenario") != self.scenario_hash:
            problem = f"it belongs to another scenario than {self.folder / SCENARIO}"
        elif header.get("version") != program_version():
            problem = (f"it was written by metricpower {header.get('version')}, this is "
                       f"{program_version()}")
        if problem:
            raise CheckpointError(f"{path}: cannot resume: {problem}")
        try:
            return pickle.loads(payload)
        except Exception as err:  # a checksummed payload that does not load: any error
            raise CheckpointError(f"{path}: the checkpoint does not load ({err}); cannot "
                                  f"resume") from None

    def restore(self, engine: Engine) -> int:
        """Put the saved state, if any, into a new engine; returns the day to go on from."""
        if self.saved is None:
            return 0
        try:
            start = engine.resume(self.saved)
        except (ValueError, KeyError, AttributeError, TypeError) as err:
            raise CheckpointError(f"{self.folder / CHECKPOINT}: does not fit this engine "
                                  f"({err}); cannot resume") from None
        self.saved = None  # held by the engine now; free the copy
        return start

    def after(self, engine: Engine, day: int) -> None:
        """After `day`: checkpoint if one is due (never after the last day)."""
        if day == self.scenario.run.days - 1:
            return
        if self.every is not None:
            due = (day + 1) % self.every == 0
        else:
            due = time.perf_counter() - self._since >= max(LEAST_SECONDS, self._cost / BUDGET)
        if due:
            self.save(engine, day)

    def save(self, engine: Engine, day: int) -> None:
        t0 = time.perf_counter()
        payload = dumps(engine.checkpoint(day))
        header = {"day": day, "scenario": self.scenario_hash,
                  "version": program_version(), "size": len(payload),
                  "crc32": zlib.crc32(payload)}
        _atomic_write(self.folder / CHECKPOINT, MAGIC, json.dumps(header).encode() + b"\n",
                      payload)
        self.written += 1
        self._since = time.perf_counter()
        self._cost = self._since - t0

    def finish(self) -> None:
        """The run is written: remove the in-progress folder (only what this wrote)."""
        for name in (CHECKPOINT, f".{CHECKPOINT}.tmp", SCENARIO, RUN):
            (self.folder / name).unlink(missing_ok=True)
        self.folder.rmdir()


def read(path: Path) -> tuple[dict, memoryview]:
    """A checkpoint's header and state, checked whole (refused if truncated or altered)."""
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        older = data.split(b"\n", 1)[0].removeprefix(b"metricpower checkpoint ")
        if older.isdigit():
            raise CheckpointError(f"{path}: written in checkpoint format {older.decode()}, "
                                  f"this program reads format {FORMAT}; cannot resume "
                                  "(run it again from the start)")
        raise CheckpointError(f"{path}: not a metricpower checkpoint (or an unknown format)")
    line_end = data.find(b"\n", len(MAGIC))
    try:
        header = json.loads(data[len(MAGIC):line_end]) if line_end > 0 else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or not {"day", "size", "crc32"} <= set(header):
        raise CheckpointError(f"{path}: the checkpoint's header is damaged; cannot resume")
    payload = memoryview(data)[line_end + 1:]
    if len(payload) != header["size"]:
        raise CheckpointError(f"{path}: the checkpoint is truncated ({len(payload):,} of "
                              f"{header['size']:,} bytes); cannot resume")
    # CRC-32 finds damage (not tampering) at a fraction of a cryptographic hash's cost.
    if zlib.crc32(payload) != header["crc32"]:
        raise CheckpointError(f"{path}: the checkpoint is corrupt (checksum mismatch); "
                              f"cannot resume")
    return header, payload


def dumps(state: dict) -> bytes:
    """The engine's state (`Engine.checkpoint`) as bytes."""
    buffer = io.BytesIO()
    _StatePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
    return buffer.getvalue()


class _StatePickler(pickle.Pickler):
    """Pickles the engine's state; an array namespace the state holds (the backend's
    module: NumPy, array-api-strict, CuPy) is saved by name and imported again on load."""

    def reducer_override(self, obj):
        if isinstance(obj, types.ModuleType):
            return importlib.import_module, (obj.__name__,)
        return NotImplemented
