"""What a run records, declared once: every table and every column, with its Arrow type,
unit and meaning. The run tables are built and checked against it (`Table.build`), the
metrics read column names through it (`DAILY["penalties"]`, `DAILY["occurrences",
behaviour]`), the summary's totals and the report's labels come from it, and the column
lists in docs/metrics.md are generated from it (`write_docs()`).

Columns kept per entity of the scenario (per behaviour, list, tier, consequence, service)
are *families*: `<family>_<name>`, e.g. `occurrences_jaywalking`. Names may contain `_`,
so the family prefixes of a table are kept prefix-free (no prefix starts another, and no
fixed column starts with one): then a column name splits into family and entity in one
way only, and two entities can never be given the same column (`check_unambiguous`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

NAMES = pa.dictionary(pa.int32(), pa.string())  # a name stored as a dictionary code

#: Column names of each table asked about, as a set: metrics ask once per behaviour, and
#: scanning the list of a table of 20,000 behaviours each time is quadratic.
_COLUMNS: dict[int, tuple[weakref.ref, frozenset[str]]] = {}


def _column_set(df) -> frozenset[str]:
    key = id(df)
    hit = _COLUMNS.get(key)
    if hit is None or hit[0]() is not df:
        cols = df.column_names if isinstance(df, pa.Table) else df.columns
        hit = (weakref.ref(df, lambda _, key=key: _COLUMNS.pop(key, None)), frozenset(cols))
        _COLUMNS[key] = hit
    return hit[1]


class UndeclaredColumn(KeyError):
    """A column that the results schema does not declare."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Column:
    """One column: its name (for a family member, the family's prefix), Arrow type, unit
    and one-line meaning. `flow`: a daily count of what happened that day, which adds up
    over days (else a level at the end of the day)."""

    name: str
    type: pa.DataType
    unit: str
    meaning: str
    flow: bool = False
    nullable: bool = False


@dataclass(frozen=True)
class Family:
    """Columns kept once per entity of a kind (`per`), named `<column>_<entity>`, entity
    by entity in the scenario's order. `when`: the response that must be on."""

    per: str
    columns: tuple[Column, ...]
    when: str | None = None


#: How each kind of entity is listed from a scenario; None: any whole number (a day).
ENTITIES: dict[str, Callable | None] = {
    "behaviour": lambda sc: [b.name for b in sc.behaviours],
    "list": lambda sc: [x.name for x in sc.lists],
    "tier": lambda sc: [t.name for t in sc.tiers],
    "consequence": lambda sc: [c.name for c in sc.consequences],
    "service": lambda sc: [s.name for s in sc.services],
    "refusing service": lambda sc: [s.name for s in sc.services
                                    if s.name in sc.responses.labelling.services],
    "snapshot day": None,
}


@dataclass(frozen=True)
class Fixed:
    """Fixed columns recorded only when a response is on (`when`), else always."""

    columns: tuple[Column, ...]
    when: str | None = None


_reads: list[set] = []


@contextmanager
def reading():
    """Collect every (table, column) looked up through the schema inside the block."""
    seen: set[tuple[str, str]] = set()
    _reads.append(seen)
    try:
        yield seen
    finally:
        _reads.remove(seen)


@dataclass(frozen=True)
class Table:
    name: str
    row: str  # what a row is: "One row per <row>"
    meaning: str
    parts: tuple[Fixed | Family, ...]
    _fixed: dict = field(init=False, repr=False, compare=False)
    _families: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        fixed, families = {}, {}
        for part in self.parts:
            for col in part.columns:
                target = families if isinstance(part, Family) else fixed
                if col.name in target:
                    raise ValueError(f"{self.name}: {col.name!r} declared twice")
                target[col.name] = (col, part)
        object.__setattr__(self, "_fixed", fixed)
        object.__setattr__(self, "_families", families)

    def __getitem__(self, key: str | tuple[str, str]) -> str:
        """The name of a declared column: `t["penalties"]`, or a family member
        `t["occurrences", "jaywalking"]`. Raises UndeclaredColumn for anything else."""
        if isinstance(key, tuple):
            family, entity = key
            if family not in self._families:
                raise UndeclaredColumn(f"{self.name}: no column family {family!r}")
            name = f"{family}_{entity}"
        else:
            if key not in self._fixed:
                raise UndeclaredColumn(f"{self.name}: no column {key!r}")
            name = key
        for seen in _reads:
            seen.add((self.name, name))
        return name

    def column(self, key: str | tuple[str, str]) -> Column:
        """The declaration of a column (fixed, or a family's for a member)."""
        if isinstance(key, tuple):
            self[key]
            return self._families[key[0]][0]
        self[key]
        return self._fixed[key][0]

    def has(self, df, key: str | tuple[str, str]) -> bool:
        """Whether table `df` (Arrow or Polars) holds a declared column; an undeclared one
        raises, so a misspelt name cannot pass for a column the run did not record."""
        return self[key] in _column_set(df)

    def members(self, df, family: str) -> list[str]:
        """The entities of `family` whose columns table `df` holds, in its order."""
        if family not in self._families:
            raise UndeclaredColumn(f"{self.name}: no column family {family!r}")
        cols = df.column_names if isinstance(df, pa.Table) else df.columns
        prefix = family + "_"
        return [c[len(prefix):] for c in cols
                if c.startswith(prefix) and self.declaration(c) is self._families[family][0]]

    def fixed(self) -> list[Column]:
        return [c for c, _ in self._fixed.values()]

    def expected(self, scenario) -> list[tuple[str, Column]] | None:
        """Every column a run of `scenario` records, in order; None where a family's
        entities are open (snapshot days) — then `check` matches names by pattern."""
        out = []
        for part in self.parts:
            if part.when is not None and not getattr(scenario.responses, part.when).enabled:
                continue
            if isinstance(part, Fixed):
                out += [(c.name, c) for c in part.columns]
                continue
            lister = ENTITIES[part.per]
            if lister is None:
                return None
            out += [(f"{c.name}_{e}", c) for e in lister(scenario) for c in part.columns]
        return out

    def declaration(self, name: str) -> Column:
        """The declaration a column name of this table falls under."""
        if name in self._fixed:
            return self._fixed[name][0]
        for prefix, (col, part) in self._families.items():
            if name.startswith(prefix + "_"):
                entity = name[len(prefix) + 1:]
                if ENTITIES[part.per] is None and not entity.isdigit():
                    break
                return col
        raise UndeclaredColumn(f"{self.name}: no column {name!r}")

    def build(self, values: dict, scenario) -> pa.Table:
        """The table from `values` (column name → array or list), in declared order, each
        column of its declared type; an undeclared, missing or mistyped column raises."""
        expected = self.expected(scenario)
        if expected is None:
            expected = [(n, self.declaration(n)) for n in values]
        names = [n for n, _ in expected]
        declared = set(names)
        extra = [n for n in values if n not in declared]
        if extra:
            raise UndeclaredColumn(f"{self.name}: undeclared column(s) {extra}")
        missing = [n for n in names if n not in values]
        if missing:
            raise ValueError(f"{self.name}: declared column(s) not recorded: {missing}")
        arrays = []
        for name, col in expected:
            value = values[name]
            if isinstance(value, list):
                arr = pa.array(value, type=col.type)
            else:
                arr = value if isinstance(value, pa.Array | pa.ChunkedArray) else pa.array(value)
            if arr.type != col.type:
                raise TypeError(f"{self.name}.{name}: declared {col.type}, found {arr.type}")
            if arr.null_count and not col.nullable:
                raise ValueError(f"{self.name}.{name}: {arr.null_count} missing values in a "
                                 "column declared complete")
            arrays.append(arr)
        return pa.table(arrays, names=names)

    def check(self, table: pa.Table, scenario) -> None:
        """Raise unless `table` has exactly the columns, order and types declared for a
        run of `scenario`."""
        expected = self.expected(scenario)
        if expected is None:
            expected = [(n, self.declaration(n)) for n in table.column_names]
        want = [(n, c.type) for n, c in expected]
        got = [(f.name, f.type) for f in table.schema]
        if want != got:
            raise ValueError(f"{self.name}: columns {got} differ from the declared {want}")


def _c(name, type_, unit, meaning, **kw) -> Column:
    return Column(name, type_, unit, meaning, **kw)


I64, I32, I16, F64, F32, BOOL, STR = (pa.int64(), pa.int32(), pa.int16(), pa.float64(),
                                     pa.float32(), pa.bool_(), pa.string())


def _flow(name, unit, meaning) -> Column:
    return Column(name, I64, unit, meaning, flow=True)


DAILY = Table("daily", "day of the run", "What happened each day, counted over everyone.", (
    Fixed((_c("day", I64, "day", "day of the run, from 0"),)),
    Family("behaviour", (
        _flow("occurrences", "acts", "acts of the behaviour, seen or not (ground truth)"),
        _flow("benign_occurrences", "acts", "of them, acts with a benign hidden reason"),
        _flow("chilled", "acts", "acts of the behaviour deterred by the system"),
        _flow("benign_chilled", "acts", "of them, acts with a benign hidden reason"),
    )),
    Fixed((
        _flow("occurrences", "acts", "acts by citizens (seen or not)"),
        _flow("benign_occurrences", "acts", "acts with a benign reason no sensor can see"),
        _flow("observed", "acts", "acts a sensor saw"),
        _flow("chilled", "acts", "acts deterred by the system"),
        _flow("benign_chilled", "acts", "deterred acts with a benign hidden reason"),
        _flow("false_matches", "events", "camera false matches charging an innocent citizen"),
    )),
    Fixed((
        _flow("appeals_filed", "appeals", "appeals filed against penalties"),
        _flow("appeals_decided", "appeals", "appeals decided by the office"),
        _flow("appeals_upheld", "appeals", "appeals upheld (the penalty reversed)"),
        _flow("appeals_upheld_misattributed", "appeals",
              "upheld appeals against a misattributed penalty"),
        _flow("appeals_upheld_benign", "appeals",
              "upheld appeals against a penalty on a benign act"),
        _flow("redress_days", "days", "days the upheld appeals waited, summed"),
        _c("appeals_waiting", I64, "appeals", "appeals waiting at the end of the day"),
    ), when="appeals"),
    Fixed((
        _flow("penalties", "events", "penalties"),
        _flow("benign_penalties", "events", "penalties on an act with a benign hidden reason"),
        _flow("misattributed_penalties", "events",
              "penalties charged for someone else's act (false match)"),
        _flow("reward_events", "events", "rewards (positive points)"),
    )),
    Family("list", (
        _flow("entered", "citizens", "citizens put on the list"),
        _flow("left", "citizens", "citizens taken off the list (by its exit condition, "
              "on expiry, or withdrawn)"),
    )),
    Family("list", (
        _flow("withdrawn", "citizens", "of those taken off, listings withdrawn because an "
              "appeal reversed the penalty they rested on"),
    ), when="appeals"),
    Fixed((_c("flagged", I64, "citizens", "citizens flagged by the risk model"),),
          when="prediction"),
    Family("consequence", (_flow("applied", "events", "times the consequence was applied"),)),
    Family("service", (_flow("attempts", "attempts", "attempts to use the service"),)),
    Family("refusing service", (_flow(
        "refused", "attempts", "attempts refused by others because the citizen was "
                               "publicly labelled"),)),
    Fixed((
        _flow("ties_dropped", "ties", "friendships dropped"),
        _flow("ties_formed", "ties", "friendships formed"),
    ), when="association"),
    Fixed((
        _c("mean_score", F64, "points", "mean score at the end of the day"),
        _c("mean_income", F64, "index", "mean income index at the end of the day"),
    )),
    Family("tier", (_c("tier", I64, "citizens", "citizens in the tier at the end of the day"),)),
    Family("list", (_c("list", I64, "citizens", "citizens on the list at the end of the day"),)),
    Fixed((
        _c("assortativity", F64, "correlation", "score assortativity of the network (every "
           "30th day and the last; else null)", nullable=True),
    )),
))

CITIZENS = Table("citizens", "citizen", "Every citizen at the end of the run: traits, "
                 "hidden truth and what the system made of them.", (
    Fixed((
        _c("citizen", I64, "id", "citizen number"),
        _c("region", NAMES, "name", "region"),
        _c("urban", BOOL, "yes/no", "lives in a city"),
        _c("group", NAMES, "name", "demographic group"),
        _c("conduct", F32, "propensity 0-1", "hidden true conduct (higher is better)"),
        _c("gamer", F32, "propensity 0-1", "propensity to play games"),
        _c("prosociality", F32, "propensity 0-1", "propensity to volunteer and give"),
        _c("pet_owner", BOOL, "yes/no", "owned a pet at the start"),
        _c("has_child", BOOL, "yes/no", "has a school-age child"),
        _c("income", F32, "index", "income index at the start"),
        _c("friends", I32, "citizens", "friends at the end"),
        _c("score", I32, "points", "final score"),
        _c("tier", NAMES, "name", "final tier"),
    )),
    Family("list", (
        _c("on", BOOL, "yes/no", "on the list at the end"),
        _c("days_on", I32, "days", "days spent on the list"),
    )),
    Fixed((
        _c("occurrences", I32, "acts", "acts over the run, seen or not (ground truth)"),
        _c("observed", I32, "acts", "of them, acts a sensor saw"),
        _c("income_final", F32, "index", "income index at the end"),
        _c("flagged", BOOL, "yes/no", "flagged by the risk model at the end"),
        _c("true_offences", I32, "acts", "acts of penalised behaviours with no benign reason"),
        _c("sanctions", I32, "events", "sanctions applied to the citizen"),
        _c("rewards", I32, "events", "rewards given to the citizen"),
        _c("pets_confiscated", BOOL, "yes/no", "had a pet confiscated"),
        _c("days_labelled", I32, "days", "days publicly labelled"),
        _c("in_ledger", BOOL, "yes/no", "the citizen's ledger records are kept"),
    )),
))

LEDGER = Table("ledger", "score change", "Every score change kept (all citizens, or a "
               "seeded sample), append-only; a reversal is a new record.", (Fixed((
                   _c("entry", I64, "id", "entry number, over everyone kept or not"),
                   _c("day", I16, "day", "day of the change"),
                   _c("citizen", I64, "id", "citizen whose score changed"),
                   _c("rule", NAMES, "name", "rule that changed it"),
                   _c("behaviour", NAMES, "name", "behaviour observed (null: derived from "
                      "state or friends)", nullable=True),
                   _c("sensor", NAMES, "name", "sensor that saw it (null: none)",
                      nullable=True),
                   _c("points", I32, "points", "points added (negative: a penalty)"),
                   _c("benign", BOOL, "yes/no", "hidden truth: the act had a benign reason"),
                   _c("misattributed", BOOL, "yes/no",
                      "hidden truth: someone else's act (a false match)"),
                   _c("reverses", I64, "id", "entry this one reverses on appeal (-1: none)"),
               )),))

CONSEQUENCES = Table("consequences", "consequence and group", "Each consequence applied "
                     "over the run, by group.", (Fixed((
                         _c("consequence", STR, "name", "consequence"),
                         _c("effect", STR, "name", "what it does (deny, throttle, reward, "
                            "confiscate_pet, publish)"),
                         _c("service", STR, "name", "service it gates (null: acts on the "
                            "citizen)", nullable=True),
                         _c("sanction", BOOL, "yes/no", "a sanction (else a reward)"),
                         _c("provenance", STR, "label", "documented / reported / hypothetical"),
                         _c("group", STR, "name", "demographic group"),
                         _c("applied", I64, "events", "times applied"),
                     )),))

SERVICES = Table("services", "service and group", "Attempts to use each service over "
                 "the run, by group.", (Fixed((
                     _c("service", STR, "name", "service"),
                     _c("group", STR, "name", "demographic group"),
                     _c("attempts", I64, "attempts", "attempts to use the service"),
                     _c("refused_by_others", I64, "attempts", "attempts refused by others "
                        "because the citizen was publicly labelled"),
                 )),))

TIERS = Table("tiers", "citizen", "Every citizen's tier every 30 days and on the last "
              "day, for mobility matrices.", (
    Fixed((_c("citizen", I64, "id", "citizen number"),)),
    Family("snapshot day", (_c("day", NAMES, "name", "tier at the end of that day"),)),
))

TIES = Table("ties", "change to the network", "Every friendship dropped or formed.", (
    Fixed((
        _c("day", I16, "day", "day of the change"),
        _c("citizen", I64, "id", "citizen who dropped or formed the tie"),
        _c("friend", I64, "id", "the other end of the tie"),
        _c("change", NAMES, "name", "dropped or formed"),
        _c("reason", NAMES, "name", "association_rule or public_list"),
    )),
))

PREDICTIONS = Table("predictions", "prediction day and group", "The risk model's flags "
                    "judged once their horizon has passed, on what the model predicts: of "
                    "the citizens not at the bottom on the day of the flags, who is at the "
                    "bottom `horizon` days later (fell). (tp + fn) / all is the base rate "
                    "that precision is read against.", (Fixed((
                        _c("day", I64, "day", "day the flags were made (judged `horizon` "
                           "days later)"),
                        _c("group", STR, "name", "demographic group"),
                        _c("tp", I64, "citizens", "flagged and fell to the bottom"),
                        _c("fp", I64, "citizens", "flagged and did not"),
                        _c("fn", I64, "citizens", "not flagged and fell"),
                        _c("tn", I64, "citizens", "not flagged and did not"),
                    )),))

BOTTOM = Table("bottom", "move into or out of the bottom tiers", "Every move into or out "
               "of the bottom tiers, from which persistence at the bottom is measured.", (Fixed((
                   _c("day", I16, "day", "day of the move"),
                   _c("citizen", I64, "id", "citizen who moved"),
                   _c("change", NAMES, "name", "entered or left"),
               )),))

#: Every table a run records, in the order of the run directory's description.
RESULTS: dict[str, Table] = {t.name: t for t in (DAILY, CITIZENS, LEDGER, CONSEQUENCES,
                                                 SERVICES, TIERS, TIES, PREDICTIONS,
                                                 BOTTOM)}


def check_unambiguous(table: Table) -> None:
    """Raise unless every column name of `table` parses one way only: no family prefix
    starts another (`chilled_` and `chilled_benign_` would give `chilled_benign_x` to the
    behaviours `benign_x` and `x`), and no fixed column starts with a family prefix."""
    prefixes = [p + "_" for p in table._families]
    for a in prefixes:
        for b in prefixes:
            if a != b and b.startswith(a):
                raise ValueError(f"{table.name}: family {b[:-1]!r} starts with {a!r}")
        for name in table._fixed:
            if name.startswith(a):
                raise ValueError(f"{table.name}: column {name!r} starts with family {a!r}")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(tables: Iterable[Table] = RESULTS.values()) -> str:
    """The column lists of docs/metrics.md, generated."""
    out = []
    for t in tables:
        out += [f"### `{t.name}.parquet`", "", f"{t.meaning} One row per {t.row}.", "",
                "| column | type | unit | meaning |", "|---|---|---|---|"]
        for part in t.parts:
            when = f" (only with `responses.{part.when}` on)" if part.when else ""
            for c in part.columns:
                name = (f"`{c.name}_<{part.per.replace(' ', '_')}>`"
                        if isinstance(part, Family) else f"`{c.name}`")
                kind = "string (dictionary)" if c.type == NAMES else str(c.type)
                null = ", nullable" if c.nullable else ""
                flow = "; adds up over days" if c.flow else ""
                out.append(f"| {name} | {kind}{null} | {c.unit} | "
                           f"{_cell(c.meaning)}{flow}{when} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


BEGIN = "<!-- generated from metricpower.ledger.schema: edit there, not here -->"
END = "<!-- end of generated section -->"


def with_docs(text: str) -> str:
    """`text` (docs/metrics.md) with its generated section replaced by the schema's."""
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n\n" + markdown() + "\n" + text[stop:]


def write_docs(path: str | Path = "docs/metrics.md") -> None:
    """Regenerate the column lists in docs/metrics.md (written beside, then renamed)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(with_docs(path.read_text()))
    tmp.replace(path)


__all__ = ["CITIZENS", "CONSEQUENCES", "DAILY", "LEDGER", "PREDICTIONS", "RESULTS",
           "SERVICES", "TIERS", "TIES", "BOTTOM", "Column", "Family", "Fixed", "Table",
           "UndeclaredColumn", "check_unambiguous", "markdown", "reading", "with_docs",
           "write_docs"]
