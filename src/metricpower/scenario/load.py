"""Reading scenarios: TOML files, shipped presets, overrides, and clear errors.

A scenario file either describes a whole scenario or names a `preset` and overrides
parts of it. Tables merge key by key; arrays of named tables (behaviours, rules, …) merge
by `name` (an entry with a known name updates it, a new name is appended), and
`drop = {rules = ["association"]}` removes entries (`"*"` removes them all). A preset may
itself name a preset (`null` builds on `essay`). Any problem becomes one `ScenarioError`
naming the file, the key path, the line, what was expected and what was found.

Key paths index arrays as the file writes them: `rules[0].points` in a file that names a
preset is the file's own first `[[rules]]`, whatever its position in the merged scenario;
the entry's name is given beside it.
"""

from __future__ import annotations

import re
import stat
import tomllib
import typing
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ValidationError

from metricpower.scenario.schema import Scenario

PRESET_PACKAGE = "metricpower.scenario.presets"
#: Largest scenario file read, in bytes (the essay preset is about 25 KB); read before
#: parsing, so that /dev/zero or a huge file is refused at once.
MAX_BYTES = 1_000_000
#: Deepest nesting of arrays and tables accepted (a scenario needs 4).
MAX_NESTING = 20
NAMED_ARRAYS = ("behaviours", "sensors", "services", "rules", "tiers", "lists", "consequences",
                "changes")
_SINGULAR = {"behaviours": "behaviour", "sensors": "sensor", "services": "service",
             "rules": "rule", "tiers": "tier", "lists": "list", "consequences": "consequence",
             "changes": "change"}


class ScenarioError(Exception):
    """A scenario that cannot run. Its message is meant for the user as it is."""

    def __init__(self, file: str, message: str, key: str | None = None,
                 line: int | None = None, note: str | None = None):
        self.file, self.key, self.line, self.message = file, key, line, message
        self.note = note
        where = file
        if line is not None:
            where += f", line {line}"
        if key:
            where += f", key {key}"
        if note:
            where += f" ({note})"
        super().__init__(f"{where}: {message}")

    def __reduce__(self):  # so that worker processes can hand it back
        return type(self), (self.file, self.message, self.key, self.line, self.note)


def preset_names() -> list[str]:
    files = resources.files(PRESET_PACKAGE).iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".toml"))


def preset_text(name: str) -> str:
    if name not in preset_names():
        raise ScenarioError(
            f"preset {name!r}", f"unknown preset; expected one of {preset_names()}", key="preset"
        )
    return resources.files(PRESET_PACKAGE).joinpath(f"{name}.toml").read_text()


def preset_summary(name: str) -> str:
    return tomllib.loads(preset_text(name)).get("description", "").strip().splitlines()[0]


def _parse(text: str, file: str) -> dict[str, Any]:
    _check_nesting(text, file)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        match = re.search(r"line (\d+)", str(err))
        raise ScenarioError(
            file, f"not valid TOML: {err}", line=int(match.group(1)) if match else None
        ) from None
    except RecursionError:
        raise ScenarioError(file, f"arrays or tables nested more than {MAX_NESTING} "
                                  "levels deep") from None


def _check_nesting(text: str, file: str) -> None:
    """Refuse arrays, inline tables and dotted keys nested deeper than MAX_NESTING before
    the TOML parser recurses into them (its time and memory grow with the depth); what
    is in strings and comments does not count."""
    depth = dots = 0
    line, quote, lead, i, n = 1, "", True, 0, len(text)
    while i < n:
        c = text[i]
        if quote:
            if text.startswith(quote, i):
                i += len(quote)
                quote = ""
                continue
            if c == "\\" and quote[0] == '"':
                i += 1
            elif c == "\n":
                line += 1
            i += 1
            continue
        if c == "\n":
            line, lead, dots = line + 1, True, 0
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif c in "\"'":
            quote = c * 3 if text.startswith(c * 3, i) else c
            i += len(quote)
            lead = False
            continue
        elif c in "[{":
            # At depth 0 a bracket first on its line opens a [table] header, not a value.
            if depth or not lead:
                depth += 1
            dots = 0
        elif c in "]}":
            depth -= 1 if depth else 0
            dots = 0
        elif c in "=,":
            dots, lead = 0, False
        elif c == ".":
            dots += 1
        elif c not in " \t":
            lead = False
        if depth > MAX_NESTING or dots > MAX_NESTING:
            raise ScenarioError(file, f"{'arrays or tables' if depth > MAX_NESTING else 'keys'}"
                                      f" nested more than {MAX_NESTING} levels deep", line=line)
        i += 1


def merge(base: dict, override: dict) -> dict:
    """Overlay `override` on `base` (see the module docstring for the rules)."""
    out = dict(base)
    for key, value in override.items():
        if key in NAMED_ARRAYS and isinstance(value, list) and isinstance(out.get(key), list):
            entries = [dict(e) if isinstance(e, dict) else e for e in out[key]]
            index = {_name(e): i for i, e in enumerate(entries) if _name(e) is not None}
            for entry in value:
                if _name(entry) in index:
                    i = index[entry["name"]]
                    entries[i] = merge(entries[i], entry)
                else:
                    entries.append(entry)
            out[key] = entries
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _name(entry) -> str | None:
    """An array entry's name, None for an entry without one (or with a name that is not
    a string: the schema refuses it, with its key and line)."""
    name = entry.get("name") if isinstance(entry, dict) else None
    return name if isinstance(name, str) else None


def _apply_drop(data: dict, file: str, text: str | None = None) -> dict:
    drop = data.pop("drop", None)
    if drop is None:
        return data

    def error(message: str, key: str) -> ScenarioError:
        return ScenarioError(file, message, key=key, line=_line_of(key, text) if text else None)

    if not isinstance(drop, dict):
        raise error(f"expected a table of name lists, found {drop!r}", "drop")
    for field, names in drop.items():
        if field not in NAMED_ARRAYS:
            raise error(f"expected one of {list(NAMED_ARRAYS)}, found {field!r}", f"drop.{field}")
        entries = data.get(field, [])
        present = {_name(e) for e in entries} - {None} if isinstance(entries, list) else set()
        if names == "*":
            names = sorted(present)
        elif not isinstance(names, list) or not all(isinstance(x, str) for x in names):
            raise error(f'expected a list of names or "*", found {names!r}', f"drop.{field}")
        for name in names:
            if name not in present:
                raise error(f"no {field} entry named {name!r}; expected one of "
                            f"{sorted(present)}", f"drop.{field}")
        data[field] = [e for e in entries if _name(e) not in names]
    return data


class _Source:
    """One TOML text that went into a scenario: the user's file or a preset."""

    def __init__(self, file: str, text: str | None, data: dict):
        self.file, self.text, self.data = file, text, data


def _expand(data: dict, file: str, text: str | None,
            sources: list[_Source], seen: tuple[str, ...] = ()) -> dict:
    """`data` with its preset (recursively) merged under it and its `drop` applied."""
    sources.append(_Source(file, text, data))
    data = dict(data)
    preset = data.pop("preset", None)
    if preset is not None:
        line = _line_of("preset", text) if text else None
        if not isinstance(preset, str):
            raise ScenarioError(file, f"expected a preset name (a string), found {preset!r}",
                                key="preset", line=line)
        if preset not in preset_names():
            raise ScenarioError(file, f"unknown preset {preset!r}; expected one of "
                                      f"{preset_names()}", key="preset", line=line)
        if preset in seen:
            raise ScenarioError(file, f"preset {preset!r} names itself, through "
                                      f"{' → '.join(seen)}", key="preset", line=line)
        base_file, base_text = f"preset {preset!r}", preset_text(preset)
        base = _expand(_parse(base_text, base_file), base_file, base_text, sources,
                       seen + (preset,))
        data = merge(base, data)
    return _apply_drop(data, file, text)


def resolve(data: dict[str, Any], file: str = "<scenario>", text: str | None = None,
            overrides: dict[str, Any] | None = None) -> Scenario:
    """Turn parsed TOML (possibly naming a preset) into a validated Scenario."""
    sources: list[_Source] = []
    data = _expand(data, file, text, sources)
    if overrides:
        data = merge(data, overrides)
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise _explain(err, data, sources, overrides) from None


def _explain(err: ValidationError, data: dict, sources: list[_Source],
             overrides: dict | None) -> ScenarioError:
    first = err.errors()[0]
    loc = first["loc"]
    key = _key_path(loc)
    message = first["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    # Cross-field checks put the key path at the front of their message.
    match = re.match(r"^([A-Za-z_][\w.\[\]]*): (.*)$", message, re.S)
    if match:
        # A model's own check names the key inside that model ("rules[0]" + "points").
        key, message = (f"{key}.{match[1]}" if key else match[1]), match[2]
    if first["type"] not in ("value_error", "assertion_error") and "input" in first:
        found = first["input"]
        if not isinstance(found, dict | list):
            message += f"; found {found!r}"
        elif first["type"] in ("list_type", "dict_type", "model_type", "string_type",
                               "int_type", "float_type", "bool_type"):
            message += f"; found a {'table' if isinstance(found, dict) else 'list'}"
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc)
        message = f"unknown key {str(loc[-1])!r}"
        if allowed:
            message += f"; expected one of {', '.join(allowed)}"
    elif first["type"] == "missing":
        message = f"required key {str(loc[-1])!r} is missing"
    note = _entry_note(key, data)
    user = sources[0]
    if overrides and _has_path(overrides, key):
        return ScenarioError(user.file, message, key=key or None,
                             note=_join(note, "given as an override (command-line option), "
                                              "not in the file"))
    for source in sources:
        local = _local_key(key, data, source.data)
        line = _line_of(local, source.text) if local and source.text else None
        if line is None:
            continue
        if source is user:
            return ScenarioError(user.file, message, key=local, line=line, note=note)
        return ScenarioError(user.file, message, key=key, note=_join(
            note, f"set in {source.file}, line {line}"))
    if key and user.text is not None:
        # Not written anywhere (e.g. a required key left out): point at its table.
        local = _local_key(key, data, user.data)
        line = _line_of(local, user.text) if local else None
        if line is not None:
            return ScenarioError(user.file, message, key=local, line=line, note=note)
    return ScenarioError(user.file, message, key=key or None, note=note)


def _join(*notes: str | None) -> str | None:
    notes = [n for n in notes if n]
    return "; ".join(notes) or None


def _entry_note(key: str | None, data: dict) -> str | None:
    """`the rule named 'x'` for a key inside a named array entry."""
    match = re.match(r"^(\w+)\[(\d+)\]", key or "")
    if not match or match[1] not in NAMED_ARRAYS:
        return None
    entries, i = data.get(match[1]), int(match[2])
    if isinstance(entries, list) and i < len(entries) and isinstance(entries[i], dict):
        name = entries[i].get("name")
        if isinstance(name, str):
            return f"the {_SINGULAR[match[1]]} named {name!r}"
    return None


def _local_key(key: str | None, merged: dict, own: dict) -> str | None:
    """The key path into `own` (one source's parsed TOML) of `key`, a path into the merged
    data; None when that entry does not come from `own`. Array entries are matched by
    name, and entries of one name (or unnamed ones) by their order."""
    if not key:
        return None
    match = re.match(r"^(\w+)\[(\d+)\](.*)$", key, re.S)
    if not match or match[1] not in NAMED_ARRAYS:
        return key
    field, i, rest = match[1], int(match[2]), match[3]
    entries, mine = merged.get(field), own.get(field)
    if not isinstance(entries, list) or not isinstance(mine, list) or i >= len(entries):
        return None

    # The k-th entry of that name (or the k-th without a string name) in both.
    target = _name(entries[i])
    k = sum(1 for e in entries[:i] if _name(e) == target)
    same = [j for j, e in enumerate(mine) if _name(e) == target]
    return f"{field}[{same[k]}]{rest}" if k < len(same) else None


def _has_path(data: dict, key: str | None) -> bool:
    if not key:
        return False
    value: Any = data
    for name, idx in _steps(key):
        if not isinstance(value, dict) or name not in value:
            return False
        value = value[name]
        if idx is not None:
            return False  # overrides never index arrays
    return True


def _allowed_keys(loc) -> list[str] | None:
    """The keys the schema allows in the table holding `loc[-1]`."""
    model: Any = Scenario
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field is not None else None
        if model is None:
            return None
    return list(model.model_fields)


def _model_in(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


#: Parts of a pydantic error location that name a member of a union, not a key.
_UNION_TAG = re.compile(r"^(constrained-[a-z]+|literal\[.*\]|function-[a-z-]+\[.*\])$")


def _key_path(loc) -> str:
    path = ""
    for part in loc:
        if isinstance(part, str) and _UNION_TAG.match(part):
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _steps(key: str) -> list[tuple[str, int | None]]:
    """`rules[3].points` -> [("rules", 3), ("points", None)]."""
    steps: list[tuple[str, int | None]] = []
    for name, idx in re.findall(r"([^.\[\]]+)|\[(\d+)\]", key):
        if name:
            steps.append((name.strip(), None))
        elif steps and steps[-1][1] is None:
            steps[-1] = (steps[-1][0], int(idx))
    return steps


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-]+)*)\s*\]\]?"
                     r"\s*(#.*)?$")


def _line_of(key: str | None, text: str) -> int | None:
    """Line (1-based) of a key path such as `rules[3].points` in a TOML text written the
    usual way: tables and arrays of tables as [headers] / [[headers]], values as `key =`,
    `dotted.key =` or inline tables, arrays of inline tables one per line. A key that is
    not written gives the line of the closest table that is; None when there is none."""
    if not key:
        return None
    steps = _steps(key)
    lines = text.splitlines()
    headers = []  # (line index, is array of tables, path)
    in_string = False
    for n, line in enumerate(lines):
        if line.count('"""') % 2 or line.count("'''") % 2:
            in_string = not in_string
            continue
        match = None if in_string else _HEADER.match(line)
        if match:
            path = tuple(p.strip() for p in match[2].split("."))
            headers.append((n, match[1] == "[[", path))

    def body_end(after: int) -> int:
        return next((h for h, _, _ in headers if h > after), len(lines))

    start, end = -1, body_end(-1)  # the current table's header line and body end
    scope_end = len(lines)         # where sub-tables of the current table can end
    path: tuple[str, ...] = ()
    for k, (name, idx) in enumerate(steps):
        path = path + (name,)
        cands = [(h, arr) for h, arr, p in headers
                 if p == path and start < h < scope_end and arr == (idx is not None)]
        if idx is not None and idx < len(cands) or idx is None and cands:
            start = cands[idx or 0][0]
            end = body_end(start)
            scope_end = next((h for h, _, p in headers if h > start and
                              (p[:len(path)] != path or p == path)), len(lines))
            continue
        if idx is None and any(p[:len(path)] == path and len(p) > len(path)
                               for h, _, p in headers if start < h < scope_end):
            continue  # a table written only through its sub-tables ([a.b] without [a])
        # Not a table of its own: a `key =` (maybe dotted, maybe inline) in the body.
        rest = [s for s, _ in steps[k:]]
        for j in range(len(rest), 0, -1):
            pattern = re.compile(r"^\s*" + r"\s*\.\s*".join(map(re.escape, rest[:j])) +
                                 r"\s*[.=]")
            hits = [n for n in range(start + 1, end) if pattern.match(lines[n])]
            if hits:
                return _inline_element(lines, hits[0], end, steps[k + j - 1][1]) + 1
        break
    return start + 1 if start >= 0 else None


def _inline_element(lines: list[str], at: int, end: int, idx: int | None) -> int:
    """For `key = [` with inline tables one per line, the line of element `idx`; else
    `at`."""
    if idx is None or lines[at].rstrip().endswith("]"):
        return at
    elements = [n for n in range(at + 1, end) if re.match(r"^\s*\{", lines[n])]
    return elements[idx] if idx < len(elements) else at


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    path = Path(path)
    return resolve(_parse(text := read_text(path), str(path)), str(path), text, overrides)


def read_text(path: Path) -> str:
    """A scenario file's text: a regular file of at most MAX_BYTES, UTF-8. Devices, FIFOs
    and sockets are refused without being opened (reading them may never end)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ScenarioError(str(path), "no such file; expected a scenario TOML file") from None
    except OSError as err:
        raise ScenarioError(str(path), f"cannot read it ({err.strerror})") from None
    if stat.S_ISDIR(mode):
        raise ScenarioError(str(path), "is a folder; expected a scenario TOML file")
    if not stat.S_ISREG(mode):
        raise ScenarioError(str(path), "is not a regular file (a device, a pipe or a "
                                       "socket); expected a scenario TOML file")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as err:
        raise ScenarioError(str(path), f"cannot read it ({err.strerror})") from None
    if len(data) > MAX_BYTES:
        raise ScenarioError(str(path), f"is larger than {MAX_BYTES:,} bytes; a scenario "
                                       "file is a few dozen KB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise ScenarioError(str(path), f"not UTF-8 text (byte {err.start + 1})",
                            line=line) from None


def load_preset(name: str, overrides: dict[str, Any] | None = None) -> Scenario:
    text = preset_text(name)
    return resolve(_parse(text, f"preset {name!r}"), f"preset {name!r}", text, overrides)


def to_toml(scenario: Scenario) -> str:
    """The resolved scenario as TOML (None values dropped: TOML has no null)."""
    return tomli_w.dumps(_drop_none(scenario.model_dump(mode="json")))


def _drop_none(value):
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
