"""Reading scenarios: TOML files, shipped presets, overrides, and clear errors.

A scenario file either describes a whole scenario or names a `preset` and overrides
parts of it. Tables merge key by key; arrays of named tables (behaviours, rules, …) merge
by `name` (an entry with a known name updates it, a new name is appended), and
`drop = {rules = ["association"]}` removes entries (`"*"` removes them all). Any problem becomes one
`ScenarioError` naming the file, the key path, the line, what was expected and what was
found.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

from metricpower.scenario.schema import Scenario

PRESET_PACKAGE = "metricpower.scenario.presets"
NAMED_ARRAYS = ("behaviours", "sensors", "services", "rules", "tiers", "lists", "consequences")


class ScenarioError(Exception):
    """A scenario that cannot run. Its message is meant for the user as it is."""

    def __init__(self, file: str, message: str, key: str | None = None,
                 line: int | None = None):
        self.file, self.key, self.line, self.message = file, key, line, message
        where = file
        if line is not None:
            where += f", line {line}"
        if key:
            where += f", key {key}"
        super().__init__(f"{where}: {message}")


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
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        match = re.search(r"line (\d+)", str(err))
        raise ScenarioError(
            file, f"not valid TOML: {err}", line=int(match.group(1)) if match else None
        ) from None


def merge(base: dict, override: dict) -> dict:
    """Overlay `override` on `base` (see the module docstring for the rules)."""
    out = dict(base)
    for key, value in override.items():
        if key in NAMED_ARRAYS and isinstance(value, list) and isinstance(out.get(key), list):
            entries = [dict(e) for e in out[key]]
            index = {e.get("name"): i for i, e in enumerate(entries)}
            for entry in value:
                if isinstance(entry, dict) and entry.get("name") in index:
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


def _apply_drop(data: dict, file: str) -> dict:
    drop = data.pop("drop", None)
    if drop is None:
        return data
    if not isinstance(drop, dict):
        raise ScenarioError(file, f"expected a table of name lists, found {drop!r}", key="drop")
    for field, names in drop.items():
        if field not in NAMED_ARRAYS:
            raise ScenarioError(file, f"expected one of {list(NAMED_ARRAYS)}, found {field!r}",
                                key=f"drop.{field}")
        present = {e.get("name") for e in data.get(field, [])}
        if names == "*":
            names = sorted(present)
        elif not isinstance(names, list):
            raise ScenarioError(file, f'expected a list of names or "*", found {names!r}',
                                key=f"drop.{field}")
        for name in names:
            if name not in present:
                raise ScenarioError(
                    file, f"no {field} entry named {name!r}; expected one of {sorted(present)}",
                    key=f"drop.{field}")
        data[field] = [e for e in data.get(field, []) if e.get("name") not in names]
    return data


def resolve(data: dict[str, Any], file: str = "<scenario>", text: str | None = None,
            overrides: dict[str, Any] | None = None) -> Scenario:
    """Turn parsed TOML (possibly naming a preset) into a validated Scenario."""
    data = dict(data)
    base_file, base_text = file, text
    preset = data.pop("preset", None)
    if preset is not None:
        if not isinstance(preset, str):
            raise ScenarioError(file, f"expected a preset name, found {preset!r}", key="preset")
        base_text = preset_text(preset)
        base = _parse(base_text, f"preset {preset!r}")
        base_file = f"preset {preset!r}"
        data = merge(base, data)
    data = _apply_drop(data, file)
    if overrides:
        data = merge(data, overrides)
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise _explain(err, data, file, text, base_file, base_text) from None


def _explain(err: ValidationError, data, file, text, base_file, base_text) -> ScenarioError:
    first = err.errors()[0]
    key = _key_path(first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    # Cross-field checks put the key path at the front of their message.
    match = re.match(r"^([A-Za-z_][\w.\[\]]*): (.*)$", message, re.S)
    if match and not key:
        key, message = match.groups()
    if first["type"] not in ("value_error", "assertion_error") and "input" in first:
        found = first["input"]
        if not isinstance(found, dict | list):
            message += f"; found {found!r}"
    if first["type"] == "extra_forbidden":
        message = "unknown key (not part of the scenario schema)"
    line = _line_of(key, text) if text else None
    where = file
    if line is None and base_text is not None and base_text is not text:
        line = _line_of(key, base_text)
        where = base_file if line is not None else file
    return ScenarioError(where, message, key=key or None, line=line)


def _key_path(loc) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _line_of(key: str | None, text: str) -> int | None:
    """Line of a key path such as `rules[3].points` in a TOML text written the usual way
    (arrays of tables with [[headers]]), or None when it cannot be found."""
    if not key:
        return None
    parts = re.findall(r"([^.\[\]]+)|\[(\d+)\]", key)
    steps = [(name, int(idx)) if idx else (name, None) for name, idx in parts]
    names, indices = [], []
    for name, idx in steps:
        if name:
            names.append(name)
            indices.append(None)
        elif indices:
            indices[-1] = idx
    lines = text.splitlines()
    start, end = 0, len(lines)
    prefix = []
    for depth, (name, idx) in enumerate(zip(names, indices, strict=True)):
        prefix.append(name)
        header = ".".join(prefix)
        if idx is not None:
            hits = [n for n in range(start, end)
                    if re.match(rf"^\s*\[\[\s*{re.escape(header)}\s*\]\]", lines[n])]
            if idx < len(hits):
                start = hits[idx]
                nxt = [n for n in range(start + 1, end) if re.match(r"^\s*\[", lines[n])]
                end = nxt[0] if nxt else end
                continue
        table = [n for n in range(start, end)
                 if re.match(rf"^\s*\[\s*{re.escape(header)}\s*\]", lines[n])]
        if table:
            start = table[0]
            nxt = [n for n in range(start + 1, len(lines)) if re.match(r"^\s*\[", lines[n])]
            end = nxt[0] if nxt else len(lines)
            continue
        assign = [n for n in range(start, end)
                  if re.match(rf"^\s*{re.escape(name)}\s*=", lines[n])]
        if assign:
            return assign[0] + 1
        if depth == len(names) - 1 or idx is not None:
            return start + 1 if start or depth else None
    return start + 1


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ScenarioError(str(path), "no such file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as err:
        raise ScenarioError(str(path), f"cannot read it as a text file ({err})") from None
    return resolve(_parse(text, str(path)), str(path), text, overrides)


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
