"""A citizen's history as the system wrote it, with the hidden truth beside it."""

from __future__ import annotations

import pyarrow.compute as pc
from rich.console import Group
from rich.markup import escape
from rich.table import Table

from metricpower.ledger.schema import CITIZENS
from metricpower.runs import Run

#: The hidden truth behind a score change, by kind: its words and its rich style.
TRUTHS = {"misattributed": ("misattributed: someone else's act", "red"),
          "benign": ("benign: a reason no sensor sees", "yellow"),
          "recorded": ("as recorded", ""),
          "derived": ("no act: derived from state", "")}


def truth_kind(rule_kind: str, benign: bool, misattributed: bool) -> str:
    if misattributed:
        return "misattributed"
    if benign:
        return "benign"
    return "recorded" if rule_kind == "event" else "derived"


def truth(rule_kind: str, benign: bool, misattributed: bool) -> str:
    words, style = TRUTHS[truth_kind(rule_kind, benign, misattributed)]
    return f"[{style}]{words}[/]" if style else words


def tier_of(scenario, score: int) -> str:
    """The tier a score falls in (the first whose band holds it)."""
    for t in scenario.tiers:
        if (t.min is None or score >= t.min) and (t.max is None or score <= t.max):
            return t.name
    return scenario.tiers[-1].name


def events(scenario, entries: list[dict]) -> list[dict]:
    """One citizen's ledger entries (as rows) with what a reader needs beside each: the
    score and tier after it, the evidence in words, the hidden truth's kind (see
    TRUTHS), the rule's provenance, whether it undoes an earlier entry on appeal, and the
    day it was itself reversed (None if never)."""
    rules = {r.name: r for r in scenario.rules}
    score = scenario.population.initial_score
    reversed_on = {e["reverses"]: e["day"] for e in entries if e["reverses"] >= 0}
    day_of = {e["entry"]: e["day"] for e in entries}
    out = []
    for e in entries:
        score += e["points"]
        rule = rules[e["rule"]]
        appeal = e["reverses"] >= 0
        evidence = (f"appeal upheld: undoes #{e['reverses']} (day "
                    f"{day_of.get(e['reverses'], '?')})" if appeal
                    else f"{e['behaviour']} seen by {e['sensor']}" if e["behaviour"]
                    else rule.kind)
        out.append({**e, "score": score, "tier": tier_of(scenario, score),
                    "evidence": evidence, "kind": rule.kind, "provenance": rule.provenance,
                    "truth": truth_kind(rule.kind, e["benign"], e["misattributed"]),
                    "appeal": appeal,
                    "reversed_on": None if appeal else reversed_on.get(e["entry"])})
    return out


def history(run: Run, citizen: int) -> Group:
    citizens = run.tables["citizens"]
    if not 0 <= citizen < citizens.num_rows:
        raise ValueError(f"citizen {citizen} is not in this run (ids 0 to "
                         f"{citizens.num_rows - 1})")
    row = citizens.slice(citizen, 1).to_pylist()[0]
    sc = run.scenario
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("citizen", f"{citizen}  ({escape(row['group'])}, {escape(row['region'])}, "
                            f"{'urban' if row['urban'] else 'rural'})")
    head.add_row("score", f"{sc.population.initial_score} → {row['score']}  "
                          f"(tier {escape(row['tier'])})")
    lists = [escape(s.name) for s in sc.lists if row[CITIZENS["on", s.name]]]
    head.add_row("lists now", ", ".join(lists) or "none")
    # A list left shows as days listed without being on it now.
    left = [f"{s.name} ({row[f'days_on_{s.name}']} days listed)" for s in sc.lists
            if row[f"days_on_{s.name}"] > 0 and not row[f"on_{s.name}"]]
    if left:
        head.add_row("lists left", ", ".join(left))
    head.add_row("sanctions / rewards", f"{row['sanctions']} / {row['rewards']}")
    head.add_row("income index", f"{row['income']:.2f} → {row['income_final']:.2f}")
    if row["flagged"]:
        head.add_row("risk model", "[red]flagged as likely to fall to the bottom[/]")
    if row["pets_confiscated"]:
        head.add_row("pet", "[red]confiscated[/]")
    head.add_row("hidden true conduct", f"{row['conduct']:.2f} (1 = never breaks a rule; "
                                         "the system never sees this)")
    parts: list = [head]
    if not row["in_ledger"]:
        parts.append("This citizen is outside the ledger sample kept for this run: "
                     "their score changes were counted in the aggregates only.")
        return Group(*parts)
    ledger = run.tables["ledger"]
    mine = ledger.filter(pc.equal(ledger["citizen"], citizen)).to_pylist()
    table = Table(title=f"{len(mine)} score changes")
    for col, justify in (("day", "right"), ("rule", "left"), ("evidence", "left"),
                         ("points", "right"), ("score", "right"), ("provenance", "left"),
                         ("hidden truth", "left")):
        table.add_column(col, justify=justify)
    for e in events(sc, mine):
        hidden = truth(e["kind"], e["benign"], e["misattributed"])
        if e["reversed_on"] is not None:
            hidden += f" [green](reversed on appeal, day {e['reversed_on']})[/]"
        table.add_row(f"{e['day']}", f"#{e['entry']} {escape(e['rule'])}",
                      escape(e["evidence"]), f"{e['points']:+d}", str(e["score"]),
                      e["provenance"], hidden)
    parts.append(table)
    return Group(*parts)
