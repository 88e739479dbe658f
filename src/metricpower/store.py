"""Run directories on disk: written whole or not at all, replaced only when they are runs.

A run is written into a hidden temporary sibling (`.NAME.tmp-XXXX`), completed with a
`manifest.json` (program, version, scenario hash, seed, row counts, every file's size
and SHA-256), and only then renamed into place. The manifest is the completion marker:
a folder without one is not a run, whatever else it holds.

What may be replaced: nothing but a previous run of this program, and only when asked
(`force`): a folder holding anything the program does not write (a thesis, a
sub-folder) is refused, so that nothing outside a run is ever deleted. A replaced run
is first renamed aside, the new one renamed in, and only then the old one removed: a
crash between the steps leaves both, never neither. Writers of one folder take turns
through an advisory lock on its parent folder, so that concurrent runs never mix.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PROGRAM = "metricpower"
MANIFEST = "manifest.json"
#: The report is a view of the tables that `metricpower report` may rewrite: listed in a
#: run, but not checksummed.
REPORT = "report.html"
#: Temporary and set-aside folders carry these markers after their leading dot.
TEMP_MARK, ASIDE_MARK = ".tmp-", ".old-"
#: Highest suffix tried for a fresh default folder (runs/essay, runs/essay-2, …).
MAX_FRESH = 10_000


class OutputError(Exception):
    """A run directory that cannot be written, or a folder that is not a complete run.
    Its message is meant for the user as it is."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.cache
def program_version() -> str:
    """This program's installed version, as manifests record it (looked up once: reading
    the package metadata takes some milliseconds, paid otherwise by every member)."""
    return version(PROGRAM)


def write_table(table: pa.Table, path: Path) -> None:
    """One table of a run as Parquet, with dictionary encoding (which Parquet otherwise
    tries on every column) for its categorical columns only: on ids, days, counts and
    shares it cost more time than it saved space (a run of 100,000 citizens × 365 days
    wrote its tables some 60% slower, into files 3% smaller). The values, their types and
    the categories read back as they were written."""
    categorical = [f.name for f in table.schema if pa.types.is_dictionary(f.type)]
    pq.write_table(table, path, use_dictionary=categorical)


def run_files(tables: tuple[str, ...]) -> set[str]:
    """Every name a run directory of these tables may hold."""
    return {"scenario.toml", "metrics.json", MANIFEST, REPORT,
            *(f"{name}.parquet" for name in tables)}


def is_temporary(path: Path) -> bool:
    name = path.name
    return name.startswith(".") and (TEMP_MARK in name or ASIDE_MARK in name)


def check_target(out: Path, force: bool, tables: tuple[str, ...]) -> None:
    """Refuse, before any work, an `out` this program may not write: a symbolic link, a
    file, a folder that holds other things than a run, a run without `force`, or a place
    where no folder can be made."""
    if out.is_symlink():
        raise OutputError(f"{out}: is a symbolic link; give the folder it points to, or "
                          "another name")
    if is_temporary(out):
        raise OutputError(f"{out}: names a temporary folder of this program; give another "
                          "name")
    if out.exists():
        if not out.is_dir():
            raise OutputError(f"{out}: cannot create the run directory ({out} is a file)")
        _check_replaceable(out, force, tables)
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{out}: cannot create the run directory ({parent} is a file)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: cannot write the run directory ({parent} is not "
                          "writable)")


def _check_replaceable(out: Path, force: bool, tables: tuple[str, ...]) -> None:
    try:
        entries = list(out.iterdir())
    except OSError as err:
        raise OutputError(f"{out}: cannot look into the folder ({err.strerror})") from None
    if not entries:
        return  # an empty folder: nothing to lose
    allowed = run_files(tables)
    foreign = sorted(e.name for e in entries if e.name not in allowed or not e.is_file()
                     or e.is_symlink())
    # A run of an earlier version has no manifest, but only files a run holds.
    if foreign or not ((out / MANIFEST).is_file() or (out / "scenario.toml").is_file()):
        shown = ", ".join(foreign[:5]) + (", …" if len(foreign) > 5 else "")
        raise OutputError(
            f"{out}: the folder is not empty and is not a run of {PROGRAM} "
            + (f"(it holds {shown})" if foreign else "(no manifest.json or scenario.toml)")
            + "; nothing was written. Give a new or empty folder with --out")
    if not force:
        raise OutputError(f"{out}: holds an earlier run; add --force to replace it, or give "
                          "another folder with --out")


def fresh(base: Path) -> Path:
    """`base` if nothing is there, else the first free `base-2`, `base-3`, …"""
    if not base.exists() and not base.is_symlink():
        return base
    for k in range(2, MAX_FRESH):
        candidate = base.with_name(f"{base.name}-{k}")
        if not candidate.exists() and not candidate.is_symlink():
            return candidate
    raise OutputError(f"{base}: {MAX_FRESH} earlier runs of this name; give --out")


@contextlib.contextmanager
def _locked(folder: Path, missing_ok: bool = False) -> Iterator[None]:
    """Hold the advisory lock of `folder` (flock on the folder itself: no lock file is
    left behind, and a killed writer's lock goes with it). `missing_ok`: go on without
    the lock when the folder cannot be opened (there is no run in it to replace)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        if not missing_ok:
            raise
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_run(out: Path, fill: Callable[[Path], dict], *, force: bool = False,
              fresh_name: bool = False, tables: tuple[str, ...] = ()) -> Path:
    """Write a run directory at `out` (or, with `fresh_name`, at the first free name
    from `out`): `fill(tmp)` writes the files into the temporary folder and returns the
    manifest's description of the run; the manifest is added and the folder renamed into
    place. Returns where the run now is."""
    # Under the lock: a writer replacing the run there renames it aside and the new one
    # in, and a look between the two would see no run.
    with _locked(out.parent, missing_ok=True):
        check_target(fresh(out) if fresh_name else out, force, tables)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{TEMP_MARK}", dir=out.parent))
        tmp.chmod(0o755)
    except OSError as err:
        raise OutputError(f"{out}: cannot write the run directory here ({err.strerror})") \
            from None
    try:
        about = fill(tmp)
        files = {}
        for path in sorted(tmp.iterdir()):
            if path.name == REPORT:
                continue
            entry = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
            if path.suffix == ".parquet":
                entry["rows"] = pq.read_metadata(path).num_rows
            files[path.name] = entry
        manifest = {"program": PROGRAM, **about, "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        with _locked(out.parent):
            if fresh_name:
                out = fresh(out)
            _commit(tmp, out, force, tables)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _commit(tmp: Path, out: Path, force: bool, tables: tuple[str, ...]) -> None:
    """Rename `tmp` to `out` (under the parent's lock), setting a replaced run aside
    first and removing it only once the new one is in place."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        check_target(out, force, tables)
    if out.exists():
        # Checked again: another writer may have finished here since the first check.
        _check_replaceable(out, force, tables)
        if any(out.iterdir()):
            aside = Path(tempfile.mkdtemp(prefix=f".{out.name}{ASIDE_MARK}", dir=out.parent))
            os.rename(out, aside / "run")
            try:
                os.rename(tmp, out)
            except BaseException:
                os.rename(aside / "run", out)
                aside.rmdir()
                raise
            shutil.rmtree(aside)
            return
    os.rename(tmp, out)


def verify(path: Path) -> dict:
    """The manifest of the complete run at `path`; OutputError if it is not one: a
    temporary folder, no or a broken manifest, a file missing, truncated or changed."""
    if is_temporary(path):
        raise OutputError(f"{path}: a temporary folder of an unfinished (or set-aside) run, "
                          "not a run; run the scenario again")
    if path.is_symlink() and not path.exists():
        raise OutputError(f"{path}: a symbolic link to nothing")
    if not path.is_dir():
        raise OutputError(f"{path}: no such run directory")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise OutputError(f"{path}: not a run directory, or not a complete one (no "
                          f"{MANIFEST}: the run was interrupted, or the folder was not "
                          f"written by {PROGRAM})")
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
        if manifest.get("program") != PROGRAM or not isinstance(files, dict):
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise OutputError(f"{path}: {MANIFEST} is damaged; the run cannot be trusted") \
            from None
    for name, entry in files.items():
        file = path / name
        if Path(name).name != name or not file.is_file():
            raise OutputError(f"{path}: {name} is missing; the run is incomplete")
        try:
            size, digest = entry["bytes"], entry["sha256"]
        except (KeyError, TypeError):
            raise OutputError(f"{path}: {MANIFEST} is damaged; the run cannot be "
                              "trusted") from None
        if file.stat().st_size != size:
            raise OutputError(f"{path}: {name} has {file.stat().st_size:,} bytes, the run "
                              f"wrote {size:,}: it was truncated or replaced")
        if _sha256(file) != digest:
            raise OutputError(f"{path}: {name} is not the file this run wrote (its checksum "
                              "differs): it was changed or replaced")
    return manifest


def write_file(path: Path, write: Callable[[Path], None]) -> Path:
    """Write one file through a temporary sibling renamed into place; refuse a missing
    parent folder before writing."""
    if path.is_symlink() or path.is_dir():
        raise OutputError(f"{path}: is a folder or a symbolic link; give a file name")
    if not path.parent.is_dir():
        raise OutputError(f"{path}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot write in {path.parent}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TEMP_MARK}", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
